//! `sync_state`: watermarks, 404 counts and which DBSS jobs path answers,
//! keyed by project, source and name.
//! Callers see typed values ([`StateUpdate`], [`MissUpdate`], times); the keys
//! and text they are stored as are this module's business.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{SqliteStore, StoreError};
use crate::model::{DbssJobsPath, Source};
use crate::normalize::{format_utc, parse_api_time};

/// The key of a source's watermark: every window up to this instant (UTC
/// text) is stored whole.
pub(super) const WATERMARK_KEY: &str = "watermark";

/// The key of the DBSS jobs path that last answered for a project (source `dbss`).
pub(super) const DBSS_JOBS_PATH_KEY: &str = "jobs_path";

/// The key prefix under which misses of a job or resource known only from the
/// store are counted: `missing:{id}`. [`SqliteStore::forget_misses_of_seen_jobs`]
/// takes the ID from character 9 on, just past it.
pub(super) const MISSING_PREFIX: &str = "missing:";

/// One value to set, in the same transaction as the rows that justify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateUpdate {
    /// Every window of `source` up to `at` is stored whole.
    Watermark {
        project_id: String,
        source: Source,
        at: DateTime<Utc>,
    },
    /// A new 404 count for one job or resource known only from the store.
    Misses {
        project_id: String,
        source: Source,
        miss: MissUpdate,
    },
    /// The DBSS jobs path that answered for a project: later runs ask it first.
    DbssJobsPath {
        project_id: String,
        path: DbssJobsPath,
    },
}

/// How many syncs in a row answered 404 for one ID (zero: it was found again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissUpdate {
    pub id: String,
    pub count: u32,
}

/// One `sync_state` row as stored: project, source, key and value.
pub(super) struct StateRow<'a> {
    pub project_id: &'a str,
    pub source: Source,
    pub key: Cow<'a, str>,
    pub value: String,
}

impl StateUpdate {
    /// The row this update sets.
    pub(super) fn row(&self) -> StateRow<'_> {
        match self {
            StateUpdate::Watermark {
                project_id,
                source,
                at,
            } => StateRow {
                project_id,
                source: *source,
                key: Cow::Borrowed(WATERMARK_KEY),
                value: format_utc(*at),
            },
            StateUpdate::Misses {
                project_id,
                source,
                miss,
            } => StateRow {
                project_id,
                source: *source,
                key: Cow::Owned(format!("{MISSING_PREFIX}{}", miss.id)),
                value: miss.count.to_string(),
            },
            StateUpdate::DbssJobsPath { project_id, path } => StateRow {
                project_id,
                source: Source::Dbss,
                key: Cow::Borrowed(DBSS_JOBS_PATH_KEY),
                value: path.as_str().to_owned(),
            },
        }
    }
}

/// Sets one value (project, source, key, value, updated_at), written alone or
/// with a job batch (`writer`).
pub(super) const UPSERT_STATE_SQL: &str = "INSERT INTO sync_state (project_id, source, key, value, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (project_id, source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

impl SqliteStore {
    /// A source's watermark, if a sync has set one (and it reads as a time).
    pub async fn watermark(
        &self,
        project_id: &str,
        source: Source,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let value: Option<String> = sqlx::query_scalar(
            "SELECT value FROM sync_state WHERE project_id = ? AND source = ? AND key = ?",
        )
        .bind(project_id)
        .bind(source.as_str())
        .bind(WATERMARK_KEY)
        .fetch_optional(&self.pool)
        .await?;
        Ok(value.as_deref().and_then(parse_api_time))
    }

