//! `sync_scopes` on PostgreSQL: what each (project, region, source) scope of a
//! run did, written in the transaction that closes the run (`runs`), and the
//! scopes whose latest run did not succeed, with since when (`jobtrail
//! status`). The same rows and streak rules as SQLite's (`store::scopes`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::copy::without_nul;
use super::{PgStore, PgStoreError, to_millis};
use crate::normalize::format_utc;
use crate::store::scopes::{ScopeKey, combine};
use crate::store::{FailingScopeRow, RunTotals, ScopeRecord, SyncRun};

/// Jobs a run stored, per (project, source): one pass over the run's rows and
/// one over the history it wrote (ids after the run began).
pub(super) async fn totals_by_scope(
    conn: &mut PgConnection,
    run: &SyncRun,
) -> Result<HashMap<ScopeKey, RunTotals>, PgStoreError> {
    let seen: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT project_id, source, COUNT(*) FROM jobs WHERE last_sync_id = $1
         GROUP BY project_id, source",
    )
    .bind(run.id)
    .fetch_all(&mut *conn)
    .await?;
    let history: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT project_id, source, COUNT(*) FILTER (WHERE old_status IS NULL),
                COUNT(*) FILTER (WHERE old_status IS NOT NULL)
         FROM job_status_changes WHERE id > $1 AND sync_id = $2 GROUP BY project_id, source",
    )
    .bind(run.history_before)
    .bind(run.id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(combine(seen, history))
}

/// One row per scope, carrying its failing streak on from the scope's
/// previous row. Returns each scope's counts, in the order given.
pub(super) async fn insert(
    conn: &mut PgConnection,
    run: &SyncRun,
    scopes: &[ScopeRecord],
    totals: &HashMap<ScopeKey, RunTotals>,
) -> Result<Vec<RunTotals>, PgStoreError> {
    let mut counts = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let key = (scope.project_id.clone(), scope.source.as_str().to_owned());
        let t = totals.get(&key).copied().unwrap_or_default();
        sqlx::query(
            "INSERT INTO sync_scopes (sync_id, project_id, region, source, status, requests,
             jobs_seen, jobs_new, jobs_changed, error, failing_since, failed_runs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
             CASE WHEN $5 = 'succeeded' THEN NULL ELSE COALESCE((SELECT failing_since
                 FROM sync_scopes WHERE project_id = $2 AND source = $4 AND sync_id < $1
                 ORDER BY sync_id DESC LIMIT 1), $11) END,
             CASE WHEN $5 = 'succeeded' THEN 0 ELSE COALESCE((SELECT failed_runs
                 FROM sync_scopes WHERE project_id = $2 AND source = $4 AND sync_id < $1
                 ORDER BY sync_id DESC LIMIT 1), 0) + 1 END)",
        )
        .bind(run.id)
        .bind(without_nul(&scope.project_id).into_owned())
        .bind(without_nul(&scope.region).into_owned())
        .bind(scope.source.as_str())
        .bind(scope.outcome.as_str())
        .bind(i64::try_from(scope.requests).unwrap_or(i64::MAX))
        .bind(t.seen)
        .bind(t.new)
        .bind(t.changed)
        .bind(scope.error.as_deref().map(|e| without_nul(e).into_owned()))
        .bind(to_millis(run.started_at))
        .execute(&mut *conn)
        .await?;
        counts.push(t);
    }
    Ok(counts)
}

/// Drops scope rows older than the last `retained` runs
/// ([`crate::store::RETAINED_RUNS`]), keeping each scope's latest.
pub(super) async fn prune(
    conn: &mut PgConnection,
    run: &SyncRun,
    retained: i64,
) -> Result<(), PgStoreError> {
    sqlx::query(
        "DELETE FROM sync_scopes WHERE sync_id <= $1 - $2 AND EXISTS (
             SELECT 1 FROM sync_scopes n WHERE n.project_id = sync_scopes.project_id
               AND n.source = sync_scopes.source AND n.sync_id > sync_scopes.sync_id)",
    )
    .bind(run.id)
    .bind(retained)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A failing scope as read, before its times become SQLite's text.
type FailingRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    i64,
    i64,
    DateTime<Utc>,
);

impl PgStore {
    /// Scopes whose latest run did not succeed, longest failing first (times
    /// as the SQLite store gives them). A database whose schema predates
    /// scopes (opened for reading, so not migrated) has none.
    pub async fn failing_scopes(&self) -> Result<Vec<FailingScopeRow>, PgStoreError> {
        let has_scopes: bool = sqlx::query_scalar("SELECT to_regclass('sync_scopes') IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        if !has_scopes {
            return Ok(Vec::new());
        }
        let rows: Vec<FailingRow> = sqlx::query_as(
            "SELECT s.project_id, s.region, s.source, s.status, s.error,
             COALESCE(s.failing_since, r.started_at) AS failing_since, s.failed_runs,
             s.sync_id AS last_sync_id, r.started_at AS last_run_at
             FROM sync_scopes s JOIN sync_runs r ON r.id = s.sync_id
             WHERE s.status <> 'succeeded' AND s.sync_id = (SELECT MAX(l.sync_id)
                 FROM sync_scopes l WHERE l.project_id = s.project_id AND l.source = s.source)
             ORDER BY 6, s.project_id COLLATE \"C\", s.source COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(project_id, region, source, status, error, since, failed_runs, sync_id, at)| {
                    FailingScopeRow {
                        project_id,
                        region,
                        source,
                        status,
                        error,
                        failing_since: format_utc(since),
                        failed_runs,
                        last_sync_id: sync_id,
                        last_run_at: format_utc(at),
                    }
                },
            )
            .collect())
    }
}
