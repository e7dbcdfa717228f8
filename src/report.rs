//! `jobtrail report`: one self-contained HTML page (inline CSS and SVG, no
//! scripts, fonts or network) with failure trends, reasons, durations, running
//! jobs and recent failures. Everything is aggregated in SQL and every table is
//! capped, so the page stays small for a database of 100k jobs. Every value
//! that comes from the database is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::model::Source;
use crate::normalize::{format_utc, parse_api_time};
use crate::store::Store;

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
    #[error(
        "--{flag} {value:?} is not a date (YYYY-MM-DD) or date-time (e.g. 2024-01-31T12:00:00Z)"
    )]
    BadTime { flag: &'static str, value: String },
    #[error("--since {since} is not before --until {until}")]
    EmptyRange { since: String, until: String },
    #[error("reading the database for the report: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Weeks shown in the jobs-per-week chart (the most recent ones).
pub const MAX_WEEKS: usize = 104;
/// Rows in the failure-rate and duration tables.
pub const MAX_TYPE_ROWS: usize = 30;
/// Bars in the failure-rate and duration charts.
const MAX_CHART_BARS: usize = 15;
/// Job types with fewer finished jobs get no bar in the failure-rate chart (one
/// failure out of one would top it); the table still lists them.
const MIN_FINISHED_FOR_BAR: i64 = 5;
/// Rows in the failure-reason table.
pub const MAX_REASONS: usize = 20;
/// Rows in the running-jobs and recent-failures tables.
pub const MAX_JOB_ROWS: usize = 25;
/// A job running longer than this is flagged as stuck.
pub const STUCK_AFTER_HOURS: i64 = 24;
/// Longest reason text shown in a table cell (the rest is in the database).
const MAX_REASON_CHARS: usize = 300;

/// The filter as bound values: `?1` since, `?2` until (exclusive), `?3` a
/// `,source,` list.
macro_rules! filtered {
    ($sql:literal) => {
        concat!(
            "WITH f AS (SELECT *, COALESCE(started_at, ended_at, first_seen_at) AS t FROM jobs \
             WHERE (?1 IS NULL OR COALESCE(started_at, ended_at, first_seen_at) >= ?1) \
               AND (?2 IS NULL OR COALESCE(started_at, ended_at, first_seen_at) < ?2) \
               AND (?3 IS NULL OR instr(?3, ',' || source || ',') > 0)) ",
            $sql
        )
    };
}

/// Binds the three filter values to a query written with `filtered!`.
macro_rules! bind_filter {
    ($query:expr, $bounds:expr) => {
        $query
            .bind($bounds.since.clone())
            .bind($bounds.until.clone())
            .bind($bounds.sources.clone())
    };
}

/// The filter resolved to fixed-width UTC bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bounds {
    since: Option<String>,
    until: Option<String>,
    sources: Option<String>,
}

fn resolve_bounds(filter: &ReportFilter) -> Result<Bounds, ReportError> {
    let since = filter
        .since
        .as_deref()
        .map(|v| parse_bound(v, "since", false))
        .transpose()?;
    let until = filter
        .until
        .as_deref()
        .map(|v| parse_bound(v, "until", true))
        .transpose()?;
    if let (Some(s), Some(u)) = (&since, &until)
        && s >= u
    {
        return Err(ReportError::EmptyRange {
            since: filter.since.clone().unwrap_or_default(),
            until: filter.until.clone().unwrap_or_default(),
        });
    }
    let sources = (!filter.sources.is_empty()).then(|| {
        let mut list = String::from(",");
        for s in &filter.sources {
            list.push_str(s.as_str());
            list.push(',');
        }
        list
    });
    Ok(Bounds {
        since,
        until,
        sources,
    })
}

/// A date means its midnight UTC (for `until`, the next midnight: the whole day counts).
fn parse_bound(value: &str, flag: &'static str, end_of_day: bool) -> Result<String, ReportError> {
    let bad = || ReportError::BadTime {
        flag,
        value: value.to_owned(),
    };
    let v = value.trim();
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().ok_or_else(bad)?
        } else {
            d
        };
        let t = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
        return Ok(format_utc(t));
    }
    parse_api_time(v).map(format_utc).ok_or_else(bad)
}

/// Everything the page shows, read in a handful of aggregate queries.
#[derive(Debug, Default)]
struct ReportData {
    jobs_in_database: i64,
    totals: Totals,
    sources: Vec<SourceTotals>,
    /// (Monday of the week, status, jobs)
    weeks: Vec<(String, String, i64)>,
    types: Vec<TypeRate>,
    reasons: Vec<Reason>,
    reason_count: i64,
    durations: Vec<TypeDuration>,
    duration_type_count: i64,
    running: Vec<RunningJob>,
    running_count: i64,
    stuck_count: i64,
    failures: Vec<Failure>,
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
    source: String,
    jobs: i64,
    succeeded: i64,
    failed: i64,
    /// Running or unknown.
    unfinished: i64,
}

#[derive(Debug)]
struct TypeRate {
    source: String,
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
        (self.finished() > 0).then(|| 100.0 * self.failed as f64 / self.finished() as f64)
    }
}

#[derive(Debug)]
struct Reason {
    reason: String,
    failures: i64,
    job_types: i64,
    first_seen: String,
    last_seen: String,
}

#[derive(Debug)]
struct TypeDuration {
    source: String,
    job_type: Option<String>,
    jobs: i64,
    p50: i64,
    p95: i64,
    max: i64,
}

#[derive(Debug)]
struct RunningJob {
    source: String,
    project_id: String,
    job_id: String,
    job_type: Option<String>,
    status: String,
    raw_status: Option<String>,
    progress: Option<i64>,
    since: String,
    resource_name: Option<String>,
}

#[derive(Debug)]
struct Failure {
    failed_at: String,
    source: String,
    job_type: Option<String>,
    job_id: String,
    resource_name: Option<String>,
    error_code: Option<String>,
    fail_reason: Option<String>,
}

