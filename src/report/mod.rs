//! `jobtrail report`: one self-contained HTML page (inline CSS and SVG, no
//! scripts, fonts or network) with failure trends, reasons, durations, running
//! jobs and recent failures, and a grid of the top failure reasons by week. The store aggregates and every table is capped, so
//! the page stays small for a database of 100k jobs.
//!
//! This module owns the entry point and the data the page is made of, folded
//! from the store's rows; `html` writes the page (escaping every value from the
//! database), `svg` its charts and `heat` the reasons-by-week grid.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::config::{parse_date_or_datetime, parse_end_of_day};
use crate::model::{Source, Status};
use crate::store::{
    FailureGroup, FailureWeek, JobGroup, JobWindow, RecentFailure, RunningJob, Store, StoreError,
};

/// Writes into a `String`, which cannot fail.
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

mod heat;
mod html;
mod svg;
#[cfg(test)]
mod tests;

pub use html::{escape, human_duration};

/// Which jobs the report covers. A job counts at its start time, else its end
/// time, else when jobtrail first saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// `YYYY-MM-DD` or a date-time: jobs at or after it.
    pub since: Option<String>,
    /// `YYYY-MM-DD` (that whole day included) or a date-time (excluded).
    pub until: Option<String>,
    /// Empty means every source.
    pub sources: Vec<Source>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--{flag} {value:?}: {why}")]
    BadTime {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("--since {since} is not before --until {until}")]
    EmptyRange { since: String, until: String },
    #[error("reading the database for the report: {0}")]
    Store(#[from] StoreError),
}

/// Weeks shown in the jobs-per-week chart (the most recent ones).
pub const MAX_WEEKS: usize = 104;
/// Rows in the failure-rate and duration tables.
pub const MAX_TYPE_ROWS: usize = 30;
/// Rows in the failure-reason table.
pub const MAX_REASONS: usize = 20;
/// Rows (reasons) in the reasons-by-week grid: the top ones of the reason table.
pub const MAX_GRID_REASONS: usize = 10;
/// Rows in the running-jobs and recent-failures tables.
pub const MAX_JOB_ROWS: usize = 25;
/// A job running longer than this is flagged as stuck.
pub const STUCK_AFTER_HOURS: i64 = 24;

/// What a failure with neither a failure text nor an error code is listed as.
const NO_REASON: &str = "(no reason given)";

/// Renders the report page for the jobs `filter` selects, as of `generated_at`.
pub async fn render(
    store: &Store,
    filter: &ReportFilter,
    generated_at: DateTime<Utc>,
) -> Result<String, ReportError> {
    let window = resolve_window(filter)?;
    let data = gather(store, &window, generated_at).await?;
    Ok(html::page(&data, &window, generated_at))
}

/// The filter as instants: `--until` a date means up to the next midnight (no
/// bound at all after 9999-12-31, where no stored time reaches).
fn resolve_window(filter: &ReportFilter) -> Result<JobWindow<'_>, ReportError> {
    let since = filter
        .since
        .as_deref()
        .map(|v| parse_flag("since", v, parse_date_or_datetime))
        .transpose()?;
    let until = match filter.until.as_deref() {
        Some(v) => parse_flag("until", v, parse_end_of_day)?,
        None => None,
    };
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(ReportError::EmptyRange {
            since: filter.since.clone().unwrap_or_default(),
            until: filter.until.clone().unwrap_or_default(),
        });
    }
    Ok(JobWindow {
        since,
        until,
        sources: &filter.sources,
    })
}

