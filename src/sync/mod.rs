//! One `jobtrail sync`: plan what to fetch (pure), fetch it concurrently under
//! the client's in-flight bound, and hand every page to a single writer task
//! that owns the database. Per-unit failures (a window, a resource, a job) are
//! collected and the rest goes on; refused credentials stop everything, a
//! refused permission (403 APIGW.0302) only that project's calls to that API.
//! Each (project, region, source) scope is recorded with its own outcome.
//!
//! This module runs the whole and reports it; `nosql` syncs NoSQL windows
//! and re-checks (planned by `recheck`), `by_id` the DBSS resources and
//! image jobs, `writer` owns the database meanwhile, fed through `sink`, and
//! commits only while the PostgreSQL project locks hold (`locks`); `misses`
//! counts 404s and `outcome` holds what is reported.

mod by_id;
mod locks;
mod misses;
mod nosql;
mod notes;
mod outcome;
mod recheck;
mod sink;
mod writer;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::{ProjectSettings, Settings, Shard};
use crate::http::ApiClient;
use crate::iam::{Iam, PlanErrors};
use crate::model::Source;
use crate::normalize::format_utc;
use crate::progress::Progress;
use crate::store::{RunEnd, RunOutcome, RunTotals, ScopeRecord, Store, StoreError, SyncRun};

pub use locks::HeldLocks;
pub use nosql::{DEFAULT_BACKFILL, WATERMARK_OVERLAP};
pub use outcome::{Scope, SyncFailure, SyncWarning, Unit};

use outcome::{UnitResult, run_record, summarize_errors};
use sink::Sink;
use writer::WriteError;

/// DBSS resources / image jobs (and NoSQL re-checks) fetched at once per project.
const IDS_IN_FLIGHT: usize = 16;

/// What the user asked this sync to do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Empty: every source configured.
    pub sources: Vec<Source>,
    /// Empty: every project configured.
    pub projects: Vec<String>,
    /// Only the projects of this share (`--shard I/N`).
    pub shard: Option<Shard>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Re-read everything in range, including final image jobs and settled resources.
    pub full: bool,
}

/// How a sync ended.
#[derive(Debug)]
pub struct SyncReport {
    /// The run's row: its id, and where its history rows start.
    pub run: SyncRun,
    pub outcome: RunOutcome,
    pub totals: RunTotals,
    pub requests: u64,
    /// One per failed unit, naming source, project and what failed.
    pub errors: Vec<SyncFailure>,
    /// Things worth knowing that did not fail the run.
    pub warnings: Vec<SyncWarning>,
    pub elapsed: Duration,
    /// Each (project, source) scope the run covered, in the order synced.
    pub scopes: Vec<ScopeReport>,
}

/// What one (project, region, source) scope of a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeReport {
    pub scope: Scope,
    pub region: String,
    pub outcome: RunOutcome,
    /// HTTP requests made for it, retries included.
    pub requests: u64,
    pub totals: RunTotals,
}

/// How many failing scopes the summary line names before "and N more".
const SCOPES_NAMED: usize = 5;

