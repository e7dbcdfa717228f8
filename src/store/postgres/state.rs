//! `sync_state` on PostgreSQL: watermarks, 404 counts and which DBSS jobs
//! path answers, keyed by project,
//! source and name, set alone or with a job batch (`writer`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::copy::without_nul;
use super::{PgStore, PgStoreError, to_millis};
use crate::model::{DbssJobsPath, Source};
use crate::normalize::parse_api_time;
use crate::store::StateUpdate;
use crate::store::state::{DBSS_JOBS_PATH_KEY, MISSING_PREFIX, StateRow, WATERMARK_KEY};

/// Sets many values in one statement. A key given twice keeps its last value
/// (one statement cannot upsert a row twice).
const UPSERT_STATE_SQL: &str = "INSERT INTO sync_state (project_id, source, key, value, updated_at)
SELECT p, s, k, v, $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u (p, s, k, v)
ON CONFLICT (project_id, source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

impl PgStore {
    /// A source's watermark, if a sync has set one (and it reads as a time).
    pub async fn watermark(
        &self,
        project_id: &str,
        source: Source,
    ) -> Result<Option<DateTime<Utc>>, PgStoreError> {
        let value = self.get_state(project_id, source, WATERMARK_KEY).await?;
        Ok(value.as_deref().and_then(parse_api_time))
    }

    /// The DBSS jobs path that last answered for a project, if one has (a
    /// value this build does not know reads as none).
    pub async fn dbss_jobs_path(
        &self,
        project_id: &str,
    ) -> Result<Option<DbssJobsPath>, PgStoreError> {
        let value = self
            .get_state(project_id, Source::Dbss, DBSS_JOBS_PATH_KEY)
            .await?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// Reads one state value as stored.
    pub(super) async fn get_state(
        &self,
        project_id: &str,
        source: Source,
        key: &str,
    ) -> Result<Option<String>, PgStoreError> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM sync_state WHERE project_id = $1 AND source = $2 AND key = $3",
        )
        .bind(project_id)
        .bind(source.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Sets one state value on its own (outside a job batch).
    pub async fn set_state(
        &self,
        update: &StateUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), PgStoreError> {
        let mut conn = self.pool.acquire().await?;
        upsert_state_rows(&mut conn, &[update.row()], to_millis(now)).await
    }

    /// How many syncs in a row answered 404 for each ID known only from the store.
    pub async fn miss_counts(
        &self,
        project_id: &str,
        source: Source,
    ) -> Result<HashMap<String, u32>, PgStoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM sync_state
             WHERE project_id = $1 AND source = $2 AND key LIKE 'missing:%'",
        )
        .bind(project_id)
        .bind(source.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                Some((k.strip_prefix(MISSING_PREFIX)?.to_owned(), v.parse().ok()?))
            })
            .collect())
    }

    /// Clears the 404 counts of jobs the run stored (a listing found them,
    /// say under `--full`), so they are re-checked again like any other.
    pub async fn forget_misses_of_seen_jobs(&self, sync_id: i64) -> Result<(), PgStoreError> {
        // `substr(key, 9)`: the ID after `MISSING_PREFIX`.
        sqlx::query(
            "DELETE FROM sync_state WHERE key LIKE 'missing:%' AND EXISTS (
                 SELECT 1 FROM jobs j WHERE j.source = sync_state.source
                   AND j.project_id = sync_state.project_id
                   AND j.job_id = substr(sync_state.key, 9) AND j.last_sync_id = $1)",
        )
        .bind(sync_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Upserts state rows, updated at `now`, on `conn` (inside the caller's
/// transaction, if any). Of a key given twice the last value wins, as if they
/// were set one after the other.
pub(super) async fn upsert_state_rows(
    conn: &mut PgConnection,
    rows: &[StateRow<'_>],
    now: DateTime<Utc>,
) -> Result<(), PgStoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut last: HashMap<(&str, Source, &str), usize> = HashMap::with_capacity(rows.len());
    for (n, row) in rows.iter().enumerate() {
        last.insert((row.project_id, row.source, row.key.as_ref()), n);
    }
    let mut kept: Vec<usize> = last.into_values().collect();
    kept.sort_unstable();
    // Text without U+0000, as the writer stores every text (`copy`).
    let text = |t: &str| without_nul(t).into_owned();
    let (mut projects, mut sources, mut keys, mut values) = (vec![], vec![], vec![], vec![]);
    for &n in &kept {
        let row = &rows[n];
        projects.push(text(row.project_id));
        sources.push(row.source.as_str().to_owned());
        keys.push(text(&row.key));
        values.push(text(&row.value));
    }
    sqlx::query(UPSERT_STATE_SQL)
        .bind(projects)
        .bind(sources)
        .bind(keys)
        .bind(values)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