/// Renders the report page for the jobs `filter` selects, as of `generated_at`.
pub async fn render(
    store: &Store,
    filter: &ReportFilter,
    generated_at: DateTime<Utc>,
) -> Result<String, ReportError> {
    let bounds = resolve_bounds(filter)?;
    let data = gather(store, &bounds, generated_at).await?;
    Ok(page(&data, filter, &bounds, generated_at))
}

async fn gather(store: &Store, b: &Bounds, now: DateTime<Utc>) -> Result<ReportData, ReportError> {
    let pool = store.pool();
    let mut d = ReportData {
        jobs_in_database: sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(pool)
            .await?,
        ..ReportData::default()
    };
    if d.jobs_in_database == 0 {
        return Ok(d);
    }

    // One pass over the selected jobs gives the totals, the per-source and
    // per-type counts, the weeks and every duration; the rest is folded here.
    // (Each extra full scan costs about as much as this whole query on 100k jobs.)
    type GroupRow = (
        String,
        Option<String>,
        String,
        Option<String>,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let groups: Vec<GroupRow> = bind_filter!(
        sqlx::query_as(filtered!(
            "SELECT source, job_type, status, date(t, 'weekday 0', '-6 days') AS week_start, \
               COUNT(*), MIN(t), MAX(t), group_concat(duration_ms) \
             FROM f GROUP BY source, job_type, status, week_start"
        )),
        b
    )
    .fetch_all(pool)
    .await?;
    let mut sources: BTreeMap<String, SourceTotals> = BTreeMap::new();
    let mut types: BTreeMap<(String, Option<String>), TypeRate> = BTreeMap::new();
    let mut weeks: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut durations: BTreeMap<(String, Option<String>), Vec<i64>> = BTreeMap::new();
    for (source, job_type, status, week, n, first, last, timed) in groups {
        let (succeeded, failed) = match status.as_str() {
            "succeeded" => (n, 0),
            "failed" => (0, n),
            _ => (0, 0),
        };
        let t = &mut d.totals;
        t.jobs += n;
        t.succeeded += succeeded;
        t.failed += failed;
        match status.as_str() {
            "running" => t.running += n,
            "unknown" => t.unknown += n,
            _ => {}
        }
        t.first = min_text(t.first.take(), first);
        t.last = max_text(t.last.take(), last);
        let s = sources
            .entry(source.clone())
            .or_insert_with(|| SourceTotals {
                source: source.clone(),
                jobs: 0,
                succeeded: 0,
                failed: 0,
                unfinished: 0,
            });
        s.jobs += n;
        s.succeeded += succeeded;
        s.failed += failed;
        s.unfinished += n - succeeded - failed;
        let key = (source, job_type);
        let r = types.entry(key.clone()).or_insert_with(|| TypeRate {
            source: key.0.clone(),
            job_type: key.1.clone(),
            total: 0,
            succeeded: 0,
            failed: 0,
        });
        r.total += n;
        r.succeeded += succeeded;
        r.failed += failed;
        if let Some(week) = week {
            *weeks.entry((week, status)).or_default() += n;
        }
        if let Some(timed) = timed {
            let list = durations.entry(key).or_default();
            list.extend(timed.split(',').filter_map(|v| v.parse::<i64>().ok()));
        }
    }
    d.sources = sources.into_values().collect();
    // In the order `jobtrail status` uses.
    d.sources.sort_by_key(|s| {
        Source::ALL
            .iter()
            .position(|k| k.as_str() == s.source)
            .unwrap_or(Source::ALL.len())
    });
    d.weeks = weeks
        .into_iter()
        .map(|((week, status), n)| (week, status, n))
        .collect();
    d.types = types.into_values().collect();
    // Highest failure rate first; types with nothing finished last.
    d.types.sort_by(|a, b| {
        b.rate()
            .unwrap_or(-1.0)
            .total_cmp(&a.rate().unwrap_or(-1.0))
            .then(b.failed.cmp(&a.failed))
            .then(a.source.cmp(&b.source))
            .then(a.job_type.cmp(&b.job_type))
    });
    d.duration_type_count = durations.len() as i64;
    // Nearest-rank percentiles: the value at rank ceil(p% × n).
    d.durations = durations
        .into_iter()
        .map(|((source, job_type), mut v)| {
            v.sort_unstable();
            let rank = |p: usize| v[(v.len() * p).div_ceil(100).max(1) - 1];
            TypeDuration {
                source,
                job_type,
                jobs: v.len() as i64,
                p50: rank(50),
                p95: rank(95),
                max: v[v.len() - 1],
            }
        })
        .collect();
    d.durations.sort_by(|a, b| {
        b.p95
            .cmp(&a.p95)
            .then(b.p50.cmp(&a.p50))
            .then(a.source.cmp(&b.source))
            .then(a.job_type.cmp(&b.job_type))
    });
    d.durations.truncate(MAX_TYPE_ROWS);

    // Failures by reason and job type (the status index finds them).
    let failed: Vec<(String, String, Option<String>, i64, String, String)> = bind_filter!(
        sqlx::query_as(filtered!(
            "SELECT COALESCE(fail_reason, error_code, '(no reason given)') AS reason, source, job_type, \
               COUNT(*), MIN(t), MAX(t) \
             FROM f WHERE status = 'failed' GROUP BY reason, source, job_type"
        )),
        b
    )
    .fetch_all(pool)
    .await?;
    let mut reasons: BTreeMap<String, Reason> = BTreeMap::new();
    for (reason, _, _, n, first, last) in failed {
        let r = reasons.entry(reason.clone()).or_insert_with(|| Reason {
            reason,
            failures: 0,
            job_types: 0,
            first_seen: first.clone(),
            last_seen: last.clone(),
        });
        r.failures += n;
        r.job_types += 1;
        r.first_seen = r.first_seen.clone().min(first);
        r.last_seen = r.last_seen.clone().max(last);
    }
    d.reason_count = reasons.len() as i64;
    d.reasons = reasons.into_values().collect();
    d.reasons
        .sort_by(|a, b| b.failures.cmp(&a.failures).then(a.reason.cmp(&b.reason)));
    d.reasons.truncate(MAX_REASONS);

    // Running jobs are shown whatever the time window: a job stuck since
    // before --since is exactly what the reader needs to see.
    let stuck_before = format_utc(now - Duration::hours(STUCK_AFTER_HOURS));
    let (running_count, stuck_count): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), \
           COALESCE(SUM(CASE WHEN COALESCE(started_at, first_seen_at) < ?2 THEN 1 ELSE 0 END), 0) \
         FROM jobs WHERE status IN ('running', 'unknown') \
           AND (?1 IS NULL OR instr(?1, ',' || source || ',') > 0)",
    )
    .bind(b.sources.clone())
    .bind(&stuck_before)
    .fetch_one(pool)
    .await?;
    d.running_count = running_count;
    d.stuck_count = stuck_count;
    type RunningRow = (
        String,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<i64>,
        String,
        Option<String>,
    );
    let running: Vec<RunningRow> = sqlx::query_as(
        "SELECT source, project_id, job_id, job_type, status, raw_status, progress, \
           COALESCE(started_at, first_seen_at) AS since, resource_name \
         FROM jobs WHERE status IN ('running', 'unknown') \
           AND (?1 IS NULL OR instr(?1, ',' || source || ',') > 0) \
         ORDER BY since, source, job_id LIMIT ?2",
    )
    .bind(b.sources.clone())
    .bind(MAX_JOB_ROWS as i64)
    .fetch_all(pool)
    .await?;
    d.running = running
        .into_iter()
        .map(
            |(
                source,
                project_id,
                job_id,
                job_type,
                status,
                raw_status,
                progress,
                since,
                resource_name,
            )| {
                RunningJob {
                    source,
                    project_id,
                    job_id,
                    job_type,
                    status,
                    raw_status,
                    progress,
                    since,
                    resource_name,
                }
            },
        )
        .collect();

    type FailureRow = (
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let failures: Vec<FailureRow> = bind_filter!(
        sqlx::query_as(filtered!(
            "SELECT COALESCE(ended_at, started_at, last_seen_at) AS failed_at, source, job_type, \
           job_id, resource_name, error_code, fail_reason \
         FROM f WHERE status = 'failed' ORDER BY failed_at DESC, source, job_id LIMIT ?4"
        )),
        b
    )
    .bind(MAX_JOB_ROWS as i64)
    .fetch_all(pool)
    .await?;
    d.failures = failures
        .into_iter()
        .map(
            |(failed_at, source, job_type, job_id, resource_name, error_code, fail_reason)| {
                Failure {
                    failed_at,
                    source,
                    job_type,
                    job_id,
                    resource_name,
                    error_code,
                    fail_reason,
                }
            },
        )
        .collect();
    Ok(d)
}

