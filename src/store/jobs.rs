//! Writing jobs: batched upserts keyed by `(source, project_id, job_id)`, in one
//! transaction with the watermarks they justify. The status history is written
//! by triggers (see the first migration), so no write path can forget it.

use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::state::StateUpdate;
use super::{Store, StoreError};
use crate::model::{JobRow, Source};

/// SQLite allows 32766 bound variables per statement; at 19 per row a chunk of
/// this size stays well under it, and each statement saves a thousand round
/// trips to the database thread.
const ROWS_PER_STATEMENT: usize = 1_000;

/// What one transaction writes: jobs plus the bookkeeping they make true.
#[derive(Debug, Default)]
pub struct JobBatch {
    pub rows: Vec<JobRow>,
    pub state: Vec<StateUpdate>,
}

impl Store {
    /// Stores a batch atomically: either every row and state update lands, or
    /// none. New and changed jobs are counted per run from the history the
    /// triggers write ([`Store::run_totals`]), so nothing is counted here.
    pub async fn write_batch(
        &self,
        sync_id: i64,
        seen_at: &str,
        batch: &JobBatch,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in batch.rows.chunks(ROWS_PER_STATEMENT) {
            upsert_rows(&mut tx, sync_id, seen_at, chunk).await?;
        }
        for update in &batch.state {
            super::state::set_state_tx(&mut tx, update, seen_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Jobs of one project and source not final yet (running or unknown), with
    /// their start time: the re-check list of an incremental sync.
    pub async fn unfinished_jobs(
        &self,
        source: Source,
        project_id: &str,
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
            "SELECT job_id, parent_job_id, started_at, resource_id, raw_status FROM jobs
             WHERE source = ? AND project_id = ? AND status NOT IN ('succeeded', 'failed')
             ORDER BY started_at",
        )
        .bind(source.as_str())
        .bind(project_id)
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

impl Store {
    /// Start times (sorted) of a source and project's jobs within `[from, to]`
    /// in one raw status: what the re-check planner counts to price re-reading
    /// a span with the API's `status` filter.
    pub async fn start_times_between(
        &self,
        source: Source,
        project_id: &str,
        raw_status: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT started_at FROM jobs WHERE source = ? AND project_id = ? AND raw_status = ? \
             AND started_at BETWEEN ? AND ? ORDER BY started_at",
        )
        .bind(source.as_str())
        .bind(project_id)
        .bind(raw_status)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    /// DBSS resources whose stored jobs are all final and were confirmed since
    /// `fresh_since`: an incremental sync need not ask for them again yet.
    pub async fn settled_dbss_resources(
        &self,
        project_id: &str,
        fresh_since: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT resource_id FROM jobs
             WHERE source = 'dbss' AND project_id = ? AND resource_id IS NOT NULL
             GROUP BY resource_id
             HAVING SUM(status NOT IN ('succeeded', 'failed')) = 0 AND MIN(last_seen_at) >= ?",
        )
        .bind(project_id)
        .bind(fresh_since)
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
    pub started_at: Option<String>,
    pub resource_id: Option<String>,
    pub raw_status: Option<String>,
}

async fn upsert_rows(
    tx: &mut Transaction<'static, Sqlite>,
    sync_id: i64,
    seen_at: &str,
    rows: &[JobRow],
) -> Result<(), StoreError> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO jobs (source, project_id, job_id, parent_job_id, job_type, status, raw_status, \
         progress, started_at, ended_at, duration_ms, resource_id, resource_name, error_code, \
         fail_reason, raw_json, first_seen_at, last_seen_at, last_sync_id) ",
    );
    qb.push_values(rows, |mut b, row| {
        b.push_bind(row.source.as_str())
            .push_bind(row.project_id.as_str())
            .push_bind(row.job_id.as_str())
            .push_bind(row.parent_job_id.as_deref())
            .push_bind(row.job_type.as_deref())
            .push_bind(row.status.as_str())
            .push_bind(row.raw_status.as_deref())
            .push_bind(row.progress)
            .push_bind(row.started_at.as_deref())
            .push_bind(row.ended_at.as_deref())
            .push_bind(row.duration_ms)
            .push_bind(row.resource_id.as_deref())
            .push_bind(row.resource_name.as_deref())
            .push_bind(row.error_code.as_deref())
            .push_bind(row.fail_reason.as_deref())
            .push_bind(row.raw_json.as_str())
            .push_bind(seen_at)
            .push_bind(seen_at)
            .push_bind(sync_id);
    });
    // Never INSERT OR REPLACE: that deletes the row and loses first_seen_at.
    qb.push(
        " ON CONFLICT (source, project_id, job_id) DO UPDATE SET \
         parent_job_id = excluded.parent_job_id, job_type = excluded.job_type, \
         status = excluded.status, raw_status = excluded.raw_status, progress = excluded.progress, \
         started_at = excluded.started_at, ended_at = excluded.ended_at, \
         duration_ms = excluded.duration_ms, resource_id = excluded.resource_id, \
         resource_name = excluded.resource_name, error_code = excluded.error_code, \
         fail_reason = excluded.fail_reason, raw_json = excluded.raw_json, \
         last_seen_at = excluded.last_seen_at, last_sync_id = excluded.last_sync_id",
    );
    qb.build().persistent(true).execute(&mut **tx).await?;
    Ok(())
}
