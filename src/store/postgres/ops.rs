//! What operators watch, on PostgreSQL: when each (project, source) last
//! synced completely, the jobs a run saw become failed, and the oldest
//! unfinished job per source. The same answers as SQLite's (`store::ops`).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::state::upsert_state_rows;
use super::{PgStore, PgStoreError, to_millis};
use crate::model::Source;
use crate::normalize::format_utc;
use crate::store::ops::LAST_SUCCESS_KEY;
use crate::store::state::StateRow;
use crate::store::{LastSuccess, NewFailure, SyncRun};

/// The jobs a run saw become failed: a status change of the run (ids after
/// it began) into `failed` from anything else, first sight included.
const BECAME_FAILED: &str = "SELECT DISTINCT source, project_id, job_id FROM job_status_changes \
     WHERE id > $1 AND sync_id = $2 AND new_status = 'failed' \
     AND old_status IS DISTINCT FROM 'failed'";

impl PgStore {
    /// Records that each (project, source) pair synced completely at `at`.
    pub async fn record_complete_syncs(
        &self,
        pairs: &[(&str, Source)],
        at: DateTime<Utc>,
    ) -> Result<(), PgStoreError> {
        let value = format_utc(at);
        let rows: Vec<StateRow<'_>> = pairs
            .iter()
            .map(|(project_id, source)| StateRow {
                project_id,
                source: *source,
                key: Cow::Borrowed(LAST_SUCCESS_KEY),
                value: value.clone(),
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        upsert_state_rows(&mut tx, &rows, to_millis(at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// When each (project, source) pair last synced completely.
    pub async fn last_successes(&self) -> Result<Vec<LastSuccess>, PgStoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT project_id, source, value FROM sync_state WHERE key = $1
             ORDER BY project_id COLLATE \"C\", source COLLATE \"C\"",
        )
        .bind(LAST_SUCCESS_KEY)
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::store::ops::last_successes_from(rows))
    }

    /// The jobs `run` saw become failed, with what the API said about them.
    pub async fn new_failures(&self, run: &SyncRun) -> Result<Vec<NewFailure>, PgStoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT j.source, j.project_id, j.job_id, j.job_type, j.resource_id, j.resource_name, \
                    j.error_code, j.fail_reason \
             FROM ({BECAME_FAILED}) became \
             JOIN jobs j ON j.source = became.source AND j.project_id = became.project_id \
                        AND j.job_id = became.job_id \
             ORDER BY j.source COLLATE \"C\", j.project_id COLLATE \"C\", j.job_id COLLATE \"C\""
        )))
        .bind(run.history_before)
        .bind(run.id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many jobs `run` saw become failed, per source.
    pub async fn new_failure_counts(
        &self,
        run: &SyncRun,
    ) -> Result<Vec<(Source, i64)>, PgStoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT source, COUNT(*) FROM ({BECAME_FAILED}) became \
             GROUP BY source ORDER BY source COLLATE \"C\""
        )))
        .bind(run.history_before)
        .bind(run.id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(source, n)| Some((source.parse().ok()?, n)))
            .collect())
    }

    /// Per source, when its oldest unfinished job started (or was first seen).
    pub async fn oldest_unfinished_by_source(
        &self,
    ) -> Result<Vec<(Source, DateTime<Utc>)>, PgStoreError> {
        let rows: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT source, MIN(COALESCE(started_at, first_seen_at)) FROM jobs
             WHERE status IN ('running', 'unknown') GROUP BY source ORDER BY source COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(source, since)| Some((source.parse().ok()?, since?)))
            .collect())
    }
}
