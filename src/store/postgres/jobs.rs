//! Reading jobs back for the sync's plans, on PostgreSQL: what to re-check and
//! what to skip. The same questions and answers as the SQLite store's.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{PgStore, PgStoreError, to_millis};
use crate::model::Source;
use crate::store::UnfinishedJob;

impl PgStore {
    /// Jobs of one project and source not final yet (running or unknown), with
    /// their start time, oldest first (unknown start times first, as SQLite
    /// sorts them): the re-check list of an incremental sync. With
    /// `started_before`, only those that started before it or at an unknown time.
    pub async fn unfinished_jobs(
        &self,
        source: Source,
        project_id: &str,
        started_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<UnfinishedJob>, PgStoreError> {
        type Row = (
            String,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT job_id, parent_job_id, started_at, resource_id, raw_status FROM jobs
             WHERE status IN ('running', 'unknown') AND source = $1 AND project_id = $2
               AND ($3::timestamptz IS NULL OR started_at IS NULL OR started_at < $3)
             ORDER BY started_at NULLS FIRST, job_id",
        )
        .bind(source.as_str())
        .bind(project_id)
        .bind(started_before.map(to_millis))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(job_id, parent_job_id, started_at, resource_id, raw_status)| UnfinishedJob {
                    job_id,
                    parent_job_id,
                    started_at,
                    resource_id,
                    raw_status,
                },
            )
            .collect())
    }

    /// Image jobs whose job row and every sub-job row are final: never fetched
    /// again unless `--full`.
    pub async fn finished_image_jobs(
        &self,
        project_id: &str,
    ) -> Result<HashSet<String>, PgStoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT j.job_id FROM jobs j
             WHERE j.source = 'image' AND j.project_id = $1 AND j.parent_job_id IS NULL
               AND j.status IN ('succeeded', 'failed')
               AND NOT EXISTS (
                   SELECT 1 FROM jobs s
                   WHERE s.source = 'image' AND s.project_id = $1 AND s.parent_job_id = j.job_id
                     AND s.status NOT IN ('succeeded', 'failed'))",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Start times (sorted) of a source and project's unfinished jobs within
    /// `[from, to]` in one raw status: what the re-check planner counts to
    /// price re-reading a span with the API's `status` filter.
    pub async fn start_times_between(
        &self,
        source: Source,
        project_id: &str,
        raw_status: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, PgStoreError> {
        Ok(sqlx::query_scalar(
            "SELECT started_at FROM jobs WHERE status IN ('running', 'unknown')
             AND source = $1 AND project_id = $2 AND raw_status = $3
             AND started_at BETWEEN $4 AND $5 ORDER BY started_at",
        )
        .bind(source.as_str())
        .bind(project_id)
        .bind(raw_status)
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(&self.pool)
        .await?)
    }

    /// DBSS resources whose stored jobs are all final and were confirmed since
    /// `fresh_since`: an incremental sync need not ask for them again yet.
    pub async fn settled_dbss_resources(
        &self,
        project_id: &str,
        fresh_since: DateTime<Utc>,
    ) -> Result<HashSet<String>, PgStoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT resource_id FROM jobs
             WHERE source = 'dbss' AND project_id = $1 AND resource_id IS NOT NULL
             GROUP BY resource_id
             HAVING bool_and(status IN ('succeeded', 'failed')) AND MIN(last_seen_at) >= $2",
        )
        .bind(project_id)
        .bind(to_millis(fresh_since))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// How many jobs are stored, counting sub-jobs.
    pub async fn job_count(&self) -> Result<i64, PgStoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&self.pool)
            .await?)
    }
}
