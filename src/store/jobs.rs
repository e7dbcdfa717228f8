//! Reading jobs back for the sync's plans: what to re-check and what to skip.
//! (Writing them is `writer`'s job.)

use chrono::{DateTime, Utc};

use super::{SqliteStore, StoreError};
use crate::model::Source;
use crate::normalize::{format_utc, parse_api_time};

impl SqliteStore {
    /// Jobs of one project and source not final yet (running or unknown), with
    /// their start time: the re-check list of an incremental sync. With
    /// `started_before`, only those that started before it (or at an unknown
    /// time): the jobs a sync's own time range does not list again, so a
    /// backfill loads none.
    pub async fn unfinished_jobs(
        &self,
        source: Source,
        project_id: &str,
        started_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<UnfinishedJob>, StoreError> {
        let rows = sqlx::query_as::<
            _,
            (
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            ),
        >(
            // Found through `jobs_by_status_started` (the unary `+` keeps SQLite
            // from scanning the whole project through the primary key instead):
            // the cost follows the unfinished jobs, not the history.
            "SELECT job_id, parent_job_id, started_at, resource_id, raw_status FROM jobs
             WHERE status IN ('running', 'unknown') AND +source = ?1 AND +project_id = ?2
               AND (?3 IS NULL OR started_at IS NULL OR started_at < ?3)
             ORDER BY started_at",
        )
        .bind(source.as_str())
        .bind(project_id)
        .bind(started_before.map(format_utc))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(job_id, parent_job_id, started_at, resource_id, raw_status)| UnfinishedJob {
                    job_id,
                    parent_job_id,
                    started_at: started_at.as_deref().and_then(parse_api_time),
                    resource_id,
                    raw_status,
                },
            )
            .collect())
    }

    /// Image jobs whose job row and every sub-job row are final: never fetched again
    /// unless `--full`.
    pub async fn finished_image_jobs(
        &self,
        project_id: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT j.job_id FROM jobs j
             WHERE j.source = 'image' AND j.project_id = ?1 AND j.parent_job_id IS NULL
               AND j.status IN ('succeeded', 'failed')
               AND NOT EXISTS (
                   SELECT 1 FROM jobs s
                   WHERE s.source = 'image' AND s.project_id = ?1 AND s.parent_job_id = j.job_id
                     AND s.status NOT IN ('succeeded', 'failed'))",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }
}

impl SqliteStore {
    /// How many jobs are stored, counting sub-jobs.
    pub async fn job_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Start times (sorted) of a source and project's jobs within `[from, to]`
    /// in one raw status: what the re-check planner counts to price re-reading
    /// a span with the API's `status` filter.
    pub async fn start_times_between(
        &self,
        source: Source,
        project_id: &str,
        raw_status: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let times: Vec<String> = sqlx::query_scalar(
            // A raw status maps to one normalized status, and these are unfinished
            // ones: saying so lets SQLite seek `jobs_by_status_started`.
            "SELECT started_at FROM jobs WHERE status IN ('running', 'unknown') \
             AND +source = ? AND +project_id = ? AND raw_status = ? \
             AND started_at BETWEEN ? AND ? ORDER BY started_at",
        )
        .bind(source.as_str())
        .bind(project_id)
        .bind(raw_status)
        .bind(format_utc(from))
        .bind(format_utc(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(times.iter().filter_map(|t| parse_api_time(t)).collect())
    }

    /// DBSS resources whose stored jobs are all final and were confirmed since
    /// `fresh_since`: an incremental sync need not ask for them again yet.
    pub async fn settled_dbss_resources(
        &self,
        project_id: &str,
        fresh_since: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT resource_id FROM jobs
             WHERE source = 'dbss' AND project_id = ? AND resource_id IS NOT NULL
             GROUP BY resource_id
             HAVING SUM(status NOT IN ('succeeded', 'failed')) = 0 AND MIN(last_seen_at) >= ?",
        )
        .bind(project_id)
        .bind(format_utc(fresh_since))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }
}

/// A stored job that is not final yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedJob {
    pub job_id: String,
    pub parent_job_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub resource_id: Option<String>,
    pub raw_status: Option<String>,
}
