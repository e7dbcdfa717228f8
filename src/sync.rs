//! One `jobtrail sync`: plan what to fetch (pure), fetch it concurrently under
//! the client's in-flight bound, and hand every page to a single writer task
//! that owns the database. Per-unit failures (a window, a resource, a job) are
//! collected and the rest goes on; an authentication refusal stops everything.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::config::{ProjectSettings, Settings};
use crate::http::ApiClient;
use crate::model::Source;
use crate::normalize::{format_utc, parse_api_time};
use crate::progress::Progress;
use crate::sources::dbss::DbssApi;
use crate::sources::image::ImageApi;
use crate::sources::nosql::{self, Window};
use crate::sources::{FetchError, Found, Sink};
use crate::store::{
    JobBatch, NOSQL_WATERMARK, RunOutcome, RunTotals, StateUpdate, Store, StoreError,
};

/// Incremental NoSQL syncs start this long before the watermark, so a job whose
/// start time the API reports a little late is still caught. The watermark is
/// this machine's clock, which the gateway accepts up to 15 minutes off; the
/// overlap covers that.
pub const WATERMARK_OVERLAP: chrono::Duration = chrono::Duration::minutes(20);

/// Default first-sync backfill when the config gives no `since`.
pub const DEFAULT_BACKFILL: chrono::Duration = chrono::Duration::days(30);

/// NoSQL windows fetched at once per project (each also pages concurrently).
/// A window's first page must answer before its others are asked for, so with
/// latency it takes this many windows to keep the client's 16 requests in
/// flight (50 ms latency benchmark: 12x -> 14x faster than one at a time).
const WINDOWS_IN_FLIGHT: usize = 8;

/// DBSS resources / image jobs fetched at once per project.
const IDS_IN_FLIGHT: usize = 16;

/// A DBSS resource whose jobs are all final is re-read at most this often
/// (new jobs for an old audit instance are rare but possible).
const SETTLED_RECHECK: chrono::Duration = chrono::Duration::hours(24);

/// A job or resource known only from the database (no longer configured or
/// listed) that answers 404 this many syncs in a row was deleted in the cloud:
/// it is no longer asked for, and keeps its last stored state.
const GONE_AFTER_MISSES: u32 = 3;

/// Rows the writer takes from the channel at a time.
const ROWS_PER_BATCH: usize = 5_000;

/// When the writer commits the transaction it is filling.
#[derive(Debug, Clone, Copy)]
struct CommitPolicy {
    /// Rows per transaction while jobs keep arriving. Each commit rewrites
    /// every index page it touched (job IDs are random, so that is most of the
    /// primary key), so bigger transactions cost fewer bytes per job; a killed
    /// sync loses at most one transaction, which the next sync fetches again.
    max_rows: usize,
    /// The longest a transaction stays open: rows that arrive slowly (a slow
    /// or throttled API) are durable within this, yet still share a commit.
    max_open: Duration,
    /// Committed when no rows have arrived for this long, so a transaction
    /// never stays open while fetching stalls (retries, a long listing).
    when_idle: Duration,
}

const COMMIT_POLICY: CommitPolicy = CommitPolicy {
    max_rows: 20_000,
    max_open: Duration::from_secs(1),
    when_idle: Duration::from_millis(100),
};

/// What the user asked this sync to do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Empty: every source configured.
    pub sources: Vec<Source>,
    /// Empty: every project configured.
    pub projects: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Re-read everything in range, including final image jobs and settled resources.
    pub full: bool,
}

/// How a sync ended.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub run_id: i64,
    pub outcome: RunOutcome,
    pub totals: RunTotals,
    pub requests: u64,
    /// One line per failed unit, naming source, project and what failed.
    pub errors: Vec<String>,
    /// Things worth knowing that did not fail the run.
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

impl SyncReport {
    /// The one-line summary printed at the end (also under cron).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "sync #{} {}: {} jobs seen ({} new, {} changed), {} requests in {:.1}s",
            self.run_id,
            self.outcome.as_str(),
            self.totals.seen,
            self.totals.new,
            self.totals.changed,
            self.requests,
            self.elapsed.as_secs_f64()
        );
        if !self.errors.is_empty() {
            line.push_str(&format!(
                ", {} failed (see `jobtrail status`)",
                self.errors.len()
            ));
        }
        line
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs one sync. The caller holds the [`crate::store::SyncLock`].
pub async fn run(
    settings: &Settings,
    store: &Store,
    client: &ApiClient,
    options: &SyncOptions,
    progress: &Progress,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let now = Utc::now();
    let projects = select_projects(settings, options)?;
    let sources: BTreeSet<Source> = if options.sources.is_empty() {
        Source::ALL.into_iter().collect()
    } else {
        options.sources.iter().copied().collect()
    };
    if let (Some(since), Some(until)) = (options.since, options.until)
        && since >= until
    {
        return Err(SyncError::Usage(format!(
            "--since ({}) must be before --until ({})",
            format_utc(since),
            format_utc(until)
        )));
    }
    let source_names: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
    let run = store
        .begin_run(&source_names.join(","), &format_utc(now))
        .await?;

    let (tx, rx) = mpsc::channel::<Found>(128);
    let writer = tokio::spawn(write_all(
        store.clone(),
        run.id,
        rx,
        progress.clone(),
        COMMIT_POLICY,
    ));
    let sink = Sink::new(tx);

    let mut units = Vec::new();
    for project in &projects {
        for source in &sources {
            if project.has(*source) {
                units.push(sync_unit(
                    store, client, project, *source, options, now, &sink, progress,
                ));
            }
        }
    }
    let results: Vec<UnitResult> = futures::future::join_all(units).await;
    drop(sink);
    let writer_result = writer.await;

    let mut errors: Vec<String> = results
        .iter()
        .flat_map(|r| r.errors.iter().cloned())
        .collect();
    let succeeded_units: usize = results.iter().map(|r| r.succeeded).sum();
    let auth_refused = results.iter().any(|r| r.auth_refused);
    let writer_failed = match writer_result {
        Ok(Ok(())) => {
            // A job this run stored is not missing, however it was found.
            store.forget_misses_of_seen_jobs(run.id).await?;
            false
        }
        Ok(Err(e)) => {
            errors.insert(0, format!("database: {e}"));
            true
        }
        Err(e) => {
            errors.insert(0, format!("database writer crashed: {e}"));
            true
        }
    };
    let outcome = if errors.is_empty() {
        RunOutcome::Succeeded
    } else if auth_refused || writer_failed || succeeded_units == 0 {
        RunOutcome::Failed
    } else {
        RunOutcome::Partial
    };
    let requests = client.requests_made();
    let error_text = (!errors.is_empty()).then(|| summarize_errors(&errors));
    let totals = store
        .finish_run(
            &run,
            outcome,
            requests,
            error_text.as_deref(),
            &format_utc(Utc::now()),
        )
        .await?;
    let warnings = results
        .iter()
        .flat_map(|r| r.warnings.iter().cloned())
        .collect();
    Ok(SyncReport {
        run_id: run.id,
        outcome,
        totals,
        requests,
        errors,
        warnings,
        elapsed: started.elapsed(),
    })
}

