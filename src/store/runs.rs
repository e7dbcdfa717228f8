//! `sync_runs`: one row per sync, opened when it starts and closed with its outcome.

use chrono::{DateTime, Utc};

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

    /// Closes a run with its outcome and returns what it stored.
    pub async fn finish_run(
        &self,
        run: &SyncRun,
        outcome: RunOutcome,
        requests: u64,
        error: Option<&str>,
        finished_at: DateTime<Utc>,
    ) -> Result<RunTotals, StoreError> {
        let totals = self.run_totals(run).await?;
        sqlx::query(
            "UPDATE sync_runs SET finished_at = ?, status = ?, requests = ?, jobs_seen = ?, \
             jobs_new = ?, jobs_changed = ?, error = ? WHERE id = ?",
        )
        .bind(format_utc(finished_at))
        .bind(outcome.as_str())
        .bind(requests as i64)
        .bind(totals.seen)
        .bind(totals.new)
        .bind(totals.changed)
        .bind(error)
        .bind(run.id)
        .execute(&self.pool)
        .await?;
        Ok(totals)
    }

    /// Counts a run's jobs from the rows it touched and the history it wrote
    /// (a range of ids, so the cost follows the run's size, not the history's).
    pub async fn run_totals(&self, run: &SyncRun) -> Result<RunTotals, StoreError> {
        let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE last_sync_id = ?")
            .bind(run.id)
            .fetch_one(&self.pool)
            .await?;
        let (new, changed): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(old_status IS NULL), 0), COALESCE(SUM(old_status IS NOT NULL), 0)
             FROM job_status_changes WHERE id > ? AND sync_id = ?",
        )
        .bind(run.history_before)
        .bind(run.id)
        .fetch_one(&self.pool)
        .await?;
        Ok(RunTotals { seen, new, changed })
    }
}