impl SyncReport {
    /// The one-line summary printed at the end (also under cron).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "sync #{} {}: {} jobs seen ({} new, {} changed), {} requests in {:.1}s",
            self.run.id,
            self.outcome.as_str(),
            self.totals.seen,
            self.totals.new,
            self.totals.changed,
            self.requests,
            self.elapsed.as_secs_f64()
        );
        if !self.errors.is_empty() {
            line.push_str(&format!(", {} failed", self.errors.len()));
            let failing: Vec<String> = self
                .scopes
                .iter()
                .filter(|s| s.outcome != RunOutcome::Succeeded)
                .map(|s| s.scope.to_string())
                .collect();
            if !failing.is_empty() {
                line.push_str(" in ");
                line.push_str(&failing[..failing.len().min(SCOPES_NAMED)].join(", "));
                if failing.len() > SCOPES_NAMED {
                    line.push_str(&format!(" and {} more", failing.len() - SCOPES_NAMED));
                }
            }
            line.push_str(" (see `jobtrail status`)");
        }
        line
    }

    /// Every failure, then every warning, as the user reads them.
    pub fn problems(&self) -> impl Iterator<Item = &dyn std::fmt::Display> {
        let errors = self.errors.iter().map(|e| e as &dyn std::fmt::Display);
        let warnings = self.warnings.iter().map(|w| w as &dyn std::fmt::Display);
        errors.chain(warnings)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Usage(String),
    /// A project could not be found through IAM: nothing was synced.
    #[error("{0}")]
    Projects(PlanErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What every part of one sync shares.
struct SyncContext<'a> {
    store: &'a Store,
    client: &'a ApiClient,
    options: &'a SyncOptions,
    /// When the sync began: windows end here, and freshness counts from here.
    now: DateTime<Utc>,
    /// The writer's channel; closed when the context is dropped.
    sink: Sink,
    progress: &'a Progress,
    /// How long a DBSS resource whose jobs are all final goes unread (zero:
    /// read on every sync).
    settled_recheck: chrono::Duration,
}

/// Runs one sync. The caller holds the [`crate::store::SyncLock`].
pub async fn run(
    settings: &Settings,
    store: &Store,
    client: &ApiClient,
    options: &SyncOptions,
    progress: &Progress,
) -> Result<SyncReport, SyncError> {
    let projects = select_projects_or_record(settings, store, client, options).await?;
    let locks = HeldLocks::none();
    run_selected(
        settings, store, client, options, progress, &projects, &locks,
    )
    .await
}

/// Runs one sync of `projects` (from [`select_projects`]). On PostgreSQL the
/// caller holds the lock of each project instead of the file's, and passes
/// them as `locks`: nothing is committed once they are lost (the run fails).
pub async fn run_selected(
    settings: &Settings,
    store: &Store,
    client: &ApiClient,
    options: &SyncOptions,
    progress: &Progress,
    projects: &[ProjectSettings],
    locks: &HeldLocks,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let now = Utc::now();
    let sources = chosen_sources(options);
    check_range(options)?;
    let run = store.begin_run(&sources, now).await?;
    progress.begin(&projects.iter().map(|p| p.id.as_str()).collect::<Vec<_>>());

    let (sink, rx) = Sink::channel();
    let writer = tokio::spawn(writer::write_all(
        store.clone(),
        run.id,
        rx,
        progress.clone(),
        writer::COMMIT_POLICY,
        locks.clone(),
    ));
    let ctx = SyncContext {
        store,
        client,
        options,
        now,
        sink,
        progress,
        settled_recheck: chrono::Duration::from_std(settings.dbss_settled_recheck)
            .unwrap_or(chrono::Duration::MAX),
    };
    let mut units = Vec::new();
    for project in projects.iter() {
        for source in &sources {
            if project.has(*source) {
                units.push(ctx.sync_unit(project, *source));
            }
        }
    }
    let results: Vec<ScopeResult> = futures::future::join_all(units).await;
    let notes = ctx.sink.notes();
    drop(ctx);
    let writer_failure = match writer.await {
        Ok(Ok(())) => {
            // A job this run stored is not missing, however it was found.
            store.forget_misses_of_seen_jobs(run.id).await?;
            None
        }
        Ok(Err(WriteError::Store(e))) => Some(SyncFailure::Writer(e)),
        Ok(Err(WriteError::LockLost(e))) => Some(SyncFailure::LockLost(e)),
        Err(e) => Some(SyncFailure::WriterCrashed(e)),
    };
    let (note_warnings, note_failures) = notes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .outcome(client.lossy_answers());
    // What was cut, left out or read lossily in the answers: the run's, not
    // one scope's.
    let answers = UnitResult {
        errors: note_failures,
        warnings: note_warnings,
        ..UnitResult::default()
    };
    finish(
        store,
        client,
        run,
        results,
        answers,
        writer_failure,
        started,
    )
    .await
}

/// The sources this sync covers, in their usual order.
fn chosen_sources(options: &SyncOptions) -> Vec<Source> {
    let sources: BTreeSet<Source> = if options.sources.is_empty() {
        Source::ALL.into_iter().collect()
    } else {
        options.sources.iter().copied().collect()
    };
    sources.into_iter().collect()
}

/// Refuses a range that ends before it starts.
fn check_range(options: &SyncOptions) -> Result<(), SyncError> {
    match (options.since, options.until) {
        (Some(since), Some(until)) if since >= until => Err(SyncError::Usage(format!(
            "--since ({}) must be before --until ({})",
            format_utc(since),
            format_utc(until)
        ))),
        _ => Ok(()),
    }
}

/// [`select_projects`] as a sync does it: projects that IAM could not find
/// (a refused or failed lookup, no project of a region's name or two) fail
/// the sync as a run of its own, recorded failed with the same message and no
/// scopes (nothing was fetched), so `status` and the run history show it.
/// Usage mistakes (a bad range, an unknown `--project`) are not recorded.
pub async fn select_projects_or_record(
    settings: &Settings,
    store: &Store,
    client: &ApiClient,
    options: &SyncOptions,
) -> Result<Vec<ProjectSettings>, SyncError> {
    check_range(options)?;
    let now = Utc::now();
    let problems = match select_projects(settings, store, client, options, now).await {
        Err(SyncError::Projects(problems)) => problems,
        selected => return selected,
    };
    let message = problems.to_string();
    let end = RunEnd {
        outcome: RunOutcome::Failed,
        requests: client.requests_made(),
        error: Some(&message),
        finished_at: Utc::now(),
        scopes: &[],
    };
    let recorded = match store.begin_run(&chosen_sources(options), now).await {
        Ok(run) => store.finish_run(&run, end).await.map(|_| run.id),
        Err(e) => Err(e),
    };
    match recorded {
        Ok(id) => tracing::info!(run = id, "sync failed before it started: {message}"),
        // The lookup's failure is the one to report.
        Err(e) => tracing::warn!("cannot record the failed sync in the database: {e}"),
    }
    Err(SyncError::Projects(problems))
}

/// The projects to sync: the configured ones, those found by region and the
/// account's (through IAM and its cached answers), narrowed to `--project`
/// and to `--shard`'s share.
pub async fn select_projects(
    settings: &Settings,
    store: &Store,
    client: &ApiClient,
    options: &SyncOptions,
    now: DateTime<Utc>,
) -> Result<Vec<ProjectSettings>, SyncError> {
    settings
        .require_projects()
        .map_err(|e| SyncError::Usage(e.to_string()))?;
    let iam = Iam::new(client, Some(store), options.full, now);
    let plan = crate::iam::plan(settings, &iam).await;
    if !plan.problems.is_empty() {
        return Err(SyncError::Projects(PlanErrors(plan.problems)));
    }
    // Expected in an account (the file's own notes the command says).
    for note in &plan.notes {
        tracing::info!("{note}");
    }
    for gap in &plan.gaps {
        tracing::info!("{gap}");
    }
    let all: Vec<ProjectSettings> = plan.projects.into_iter().map(|p| p.project).collect();
    for wanted in &options.projects {
        if !all.iter().any(|p| &p.id == wanted) {
            let known: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
            return Err(SyncError::Usage(format!(
                "--project {wanted} is not in the configuration (configured: {})",
                known.join(", ")
            )));
        }
    }
    let found = all.len();
    let selected: Vec<ProjectSettings> = all
        .into_iter()
        .filter(|p| options.projects.is_empty() || options.projects.contains(&p.id))
        .filter(|p| options.shard.is_none_or(|shard| shard.includes(&p.id)))
        .collect();
    if let (Some(shard), true) = (options.shard, selected.is_empty()) {
        tracing::warn!("shard {shard} holds none of the {found} projects: nothing to sync");
    }
    Ok(selected)
}

/// What one (project, source) pair did, with the region it is in.
struct ScopeResult {
    scope: Scope,
    region: String,
    result: UnitResult,
}

impl SyncContext<'_> {
    /// Syncs one (project, source) pair; its failures are in the result.
    async fn sync_unit(&self, project: &ProjectSettings, source: Source) -> ScopeResult {
        let result = match source {
            Source::Nosql => nosql::sync_nosql(self, project).await,
            Source::Dbss => by_id::sync_dbss(self, project).await,
            Source::Image => by_id::sync_image(self, project).await,
        };
        let scope = Scope {
            source,
            project_id: project.id.clone(),
        };
        ScopeResult {
            result: UnitResult::finish(result, scope.clone()),
            scope,
            region: project.region.clone(),
        }
    }
}

