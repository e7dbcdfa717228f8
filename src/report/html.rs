//! The report page: its CSS, layout, sections and tables, and the escaping
//! every value from the database goes through.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::heat;
use super::svg::{self, Bar};
use super::{MAX_TYPE_ROWS, MAX_WEEKS, STUCK_AFTER_HOURS};
use super::{ReportData, failure_rate, week_grid};
use crate::model::Source;
use crate::normalize::{format_utc, parse_api_time};
use crate::store::JobWindow;
use crate::text::truncate_chars;

/// Bars in the failure-rate and duration charts.
const MAX_CHART_BARS: usize = 15;
/// Job types with fewer finished jobs get no bar in the failure-rate chart (one
/// failure out of one would top it); the table still lists them.
const MIN_FINISHED_FOR_BAR: i64 = 5;
/// Longest reason text shown in a table cell (the rest is in the database).
const MAX_REASON_CHARS: usize = 300;
/// Longest other text from the database shown in a cell or attribute (job
/// types, IDs, names, codes), so a hostile value cannot swell the page; a cut
/// one ends with "…".
const MAX_CELL_CHARS: usize = 200;

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

/// Escaped and cut to [`MAX_CELL_CHARS`].
fn cell(s: &str) -> String {
    escape(&truncate_chars(s, MAX_CELL_CHARS))
}

/// Escaped and cut to [`MAX_CELL_CHARS`], or a dimmed dash for NULL.
fn opt(s: &Option<String>) -> String {
    match s {
        Some(v) => cell(v),
        None => "<span class=\"none\">—</span>".to_owned(),
    }
}

/// A table cell for a stored time: `2024-01-31 08:15` (UTC, to the minute), the
/// exact stored value on hover.
pub(super) fn time_cell(t: &str) -> String {
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
fn type_label(source: Source, job_type: &Option<String>) -> String {
    format!(
        "{} · {}",
        escape(source.as_str()),
        escape(&truncate_chars(
            job_type.as_deref().unwrap_or("(no type)"),
            40
        ))
    )
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

/// The whole page.
pub(super) fn page(d: &ReportData, window: &JobWindow<'_>, now: DateTime<Utc>) -> String {
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
    h.push_str(&heat::css());
    h.push_str("</style>\n</head>\n<body>\n<h1>jobtrail report</h1>\n");
    w!(
        h,
        "<p class=\"meta\">Generated {} UTC · {} · All times are UTC.</p>\n",
        escape(&format_utc(now)),
        describe_window(window)
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
        heat::section(&mut h, d);
        durations_section(&mut h, d);
        running_section(&mut h, d, now);
        failures_section(&mut h, d);
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn describe_window(w: &JobWindow<'_>) -> String {
    let window = match (w.since.map(format_utc), w.until.map(format_utc)) {
        (None, None) => "all history".to_owned(),
        (Some(s), None) => format!("jobs from {}", escape(&s)),
        (None, Some(u)) => format!("jobs before {}", escape(&u)),
        (Some(s), Some(u)) => format!("jobs from {} to before {}", escape(&s), escape(&u)),
    };
    let sources = if w.sources.is_empty() {
        "all sources".to_owned()
    } else {
        let names: Vec<&str> = w.sources.iter().map(|s| s.as_str()).collect();
        format!("sources: {}", escape(&names.join(", ")))
    };
    format!("{window} · {sources}")
}

fn summary_section(h: &mut String, d: &ReportData) {
    let t = &d.totals;
    let rate = failure_rate(t.failed, t.succeeded + t.failed);
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
        let rate = failure_rate(s.failed, s.succeeded + s.failed);
        w!(
            h,
            "<tr data-source=\"{source}\"><td>{source}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            s.jobs,
            s.succeeded,
            s.failed,
            s.unfinished,
            pct(rate),
            source = escape(s.source.as_str()),
        );
    }
    h.push_str("</tbody></table>\n");
}

fn weeks_section(h: &mut String, d: &ReportData) {
    h.push_str("<h2>Jobs per week by status</h2>\n");
    let Some((weeks, hidden)) = week_grid(&d.weeks) else {
        h.push_str("<p class=\"note\">No job has a time yet.</p>\n");
        return;
    };
    w!(
        h,
        "<p class=\"note\">Weeks run Monday to Sunday (ISO weeks, UTC); each bar stacks the jobs that started that week by their status now.{}</p>\n",
        if hidden > 0 {
            format!(" Showing the last {MAX_WEEKS} weeks; {hidden} earlier weeks are not shown.")
        } else {
            String::new()
        }
    );
    svg::legend(h);
    svg::week_chart(h, &weeks);
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
                label: type_label(t.source, &t.job_type),
                value: r,
                inner: None,
                text: format!("{} ({} of {})", pct(Some(r)), t.failed, t.finished()),
            })
        })
        .take(MAX_CHART_BARS)
        .collect();
    svg::hbars(
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
            escape(t.source.as_str()),
            cell(t.job_type.as_deref().unwrap_or("")),
            escape(t.source.as_str()),
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
            escape(&truncate_chars(&r.reason, MAX_REASON_CHARS)),
            r.failures,
            r.job_types,
            time_cell(&r.first_seen),
            time_cell(&r.last_seen)
        );
    }
    h.push_str("</tbody></table>\n");
    more_note(h, d.reason_count, d.reasons.len(), "reasons");
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
            label: type_label(t.source, &t.job_type),
            value: t.p95 as f64,
            inner: Some(t.p50 as f64),
            text: format!(
                "p50 {} · p95 {}",
                human_duration(t.p50),
                human_duration(t.p95)
            ),
        })
        .collect();
    svg::hbars(
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
            escape(t.source.as_str()),
            cell(t.job_type.as_deref().unwrap_or("")),
            escape(t.source.as_str()),
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
    more_note(h, d.duration_type_count, d.durations.len(), "job types");
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
            Some(raw) if !raw.eq_ignore_ascii_case(j.status.as_str()) => {
                format!("{} ({})", escape(j.status.as_str()), cell(raw))
            }
            _ => escape(j.status.as_str()),
        };
        let progress = j.progress.map_or_else(String::new, |p| format!(" · {p}%"));
        w!(
            h,
            "<tr{}>{}<td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"id\" title=\"project {}\">{}</td><td>{status}{progress}</td><td>{}</td></tr>\n",
            if stuck { " class=\"stuck\"" } else { "" },
            time_cell(&j.since),
            age.map_or_else(|| "—".to_owned(), human_duration),
            escape(j.source.as_str()),
            opt(&j.job_type),
            cell(&j.project_id),
            cell(&j.job_id),
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
            escape(f.source.as_str()),
            opt(&f.job_type),
            cell(&f.job_id),
            opt(&f.resource_name),
            opt(&f.error_code),
            opt(&f
                .fail_reason
                .as_deref()
                .map(|r| truncate_chars(r, MAX_REASON_CHARS)))
        );
    }
    h.push_str("</tbody></table></div>\n");
    more_note(h, d.totals.failed as usize, d.failures.len(), "failures");
}