/// Parses one flag's value with `parse`, naming the flag in the error.
fn parse_flag<T>(
    flag: &'static str,
    value: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, ReportError> {
    parse(value).map_err(|why| ReportError::BadTime {
        flag,
        value: value.to_owned(),
        why,
    })
}

/// Everything the page shows.
#[derive(Debug, Default)]
struct ReportData {
    jobs_in_database: i64,
    totals: Totals,
    /// In the order `jobtrail status` uses.
    sources: Vec<SourceTotals>,
    /// Jobs per week, keyed by the week's Monday.
    weeks: BTreeMap<NaiveDate, WeekCounts>,
    /// Highest failure rate first.
    types: Vec<TypeRate>,
    /// Most failures first, at most [`MAX_REASONS`].
    reasons: Vec<Reason>,
    reason_count: usize,
    /// The failures per week of the first [`MAX_GRID_REASONS`] of `reasons`,
    /// in their order.
    reason_weeks: Vec<ReasonWeeks>,
    /// Slowest p95 first, at most [`MAX_TYPE_ROWS`].
    durations: Vec<TypeDuration>,
    duration_type_count: usize,
    /// Oldest first, at most [`MAX_JOB_ROWS`], whatever the time window.
    running: Vec<RunningJob>,
    running_count: i64,
    stuck_count: i64,
    /// Latest first, at most [`MAX_JOB_ROWS`].
    failures: Vec<RecentFailure>,
}

#[derive(Debug, Default)]
struct Totals {
    jobs: i64,
    succeeded: i64,
    failed: i64,
    running: i64,
    unknown: i64,
    first: Option<String>,
    last: Option<String>,
}

/// Jobs of one source, by status.
#[derive(Debug)]
struct SourceTotals {
    source: Source,
    jobs: i64,
    succeeded: i64,
    failed: i64,
    /// Running or unknown.
    unfinished: i64,
}

/// Jobs of one week, by their status now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct WeekCounts {
    succeeded: i64,
    failed: i64,
    running: i64,
    unknown: i64,
}

impl WeekCounts {
    fn of(&self, status: Status) -> i64 {
        match status {
            Status::Succeeded => self.succeeded,
            Status::Failed => self.failed,
            Status::Running => self.running,
            Status::Unknown => self.unknown,
        }
    }

    fn add(&mut self, status: Status, jobs: i64) {
        let slot = match status {
            Status::Succeeded => &mut self.succeeded,
            Status::Failed => &mut self.failed,
            Status::Running => &mut self.running,
            Status::Unknown => &mut self.unknown,
        };
        *slot += jobs;
    }

    fn total(&self) -> i64 {
        self.succeeded + self.failed + self.running + self.unknown
    }
}

#[derive(Debug)]
struct TypeRate {
    source: Source,
    job_type: Option<String>,
    total: i64,
    succeeded: i64,
    failed: i64,
}

impl TypeRate {
    fn finished(&self) -> i64 {
        self.succeeded + self.failed
    }
    fn rate(&self) -> Option<f64> {
        failure_rate(self.failed, self.finished())
    }
}

/// Failed ÷ finished, in percent; `None` when nothing finished.
fn failure_rate(failed: i64, finished: i64) -> Option<f64> {
    (finished > 0).then(|| 100.0 * failed as f64 / finished as f64)
}

#[derive(Debug)]
struct Reason {
    reason: String,
    failures: i64,
    job_types: usize,
    first_seen: String,
    last_seen: String,
}

/// One reason's failures, by the Monday of their week (weeks without any left out).
#[derive(Debug)]
struct ReasonWeeks {
    reason: String,
    weeks: BTreeMap<NaiveDate, i64>,
}

#[derive(Debug)]
struct TypeDuration {
    source: Source,
    job_type: Option<String>,
    jobs: usize,
    p50: i64,
    p95: i64,
    max: i64,
}

/// A source and job type: the rows of the rate and duration tables.
type TypeKey = (Source, Option<String>);

