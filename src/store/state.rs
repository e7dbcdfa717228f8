//! `sync_state`: watermarks and bookkeeping keyed by project, source and name.

use sqlx::{Sqlite, Transaction};

use super::{Store, StoreError};
use crate::model::Source;

/// The NoSQL watermark: every window up to this instant (UTC text) is stored whole.
pub const NOSQL_WATERMARK: &str = "watermark";

/// One value to set in the same transaction as the rows that justify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateUpdate {
    pub project_id: String,
    pub source: Source,
    pub key: String,
    pub value: String,
}

/// The key under which misses of a job or resource known only from the store
/// are counted (see `sync`).
pub fn missing_key(id: &str) -> String {
    format!("missing:{id}")
}

/// How many syncs in a row answered 404 for each ID known only from the store.
pub async fn miss_counts(
    store: &Store,
    project_id: &str,
    source: Source,
) -> Result<std::collections::HashMap<String, u32>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT key, value FROM sync_state WHERE project_id = ? AND source = ? AND key LIKE 'missing:%'",
    )
    .bind(project_id)
    .bind(source.as_str())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("missing:")?.to_owned(), v.parse().ok()?)))
        .collect())
}

impl Store {
    /// Clears the 404 counts of jobs the run stored (a listing found them,
    /// say under `--full`), so they are re-checked again like any other.
    pub async fn forget_misses_of_seen_jobs(&self, sync_id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM sync_state WHERE key LIKE 'missing:%' AND EXISTS (
                 SELECT 1 FROM jobs j WHERE j.source = sync_state.source
                   AND j.project_id = sync_state.project_id
                   AND j.job_id = substr(sync_state.key, 9) AND j.last_sync_id = ?)",
        )
        .bind(sync_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Reads one state value.
pub async fn get_state(
    store: &Store,
    project_id: &str,
    source: Source,
    key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT value FROM sync_state WHERE project_id = ? AND source = ? AND key = ?",
    )
    .bind(project_id)
    .bind(source.as_str())
    .bind(key)
    .fetch_optional(store.pool())
    .await?)
}

/// Sets one state value on its own (outside a job batch).
pub async fn set_state(store: &Store, update: &StateUpdate, now: &str) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    set_state_tx(&mut tx, update, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets one value (project, source, key, value, updated_at), written alone or
/// with a job batch (`writer`).
pub(super) const UPSERT_STATE_SQL: &str = "INSERT INTO sync_state (project_id, source, key, value, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (project_id, source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

async fn set_state_tx(
    tx: &mut Transaction<'static, Sqlite>,
    update: &StateUpdate,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(UPSERT_STATE_SQL)
        .bind(&update.project_id)
        .bind(update.source.as_str())
        .bind(&update.key)
        .bind(&update.value)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
