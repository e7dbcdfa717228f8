//! `jobtrail sync`: pulls new jobs into the database and prints what it did.

use anyhow::{Result, bail};

use super::{Exit, UsageError, locations, show_progress};
use crate::app::locked_sync;
use crate::auth::Credentials;
use crate::cli::{GlobalArgs, SyncArgs};
use crate::http::{ApiClient, HttpSettings};
use crate::store::RunOutcome;
use crate::sync::{SyncOptions, SyncReport};

pub(super) async fn run(global: &GlobalArgs, args: &SyncArgs) -> Result<Exit> {
    let resolved = locations(global).resolve()?;
    resolved
        .settings
        .require_projects()
        .map_err(|e| UsageError(e.to_string()))?;
    let credentials = Credentials::from_environment()?;
    tracing::info!(credentials = %credentials.describe(), "using credentials");
    let client = ApiClient::new(Some(credentials), HttpSettings::default())?;
    let options = SyncOptions {
        sources: args.sources.clone(),
        projects: args.projects.clone(),
        since: args.since,
        until: args.until,
        full: args.full,
    };
    let report = locked_sync(
        &resolved.database,
        &resolved.settings,
        &client,
        &options,
        show_progress(global),
    )
    .await?;
    finish(global, &report)
}

/// Logs and prints how a sync ended and turns its outcome into the exit
/// status. Each problem is said once, as one event on stderr in the chosen
/// format: a failed run's first failure is its final error (printed by
/// `main`), so it is not also a warning. The summary goes to stdout.
pub(super) fn finish(global: &GlobalArgs, report: &SyncReport) -> Result<Exit> {
    let failed = report.outcome == RunOutcome::Failed;
    let said_by_the_error = usize::from(failed && !report.errors.is_empty());
    // Hidden at -q; the failures are also in `jobtrail status`.
    for problem in report.problems().skip(said_by_the_error) {
        tracing::warn!("{problem}");
    }
    tracing::info!(
        run = report.run_id,
        outcome = report.outcome.as_str(),
        seen = report.totals.seen,
        new = report.totals.new,
        changed = report.totals.changed,
        requests = report.requests,
        "sync finished"
    );
    if global.quiet == 0 {
        println!("{}", report.summary());
    }
    Ok(match report.outcome {
        RunOutcome::Succeeded => Exit::Ok,
        RunOutcome::Partial => Exit::Partial,
        RunOutcome::Failed => {
            if let Some(first) = report.errors.first() {
                bail!("sync #{} failed: {first}", report.run_id);
            }
            Exit::Error
        }
    })
}