fn min_text(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_text(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Writes into a `String`, which cannot fail.
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped, or a dimmed dash for NULL.
fn opt(s: &Option<String>) -> String {
    match s {
        Some(v) => escape(v),
        None => "<span class=\"none\">—</span>".to_owned(),
    }
}

/// A table cell for a stored time: `2024-01-31 08:15` (UTC, to the minute), the
/// exact stored value on hover.
fn time_cell(t: &str) -> String {
    let shown = match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(hm)) if t.len() == 24 && t.as_bytes()[10] == b'T' => format!("{day} {hm}"),
        _ => t.to_owned(),
    };
    format!(
        "<td class=\"time\" title=\"{}\">{}</td>",
        escape(t),
        escape(&shown)
    )
}

/// "source · job type" for labels (escaped).
fn type_label(source: &str, job_type: &Option<String>) -> String {
    format!(
        "{} · {}",
        escape(source),
        escape(&cut(job_type.as_deref().unwrap_or("(no type)"), 40))
    )
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// `850 ms`, `12.3 s`, `4m 05s`, `2h 03m`, `3d 04h`.
pub fn human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if s < 60 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

fn pct(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{r:.1}%"))
}

/// ISO week label of a Monday: `2024-W03`.
fn iso_label(monday: NaiveDate) -> String {
    let w = monday.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

const STATUSES: [(&str, &str); 4] = [
    ("succeeded", "#2e7d32"),
    ("failed", "#c62828"),
    ("running", "#1565c0"),
    ("unknown", "#9e9e9e"),
];

const CSS: &str = "
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK SC',
       'PingFang SC', 'Microsoft YaHei', sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1100px; padding: 24px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.meta, .note { color: #57606a; }
.note { font-size: 13px; margin: 4px 0 8px; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.tile { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.tile b { display: block; font-size: 22px; }
.tile span { color: #57606a; font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.reason { overflow-wrap: anywhere; max-width: 40em; }
td.id, td.time { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
                 white-space: nowrap; }
tr.stuck td { background: #fff4e5; }
.none { color: #8c959f; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, 'Noto Sans', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif;
           fill: #57606a; }
table.sources { width: auto; min-width: 60%; }
.wide { overflow-x: auto; }
.empty { border: 1px dashed #d0d7de; border-radius: 6px; padding: 32px; text-align: center; color: #57606a; }
@media print { body { padding: 0; } h2 { break-after: avoid; } }
";

fn page(d: &ReportData, filter: &ReportFilter, b: &Bounds, now: DateTime<Utc>) -> String {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // No scripts, styles only inline, images only inline: even a value that
    // escaped escaping could not run anything.
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n",
    );
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>jobtrail report</title>\n<style>");
    h.push_str(CSS);
    h.push_str("</style>\n</head>\n<body>\n<h1>jobtrail report</h1>\n");
    w!(
        h,
        "<p class=\"meta\">Generated {} UTC · {} · All times are UTC.</p>\n",
        escape(&format_utc(now)),
        describe_filter(filter, b)
    );

    if d.jobs_in_database == 0 {
        h.push_str(
            "<div class=\"empty\"><h2>No jobs yet</h2><p>This database has no jobs. Run \
             <code>jobtrail sync</code> (or <code>jobtrail demo</code>), then build the report again.</p></div>\n",
        );
    } else if d.totals.jobs == 0 {
        w!(
            h,
            "<div class=\"empty\"><h2>No jobs match</h2><p>None of the {} jobs in the database falls \
             in this window and these sources. Widen <code>--since</code>/<code>--until</code> or \
             <code>--source</code>.</p></div>\n",
            d.jobs_in_database
        );
        running_section(&mut h, d, now);
    } else {
        summary_section(&mut h, d);
        weeks_section(&mut h, d);
        rates_section(&mut h, d);
        reasons_section(&mut h, d);
        durations_section(&mut h, d);
        running_section(&mut h, d, now);
        failures_section(&mut h, d);
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn describe_filter(filter: &ReportFilter, b: &Bounds) -> String {
    let window = match (&b.since, &b.until) {
        (None, None) => "all history".to_owned(),
        (Some(s), None) => format!("jobs from {}", escape(s)),
        (None, Some(u)) => format!("jobs before {}", escape(u)),
        (Some(s), Some(u)) => format!("jobs from {} to before {}", escape(s), escape(u)),
    };
    let sources = if filter.sources.is_empty() {
        "all sources".to_owned()
    } else {
        let names: Vec<&str> = filter.sources.iter().map(|s| s.as_str()).collect();
        format!("sources: {}", escape(&names.join(", ")))
    };
    format!("{window} · {sources}")
}

fn summary_section(h: &mut String, d: &ReportData) {
    let t = &d.totals;
    let finished = t.succeeded + t.failed;
    let rate = (finished > 0).then(|| 100.0 * t.failed as f64 / finished as f64);
    h.push_str("<div class=\"tiles\">\n");
    for (value, label) in [
        (t.jobs.to_string(), "jobs"),
        (t.succeeded.to_string(), "succeeded"),
        (t.failed.to_string(), "failed"),
        ((t.running + t.unknown).to_string(), "running or unknown"),
        (pct(rate), "failure rate (of finished)"),
    ] {
        w!(
            h,
            "<div class=\"tile\" data-tile=\"{label}\"><b>{value}</b><span>{label}</span></div>\n"
        );
    }
    h.push_str("</div>\n");
    if let (Some(first), Some(last)) = (&t.first, &t.last) {
        w!(
            h,
            "<p class=\"note\">Jobs from {} to {} (a job counts at its start, else its end, else when jobtrail first saw it).</p>\n",
            escape(first),
            escape(last)
        );
    }
    h.push_str(
        "<table class=\"sources\"><thead><tr><th>source</th><th class=\"num\">jobs</th><th class=\"num\">succeeded</th>\
         <th class=\"num\">failed</th><th class=\"num\">running or unknown</th><th class=\"num\">failure rate</th></tr></thead><tbody>\n",
    );
    for s in &d.sources {
        let finished = s.succeeded + s.failed;
        let rate = (finished > 0).then(|| 100.0 * s.failed as f64 / finished as f64);
        w!(
            h,
            "<tr data-source=\"{source}\"><td>{source}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            s.jobs,
            s.succeeded,
            s.failed,
            s.unfinished,
            pct(rate),
            source = escape(&s.source),
        );
    }
    h.push_str("</tbody></table>\n");
}

/// Monday of the week of a `YYYY-MM-DD` date.
fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn weeks_section(h: &mut String, d: &ReportData) {
    h.push_str("<h2>Jobs per week by status</h2>\n");
    let (Some(first), Some(last)) = (
        d.weeks.iter().filter_map(|w| parse_day(&w.0)).min(),
        d.weeks.iter().filter_map(|w| parse_day(&w.0)).max(),
    ) else {
        h.push_str("<p class=\"note\">No job has a time yet.</p>\n");
        return;
    };
    // Every week from the first to the last, empty ones included.
    let mut weeks: Vec<(NaiveDate, [i64; 4])> = Vec::new();
    let mut day = first;
    while day <= last {
        weeks.push((day, [0; 4]));
        day += Duration::days(7);
    }
    let hidden = weeks.len().saturating_sub(MAX_WEEKS);
    weeks.drain(..hidden);
    for (start, status, n) in &d.weeks {
        let Some(start) = parse_day(start) else {
            continue;
        };
        if let Some(entry) = weeks.iter_mut().find(|(w, _)| *w == start)
            && let Some(k) = STATUSES.iter().position(|(s, _)| s == status)
        {
            entry.1[k] += n;
        }
    }
    w!(
        h,
        "<p class=\"note\">Weeks run Monday to Sunday (ISO weeks, UTC); each bar stacks the jobs that started that week by their status now.{}</p>\n",
        if hidden > 0 {
            format!(" Showing the last {MAX_WEEKS} weeks; {hidden} earlier weeks are not shown.")
        } else {
            String::new()
        }
    );
    legend(h);

    let tallest = weeks
        .iter()
        .map(|(_, c)| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0);
    // Four gridline steps of a round size (1, 2 or 5 × 10ⁿ).
    let step = nice_step(tallest as f64 / 4.0);
    let max = step * 4;
    let (width, height, left, bottom, top) = (1000.0, 260.0, 44.0, 36.0, 10.0);
    let plot_w = width - left - 8.0;
    let plot_h = height - bottom - top;
    let slot = plot_w / weeks.len() as f64;
    let bar = (slot * 0.8).max(1.0);
    w!(
        h,
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Jobs per week by status\">\n"
    );
    for k in 0..=4 {
        let value = step * k;
        let y = top + plot_h - plot_h * k as f64 / 4.0;
        w!(
            h,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            width - 8.0,
            left - 6.0,
            y + 4.0,
            value
        );
    }
    let label_every = weeks.len().div_ceil(12).max(1);
    for (i, (monday, counts)) in weeks.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        let week = iso_label(*monday);
        for (k, (status, color)) in STATUSES.iter().enumerate() {
            let n = counts[k];
            if n == 0 {
                continue;
            }
            let bar_h = plot_h * n as f64 / max as f64;
            y -= bar_h;
            w!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bar_h:.1}\" fill=\"{color}\"><title>{week} (from {monday}): {n} {status}</title></rect>\n"
            );
        }
        if i % label_every == 0 {
            w!(
                h,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{week}</text>\n",
                x + bar / 2.0,
                height - bottom + 16.0
            );
        }
    }
    h.push_str("</svg>\n");
}

/// The smallest of 1, 2, 5 × 10ⁿ at least `raw` (and at least 1).
fn nice_step(raw: f64) -> i64 {
    let raw = raw.max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let mantissa = raw / magnitude;
    let m = if mantissa <= 1.0 {
        1.0
    } else if mantissa <= 2.0 {
        2.0
    } else if mantissa <= 5.0 {
        5.0
    } else {
        10.0
    };
    (m * magnitude).round() as i64
}

fn legend(h: &mut String) {
    h.push_str("<div class=\"legend\">");
    for (status, color) in STATUSES {
        w!(
            h,
            "<span><i style=\"background:{color}\"></i>{status}</span>"
        );
    }
    h.push_str("</div>\n");
}

/// One bar of a horizontal bar chart.
struct Bar {
    /// Already escaped.
    label: String,
    value: f64,
    /// A second, darker bar drawn inside the first (p50 inside p95).
    inner: Option<f64>,
    text: String,
}

/// A horizontal bar chart; `text_room` is the width kept for the value text.
fn hbars(h: &mut String, aria: &str, rows: &[Bar], max: f64, colors: (&str, &str), text_room: f64) {
    if rows.is_empty() {
        return;
    }
    let (width, label_w, row_h) = (1000.0, 300.0, 22.0);
    let height = row_h * rows.len() as f64 + 4.0;
    let plot_w = width - label_w - text_room;
    let max = if max > 0.0 { max } else { 1.0 };
    let scale = |v: f64| (plot_w * v / max).max(if v > 0.0 { 1.0 } else { 0.0 });
    w!(
        h,
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">\n",
        escape(aria)
    );
    for (i, bar) in rows.iter().enumerate() {
        let y = row_h * i as f64 + 2.0;
        let bar_w = scale(bar.value);
        w!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            label_w - 8.0,
            y + 14.0,
            bar.label,
            y + 3.0,
            row_h - 6.0,
            colors.0,
            bar.label,
            bar.text
        );
        if let Some(inner) = bar.inner {
            w!(
                h,
                "<rect x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                y + 3.0,
                scale(inner),
                row_h - 6.0,
                colors.1
            );
        }
        w!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            label_w + bar_w + 6.0,
            y + 14.0,
            bar.text
        );
    }
    h.push_str("</svg>\n");
}

fn rates_section(h: &mut String, d: &ReportData) {
    h.push_str("<h2>Failure rate by job type</h2>\n");
    let few = d
        .types
        .iter()
        .filter(|t| t.finished() > 0 && t.finished() < MIN_FINISHED_FOR_BAR)
        .count();
    w!(
        h,
        "<p class=\"note\">Failure rate = failed ÷ finished (succeeded + failed); jobs still running do not count.{}</p>\n",
        if few > 0 {
            format!(
                " The chart leaves out {few} job type{} with fewer than {MIN_FINISHED_FOR_BAR} finished jobs; the table lists them.",
                if few == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    );
    let bars: Vec<Bar> = d
        .types
        .iter()
        .filter(|t| t.finished() >= MIN_FINISHED_FOR_BAR)
        .filter_map(|t| {
            t.rate().map(|r| Bar {
                label: type_label(&t.source, &t.job_type),
                value: r,
                inner: None,
                text: format!("{} ({} of {})", pct(Some(r)), t.failed, t.finished()),
            })
        })
        .take(MAX_CHART_BARS)
        .collect();
    hbars(
        h,
        "Failure rate by job type",
        &bars,
        100.0,
        ("#c62828", "#c62828"),
        130.0,
    );
    h.push_str(
        "<table><thead><tr><th>source</th><th>job type</th><th class=\"num\">jobs</th><th class=\"num\">finished</th>\
         <th class=\"num\">failed</th><th class=\"num\">failure rate</th></tr></thead><tbody>\n",
    );
    for t in d.types.iter().take(MAX_TYPE_ROWS) {
        w!(
            h,
            "<tr data-rate=\"{}/{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&t.source),
            escape(t.job_type.as_deref().unwrap_or("")),
            escape(&t.source),
            opt(&t.job_type),
            t.total,
            t.finished(),
            t.failed,
            pct(t.rate())
        );
    }
    h.push_str("</tbody></table>\n");
    more_note(h, d.types.len(), MAX_TYPE_ROWS, "job types");
}

fn more_note(h: &mut String, total: usize, shown: usize, what: &str) {
    if total > shown {
        w!(
            h,
            "<p class=\"note\">Showing {shown} of {total} {what}; query the database for the rest.</p>\n"
        );
    }
}

fn reasons_section(h: &mut String, d: &ReportData) {
    h.push_str("<h2>Top failure reasons</h2>\n");
    if d.reasons.is_empty() {
        h.push_str("<p class=\"note\">No failures in this window.</p>\n");
        return;
    }
    h.push_str(
        "<p class=\"note\">The reason is the failure text the API gave, else its error code.</p>\n\
         <table><thead><tr><th>reason</th><th class=\"num\">failures</th><th class=\"num\">job types</th>\
         <th>first seen (UTC)</th><th>last seen (UTC)</th></tr></thead><tbody>\n",
    );
    for r in &d.reasons {
        w!(
            h,
            "<tr><td class=\"reason\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}{}</tr>\n",
            escape(&cut(&r.reason, MAX_REASON_CHARS)),
            r.failures,
            r.job_types,
            time_cell(&r.first_seen),
            time_cell(&r.last_seen)
        );
    }
    h.push_str("</tbody></table>\n");
    more_note(h, d.reason_count as usize, d.reasons.len(), "reasons");
}

fn durations_section(h: &mut String, d: &ReportData) {
    h.push_str("<h2>Duration by job type (p50 / p95)</h2>\n");
    if d.durations.is_empty() {
        h.push_str("<p class=\"note\">No job has both a start and an end time yet.</p>\n");
        return;
    }
    h.push_str(
        "<p class=\"note\">Nearest-rank percentiles of end − start over jobs with both times; slowest p95 first. Dark bars show p50, light bars p95.</p>\n",
    );
    let max = d.durations.iter().map(|t| t.p95).max().unwrap_or(0) as f64;
    let bars: Vec<Bar> = d
        .durations
        .iter()
        .take(MAX_CHART_BARS)
        .map(|t| Bar {
            label: type_label(&t.source, &t.job_type),
            value: t.p95 as f64,
            inner: Some(t.p50 as f64),
            text: format!(
                "p50 {} · p95 {}",
                human_duration(t.p50),
                human_duration(t.p95)
            ),
        })
        .collect();
    hbars(
        h,
        "p50 and p95 duration by job type",
        &bars,
        max,
        ("#ce93d8", "#6a1b9a"),
        190.0,
    );
    h.push_str(
        "<table><thead><tr><th>source</th><th>job type</th><th class=\"num\">jobs</th><th class=\"num\">p50</th>\
         <th class=\"num\">p95</th><th class=\"num\">max</th><th class=\"num\">p50 ms</th><th class=\"num\">p95 ms</th></tr></thead><tbody>\n",
    );
    for t in &d.durations {
        w!(
            h,
            "<tr data-duration=\"{}/{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&t.source),
            escape(t.job_type.as_deref().unwrap_or("")),
            escape(&t.source),
            opt(&t.job_type),
            t.jobs,
            human_duration(t.p50),
            human_duration(t.p95),
            human_duration(t.max),
            t.p50,
            t.p95
        );
    }
    h.push_str("</tbody></table>\n");
    more_note(
        h,
        d.duration_type_count as usize,
        d.durations.len(),
        "job types",
    );
}

fn running_section(h: &mut String, d: &ReportData, now: DateTime<Utc>) {
    h.push_str("<h2>Running and stuck jobs</h2>\n");
    if d.running_count == 0 {
        h.push_str("<p class=\"note\">No job is running now (as of the last sync).</p>\n");
        return;
    }
    w!(
        h,
        "<p class=\"note\"><span data-count=\"running\">{}</span> jobs are not finished (running or unknown, as of the last sync), \
         <span data-count=\"stuck\">{}</span> of them for more than {STUCK_AFTER_HOURS} hours (highlighted). \
         Shown whatever the time window; oldest first.</p>\n",
        d.running_count,
        d.stuck_count
    );
    h.push_str(
        "<div class=\"wide\"><table><thead><tr><th>since (UTC)</th><th class=\"num\">running for</th><th>source</th><th>job type</th>\
         <th>job id</th><th>status</th><th>resource</th></tr></thead><tbody>\n",
    );
    for j in &d.running {
        let age = parse_api_time(&j.since).map(|t| (now - t).num_milliseconds());
        let stuck = age.is_some_and(|a| a > STUCK_AFTER_HOURS * 3_600_000);
        // The raw status only when it says more than the normalized one.
        let status = match &j.raw_status {
            Some(raw) if !raw.eq_ignore_ascii_case(&j.status) => {
                format!("{} ({})", escape(&j.status), escape(raw))
            }
            _ => escape(&j.status),
        };
        let progress = j.progress.map_or_else(String::new, |p| format!(" · {p}%"));
        w!(
            h,
            "<tr{}>{}<td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"id\" title=\"project {}\">{}</td><td>{status}{progress}</td><td>{}</td></tr>\n",
            if stuck { " class=\"stuck\"" } else { "" },
            time_cell(&j.since),
            age.map_or_else(|| "—".to_owned(), human_duration),
            escape(&j.source),
            opt(&j.job_type),
            escape(&j.project_id),
            escape(&j.job_id),
            opt(&j.resource_name)
        );
    }
    h.push_str("</tbody></table></div>\n");
    more_note(
        h,
        d.running_count as usize,
        d.running.len(),
        "unfinished jobs",
    );
}

fn failures_section(h: &mut String, d: &ReportData) {
    h.push_str("<h2>Most recent failures</h2>\n");
    if d.failures.is_empty() {
        h.push_str("<p class=\"note\">No failures in this window.</p>\n");
        return;
    }
    h.push_str(
        "<div class=\"wide\"><table><thead><tr><th>failed at (UTC)</th><th>source</th><th>job type</th><th>job id</th>\
         <th>resource</th><th>error code</th><th>reason</th></tr></thead><tbody>\n",
    );
    for f in &d.failures {
        w!(
            h,
            "<tr>{}<td>{}</td><td>{}</td><td class=\"id\">{}</td><td>{}</td><td>{}</td><td class=\"reason\">{}</td></tr>\n",
            time_cell(&f.failed_at),
            escape(&f.source),
            opt(&f.job_type),
            escape(&f.job_id),
            opt(&f.resource_name),
            opt(&f.error_code),
            opt(&f.fail_reason.as_deref().map(|r| cut(r, MAX_REASON_CHARS)))
        );
    }
    h.push_str("</tbody></table></div>\n");
    more_note(h, d.totals.failed as usize, d.failures.len(), "failures");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobRow, Status};
    use crate::test_support::{db_with, job, sample_jobs, seen_at};

    fn at(s: &str) -> DateTime<Utc> {
        parse_api_time(s).expect("test time")
    }

    /// The text of each cell of the row marked `attr="key"`, tags removed.
    fn row_cells(html: &str, attr: &str, key: &str) -> Vec<String> {
        let marker = format!("<tr {attr}=\"{key}\">");
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("no row {marker}"))
            + marker.len();
        let end = start + html[start..].find("</tr>").expect("row end");
        html[start..end]
            .split("<td")
            .skip(1)
            .map(|cell| {
                let body = &cell[cell.find('>').expect("td open") + 1..];
                let body = &body[..body.find("</td>").expect("td close")];
                strip_tags(body)
            })
            .collect()
    }

    fn strip_tags(s: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in s.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    fn tile(html: &str, label: &str) -> String {
        let marker = format!("data-tile=\"{label}\"><b>");
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("no tile {label}"))
            + marker.len();
        html[start..start + html[start..].find("</b>").expect("tile end")].to_owned()
    }

    fn job_time(r: &JobRow) -> String {
        r.started_at
            .clone()
            .or_else(|| r.ended_at.clone())
            .unwrap_or_else(|| seen_at(0))
    }

    fn monday(t: &str) -> NaiveDate {
        let day = at(t).date_naive();
        day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
    }

    async fn render_all(rows: Vec<JobRow>, filter: &ReportFilter, now: DateTime<Utc>) -> String {
        let db = db_with(&[rows]).await;
        let store = Store::open_read_only(&db.path).await.expect("read-only");
        render(&store, filter, now).await.expect("render")
    }

    #[tokio::test]
    async fn numbers_in_the_page_match_the_rows() {
        let rows = sample_jobs();
        let now = at("2024-03-25T00:00:00Z");
        let html = render_all(rows.clone(), &ReportFilter::default(), now).await;

        let count = |f: &dyn Fn(&JobRow) -> bool| rows.iter().filter(|r| f(r)).count();
        assert_eq!(tile(&html, "jobs"), rows.len().to_string());
        assert_eq!(
            tile(&html, "failed"),
            count(&|r| r.status == Status::Failed).to_string()
        );
        assert_eq!(
            tile(&html, "running or unknown"),
            count(&|r| !r.status.is_terminal()).to_string()
        );

        // Jobs per source, by status.
        for source in ["nosql", "dbss", "image"] {
            let of = |f: &dyn Fn(&JobRow) -> bool| {
                count(&|r| r.source.as_str() == source && f(r)).to_string()
            };
            let cells = row_cells(&html, "data-source", source);
            assert_eq!(
                cells[1..5],
                [
                    of(&|_| true),
                    of(&|r| r.status == Status::Succeeded),
                    of(&|r| r.status == Status::Failed),
                    of(&|r| !r.status.is_terminal()),
                ],
                "{source}"
            );
        }

        // Failure rate per type.
        let mut types: BTreeMap<(String, String), (usize, usize, usize)> = BTreeMap::new();
        for r in &rows {
            let e = types
                .entry((r.source.to_string(), r.job_type.clone().unwrap_or_default()))
                .or_default();
            e.0 += 1;
            if r.status.is_terminal() {
                e.1 += 1;
            }
            if r.status == Status::Failed {
                e.2 += 1;
            }
        }
        for ((source, job_type), (total, finished, failed)) in &types {
            let cells = row_cells(&html, "data-rate", &format!("{source}/{job_type}"));
            let rate = format!("{:.1}%", 100.0 * *failed as f64 / *finished as f64);
            assert_eq!(
                cells[2..],
                [
                    total.to_string(),
                    finished.to_string(),
                    failed.to_string(),
                    rate
                ],
                "{source}/{job_type}"
            );
        }

        // Jobs per week by status, in the bars' titles.
        let mut weeks: BTreeMap<(NaiveDate, &str), usize> = BTreeMap::new();
        for r in &rows {
            *weeks
                .entry((monday(&job_time(r)), r.status.as_str()))
                .or_default() += 1;
        }
        for ((week, status), n) in &weeks {
            let title = format!(
                "<title>{} (from {week}): {n} {status}</title>",
                iso_label(*week)
            );
            assert!(html.contains(&title), "missing {title}");
        }
        assert_eq!(
            html.matches(" (from ").count(),
            weeks.len(),
            "one bar segment per week and status"
        );

        // Durations: nearest-rank p50/p95 per type.
        let mut durations: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for r in &rows {
            if let Some(d) = r.duration_ms {
                durations
                    .entry((r.source.to_string(), r.job_type.clone().unwrap_or_default()))
                    .or_default()
                    .push(d);
            }
        }
        for ((source, job_type), mut d) in durations {
            d.sort_unstable();
            let rank = |p: usize| d[(d.len() * p).div_ceil(100) - 1];
            let cells = row_cells(&html, "data-duration", &format!("{source}/{job_type}"));
            assert_eq!(cells[2], d.len().to_string());
            assert_eq!(cells[6..], [rank(50).to_string(), rank(95).to_string()]);
        }

        // The top reason and its count.
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.status == Status::Failed) {
            let reason = r
                .fail_reason
                .clone()
                .or_else(|| r.error_code.clone())
                .unwrap_or_else(|| "(no reason given)".into());
            *reasons.entry(reason).or_default() += 1;
        }
        let (top, n) = reasons
            .iter()
            .max_by_key(|(_, n)| **n)
            .expect("some failure");
        assert!(
            html.contains(&format!(
                "<td class=\"reason\">{}</td><td class=\"num\">{n}</td>",
                escape(top)
            )),
            "top reason {top} ({n})"
        );
        assert!(html.contains("timeout &lt;waiting&gt;"));
    }

    #[tokio::test]
    async fn database_values_are_escaped() {
        let t = at("2024-01-02T00:00:00Z");
        let mut evil = job(
            Source::Dbss,
            "<img src=x onerror=alert(1)>",
            Some("Resize \"big\" & <small>"),
            Status::Failed,
            Some(t),
            Some(t + Duration::seconds(5)),
        );
        evil.fail_reason = Some("<script>alert('x')</script>".into());
        evil.resource_name = Some("</td></tr></table><h1>owned</h1>".into());
        let mut running = evil.clone();
        running.job_id = "<b>bold</b>".into();
        running.status = Status::Running;
        running.ended_at = None;
        running.duration_ms = None;
        let html = render_all(
            vec![evil, running],
            &ReportFilter::default(),
            at("2024-01-03T00:00:00Z"),
        )
        .await;
        assert!(!html.contains("<script"), "a script tag got through");
        assert!(!html.contains("<img"));
        assert!(!html.contains("<h1>owned"));
        assert!(!html.contains("<b>bold"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("Resize &quot;big&quot; &amp; &lt;small&gt;"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        // Self-contained: no scripts, no external resources.
        assert!(!html.contains("http://") && !html.contains("https://"));
        for tag in ["<img", "<link", "<iframe", "<object", "url("] {
            assert!(
                !html.contains(tag),
                "{tag}: nothing is loaded from anywhere"
            );
        }
    }

    #[tokio::test]
    async fn an_empty_database_gets_a_friendly_page() {
        let db = db_with(&[]).await;
        let html = render(
            &db.store,
            &ReportFilter::default(),
            at("2024-01-01T00:00:00Z"),
        )
        .await
        .expect("render");
        assert!(html.contains("No jobs yet"));
        assert!(html.contains("jobtrail sync"));
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    }

    #[tokio::test]
    async fn filters_select_the_window_and_sources() {
        let rows = sample_jobs();
        let now = at("2024-03-25T00:00:00Z");
        let filter = ReportFilter {
            since: Some("2024-01-15".into()),
            until: Some("2024-02-10".into()),
            sources: vec![Source::Nosql, Source::Image],
        };
        let html = render_all(rows.clone(), &filter, now).await;
        let want = rows
            .iter()
            .filter(|r| matches!(r.source, Source::Nosql | Source::Image))
            .filter(|r| {
                let t = job_time(r);
                t.as_str() >= "2024-01-15" && t.as_str() < "2024-02-11"
            })
            .count();
        assert_eq!(tile(&html, "jobs"), want.to_string());
        assert!(!html.contains("data-rate=\"dbss/"));
        assert!(html.contains("sources: nosql, image"));

        // Unfinished jobs show whatever the window, within the chosen sources.
        let unfinished = rows
            .iter()
            .filter(|r| {
                matches!(r.source, Source::Nosql | Source::Image) && !r.status.is_terminal()
            })
            .count();
        assert!(html.contains(&format!("<span data-count=\"running\">{unfinished}</span>")));

        // A window with no jobs says so.
        let none = ReportFilter {
            since: Some("2030-01-01".into()),
            ..ReportFilter::default()
        };
        let html = render_all(rows.clone(), &none, now).await;
        assert!(html.contains("No jobs match"), "{html}");

        let db = db_with(&[]).await;
        let bad = ReportFilter {
            since: Some("last tuesday".into()),
            ..ReportFilter::default()
        };
        let err = render(&db.store, &bad, now).await.expect_err("bad date");
        assert!(
            err.to_string().contains("--since \"last tuesday\""),
            "{err}"
        );
        let backwards = ReportFilter {
            since: Some("2024-02-01".into()),
            until: Some("2024-01-01".into()),
            ..ReportFilter::default()
        };
        assert!(matches!(
            render(&db.store, &backwards, now).await,
            Err(ReportError::EmptyRange { .. })
        ));
    }

    #[tokio::test]
    async fn stuck_jobs_are_counted_and_flagged() {
        let now = at("2024-05-01T12:00:00Z");
        let rows = vec![
            job(
                Source::Image,
                "stuck",
                Some("CREATE_IMAGE"),
                Status::Running,
                Some(now - Duration::hours(48)),
                None,
            ),
            job(
                Source::Image,
                "fresh",
                Some("CREATE_IMAGE"),
                Status::Running,
                Some(now - Duration::hours(1)),
                None,
            ),
            job(
                Source::Nosql,
                "done",
                Some("Backup"),
                Status::Succeeded,
                Some(now - Duration::hours(3)),
                Some(now),
            ),
        ];
        let html = render_all(rows, &ReportFilter::default(), now).await;
        assert!(html.contains("<span data-count=\"running\">2</span>"));
        assert!(html.contains("<span data-count=\"stuck\">1</span>"));
        assert_eq!(html.matches("<tr class=\"stuck\">").count(), 1);
        assert!(html.contains("2d 00h"));
    }

    #[tokio::test]
    async fn tables_are_capped() {
        let t = at("2024-01-02T00:00:00Z");
        let rows: Vec<JobRow> = (0..(MAX_TYPE_ROWS + 10))
            .map(|k| {
                let mut r = job(
                    Source::Nosql,
                    &format!("j{k}"),
                    Some(&format!("type-{k:02}")),
                    Status::Failed,
                    Some(t),
                    Some(t + Duration::seconds(k as i64 + 1)),
                );
                r.fail_reason = Some(format!("reason {k}"));
                r
            })
            .collect();
        let html = render_all(rows, &ReportFilter::default(), t).await;
        assert_eq!(html.matches("<tr data-rate=").count(), MAX_TYPE_ROWS);
        assert_eq!(html.matches("<tr data-duration=").count(), MAX_TYPE_ROWS);
        assert!(html.contains(&format!(
            "Showing {MAX_TYPE_ROWS} of {} job types",
            MAX_TYPE_ROWS + 10
        )));
        assert!(html.contains(&format!(
            "Showing {MAX_REASONS} of {} reasons",
            MAX_TYPE_ROWS + 10
        )));
    }

    #[test]
    fn bounds_and_durations_read_well() {
        assert_eq!(
            time_cell("2024-01-31T08:15:59.999Z"),
            "<td class=\"time\" title=\"2024-01-31T08:15:59.999Z\">2024-01-31 08:15</td>"
        );
        assert_eq!(
            time_cell("<b>"),
            "<td class=\"time\" title=\"&lt;b&gt;\">&lt;b&gt;</td>"
        );
        let b = resolve_bounds(&ReportFilter {
            since: Some("2024-01-01".into()),
            until: Some("2024-01-31".into()),
            sources: vec![Source::Dbss],
        })
        .expect("bounds");
        assert_eq!(b.since.as_deref(), Some("2024-01-01T00:00:00.000Z"));
        assert_eq!(b.until.as_deref(), Some("2024-02-01T00:00:00.000Z"));
        assert_eq!(b.sources.as_deref(), Some(",dbss,"));
        let b = resolve_bounds(&ReportFilter {
            until: Some("2024-01-31T12:00:00+08:00".into()),
            ..ReportFilter::default()
        })
        .expect("bounds");
        assert_eq!(b.until.as_deref(), Some("2024-01-31T04:00:00.000Z"));
        assert_eq!(human_duration(850), "850 ms");
        assert_eq!(
            (
                nice_step(8.75),
                nice_step(0.5),
                nice_step(30.0),
                nice_step(1200.0)
            ),
            (10, 1, 50, 2000)
        );
        assert_eq!(human_duration(12_340), "12.3 s");
        assert_eq!(human_duration(245_000), "4m 05s");
        assert_eq!(human_duration(7_380_000), "2h 03m");
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
