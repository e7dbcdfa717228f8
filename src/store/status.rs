//! Read-only summaries of the whole database: the rows `jobtrail status` and
//! the demo's closing summary are built from (runs, sync state, job counts,
//! unfinished jobs, failure reasons).

use super::{SqliteStore, StoreError};

/// One sync run, as `sync_runs` holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `succeeded`, `partial` or `failed`.
    pub outcome: String,
    pub sources: String,
    pub requests: i64,
    pub jobs_seen: i64,
    pub jobs_new: i64,
    pub jobs_changed: i64,
    pub error: Option<String>,
}

/// One `sync_state` entry: a watermark or a piece of sync bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StateRow {
    pub project_id: String,
    pub source: String,
    pub key: String,
    pub value: String,
    pub updated_at: String,
}

/// How many jobs one source holds in one normalized status. Both stay text:
/// a database written by hand may hold values this build does not know, and
/// the status still counts them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCount {
    pub source: String,
    pub status: String,
    pub jobs: i64,
}

/// The unfinished job that started longest ago.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OldestUnfinished {
    pub source: String,
    pub project_id: String,
    pub job_id: String,
    pub job_type: Option<String>,
    pub status: String,
    /// Its start time, else when jobtrail first saw it (UTC text).
    pub since: String,
}

/// Failures of one source with one reason (from `failures_by_type_reason`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailureReasonCount {
    pub source: String,
    pub reason: String,
    pub failures: i64,
}

impl SqliteStore {
    /// How many sync runs were ever recorded.
    pub async fn count_runs(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The last `limit` sync runs, newest first.
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<RunRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, started_at, finished_at, status AS outcome, sources, requests, jobs_seen, \
             jobs_new, jobs_changed, error FROM sync_runs ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every `sync_state` entry, by project, source and key.
    pub async fn sync_state_entries(&self) -> Result<Vec<StateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT project_id, source, key, value, updated_at FROM sync_state \
             ORDER BY project_id, source, key",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Jobs per source and status, by source then status.
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT source, status, COUNT(*) AS jobs FROM jobs GROUP BY source, status \
             ORDER BY source, status",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many jobs are not final yet (running or unknown).
    pub async fn count_unfinished(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('running', 'unknown')")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The unfinished job that started (or was first seen) longest ago; ties
    /// go to the first by source, then job ID.
    pub async fn oldest_unfinished(&self) -> Result<Option<OldestUnfinished>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT source, project_id, job_id, job_type, status, \
             COALESCE(started_at, first_seen_at) AS since FROM jobs \
             WHERE status IN ('running', 'unknown') ORDER BY since, source, job_id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The `limit` most frequent failure reasons across sources, most failures
    /// first (ties by reason).
    pub async fn top_failure_reasons(
        &self,
        limit: u32,
    ) -> Result<Vec<FailureReasonCount>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT source, reason, SUM(failures) AS failures FROM failures_by_type_reason \
             GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
