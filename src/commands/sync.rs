//! `jobtrail sync`: pulls new jobs into the database and prints what it did.
//! Around every run, whatever its outcome, what unattended runs need: health
//! pings, the Prometheus metrics file and the lines of new failures for
//! cron's mail.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use chrono::Utc;

use super::{Exit, UsageError, describe_error, locations, show_progress};
use crate::app::locked_sync;
use crate::auth::Credentials;
use crate::cli::{GlobalArgs, SyncArgs};
use crate::config::Resolved;
use crate::http::{ApiClient, HttpSettings};
use crate::metrics::{History, LastRun};
use crate::ping::{PingKind, Pinger};
use crate::store::{DatabaseLocation, NewFailure, PgStoreError, RunOutcome, Store, StoreError};
use crate::sync::{SyncOptions, SyncReport};
use crate::text::for_terminal;

pub(super) async fn run(global: &GlobalArgs, args: &SyncArgs) -> Result<Exit> {
    let clock = Instant::now();
    let resolved = locations(global).resolve();
    // Flags win over the file; with a broken file, the flags alone still serve.
    let settings = resolved.as_ref().ok().map(|r| &r.settings);
    let metrics_file = args
        .metrics_file
        .clone()
        .or_else(|| settings.and_then(|s| s.metrics_file.clone()));
    let ping_url = args
        .ping_url
        .clone()
        .or_else(|| settings.and_then(|s| s.ping_url.clone()));
    let pinger = ping_url.and_then(|url| {
        Pinger::new(url)
            .inspect_err(|e| tracing::warn!("{e}; no pings are sent"))
            .ok()
    });
    let start_ping = pinger
        .as_ref()
        .map(|p| p.start(format!("jobtrail {} sync starting", crate::app::VERSION)));
    let database = resolved.as_ref().ok().map(|r| r.database.clone());

    let synced = match resolved {
        Ok(resolved) => synchronize(global, args, &resolved).await,
        Err(e) => Err(e.into()),
    };
    let (result, report) = match synced {
        Ok(report) => (finish(global, &report), Some(report)),
        Err(e) => (Err(e), None),
    };
    let exit_code = exit_status(&result);

    if args.print_failures || metrics_file.is_some() {
        let store = match &database {
            Some(db) => open_history(db).await,
            None => None,
        };
        if args.print_failures {
            print_new_failures(store.as_ref(), report.as_ref()).await;
        }
        if let Some(path) = &metrics_file {
            let last_run = LastRun {
                finished_at: Utc::now(),
                exit_code,
                duration: clock.elapsed(),
                requests: report.as_ref().map_or(0, |r| r.requests),
            };
            write_metrics(path, &last_run, store.as_ref(), report.as_ref()).await;
        }
        if let Some(store) = store {
            store.close().await;
        }
    }
    if let Some(pinger) = pinger {
        if let Some(start) = start_ping {
            // Bounded by the ping's own timeouts; it keeps /start before the end.
            let _ = start.await;
        }
        let kind = if exit_code == 0 {
            PingKind::Success
        } else {
            PingKind::Fail
        };
        let body = match (&report, &result) {
            (Some(report), _) => report.summary(),
            (None, Err(e)) => format!("sync failed: {}", describe_error(e)),
            (None, Ok(_)) => String::new(),
        };
        pinger.send_or_warn(kind, body).await;
    }
    result
}

/// Loads the credentials and runs one sync under the database's lock.
async fn synchronize(
    global: &GlobalArgs,
    args: &SyncArgs,
    resolved: &Resolved,
) -> Result<SyncReport> {
    resolved
        .settings
        .require_projects()
        .map_err(|e| UsageError(e.to_string()))?;
    let credentials = Credentials::from_environment()?;
    tracing::info!(credentials = %credentials.describe(), "using credentials");
    let settings = crate::iam::with_credentials(resolved.settings.clone(), &credentials)?;
    say_notes(global, &settings.notes);
    let client = ApiClient::new(Some(credentials), HttpSettings::default())?;
    let options = SyncOptions {
        sources: args.sources.clone(),
        projects: args.projects.clone(),
        shard: args.shard,
        since: args.since,
        until: args.until,
        full: args.full,
    };
    locked_sync(
        &resolved.database,
        &settings,
        &client,
        &options,
        show_progress(global),
    )
    .await
}