fn select_projects<'a>(
    settings: &'a Settings,
    options: &SyncOptions,
) -> Result<Vec<&'a ProjectSettings>, SyncError> {
    if settings.projects.is_empty() {
        return Err(SyncError::Usage(
            "no project is configured: add a [[project]] to jobtrail.toml (`jobtrail init` writes one), or pass --config".into(),
        ));
    }
    for wanted in &options.projects {
        if !settings.projects.iter().any(|p| &p.id == wanted) {
            let known: Vec<&str> = settings.projects.iter().map(|p| p.id.as_str()).collect();
            return Err(SyncError::Usage(format!(
                "--project {wanted} is not in the configuration (configured: {})",
                known.join(", ")
            )));
        }
    }
    Ok(settings
        .projects
        .iter()
        .filter(|p| options.projects.is_empty() || options.projects.contains(&p.id))
        .collect())
}

/// The stored error text: every failure, capped so one bad run cannot bloat the table.
fn summarize_errors(errors: &[String]) -> String {
    const SHOWN: usize = 50;
    let mut text = errors
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if errors.len() > SHOWN {
        text.push_str(&format!("\n… and {} more", errors.len() - SHOWN));
    }
    text
}

/// What one (project, source) pair did.
#[derive(Debug, Default)]
struct UnitResult {
    /// Windows, resources or jobs fetched and handed to the writer.
    succeeded: usize,
    errors: Vec<String>,
    warnings: Vec<String>,
    auth_refused: bool,
    /// Some calls were not sent because the credentials were refused.
    skipped: bool,
}

/// Drops repeated IDs (keeping the first) and those in `skip`.
fn unique_except(ids: &mut Vec<String>, skip: &HashSet<String>) {
    let mut seen = HashSet::new();
    ids.retain(|id| !skip.contains(id) && seen.insert(id.clone()));
}

impl UnitResult {
    /// Adds what a discovery list found, or records why it could not be read
    /// (the configured IDs are still fetched).
    fn discovered(
        &mut self,
        ids: &mut Vec<String>,
        found: Result<Vec<String>, FetchError>,
        what: &str,
    ) {
        match found {
            Ok(found) => {
                self.succeeded += 1;
                ids.extend(found);
            }
            Err(e) => self.fail(what, &e),
        }
    }

    fn fail(&mut self, what: &str, error: &FetchError) {
        if let FetchError::Api(e) = error {
            let skipped = matches!(e, crate::http::ApiError::Skipped { .. });
            self.auth_refused |= e.is_auth() || skipped;
            // Calls skipped after an auth refusal are summed up once per unit.
            if skipped {
                self.skipped = true;
                return;
            }
        }
        self.errors.push(format!("{what}: {error}"));
    }
}

#[allow(clippy::too_many_arguments)]
async fn sync_unit(
    store: &Store,
    client: &ApiClient,
    project: &ProjectSettings,
    source: Source,
    options: &SyncOptions,
    now: DateTime<Utc>,
    sink: &Sink,
    progress: &Progress,
) -> UnitResult {
    let result = match source {
        Source::Nosql => sync_nosql(store, client, project, options, now, sink, progress).await,
        Source::Dbss => sync_dbss(store, client, project, options, now, sink, progress).await,
        Source::Image => sync_image(store, client, project, options, sink, progress).await,
    };
    let mut result = result.unwrap_or_else(|e| UnitResult {
        errors: vec![format!("{source} (project {}): database: {e}", project.id)],
        ..UnitResult::default()
    });
    if result.skipped {
        result.errors.push(format!(
            "{source} (project {}): not synced (or only in part), because a request was refused authentication",
            project.id
        ));
    }
    result
}

/// The NoSQL time range of this sync: explicit flags, else the watermark minus
/// an overlap, else the configured backfill start (default 30 days).
fn nosql_range(
    options: &SyncOptions,
    configured_since: Option<DateTime<Utc>>,
    watermark: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let first_start = configured_since.unwrap_or(now - DEFAULT_BACKFILL);
    let since = match (options.since, watermark, options.full) {
        (Some(since), _, _) => since,
        (None, Some(wm), false) => (wm - WATERMARK_OVERLAP).max(first_start.min(wm)),
        _ => first_start,
    };
    // Windows end no later than the sync's start, so jobs created while paging
    // cannot shift pages.
    let until = options.until.map_or(now, |u| u.min(now));
    (since, until)
}

