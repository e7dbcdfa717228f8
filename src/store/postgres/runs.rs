//! `sync_runs` on PostgreSQL: one row per sync, opened when it starts and
//! closed with its outcome and, in the same transaction, the outcome of each
//! of its scopes (`scopes`).
//!
//! Many hosts sync one database at once, so "a run still marked running was
//! interrupted" can no longer be assumed as on SQLite (where the caller holds
//! the only sync lock). Each run in progress holds a session advisory lock
//! keyed by its id, on the store's run session; a run marked running whose
//! lock nobody holds belongs to a process that died, and the next run to
//! begin, on any host, closes it as failed.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::{PgStore, PgStoreError, connect, scopes, to_millis};
use crate::model::Source;
use crate::store::{RETAINED_RUNS, RunCounts, RunEnd, RunTotals, SyncRun};

/// The high 32 bits of every run's advisory lock key; the low 32 bits are the
/// run id's. ("jtrn": project locks never use it, see `lock`.)
pub(super) const RUN_LOCK_SPACE: u32 = 0x6A74_726E;

/// Closes as failed the runs marked running whose lock no session holds.
/// (pg_locks shows a bigint advisory key as classid = high 32 bits, objid =
/// low 32 bits, objsubid = 1.)
const CLOSE_DEAD_RUNS_SQL: &str = "UPDATE sync_runs
SET status = 'failed',
    error = COALESCE(error, 'interrupted: the process ended before the run finished')
WHERE status = 'running' AND NOT EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = $1::bigint::oid AND l.objid = (sync_runs.id & 4294967295)::oid)";

/// The advisory lock key of run `id`.
fn run_lock_key(id: i64) -> i64 {
    (i64::from(RUN_LOCK_SPACE) << 32) | (id & 0xFFFF_FFFF)
}

impl PgStore {
    /// Opens a run (marked running, with a lock that says it is alive), then
    /// closes the runs whose process died. `sources` are stored by name,
    /// comma-separated, in the order given.
    pub async fn begin_run(
        &self,
        sources: &[Source],
        started_at: DateTime<Utc>,
    ) -> Result<SyncRun, PgStoreError> {
        let names: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
        let started_at = to_millis(started_at);
        let mut session = self.run_session.lock().await;
        let mut conn = match session.take() {
            Some(conn) => conn,
            None => connect(&self.url, self.url.options().clone()).await?,
        };
        // On an error the session is dropped (it may be broken): the next
        // run opens a new one.
        let id = open_run(&mut conn, &names.join(","), started_at).await?;
        *session = Some(conn);
        drop(session);
        sqlx::query(CLOSE_DEAD_RUNS_SQL)
            .bind(i64::from(RUN_LOCK_SPACE))
            .execute(&self.pool)
            .await?;
        let history_before: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM job_status_changes")
                .fetch_one(&self.pool)
                .await?;
        Ok(SyncRun {
            id,
            started_at,
            history_before,
        })
    }

    /// Closes a run with its outcome and records each of its scopes, in one
    /// transaction; releases its lock; returns what the run and each scope
    /// stored.
    pub async fn finish_run(
        &self,
        run: &SyncRun,
        end: RunEnd<'_>,
    ) -> Result<RunCounts, PgStoreError> {
        let mut tx = self.pool.begin().await?;
        let by_scope = scopes::totals_by_scope(&mut tx, run).await?;
        let totals = crate::store::scopes::sum(&by_scope);
        let scope_totals = scopes::insert(&mut tx, run, end.scopes, &by_scope).await?;
        scopes::prune(&mut tx, run, RETAINED_RUNS).await?;
        sqlx::query(
            "UPDATE sync_runs SET finished_at = $1, status = $2, requests = $3, jobs_seen = $4,
             jobs_new = $5, jobs_changed = $6, error = $7 WHERE id = $8",
        )
        .bind(to_millis(end.finished_at))
        .bind(end.outcome.as_str())
        .bind(i64::try_from(end.requests).unwrap_or(i64::MAX))
        .bind(totals.seen)
        .bind(totals.new)
        .bind(totals.changed)
        .bind(end.error.map(|e| super::copy::without_nul(e).into_owned()))
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut session = self.run_session.lock().await;
        if let Some(conn) = session.as_mut() {
            let released = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(run_lock_key(run.id))
                .execute(&mut *conn)
                .await;
            if released.is_err() {
                // The session is gone, and its locks with it.
                session.take();
            }
        }
        Ok(RunCounts {
            totals,
            scopes: scope_totals,
        })
    }

    /// Counts a run's jobs from the rows it touched and the history it wrote
    /// (ids after the run began, so the cost follows the run's size).
    pub async fn run_totals(&self, run: &SyncRun) -> Result<RunTotals, PgStoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(crate::store::scopes::sum(
            &scopes::totals_by_scope(&mut conn, run).await?,
        ))
    }
}

/// Inserts the run and takes its lock in one transaction, so no other host
/// ever sees it running without its lock (and closes it as dead).
async fn open_run(
    conn: &mut PgConnection,
    sources: &str,
    started_at: DateTime<Utc>,
) -> Result<i64, PgStoreError> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sync_runs (started_at, status, sources, pid) VALUES ($1, 'running', $2, $3) RETURNING id",
    )
    .bind(started_at)
    .bind(sources)
    .bind(i64::from(std::process::id()))
    .fetch_one(&mut *tx)
    .await?;
    // A session lock taken inside a transaction outlives its commit.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(run_lock_key(id))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}