async fn gather(
    store: &Store,
    window: &JobWindow<'_>,
    now: DateTime<Utc>,
) -> Result<ReportData, ReportError> {
    let jobs_in_database = store.count_jobs().await?;
    if jobs_in_database == 0 {
        return Ok(ReportData::default());
    }
    let mut d = fold_groups(store.job_groups(window).await?);
    d.jobs_in_database = jobs_in_database;
    (d.reasons, d.reason_count) = rank_reasons(store.failure_groups(window).await?);
    d.reason_weeks = reasons_by_week(store.failure_weeks(window).await?, &d.reasons);
    // Running jobs are shown whatever the time window: a job stuck since
    // before --since is exactly what the reader needs to see.
    let stuck_before = now - Duration::hours(STUCK_AFTER_HOURS);
    let unfinished = store
        .unfinished_counts(window.sources, stuck_before)
        .await?;
    d.running_count = unfinished.jobs;
    d.stuck_count = unfinished.stuck;
    d.running = store
        .oldest_running_jobs(window.sources, MAX_JOB_ROWS)
        .await?;
    d.failures = store.recent_failures(window, MAX_JOB_ROWS).await?;
    Ok(d)
}

/// Folds the grouped jobs into the totals, the per-source and per-type
/// counts, the weeks and the durations.
fn fold_groups(groups: Vec<JobGroup>) -> ReportData {
    let mut d = ReportData::default();
    let mut sources: BTreeMap<Source, SourceTotals> = BTreeMap::new();
    let mut types: BTreeMap<TypeKey, TypeRate> = BTreeMap::new();
    let mut durations: BTreeMap<TypeKey, Vec<i64>> = BTreeMap::new();
    for g in groups {
        let n = g.jobs;
        let (succeeded, failed) = match g.status {
            Status::Succeeded => (n, 0),
            Status::Failed => (0, n),
            Status::Running | Status::Unknown => (0, 0),
        };
        add_to_totals(&mut d.totals, &g);
        let s = sources.entry(g.source).or_insert_with(|| SourceTotals {
            source: g.source,
            jobs: 0,
            succeeded: 0,
            failed: 0,
            unfinished: 0,
        });
        s.jobs += n;
        s.succeeded += succeeded;
        s.failed += failed;
        s.unfinished += n - succeeded - failed;
        let key = (g.source, g.job_type);
        let r = types.entry(key.clone()).or_insert_with(|| TypeRate {
            source: key.0,
            job_type: key.1.clone(),
            total: 0,
            succeeded: 0,
            failed: 0,
        });
        r.total += n;
        r.succeeded += succeeded;
        r.failed += failed;
        if let Some(week) = g.week {
            d.weeks.entry(week).or_default().add(g.status, n);
        }
        if !g.durations_ms.is_empty() {
            durations.entry(key).or_default().extend(g.durations_ms);
        }
    }
    // In the order `jobtrail status` uses.
    d.sources = Source::ALL
        .iter()
        .filter_map(|s| sources.remove(s))
        .collect();
    d.types = rank_types(types.into_values().collect());
    d.duration_type_count = durations.len();
    d.durations = rank_durations(durations);
    d
}

fn add_to_totals(t: &mut Totals, g: &JobGroup) {
    t.jobs += g.jobs;
    match g.status {
        Status::Succeeded => t.succeeded += g.jobs,
        Status::Failed => t.failed += g.jobs,
        Status::Running => t.running += g.jobs,
        Status::Unknown => t.unknown += g.jobs,
    }
    t.first = earliest(t.first.take(), g.first.clone());
    t.last = latest(t.last.take(), g.last.clone());
}

/// Highest failure rate first; types with nothing finished last.
fn rank_types(mut types: Vec<TypeRate>) -> Vec<TypeRate> {
    types.sort_by(|a, b| {
        b.rate()
            .unwrap_or(-1.0)
            .total_cmp(&a.rate().unwrap_or(-1.0))
            .then(b.failed.cmp(&a.failed))
            .then(a.source.as_str().cmp(b.source.as_str()))
            .then(a.job_type.cmp(&b.job_type))
    });
    types
}