async fn sync_nosql(
    store: &Store,
    client: &ApiClient,
    project: &ProjectSettings,
    options: &SyncOptions,
    now: DateTime<Utc>,
    sink: &Sink,
    progress: &Progress,
) -> Result<UnitResult, StoreError> {
    let mut result = UnitResult::default();
    let watermark = crate::store::get_state(store, &project.id, Source::Nosql, NOSQL_WATERMARK)
        .await?
        .as_deref()
        .and_then(parse_api_time);
    let configured_since = project.nosql.as_ref().and_then(|n| n.since);
    let (since, until) = nosql_range(options, configured_since, watermark, now);
    let windows = nosql::plan_windows(since, until);
    let target = nosql::Target {
        client,
        project_id: &project.id,
        base: &project.endpoints.nosql,
    };
    // The watermark only moves forward, and only over a range that joins it.
    let may_advance = watermark.is_none_or(|wm| since <= wm);
    let mut done = vec![false; windows.len()];
    let mut prefix = 0usize;
    let mut fetches = futures::stream::iter(windows.iter().copied().enumerate())
        .map(|(index, window)| async move {
            (
                index,
                window,
                nosql::fetch_window(target, window, None, sink).await,
            )
        })
        .buffer_unordered(WINDOWS_IN_FLIGHT);
    while let Some((index, window, outcome)) = fetches.next().await {
        match outcome {
            Ok(stats) => {
                result.succeeded += 1;
                progress.windows_done(1);
                tracing::debug!(project = %project.id, pages = stats.pages, jobs = stats.jobs, "window stored");
                done[index] = true;
                while prefix < done.len() && done[prefix] {
                    prefix += 1;
                }
                let reached = windows[prefix.saturating_sub(1)].end;
                if prefix > 0 && may_advance && watermark.is_none_or(|wm| reached > wm) {
                    // Sent after the window's rows on the same channel: it can never land before them.
                    let update = StateUpdate {
                        project_id: project.id.clone(),
                        source: Source::Nosql,
                        key: NOSQL_WATERMARK.to_owned(),
                        value: format_utc(reached),
                    };
                    if sink.state(update).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => result.fail(
                &format!(
                    "nosql (project {}) window {} … {}",
                    project.id,
                    format_utc(window.start),
                    format_utc(window.end)
                ),
                &e,
            ),
        }
    }
    drop(fetches);
    recheck_nosql(
        store,
        project,
        target,
        since,
        now,
        options.full,
        sink,
        &mut result,
    )
    .await?;
    Ok(result)
}

/// Brings NoSQL jobs last stored unfinished, and older than this sync's range,
/// to their current status with few requests. Jobs are grouped by the raw
/// status they were stored with; a span of them is re-read with the API's
/// `status` filter, which lists only the jobs still in that status (usually one
/// page), and any job of the span missing from that answer has changed and is
/// looked up by ID. Where that would cost more, each job is looked up by ID.
/// A job no lookup has found [`GONE_AFTER_MISSES`] syncs in a row was deleted
/// in the cloud: it is no longer re-checked (unless `full`).
#[allow(clippy::too_many_arguments)]
async fn recheck_nosql(
    store: &Store,
    project: &ProjectSettings,
    target: nosql::Target<'_>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    full: bool,
    sink: &Sink,
    result: &mut UnitResult,
) -> Result<(), StoreError> {
    if result.auth_refused {
        return Ok(());
    }
    let misses = Misses::load(store, &project.id, Source::Nosql).await?;
    let gone = |id: &str| !full && misses.given_up(id);
    let mut groups: std::collections::BTreeMap<Option<String>, Vec<StaleJob>> =
        std::collections::BTreeMap::new();
    // Jobs that started within this sync's range were listed again just now.
    let stale = store
        .unfinished_jobs(Source::Nosql, &project.id, Some(&format_utc(since)))
        .await?;
    for job in stale {
        let started = job.started_at.as_deref().and_then(parse_api_time);
        if !gone(&job.job_id) {
            groups
                .entry(job.raw_status)
                .or_default()
                .push((job.job_id, started));
        }
    }
    let mut plans = Vec::new();
    for (raw_status, jobs) in groups {
        let mut known: Vec<(String, DateTime<Utc>)> = jobs
            .iter()
            .filter_map(|(id, at)| at.map(|t| (id.clone(), t)))
            .collect();
        known.sort_by_key(|(_, t)| *t);
        plans.extend(
            jobs.iter()
                .filter(|(_, at)| at.is_none())
                .map(|(id, _)| Recheck::Id(id.clone(), now)),
        );
        let (Some(raw_status), Some(first), Some(last)) = (raw_status, known.first(), known.last())
        else {
            plans.extend(known.into_iter().map(|(id, at)| Recheck::Id(id, at)));
            continue;
        };
        let stored: Vec<DateTime<Utc>> = store
            .start_times_between(
                Source::Nosql,
                &project.id,
                &raw_status,
                &format_utc(first.1 - chrono::Duration::seconds(1)),
                &format_utc(last.1 + chrono::Duration::seconds(1)),
            )
            .await?
            .iter()
            .filter_map(|s| parse_api_time(s))
            .collect();
        plans.extend(
            plan_rechecks(&known, &stored, now)
                .into_iter()
                .map(|plan| match plan {
                    Recheck::Span {
                        window, members, ..
                    } => Recheck::Span {
                        window,
                        status: raw_status.clone(),
                        members,
                    },
                    id => id,
                }),
        );
    }
    let mut checks = futures::stream::iter(plans)
        .map(|plan| async move {
            run_recheck(target, &plan, now, sink)
                .await
                .map_err(|e| (plan, e))
        })
        .buffer_unordered(IDS_IN_FLIGHT);
    while let Some(outcome) = checks.next().await {
        match outcome {
            Ok(lookups) => {
                result.succeeded += 1;
                for (id, found) in lookups {
                    let (update, count) = misses.record(&id, !found);
                    if let Some(update) = update {
                        // Bookkeeping only; if the writer is gone the run fails anyway.
                        let _ = sink.state(update).await;
                    }
                    if count >= GONE_AFTER_MISSES {
                        result.warnings.push(format!(
                            "nosql (project {}) job {id}: not found by {GONE_AFTER_MISSES} syncs in a row, so it was probably deleted in the cloud; it is no longer re-checked and keeps its last stored state (`sync --full` lists its days again)",
                            project.id
                        ));
                    }
                }
            }
            Err((Recheck::Id(id, _), e)) => {
                result.fail(&format!("nosql (project {}) job {id}", project.id), &e)
            }
            Err((Recheck::Span { window, .. }, e)) => result.fail(
                &format!(
                    "nosql (project {}) re-check of {} … {}",
                    project.id,
                    format_utc(window.start),
                    format_utc(window.end)
                ),
                &e,
            ),
        }
    }
    Ok(())
}

/// Carries out one re-check plan, handing what it finds to the writer, and
/// tells for each job looked up by ID whether the lookup found it.
async fn run_recheck(
    target: nosql::Target<'_>,
    plan: &Recheck,
    now: DateTime<Utc>,
    sink: &Sink,
) -> Result<Vec<(String, bool)>, FetchError> {
    async fn look_up(
        target: nosql::Target<'_>,
        id: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        sink: &Sink,
    ) -> Result<(String, bool), FetchError> {
        let rows = nosql::fetch_by_id(target, id, at, now).await?;
        let found = rows.iter().any(|row| row.job_id == id);
        sink.rows(rows).await?;
        Ok((id.to_owned(), found))
    }
    match plan {
        Recheck::Id(id, at) => Ok(vec![look_up(target, id, *at, now, sink).await?]),
        Recheck::Span {
            window,
            status,
            members,
        } => {
            let still = nosql::fetch_window(target, *window, Some(status), sink)
                .await?
                .seen;
            let still: HashSet<&str> = still.iter().map(String::as_str).collect();
            let mut lookups = Vec::new();
            for (id, at) in members {
                if still.contains(id.as_str()) {
                    lookups.push((id.clone(), true));
                } else {
                    lookups.push(look_up(target, id, *at, now, sink).await?);
                }
            }
            Ok(lookups)
        }
    }
}

/// A job to re-check: its ID and start time, if known.
type StaleJob = (String, Option<DateTime<Utc>>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Recheck {
    /// Look one job up by ID (with a window around its start time).
    Id(String, DateTime<Utc>),
    /// List the span's jobs still in `status`; look up the `members` missing from it.
    Span {
        window: Window,
        status: String,
        members: Vec<(String, DateTime<Utc>)>,
    },
}

/// Above this many stale jobs the planner's search (quadratic in the jobs
/// within one window) gives way to a greedy plan: spans as long as the API
/// allows, from the oldest job on.
const MAX_PLANNED_RECHECKS: usize = 3_000;

/// Chooses, for stale unfinished jobs sorted by start time, the cheapest mix of
/// ID lookups (one request each) and re-reads of a span of consecutive jobs
/// (at most one 30-day window, costing one request per 50 stored jobs in it).
/// `stored` holds the sorted start times of the stored jobs around them.
/// Dynamic programming over prefixes: `best[i]` is the fewest requests that
/// cover the first `i` jobs. Past [`MAX_PLANNED_RECHECKS`] jobs, each longest
/// span is re-read where that is cheaper than looking its jobs up one by one
/// (within a few requests of the best in a busy history, and linear).
fn plan_rechecks(
    jobs: &[(String, DateTime<Utc>)],
    stored: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Vec<Recheck> {
    let one_second = chrono::Duration::seconds(1);
    let span_of = |from: DateTime<Utc>, to: DateTime<Utc>| Window {
        start: from - one_second,
        end: (to + one_second).min(now),
    };
    let by_id = |range: &[(String, DateTime<Utc>)]| -> Vec<Recheck> {
        range
            .iter()
            .map(|(id, at)| Recheck::Id(id.clone(), *at))
            .collect()
    };
    let pages = |w: Window| {
        let lo = stored.partition_point(|t| *t < w.start);
        let hi = stored.partition_point(|t| *t <= w.end);
        ((hi - lo).max(1) as u64).div_ceil(nosql::PAGE_LIMIT) as usize
    };
    let longest_span = nosql::MAX_WINDOW - one_second * 2;
    let n = jobs.len();
    if n > MAX_PLANNED_RECHECKS {
        let mut plans = Vec::new();
        let mut first = 0;
        while first < n {
            let start = jobs[first].1;
            let end = first + jobs[first..].partition_point(|(_, at)| *at - start <= longest_span);
            let members = &jobs[first..end];
            let window = span_of(start, members[members.len() - 1].1);
            if members.len() > 1 && pages(window) < members.len() {
                plans.push(Recheck::Span {
                    window,
                    status: String::new(),
                    members: members.to_vec(),
                });
            } else {
                plans.extend(by_id(members));
            }
            first = end;
        }
        return plans;
    }
    // best[i]: (cost, start index of the last step, whether that step is a span)
    let mut best: Vec<(usize, usize, bool)> = vec![(0, 0, false); n + 1];
    for i in 1..=n {
        best[i] = (best[i - 1].0 + 1, i - 1, false);
        for j in (0..i - 1).rev() {
            if jobs[i - 1].1 - jobs[j].1 > longest_span {
                break;
            }
            let cost = best[j].0 + pages(span_of(jobs[j].1, jobs[i - 1].1));
            if cost < best[i].0 {
                best[i] = (cost, j, true);
            }
        }
    }
    let mut plans = Vec::new();
    let mut i = n;
    while i > 0 {
        let (_, j, span) = best[i];
        if span {
            plans.push(Recheck::Span {
                window: span_of(jobs[j].1, jobs[i - 1].1),
                status: String::new(),
                members: jobs[j..i].to_vec(),
            });
        } else {
            plans.extend(by_id(&jobs[j..i]));
        }
        i = j;
    }
    plans.reverse();
    plans
}

async fn sync_dbss(
    store: &Store,
    client: &ApiClient,
    project: &ProjectSettings,
    options: &SyncOptions,
    now: DateTime<Utc>,
    sink: &Sink,
    progress: &Progress,
) -> Result<UnitResult, StoreError> {
    let Some(config) = &project.dbss else {
        return Ok(UnitResult::default());
    };
    let api = &DbssApi::new(client, &project.id, &project.endpoints.dbss);
    let discovered = if config.discover {
        Some(api.discover().await)
    } else {
        None
    };
    // Resources with jobs stored unfinished are re-read even when neither the
    // config nor discovery lists them any more.
    let from_store = store
        .unfinished_jobs(Source::Dbss, &project.id, None)
        .await?
        .into_iter()
        .filter_map(|j| j.resource_id)
        .collect();
    let skip = if options.full {
        HashSet::new()
    } else {
        store
            .settled_dbss_resources(&project.id, &format_utc(now - SETTLED_RECHECK))
            .await?
    };
    let ids = IdList {
        configured: &config.resource_ids,
        discovered,
        from_store,
        skip,
    };
    let units = Units {
        source: Source::Dbss,
        list: "audit instance list",
        item: "resource",
    };
    sync_ids(
        store,
        project,
        options,
        units,
        ids,
        |id| async move { api.jobs(&id).await },
        sink,
        progress,
    )
    .await
}

async fn sync_image(
    store: &Store,
    client: &ApiClient,
    project: &ProjectSettings,
    options: &SyncOptions,
    sink: &Sink,
    progress: &Progress,
) -> Result<UnitResult, StoreError> {
    let Some(config) = &project.image else {
        return Ok(UnitResult::default());
    };
    let api = &ImageApi {
        client,
        project_id: &project.id,
        base: &project.endpoints.image,
    };
    let discovered = if config.discover {
        Some(api.discover().await)
    } else {
        None
    };
    // Jobs stored unfinished are re-checked even when the list no longer shows them.
    let from_store = store
        .unfinished_jobs(Source::Image, &project.id, None)
        .await?
        .into_iter()
        .map(|j| j.parent_job_id.unwrap_or(j.job_id))
        .collect();
    let skip = if options.full {
        HashSet::new()
    } else {
        store.finished_image_jobs(&project.id).await?
    };
    let ids = IdList {
        configured: &config.job_ids,
        discovered,
        from_store,
        skip,
    };
    let units = Units {
        source: Source::Image,
        list: "job list",
        item: "job",
    };
    sync_ids(
        store,
        project,
        options,
        units,
        ids,
        |id| async move { api.job(&id).await },
        sink,
        progress,
    )
    .await
}

/// Where the IDs of a by-ID source come from, and which to leave out.
struct IdList<'a> {
    configured: &'a [String],
    /// The discovery list's answer, when discovery is on.
    discovered: Option<Result<Vec<String>, FetchError>>,
    /// IDs with jobs stored unfinished.
    from_store: Vec<String>,
    /// Final, not to be asked again (empty with `--full`).
    skip: HashSet<String>,
}

/// How a by-ID source names things in messages.
#[derive(Clone, Copy)]
struct Units {
    source: Source,
    list: &'static str,
    item: &'static str,
}

/// The shared flow of the by-ID sources (DBSS resources, image jobs): configured
/// IDs, plus what discovery found, plus IDs with unfinished jobs in the store
/// (given up on after repeated 404s), minus those to skip; then each one fetched.
#[allow(clippy::too_many_arguments)]
async fn sync_ids<F, Fut>(
    store: &Store,
    project: &ProjectSettings,
    options: &SyncOptions,
    units: Units,
    list: IdList<'_>,
    fetch: F,
    sink: &Sink,
    progress: &Progress,
) -> Result<UnitResult, StoreError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<crate::model::JobRow>, FetchError>>,
{
    let mut result = UnitResult::default();
    let mut ids: Vec<String> = list.configured.to_vec();
    if let Some(found) = list.discovered {
        let what = format!("{} (project {}) {}", units.source, project.id, units.list);
        result.discovered(&mut ids, found, &what);
    }
    let gone = StoreOnly::load(
        store,
        project,
        units.source,
        &ids,
        list.from_store,
        options.full,
    )
    .await?;
    gone.extend_ids(&mut ids);
    unique_except(&mut ids, &list.skip);
    let label = format!("{} (project {}) {}", units.source, project.id, units.item);
    fetch_each(ids, fetch, &label, &gone, sink, progress, &mut result).await;
    Ok(result)
}

/// IDs known only from the database (unfinished there, but no longer
/// configured or listed), with how many syncs in a row answered 404 for each.
#[derive(Debug)]
struct StoreOnly {
    ids: HashSet<String>,
    misses: Misses,
}

/// How many syncs in a row each ID known only from the store was not found,
/// as kept in `sync_state` (see [`GONE_AFTER_MISSES`]).
#[derive(Debug)]
struct Misses {
    project_id: String,
    source: Source,
    counts: std::collections::HashMap<String, u32>,
}

impl Misses {
    async fn load(store: &Store, project_id: &str, source: Source) -> Result<Misses, StoreError> {
        Ok(Misses {
            project_id: project_id.to_owned(),
            source,
            counts: crate::store::miss_counts(store, project_id, source).await?,
        })
    }

    /// Missed often enough to be taken for deleted in the cloud.
    fn given_up(&self, id: &str) -> bool {
        self.counts.get(id).is_some_and(|n| *n >= GONE_AFTER_MISSES)
    }

    /// This sync's outcome for `id`: its new count, and the state update that
    /// stores it when it changed (a miss adds one, a find resets to zero).
    fn record(&self, id: &str, missing: bool) -> (Option<StateUpdate>, u32) {
        let previous = self.counts.get(id).copied().unwrap_or(0);
        let count = if missing { previous + 1 } else { 0 };
        let update = (count != previous).then(|| StateUpdate {
            project_id: self.project_id.clone(),
            source: self.source,
            key: crate::store::missing_key(id),
            value: count.to_string(),
        });
        (update, count)
    }
}

impl StoreOnly {
    /// Sorts `from_store` into those also `listed` (asked as usual) and those
    /// known only from the store; the latter are dropped once they have
    /// answered 404 [`GONE_AFTER_MISSES`] syncs in a row (unless `full`).
    async fn load(
        store: &Store,
        project: &ProjectSettings,
        source: Source,
        listed: &[String],
        from_store: Vec<String>,
        full: bool,
    ) -> Result<StoreOnly, StoreError> {
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let misses = Misses::load(store, &project.id, source).await?;
        let ids = from_store
            .into_iter()
            .filter(|id| !listed.contains(id.as_str()))
            .filter(|id| full || !misses.given_up(id))
            .collect();
        Ok(StoreOnly { ids, misses })
    }

    fn extend_ids(&self, ids: &mut Vec<String>) {
        ids.extend(self.ids.iter().cloned());
    }

    /// The bookkeeping for one fetched ID: a 404 of a store-only ID counts a miss
    /// (and after enough of them is only a warning); an answer resets the count.
    fn after_fetch(
        &self,
        id: &str,
        outcome: &Result<(), FetchError>,
    ) -> (Option<StateUpdate>, Option<u32>) {
        if !self.ids.contains(id) {
            return (None, None);
        }
        let not_found = matches!(outcome, Err(FetchError::Api(e)) if e.http_status() == Some(404));
        let (update, count) = self.misses.record(id, not_found);
        (update, not_found.then_some(count))
    }
}

/// Fetches every ID (a few at a time under the client's in-flight bound) and
/// hands each one's rows to the writer; a failed ID is recorded by name and the
/// rest go on.
#[allow(clippy::too_many_arguments)]
async fn fetch_each<F, Fut>(
    ids: Vec<String>,
    fetch: F,
    label: &str,
    store_only: &StoreOnly,
    sink: &Sink,
    progress: &Progress,
    result: &mut UnitResult,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<crate::model::JobRow>, FetchError>>,
{
    let fetch = &fetch;
    let mut fetches = futures::stream::iter(ids)
        .map(|id| async move {
            let outcome = match fetch(id.clone()).await {
                Ok(rows) => sink.rows(rows).await.map_err(FetchError::from),
                Err(e) => Err(e),
            };
            (id, outcome)
        })
        .buffer_unordered(IDS_IN_FLIGHT);
    while let Some((id, outcome)) = fetches.next().await {
        progress.ids_done(1);
        let (update, misses) = store_only.after_fetch(&id, &outcome);
        if let Some(update) = update {
            // Bookkeeping only; if the writer is gone the run fails anyway.
            let _ = sink.state(update).await;
        }
        match outcome {
            Ok(()) => result.succeeded += 1,
            Err(_) if misses.is_some_and(|n| n >= GONE_AFTER_MISSES) => result.warnings.push(format!(
                "{label} {id}: answered 404 {GONE_AFTER_MISSES} syncs in a row, so it was probably deleted in the cloud; it is no longer re-checked and keeps its last stored state (`sync --full` asks again)"
            )),
            Err(e) => result.fail(&format!("{label} {id}"), &e),
        }
    }
}

/// The single writer: drains the channel on a thread of its own, gathering
/// whatever is waiting into batches of up to [`ROWS_PER_BATCH`] rows. Fetchers
/// run ahead of it until the bounded channel is full (back-pressure keeps
/// memory flat), and it never waits on the network. Batches share a
/// transaction as `policy` says: a fast backfill commits a few large
/// transactions, a slow one is durable within a second, and no transaction
/// stays open while fetching stalls. Rows and the state updates sent after
/// them (watermarks) land in the same commit or the rows in an earlier one.
async fn write_all(
    store: Store,
    sync_id: i64,
    mut rx: mpsc::Receiver<Found>,
    progress: Progress,
    policy: CommitPolicy,
) -> Result<(), StoreError> {
    let mut writer = store.bulk_writer()?;
    // The timeout needs the runtime's timer: callers run a multi-thread runtime.
    let runtime = tokio::runtime::Handle::current();

    let thread = tokio::task::spawn_blocking(move || {
        // The open transaction: when its first batch was written, and its rows.
        let mut open: Option<(Instant, usize)> = None;
        let commit = |writer: &mut crate::store::BulkWriter,
                      open: &mut Option<(Instant, usize)>| {
            writer.commit()?;
            if let Some((_, rows)) = open.take() {
                progress.jobs_stored(rows as u64);
            }
            Ok::<(), StoreError>(())
        };
        loop {
            // `None`: time to commit; `Some(None)`: the fetchers are done.
            let next = runtime.block_on(async {
                match open {
                    None => Some(rx.recv().await),
                    Some((opened, _)) => {
                        let left = policy.max_open.saturating_sub(opened.elapsed());
                        tokio::time::timeout(policy.when_idle.min(left), rx.recv())
                            .await
                            .ok()
                    }
                }
            });
            let first = match next {
                None => {
                    commit(&mut writer, &mut open)?;
                    continue;
                }
                Some(None) => break,
                Some(Some(found)) => found,
            };
            let mut batch = JobBatch::default();
            add(&mut batch, first);
            while batch.rows.len() < ROWS_PER_BATCH {
                match rx.try_recv() {
                    Ok(found) => add(&mut batch, found),
                    Err(_) => break,
                }
            }
            let (opened, rows) = open.get_or_insert_with(|| (Instant::now(), 0));
            writer.write(sync_id, &format_utc(Utc::now()), &batch)?;
            *rows += batch.rows.len();
            if *rows >= policy.max_rows || opened.elapsed() >= policy.max_open {
                commit(&mut writer, &mut open)?;
            }
        }
        commit(&mut writer, &mut open)
    });
    thread.await.expect("the database writer thread panicked")
}

fn add(batch: &mut JobBatch, found: Found) {
    match found {
        Found::Rows(rows) => batch.rows.extend(rows),
        Found::State(update) => batch.state.push(update),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect(s)
    }

    /// Jobs stored in the database, as another connection sees them.
    async fn stored(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(store.pool())
            .await
            .expect("count")
    }

    /// Polls until `want` jobs are visible, for at most ten seconds.
    async fn until_stored(store: &Store, want: i64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = stored(store).await;
            if n >= want || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A writer on a fresh database with `policy`, fed through the returned channel.
    async fn writer_on_empty_db(
        policy: CommitPolicy,
    ) -> (
        crate::test_support::TestDb,
        mpsc::Sender<Found>,
        tokio::task::JoinHandle<Result<(), StoreError>>,
    ) {
        let db = crate::test_support::db_with(&[]).await;
        let run = db.store.begin_run("nosql", "t0").await.expect("run");
        let (tx, rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_all(
            db.store.clone(),
            run.id,
            rx,
            Progress::new(false),
            policy,
        ));
        (db, tx, writer)
    }

    fn running_jobs(ids: &[&str]) -> Found {
        Found::Rows(
            ids.iter()
                .map(|id| {
                    crate::test_support::job(
                        Source::Nosql,
                        id,
                        None,
                        crate::model::Status::Running,
                        None,
                        None,
                    )
                })
                .collect(),
        )
    }

    /// Longer than any test runs: a commit rule that never fires.
    const NEVER: Duration = Duration::from_secs(3600);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_are_committed_when_fetching_pauses_not_only_when_it_ends() {
        let policy = CommitPolicy {
            max_rows: 1_000,
            max_open: NEVER,
            when_idle: Duration::from_millis(50),
        };
        let (db, tx, writer) = writer_on_empty_db(policy).await;
        tx.send(running_jobs(&["a", "b"])).await.expect("send");
        assert_eq!(
            until_stored(&db.store, 2).await,
            2,
            "committed during the pause, the channel still open"
        );
        tx.send(running_jobs(&["c"])).await.expect("send");
        assert_eq!(until_stored(&db.store, 3).await, 3);
        drop(tx);
        writer.await.expect("writer task").expect("writer");
        assert_eq!(stored(&db.store).await, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_that_keep_arriving_are_committed_once_the_transaction_is_old_enough() {
        let policy = CommitPolicy {
            max_rows: 100_000,
            max_open: Duration::from_millis(200),
            when_idle: NEVER,
        };
        let (db, tx, writer) = writer_on_empty_db(policy).await;
        let feeder = {
            let tx = tx.clone();
            tokio::spawn(async move {
                for n in 0..2_000 {
                    if tx.send(running_jobs(&[&format!("j{n}")])).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let seen = until_stored(&db.store, 1).await;
        assert!(seen >= 1, "rows committed while the trickle went on");
        assert!(!feeder.is_finished(), "the trickle was still going");
        feeder.abort();
        let _ = feeder.await;
        drop(tx);
        writer.await.expect("writer task").expect("writer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_reaches_its_size_is_committed_at_once() {
        let policy = CommitPolicy {
            max_rows: 3,
            max_open: NEVER,
            when_idle: NEVER,
        };
        let (db, tx, writer) = writer_on_empty_db(policy).await;
        tx.send(running_jobs(&["a", "b"])).await.expect("send");
        tx.send(running_jobs(&["c"])).await.expect("send");
        assert_eq!(until_stored(&db.store, 3).await, 3, "channel still open");
        drop(tx);
        writer.await.expect("writer task").expect("writer");
    }

    #[test]
    fn first_sync_uses_configured_since_or_thirty_days() {
        let now = t("2024-06-01T00:00:00Z");
        let opts = SyncOptions::default();
        assert_eq!(
            nosql_range(&opts, None, None, now),
            (now - DEFAULT_BACKFILL, now)
        );
        let since = t("2024-01-01T00:00:00Z");
        assert_eq!(nosql_range(&opts, Some(since), None, now).0, since);
    }

    #[test]
    fn incremental_sync_starts_at_watermark_minus_overlap() {
        let now = t("2024-06-01T00:00:00Z");
        let wm = t("2024-05-31T23:45:00Z");
        let (since, until) = nosql_range(&SyncOptions::default(), None, Some(wm), now);
        assert_eq!(since, wm - WATERMARK_OVERLAP);
        assert_eq!(until, now);
    }

    #[test]
    fn full_and_explicit_ranges_override_the_watermark() {
        let now = t("2024-06-01T00:00:00Z");
        let wm = t("2024-05-31T23:45:00Z");
        let cfg = t("2024-01-01T00:00:00Z");
        let full = SyncOptions {
            full: true,
            ..SyncOptions::default()
        };
        assert_eq!(nosql_range(&full, Some(cfg), Some(wm), now).0, cfg);
        let explicit = SyncOptions {
            since: Some(t("2023-01-01T00:00:00Z")),
            until: Some(t("2030-01-01T00:00:00Z")),
            ..SyncOptions::default()
        };
        assert_eq!(
            nosql_range(&explicit, Some(cfg), Some(wm), now),
            (t("2023-01-01T00:00:00Z"), now),
            "until is clamped to now"
        );
    }

    fn plan(
        jobs: &[(&str, &str)],
        stored_every_minutes: i64,
        from: &str,
        to: &str,
    ) -> Vec<Recheck> {
        let jobs: Vec<(String, DateTime<Utc>)> = jobs
            .iter()
            .map(|(id, at)| ((*id).to_owned(), t(at)))
            .collect();
        let mut stored = Vec::new();
        let mut cursor = t(from);
        while cursor <= t(to) {
            stored.push(cursor);
            cursor += chrono::Duration::minutes(stored_every_minutes);
        }
        plan_rechecks(&jobs, &stored, t("2024-06-01T00:00:00Z"))
    }

    #[test]
    fn close_jobs_in_a_sparse_span_are_read_in_one_request() {
        // 3 jobs within a day, 24 stored jobs in that span: one page beats three lookups.
        let p = plan(
            &[
                ("a", "2024-01-01T01:00:00Z"),
                ("b", "2024-01-01T05:00:00Z"),
                ("c", "2024-01-01T20:00:00Z"),
            ],
            60,
            "2023-12-31T00:00:00Z",
            "2024-01-03T00:00:00Z",
        );
        assert_eq!(p.len(), 1);
        assert!(matches!(&p[0], Recheck::Span { window, members, .. }
                if window.start == t("2024-01-01T00:59:59Z") && window.end == t("2024-01-01T20:00:01Z") && members.len() == 3));
    }

    #[test]
    fn jobs_far_apart_in_a_busy_history_are_looked_up_by_id() {
        // A job every minute: re-reading 10 days would cost ~290 pages.
        let p = plan(
            &[("a", "2024-01-01T00:00:00Z"), ("b", "2024-01-11T00:00:00Z")],
            1,
            "2023-12-31T00:00:00Z",
            "2024-01-12T00:00:00Z",
        );
        assert_eq!(
            p,
            vec![
                Recheck::Id("a".into(), t("2024-01-01T00:00:00Z")),
                Recheck::Id("b".into(), t("2024-01-11T00:00:00Z"))
            ]
        );
    }

    #[test]
    fn spans_never_exceed_one_api_window() {
        let p = plan(
            &[
                ("a", "2024-01-01T00:00:00Z"),
                ("b", "2024-01-20T00:00:00Z"),
                ("c", "2024-02-25T00:00:00Z"),
                ("d", "2024-02-26T00:00:00Z"),
            ],
            24 * 60,
            "2023-12-01T00:00:00Z",
            "2024-03-01T00:00:00Z",
        );
        for plan in &p {
            if let Recheck::Span { window, .. } = plan {
                assert!(window.end - window.start <= nosql::MAX_WINDOW);
            }
        }
        let covered = |id: &str, at: &str| {
            p.iter().any(|plan| match plan {
                Recheck::Id(i, _) => i == id,
                Recheck::Span {
                    window, members, ..
                } => {
                    window.start <= t(at)
                        && t(at) <= window.end
                        && members.iter().any(|(m, _)| m == id)
                }
            })
        };
        assert!(covered("a", "2024-01-01T00:00:00Z") && covered("b", "2024-01-20T00:00:00Z"));
        assert!(covered("c", "2024-02-25T00:00:00Z") && covered("d", "2024-02-26T00:00:00Z"));
        assert_eq!(p.len(), 2, "two sparse spans: {p:?}");
    }

    /// `n` stale jobs, one every `every`, from 2020-06-01 on.
    fn stale_jobs(n: usize, every: chrono::Duration) -> Vec<(String, DateTime<Utc>)> {
        let first = t("2020-06-01T00:00:00Z");
        (0..n)
            .map(|i| (format!("job-{i}"), first + every * i as i32))
            .collect()
    }

    /// What a plan costs in requests: a page per 50 stored jobs in each
    /// span, one request per ID.
    fn cost(plans: &[Recheck], stored: &[DateTime<Utc>]) -> usize {
        plans
            .iter()
            .map(|plan| match plan {
                Recheck::Id(..) => 1,
                Recheck::Span { window, .. } => {
                    let n = stored
                        .iter()
                        .filter(|t| window.start <= **t && **t <= window.end)
                        .count();
                    n.max(1).div_ceil(50)
                }
            })
            .sum()
    }

    /// Every job is in exactly one plan, inside its span's window, and no
    /// span is longer than the API allows.
    fn assert_covers_each_once(plans: &[Recheck], jobs: &[(String, DateTime<Utc>)]) {
        let mut seen = std::collections::HashMap::new();
        for plan in plans {
            match plan {
                Recheck::Id(id, _) => *seen.entry(id.clone()).or_insert(0) += 1,
                Recheck::Span {
                    window, members, ..
                } => {
                    assert!(window.end - window.start <= nosql::MAX_WINDOW, "{window:?}");
                    for (id, at) in members {
                        assert!(window.start <= *at && *at <= window.end, "{id} outside");
                        *seen.entry(id.clone()).or_insert(0) += 1;
                    }
                }
            }
        }
        assert_eq!(seen.len(), jobs.len());
        assert!(seen.values().all(|n| *n == 1), "a job planned twice");
    }

    #[test]
    fn thousands_of_stale_jobs_are_re_read_by_span_not_one_by_one() {
        // Four years of jobs every 3.5 hours, all still "running" when stored.
        let jobs = stale_jobs(10_000, chrono::Duration::minutes(210));
        assert!(jobs.len() > MAX_PLANNED_RECHECKS);
        let stored: Vec<DateTime<Utc>> = jobs.iter().map(|(_, at)| *at).collect();
        let plans = plan_rechecks(&jobs, &stored, t("2025-01-01T00:00:00Z"));
        assert_covers_each_once(&plans, &jobs);
        let requests = cost(&plans, &stored);
        // 50 spans of ~205 jobs, 5 pages each: about 250 requests, not 10,000.
        assert!(requests <= 300, "{requests} requests");
    }

    #[test]
    fn thousands_of_stale_jobs_far_apart_in_a_busy_history_are_looked_up_by_id() {
        // A stale job every 12 hours among stored jobs every minute: a span
        // re-read would list ~860 pages to find 60 jobs.
        let jobs = stale_jobs(3_500, chrono::Duration::hours(12));
        let first = jobs[0].1;
        let stored: Vec<DateTime<Utc>> = (0..(3_500 * 12 * 60))
            .map(|m| first + chrono::Duration::minutes(m))
            .collect();
        let plans = plan_rechecks(&jobs, &stored, t("2026-01-01T00:00:00Z"));
        assert_covers_each_once(&plans, &jobs);
        assert!(plans.iter().all(|p| matches!(p, Recheck::Id(..))));
    }

    #[test]
    fn error_text_is_capped() {
        let errors: Vec<String> = (0..60).map(|i| format!("e{i}")).collect();
        let text = summarize_errors(&errors);
        assert!(text.contains("e49") && !text.contains("e50\n") && text.ends_with("and 10 more"));
    }
}
