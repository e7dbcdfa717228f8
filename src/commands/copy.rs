//! `jobtrail copy`: moves a whole history (runs and their scopes, jobs,
//! status changes, state) from one database to another, SQLite or PostgreSQL on either side, in
//! chunks (memory stays flat whatever the size) and in one transaction on
//! the target (a copy that fails or is killed leaves it as it was). The
//! rules, what is copied again and what a "different history" is, are the
//! store's (`store::transfer`). The `iam_projects` cache is left behind: the
//! target's next sync asks IAM again.

use anyhow::{Context, Result};

use super::{Exit, UsageError, show_progress};
use crate::cli::{CopyArgs, GlobalArgs};
use crate::config::DatabaseArg;
use crate::progress::RowBar;
use crate::store::{ImportCounts, ImportMode, Store, StoreError};

/// Rows read and written at a time: enough to amortize each round trip, few
/// enough that a chunk of jobs with their raw JSON stays a few megabytes.
const CHUNK: u32 = 2_000;

pub(super) async fn run(global: &GlobalArgs, args: &CopyArgs) -> Result<Exit> {
    let location = |flag: &str, arg: &DatabaseArg| {
        arg.location()
            .map_err(|e| UsageError(format!("{flag}: {e}")))
    };
    let from = location("--from", &args.from)?;
    let to = location("--to", &args.to)?;
    if from.same_as(&to) {
        return Err(UsageError(format!("--from and --to are the same database ({from})")).into());
    }
    let source = Store::open_read_only(&from)
        .await
        .with_context(|| format!("cannot read the history to copy from {from}"))?;
    let target = Store::open(&to)
        .await
        .with_context(|| format!("cannot open the database to copy into, {to}"))?;
    let mode = if args.merge {
        ImportMode::Merge
    } else {
        ImportMode::SameHistory
    };
    let counts = source.history_counts().await?;
    let bar = RowBar::new(
        show_progress(global),
        counts.total().try_into().unwrap_or(0),
    );
    let copied = copy_history(&source, &target, mode, &bar).await;
    bar.finish();
    source.close().await;
    target.close().await;
    let copied = copied.with_context(|| format!("cannot copy {from} to {to}"))?;
    if global.quiet == 0 {
        println!(
            "copied {from} to {to}: {} rows read; written: {} runs, {} jobs, {} status changes, {} state entries, {} run scopes",
            counts.total(),
            copied.runs,
            copied.jobs,
            copied.changes,
            copied.state,
            copied.scopes
        );
    }
    Ok(Exit::Ok)
}

/// Reads every table of `source` by key, chunk after chunk, into one import
/// on `target`: runs first (the others refer to them), then their scopes,
/// status changes, jobs and state (the order [`crate::store::Importer`] asks
/// for).
async fn copy_history(
    source: &Store,
    target: &Store,
    mode: ImportMode,
    bar: &RowBar,
) -> Result<ImportCounts, StoreError> {
    let mut import = target.begin_import(mode).await?;
    bar.stage("sync runs");
    let mut after = 0;
    loop {
        let runs = source.export_runs(after, CHUNK).await?;
        let Some(last) = runs.last() else { break };
        after = last.id;
        import.runs(&runs).await?;
        bar.advance(runs.len());
    }
    import.end_runs()?;
    bar.stage("run scopes");
    let mut after = None;
    loop {
        let scopes = source.export_scopes(after.as_ref(), CHUNK).await?;
        let Some(last) = scopes.last() else { break };
        after = Some(last.scope_key());
        import.scopes(&scopes).await?;
        bar.advance(scopes.len());
    }
    bar.stage("status changes");
    let mut after = 0;
    loop {
        let changes = source.export_changes(after, CHUNK).await?;
        let Some(last) = changes.last() else { break };
        after = last.id;
        import.changes(&changes).await?;
        bar.advance(changes.len());
    }
    bar.stage("jobs");
    let mut after = None;
    loop {
        let jobs = source.export_jobs(after.as_ref(), CHUNK).await?;
        let Some(last) = jobs.last() else { break };
        after = Some(last.key());
        import.jobs(&jobs).await?;
        bar.advance(jobs.len());
    }
    bar.stage("sync state");
    let mut after = None;
    loop {
        let state = source.export_state(after.as_ref(), CHUNK).await?;
        let Some(last) = state.last() else { break };
        after = Some(last.state_key());
        import.state(&state).await?;
        bar.advance(state.len());
    }
    import.commit().await
}