/// Says the configuration's notes once (a source its region lacks is not an
/// error): on stderr unless `-q`, through the log at `-v`.
pub(super) fn say_notes(global: &GlobalArgs, notes: &[String]) {
    for note in notes {
        if global.quiet == 0 && global.verbose == 0 {
            crate::logging::notice(global.log_format, &format!("note: {note}"));
        } else {
            tracing::info!("{note}");
        }
    }
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
        run = report.run.id,
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
                bail!("sync #{} failed: {first}", report.run.id);
            }
            Exit::Error
        }
    })
}

/// The exit status `main` will give this result.
fn exit_status(result: &Result<Exit>) -> u8 {
    match result {
        Ok(exit) => *exit as u8,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => Exit::Usage as u8,
        Err(_) => Exit::Error as u8,
    }
}

/// The database, read-only, for what is said after the run; `None` (with a
/// warning unless it simply does not exist yet) when it cannot be opened.
async fn open_history(db: &DatabaseLocation) -> Option<Store> {
    match Store::open_read_only(db).await {
        Ok(store) => Some(store),
        Err(StoreError::Missing { .. })
        | Err(StoreError::Postgres(PgStoreError::NotMigrated { .. })) => None,
        Err(e) => {
            tracing::warn!("cannot read the database after the sync: {e}");
            None
        }
    }
}

/// `--print-failures`: one line per job that became failed in this run, on
/// stdout after the summary (at `-q` too); nothing when there is none.
async fn print_new_failures(store: Option<&Store>, report: Option<&SyncReport>) {
    let (Some(store), Some(report)) = (store, report) else {
        return;
    };
    let failures = match store.new_failures(&report.run).await {
        Ok(failures) => failures,
        Err(e) => {
            tracing::warn!("cannot list the jobs that failed in this sync: {e}");
            return;
        }
    };
    let mut out = std::io::stdout().lock();
    for failure in &failures {
        if let Err(e) = writeln!(out, "{}", failure_line(failure)) {
            tracing::warn!("cannot print the new failures: {e}");
            return;
        }
    }
}

/// One new failure: source, project, job ID, job type, resource, reason;
/// `-` for what the API did not say. Safe for a terminal.
fn failure_line(f: &NewFailure) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let resource = match (&f.resource_name, &f.resource_id) {
        (Some(name), Some(id)) if name != id => format!("{name} ({id})"),
        (Some(one), _) | (None, Some(one)) => one.clone(),
        (None, None) => "-".to_owned(),
    };
    let reason = match (&f.fail_reason, &f.error_code) {
        (Some(reason), Some(code)) => format!("{reason} ({code})"),
        (Some(reason), None) => reason.clone(),
        (None, Some(code)) => format!("error code {code}"),
        (None, None) => "(no reason given)".to_owned(),
    };
    let line = format!(
        "new failure: {} project {} job {} type {} resource {}: {reason}",
        f.source,
        f.project_id,
        f.job_id,
        dash(&f.job_type),
        resource
    );
    for_terminal(&line).into_owned()
}

/// `--metrics-file`: writes the run's metrics, with the history's when the
/// database can be read. A file that cannot be written is a warning: the
/// sync's own outcome stands (a stale file shows in `node_textfile_mtime_seconds`).
async fn write_metrics(
    path: &Path,
    last_run: &LastRun,
    store: Option<&Store>,
    report: Option<&SyncReport>,
) {
    let history = match store {
        Some(store) => match History::gather(store, report.map(|r| &r.run)).await {
            Ok(history) => Some(history),
            Err(e) => {
                tracing::warn!("cannot read the database for the metrics: {e}");
                None
            }
        },
        None => None,
    };
    let text = crate::metrics::render(last_run, history.as_ref());
    if let Err(e) = crate::metrics::write_file(path, &text) {
        tracing::warn!("cannot write the metrics file {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_line_names_every_field_and_escapes_what_came_from_outside() {
        let mut f = NewFailure {
            source: "dbss".into(),
            project_id: "p1".into(),
            job_id: "j-1".into(),
            job_type: Some("START".into()),
            resource_id: Some("r-1".into()),
            resource_name: Some("audit\u{1b}[2J".into()),
            error_code: Some("DBS.1".into()),
            fail_reason: Some("disk\nfull".into()),
        };
        assert_eq!(
            failure_line(&f),
            "new failure: dbss project p1 job j-1 type START resource audit\\x1b[2J (r-1): disk\\nfull (DBS.1)"
        );
        f.job_type = None;
        f.resource_name = None;
        f.fail_reason = None;
        f.error_code = None;
        assert_eq!(
            failure_line(&f),
            "new failure: dbss project p1 job j-1 type - resource r-1: (no reason given)"
        );
    }
}
