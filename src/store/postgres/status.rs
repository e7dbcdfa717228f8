//! Read-only summaries on PostgreSQL, for `jobtrail status` and the demo's
//! summary: the same rows as the SQLite store's (`store::status`), times
//! given in the SQLite text form so both backends print alike.

use chrono::{DateTime, Utc};

use super::{PgStore, PgStoreError};
use crate::normalize::format_utc;
use crate::store::{FailureReasonCount, JobCount, OldestUnfinished, RunRow, StateRow};

impl PgStore {
    /// The size of the database on the server.
    pub async fn size_in_bytes(&self) -> Result<u64, PgStoreError> {
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// How many sync runs were ever recorded.
    pub async fn count_runs(&self) -> Result<i64, PgStoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The last `limit` sync runs, newest first.
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<RunRow>, PgStoreError> {
        type Row = (
            i64,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            String,
            String,
            i64,
            i64,
            i64,
            i64,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, started_at, finished_at, status, sources, requests, jobs_seen, \
             jobs_new, jobs_changed, error FROM sync_runs ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, started, finished, outcome, sources, requests, seen, new, changed, error)| {
                    RunRow {
                        id,
                        started_at: format_utc(started),
                        finished_at: finished.map(format_utc),
                        outcome,
                        sources,
                        requests,
                        jobs_seen: seen,
                        jobs_new: new,
                        jobs_changed: changed,
                        error,
                    }
                },
            )
            .collect())
    }

    /// Every `sync_state` entry, by project, source and key (byte order, as
    /// on SQLite).
    pub async fn sync_state_entries(&self) -> Result<Vec<StateRow>, PgStoreError> {
        let rows: Vec<(String, String, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT project_id, source, key, value, updated_at FROM sync_state \
             ORDER BY project_id COLLATE \"C\", source COLLATE \"C\", key COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(project_id, source, key, value, updated)| StateRow {
                project_id,
                source,
                key,
                value,
                updated_at: format_utc(updated),
            })
            .collect())
    }

    /// Jobs per source and status, by source then status.
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, PgStoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT source, status, COUNT(*) FROM jobs GROUP BY source, status \
             ORDER BY source COLLATE \"C\", status COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(source, status, jobs)| JobCount {
                source,
                status,
                jobs,
            })
            .collect())
    }

    /// How many jobs are not final yet (running or unknown).
    pub async fn count_unfinished(&self) -> Result<i64, PgStoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('running', 'unknown')")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The unfinished job that started (or was first seen) longest ago; ties
    /// go to the first by source, then job ID.
    pub async fn oldest_unfinished(&self) -> Result<Option<OldestUnfinished>, PgStoreError> {
        type Row = (
            String,
            String,
            String,
            Option<String>,
            String,
            DateTime<Utc>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT source, project_id, job_id, job_type, status, \
             COALESCE(started_at, first_seen_at) AS since FROM jobs \
             WHERE status IN ('running', 'unknown') \
             ORDER BY since, source COLLATE \"C\", job_id COLLATE \"C\" LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(source, project_id, job_id, job_type, status, since)| OldestUnfinished {
                source,
                project_id,
                job_id,
                job_type,
                status,
                since: format_utc(since),
            },
        ))
    }

    /// The `limit` most frequent failure reasons across sources, most failures
    /// first (ties by reason, in byte order).
    pub async fn top_failure_reasons(
        &self,
        limit: u32,
    ) -> Result<Vec<FailureReasonCount>, PgStoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT source, reason, SUM(failures)::bigint FROM failures_by_type_reason \
             GROUP BY 1, 2 ORDER BY 3 DESC, reason COLLATE \"C\" LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(source, reason, failures)| FailureReasonCount {
                source,
                reason,
                failures,
            })
            .collect())
    }
}