    /// The DBSS jobs path that last answered for a project, if one has (a
    /// value this build does not know reads as none).
    pub async fn dbss_jobs_path(
        &self,
        project_id: &str,
    ) -> Result<Option<DbssJobsPath>, StoreError> {
        let value: Option<String> = sqlx::query_scalar(
            "SELECT value FROM sync_state WHERE project_id = ? AND source = ? AND key = ?",
        )
        .bind(project_id)
        .bind(Source::Dbss.as_str())
        .bind(DBSS_JOBS_PATH_KEY)
        .fetch_optional(&self.pool)
        .await?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// How many syncs in a row answered 404 for each ID known only from the store.
    pub async fn miss_counts(
        &self,
        project_id: &str,
        source: Source,
    ) -> Result<HashMap<String, u32>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM sync_state WHERE project_id = ? AND source = ? AND key LIKE 'missing:%'",
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
    pub async fn forget_misses_of_seen_jobs(&self, sync_id: i64) -> Result<(), StoreError> {
        // `substr(key, 9)`: the ID after `MISSING_PREFIX`.
        sqlx::query(
            "DELETE FROM sync_state WHERE key LIKE 'missing:%' AND EXISTS (
                 SELECT 1 FROM jobs j WHERE j.source = sync_state.source
                   AND j.project_id = sync_state.project_id
                   AND j.job_id = substr(sync_state.key, 9) AND j.last_sync_id = ?)",
        )
        .bind(sync_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets one state value on its own (outside a job batch).
    pub async fn set_state(
        &self,
        update: &StateUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = update.row();
        sqlx::query(UPSERT_STATE_SQL)
            .bind(row.project_id)
            .bind(row.source.as_str())
            .bind(row.key.as_ref())
            .bind(&row.value)
            .bind(format_utc(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{db_with, job};

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    #[test]
    fn the_miss_prefix_ends_before_the_character_the_sql_reads_from() {
        assert_eq!(MISSING_PREFIX.len() + 1, 9);
    }

    #[tokio::test]
    async fn state_reads_back_as_it_was_set_and_in_the_stored_form() {
        let db = db_with(&[]).await;
        let store = &db.store;
        let at = t("2024-03-01T00:00:00Z");
        let now = t("2024-03-02T00:00:00Z");
        let watermark = StateUpdate::Watermark {
            project_id: "p1".into(),
            source: Source::Nosql,
            at,
        };
        store.set_state(&watermark, now).await.expect("set");
        assert_eq!(
            store.watermark("p1", Source::Nosql).await.expect("read"),
            Some(at)
        );
        assert_eq!(
            store.watermark("p2", Source::Nosql).await.expect("read"),
            None
        );
        let miss = |id: &str, count| StateUpdate::Misses {
            project_id: "p1".into(),
            source: Source::Dbss,
            miss: MissUpdate {
                id: id.into(),
                count,
            },
        };
        store.set_state(&miss("r1", 2), now).await.expect("set");
        store.set_state(&miss("r2", 1), now).await.expect("set");
        store.set_state(&miss("r2", 0), now).await.expect("set");
        let counts = store.miss_counts("p1", Source::Dbss).await.expect("counts");
        assert_eq!(counts, HashMap::from([("r1".into(), 2), ("r2".into(), 0)]));
        assert_eq!(store.dbss_jobs_path("p1").await.expect("read"), None);
        let path = |path| StateUpdate::DbssJobsPath {
            project_id: "p1".into(),
            path,
        };
        store
            .set_state(&path(DbssJobsPath::Legacy), now)
            .await
            .expect("set");
        assert_eq!(
            store.dbss_jobs_path("p1").await.expect("read"),
            Some(DbssJobsPath::Legacy)
        );
        assert_eq!(store.dbss_jobs_path("p2").await.expect("read"), None);
        let stored: Vec<(String, String, String)> =
            sqlx::query_as("SELECT key, value, updated_at FROM sync_state ORDER BY source, key")
                .fetch_all(store.sqlite_pool())
                .await
                .expect("rows");
        let row = |k: &str, v: &str| (k.to_owned(), v.to_owned(), format_utc(now));
        assert_eq!(
            stored,
            vec![
                row("jobs_path", "legacy"),
                row("missing:r1", "2"),
                row("missing:r2", "0"),
                row("watermark", "2024-03-01T00:00:00.000Z"),
            ]
        );
    }

    #[tokio::test]
    async fn a_job_the_run_stored_is_no_longer_counted_missing() {
        let rows = vec![job(
            Source::Nosql,
            "a",
            None,
            crate::model::Status::Running,
            None,
            None,
        )];
        let db = db_with(&[rows]).await;
        let now = t("2024-03-02T00:00:00Z");
        for id in ["a", "b"] {
            let update = StateUpdate::Misses {
                project_id: "p1".into(),
                source: Source::Nosql,
                miss: MissUpdate {
                    id: id.into(),
                    count: 1,
                },
            };
            db.store.set_state(&update, now).await.expect("set");
        }
        db.store
            .forget_misses_of_seen_jobs(1)
            .await
            .expect("forget");
        let counts = db
            .store
            .miss_counts("p1", Source::Nosql)
            .await
            .expect("counts");
        assert_eq!(counts, HashMap::from([("b".into(), 1)]));
    }
}