/// Nearest-rank percentiles (the value at rank ceil(p% × n)) per type, slowest
/// p95 first, at most [`MAX_TYPE_ROWS`].
fn rank_durations(durations: BTreeMap<TypeKey, Vec<i64>>) -> Vec<TypeDuration> {
    let mut rows: Vec<TypeDuration> = durations
        .into_iter()
        .filter_map(|((source, job_type), mut v)| {
            v.sort_unstable();
            let rank = |p: usize| v.get((v.len() * p).div_ceil(100).max(1) - 1).copied();
            Some(TypeDuration {
                source,
                job_type,
                jobs: v.len(),
                p50: rank(50)?,
                p95: rank(95)?,
                max: *v.last()?,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.p95
            .cmp(&a.p95)
            .then(b.p50.cmp(&a.p50))
            .then(a.source.as_str().cmp(b.source.as_str()))
            .then(a.job_type.cmp(&b.job_type))
    });
    rows.truncate(MAX_TYPE_ROWS);
    rows
}

/// Failures by reason, most first, at most [`MAX_REASONS`], with how many
/// reasons there are in all.
fn rank_reasons(groups: Vec<FailureGroup>) -> (Vec<Reason>, usize) {
    let mut reasons: BTreeMap<String, (Reason, BTreeSet<TypeKey>)> = BTreeMap::new();
    for g in groups {
        let reason = g.reason.unwrap_or_else(|| NO_REASON.to_owned());
        let (r, job_types) = reasons.entry(reason.clone()).or_insert_with(|| {
            let r = Reason {
                reason,
                failures: 0,
                job_types: 0,
                first_seen: g.first.clone(),
                last_seen: g.last.clone(),
            };
            (r, BTreeSet::new())
        });
        r.failures += g.failures;
        job_types.insert((g.source, g.job_type));
        r.job_types = job_types.len();
        r.first_seen = r.first_seen.clone().min(g.first);
        r.last_seen = r.last_seen.clone().max(g.last);
    }
    let count = reasons.len();
    let mut ranked: Vec<Reason> = reasons.into_values().map(|(r, _)| r).collect();
    ranked.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.reason.cmp(&b.reason)));
    ranked.truncate(MAX_REASONS);
    (ranked, count)
}

/// The weekly failures of the first [`MAX_GRID_REASONS`] of `top`, in that
/// order, each reason labelled as in the reason table.
fn reasons_by_week(rows: Vec<FailureWeek>, top: &[Reason]) -> Vec<ReasonWeeks> {
    let mut grid: Vec<ReasonWeeks> = top
        .iter()
        .take(MAX_GRID_REASONS)
        .map(|r| ReasonWeeks {
            reason: r.reason.clone(),
            weeks: BTreeMap::new(),
        })
        .collect();
    let row_of: BTreeMap<String, usize> = grid
        .iter()
        .enumerate()
        .map(|(i, r)| (r.reason.clone(), i))
        .collect();
    for row in rows {
        let reason = row.reason.unwrap_or_else(|| NO_REASON.to_owned());
        if let (Some(&i), Some(week)) = (row_of.get(&reason), row.week) {
            *grid[i].weeks.entry(week).or_default() += row.failures;
        }
    }
    grid
}

fn earliest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Every week from the first to the last with jobs, empty ones included, and
/// how many earlier weeks are left out to show at most [`MAX_WEEKS`]. `None`
/// when no job has a time.
fn week_grid(
    weeks: &BTreeMap<NaiveDate, WeekCounts>,
) -> Option<(Vec<(NaiveDate, WeekCounts)>, usize)> {
    let (first, last) = (*weeks.keys().next()?, *weeks.keys().next_back()?);
    let mut grid = Vec::new();
    let mut day = first;
    while day <= last {
        grid.push((day, weeks.get(&day).copied().unwrap_or_default()));
        day += Duration::days(7);
    }
    let hidden = grid.len().saturating_sub(MAX_WEEKS);
    grid.drain(..hidden);
    Some((grid, hidden))
}
