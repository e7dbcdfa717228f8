//! `sync_runs`: one row per sync, opened when it starts and closed with its
//! outcome and, in the same transaction, the outcome of each of its scopes
//! (`scopes`).

use chrono::{DateTime, Utc};

use super::scopes::{self, ScopeRecord};
use super::{SqliteStore, StoreError};
use crate::model::Source;
use crate::normalize::format_utc;

/// A run's final status (SPEC §2 exit codes follow from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Partial,
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
        }
    }
}

/// A sync run in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    /// The largest `job_status_changes.id` when the run began: its history rows
    /// all come after it (one sync at a time holds the lock).
    pub history_before: i64,
}

/// What a finished run did, counted from the database itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTotals {
    pub seen: i64,
    pub new: i64,
    pub changed: i64,
}

impl SqliteStore {
    /// Opens a run. Runs left `running` by a process that died are closed as
    /// failed first: the caller holds the sync lock, so nobody else is running.
    /// `sources` are stored by name, comma-separated, in the order given.
    pub async fn begin_run(
        &self,
        sources: &[Source],
        started_at: DateTime<Utc>,
    ) -> Result<SyncRun, StoreError> {
        let names: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
        sqlx::query(
            "UPDATE sync_runs SET status = 'failed', \
             error = COALESCE(error, 'interrupted: the process ended before the run finished') \
             WHERE status = 'running'",
        )
        .execute(&self.pool)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (started_at, status, sources, pid) VALUES (?, 'running', ?, ?) RETURNING id",
        )
        .bind(format_utc(started_at))
        .bind(names.join(","))
        .bind(i64::from(std::process::id()))
        .fetch_one(&self.pool)
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

    /// Closes a run with its outcome, and records each of its scopes, in one
    /// transaction; returns what the run and each scope stored.
    pub async fn finish_run(
        &self,
        run: &SyncRun,
        end: RunEnd<'_>,
    ) -> Result<RunCounts, StoreError> {
        let mut tx = self.pool.begin().await?;
        let by_scope = scopes::totals_by_scope(&mut tx, run).await?;
        let totals = scopes::sum(&by_scope);
        let scope_totals = scopes::insert(&mut tx, run, end.scopes, &by_scope).await?;
        scopes::prune(&mut tx, run, scopes::RETAINED_RUNS).await?;
        sqlx::query(
            "UPDATE sync_runs SET finished_at = ?, status = ?, requests = ?, jobs_seen = ?, \
             jobs_new = ?, jobs_changed = ?, error = ? WHERE id = ?",
        )
        .bind(format_utc(end.finished_at))
        .bind(end.outcome.as_str())
        .bind(i64::try_from(end.requests).unwrap_or(i64::MAX))
        .bind(totals.seen)
        .bind(totals.new)
        .bind(totals.changed)
        .bind(end.error)
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RunCounts {
            totals,
            scopes: scope_totals,
        })
    }

    /// Counts a run's jobs from the rows it touched and the history it wrote
    /// (a range of ids, so the cost follows the run's size, not the history's).
    pub async fn run_totals(&self, run: &SyncRun) -> Result<RunTotals, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(scopes::sum(&scopes::totals_by_scope(&mut conn, run).await?))
    }
}

/// How a run ended, as [`crate::store::Store::finish_run`] records it.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    pub outcome: RunOutcome,
    /// HTTP requests of the whole run, retries included.
    pub requests: u64,
    /// Why it did not fully succeed.
    pub error: Option<&'a str>,
    pub finished_at: DateTime<Utc>,
    /// Each (project, source) scope the run covered.
    pub scopes: &'a [ScopeRecord],
}

impl RunEnd<'_> {
    /// A run without scopes (nothing configured was synced), for tests and tools.
    pub fn bare(outcome: RunOutcome, requests: u64, finished_at: DateTime<Utc>) -> RunEnd<'static> {
        RunEnd {
            outcome,
            requests,
            error: None,
            finished_at,
            scopes: &[],
        }
    }
}

/// What a closed run stored: in all, and per scope (in the order given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCounts {
    pub totals: RunTotals,
    pub scopes: Vec<RunTotals>,
}
