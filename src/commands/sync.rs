//! `jobtrail sync`: pulls new jobs into the database and prints what it did.

use std::io::Write;

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
    let settings = crate::iam::with_credentials(resolved.settings, &credentials)?;
    say_notes(global, &settings.notes);
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
        &settings,
        &client,
        &options,
        show_progress(global),
    )
    .await?;
    finish(global, &report)
}

/// Says the configuration's notes once (a source its region lacks is not an
/// error): on stderr unless `-q`, through the log at `-v`.
pub(super) fn say_notes(global: &GlobalArgs, notes: &[String]) {
    for note in notes {
        tracing::info!("{note}");
        if global.quiet == 0 && global.verbose == 0 {
            eprintln!("note: {note}");
        }
    }
}

/// Logs and prints how a sync ended (warnings on stderr, the summary on
/// stdout) and turns its outcome into the exit status.
pub(super) fn finish(global: &GlobalArgs, report: &SyncReport) -> Result<Exit> {
    for error in report.problems() {
        tracing::warn!("{error}");
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
        // Warnings above are hidden at -q; the failures are also in `jobtrail status`.
        if global.verbose == 0 {
            let mut err = std::io::stderr().lock();
            for error in report.problems() {
                let _ = writeln!(err, "warning: {error}");
            }
        }
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