/// What one scope of the run is recorded with: its own outcome and errors,
/// or failed when the writer failed (`writer_error`, also its error when it
/// has none of its own).
fn scope_record(
    scope: Scope,
    region: String,
    result: &UnitResult,
    requests: u64,
    writer_error: Option<&str>,
) -> ScopeRecord {
    let details: Vec<String> = result
        .errors
        .iter()
        .map(SyncFailure::within_scope)
        .collect();
    let error = if details.is_empty() {
        writer_error.map(str::to_owned)
    } else {
        Some(summarize_errors(&details))
    };
    ScopeRecord {
        outcome: if writer_error.is_some() {
            RunOutcome::Failed
        } else {
            result.outcome()
        },
        requests,
        error,
        project_id: scope.project_id,
        region,
        source: scope.source,
    }
}

/// Closes the run with its outcome: failed when the credentials were refused,
/// the writer failed or nothing succeeded; partial when only some units
/// failed. Each scope is recorded with its own outcome, requests and errors
/// (all failed when the writer failed: what they fetched last, or never
/// fetched once it stopped, was not stored); the (project, source) pairs that
/// synced without a failure are also recorded as complete (for
/// `jobtrail_last_success_timestamp_seconds`).
async fn finish(
    store: &Store,
    client: &ApiClient,
    run: SyncRun,
    results: Vec<ScopeResult>,
    answers: UnitResult,
    writer_failure: Option<SyncFailure>,
    started: Instant,
) -> Result<SyncReport, SyncError> {
    let writer_failed = writer_failure.is_some();
    let writer_error = writer_failure.as_ref().map(ToString::to_string);
    let mut errors: Vec<SyncFailure> = writer_failure.into_iter().collect();
    let mut warnings = Vec::new();
    let mut succeeded_units = 0;
    let mut auth_refused = false;
    let mut complete = Vec::new();
    let mut records = Vec::with_capacity(results.len());
    for ScopeResult {
        scope,
        region,
        result,
    } in results
    {
        if !writer_failed && result.errors.is_empty() && !result.run_refused {
            complete.push((scope.project_id.clone(), scope.source));
        }
        let requests = client.requests_for(&scope.project_id, scope.source);
        records.push(scope_record(
            scope,
            region,
            &result,
            requests,
            writer_error.as_deref(),
        ));
        errors.extend(result.errors);
        warnings.extend(result.warnings);
        succeeded_units += result.succeeded;
        auth_refused |= result.run_refused;
    }
    errors.extend(answers.errors);
    warnings.extend(answers.warnings);
    let outcome = if errors.is_empty() {
        RunOutcome::Succeeded
    } else if auth_refused || writer_failed || succeeded_units == 0 {
        RunOutcome::Failed
    } else {
        RunOutcome::Partial
    };
    let requests = client.requests_made();
    let error_text = run_record(&errors, &warnings);
    let finished_at = Utc::now();
    let pairs: Vec<(&str, Source)> = complete.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    store.record_complete_syncs(&pairs, finished_at).await?;
    let end = RunEnd {
        outcome,
        requests,
        error: error_text.as_deref(),
        finished_at,
        scopes: &records,
    };
    let counts = store.finish_run(&run, end).await?;
    let scopes = records
        .into_iter()
        .zip(counts.scopes)
        .map(|(r, totals)| ScopeReport {
            scope: Scope {
                source: r.source,
                project_id: r.project_id,
            },
            region: r.region,
            outcome: r.outcome,
            requests: r.requests,
            totals,
        })
        .collect();
    Ok(SyncReport {
        run,
        outcome,
        totals: counts.totals,
        requests,
        errors,
        warnings,
        elapsed: started.elapsed(),
        scopes,
    })
}
