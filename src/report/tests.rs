//! The report's tests: numbers that match the rows, escaping, filters, caps.

use std::collections::BTreeSet;

use chrono::Datelike;

use super::html::time_cell;
use super::svg::{iso_label, nice_step};
use super::*;
use crate::model::JobRow;
use crate::normalize::{format_utc, parse_api_time};
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
    // Five reasons: the grid has them all.
    assert!(html.contains("Every reason above, one row each"));
    assert_eq!(grid_rows(&html).len(), reasons.len());
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

/// Rows stored before the storage caps (or by a hostile cloud through another
/// tool): every cell is cut, so megabytes of one value cannot swell the page.
#[tokio::test]
async fn megabyte_values_are_cut_in_every_cell() {
    let t = at("2024-01-02T00:00:00Z");
    let huge = |c: &str| c.repeat(2 * 1024 * 1024);
    let mut rows = Vec::new();
    for (n, status) in [Status::Failed, Status::Running].into_iter().enumerate() {
        let mut row = job(
            Source::Nosql,
            &format!("{n}{}", huge("i")),
            Some(&huge("T")),
            status,
            Some(t),
            (status == Status::Failed).then(|| t + Duration::seconds(5)),
        );
        row.fail_reason = Some(huge("R"));
        row.error_code = Some(huge("E"));
        row.resource_name = Some(huge("N"));
        row.raw_status = Some(huge("S"));
        rows.push(row);
    }
    let html = render_all(rows, &ReportFilter::default(), at("2024-01-05T00:00:00Z")).await;
    assert!(html.len() < 100 * 1024, "a page of {} bytes", html.len());
    assert!(html.contains("TTTT…"), "a cut cell ends with an ellipsis");
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
        .filter(|r| matches!(r.source, Source::Nosql | Source::Image) && !r.status.is_terminal())
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

/// Issue 18 item 11: `--until 9999-12-31` meant "before +10000-01-01", which
/// sorts before every stored time, so the page silently showed no jobs.
#[tokio::test]
async fn the_last_accepted_day_keeps_every_job_and_dates_outside_are_refused() {
    let rows = sample_jobs();
    let now = at("2024-03-25T00:00:00Z");
    let all = render_all(rows.clone(), &ReportFilter::default(), now).await;
    let last_day = ReportFilter {
        since: Some("1970-01-01".into()),
        until: Some("9999-12-31".into()),
        ..ReportFilter::default()
    };
    let html = render_all(rows.clone(), &last_day, now).await;
    assert_eq!(tile(&html, "jobs"), rows.len().to_string());
    assert_eq!(tile(&html, "jobs"), tile(&all, "jobs"));
    assert!(!html.contains("+10000"), "no five-digit year");

    let db = db_with(&[]).await;
    for (since, until, flag) in [
        (Some("0001-01-01"), None, "--since \"0001-01-01\""),
        (None, Some("1969-12-31"), "--until \"1969-12-31\""),
        (Some("10000-01-01"), None, "--since \"10000-01-01\""),
        (None, Some("9999-12-31T23:00:00-05:00"), "--until"),
    ] {
        let filter = ReportFilter {
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            ..ReportFilter::default()
        };
        let err = render(&db.store, &filter, now).await.expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains(flag) && text.contains("1970-01-01 to 9999-12-31"),
            "{text}"
        );
    }
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
    let filter = ReportFilter {
        since: Some("2024-01-01".into()),
        until: Some("2024-01-31".into()),
        sources: vec![Source::Dbss],
    };
    let b = resolve_window(&filter).expect("bounds");
    assert_eq!(
        b.since.map(format_utc).as_deref(),
        Some("2024-01-01T00:00:00.000Z")
    );
    assert_eq!(
        b.until.map(format_utc).as_deref(),
        Some("2024-02-01T00:00:00.000Z")
    );
    assert_eq!(b.sources, [Source::Dbss]);
    let filter = ReportFilter {
        until: Some("2024-01-31T12:00:00+08:00".into()),
        ..ReportFilter::default()
    };
    let b = resolve_window(&filter).expect("bounds");
    assert_eq!(
        b.until.map(format_utc).as_deref(),
        Some("2024-01-31T04:00:00.000Z")
    );
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

/// One week's cell of the reason grid: `Some((ISO week, failures))`, or `None`
/// when empty.
type GridCell = Option<(String, i64)>;

/// The reasons-by-week grid read back from the page: each row's label and cells.
fn grid_rows(html: &str) -> Vec<(String, Vec<GridCell>)> {
    let start = html.find("<table class=\"heat\">").expect("a grid");
    let table = &html[start..start + html[start..].find("</table>").expect("grid end")];
    let body = &table[table.find("<tbody>").expect("grid body")..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let label = &row[row.find('>').expect("th open") + 1..row.find("</th>").expect("th")];
            let mut cells = Vec::new();
            for cell in row.split("<td").skip(1) {
                let attrs = &cell[..cell.find('>').expect("td open")];
                let attr = |name: &str| {
                    let from = attrs.find(&format!("{name}=\""))? + name.len() + 2;
                    Some(&attrs[from..from + attrs[from..].find('"')?])
                };
                match attr("title") {
                    Some(title) => {
                        let (week, n) = title.split_once(": ").expect("week: count");
                        cells.push(Some((week.to_owned(), n.parse().expect("a count"))));
                    }
                    None => {
                        let span = attr("colspan").map_or(1, |n| n.parse().expect("a span"));
                        cells.extend(std::iter::repeat_n(None, span));
                    }
                }
            }
            (unescape(label), cells)
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The label the report gives a failure's reason.
fn reason_label(r: &JobRow) -> String {
    r.fail_reason
        .clone()
        .or_else(|| r.error_code.clone())
        .unwrap_or_else(|| "(no reason given)".into())
}

/// `n` failures of reason `k` in each `(week, n)`, weeks counted from `first`.
fn failures(k: usize, first: DateTime<Utc>, weeks: &[(i64, usize)]) -> Vec<JobRow> {
    let mut rows = Vec::new();
    for &(week, n) in weeks {
        for i in 0..n {
            let t = first + Duration::weeks(week) + Duration::hours(5 * i as i64 + k as i64);
            let mut r = job(
                Source::Nosql,
                &format!("r{k}-w{week}-{i}"),
                Some("Backup"),
                Status::Failed,
                Some(t),
                Some(t + Duration::minutes(3)),
            );
            r.fail_reason = Some(format!("reason {k:02} <b>"));
            rows.push(r);
        }
    }
    rows
}

#[tokio::test]
async fn the_reason_grid_matches_the_failures_by_week() {
    // The sample's five reasons over ten weeks, plus nine more with gaps, so
    // that more reasons fail than the grid shows.
    let mut rows = sample_jobs();
    let first = at("2024-01-01T00:00:00Z");
    for k in 0..9 {
        let weeks = [(k as i64, k + 1), (k as i64 + 2, 1), (12, k % 3)];
        rows.extend(failures(k, first, &weeks));
    }
    let html = render_all(
        rows.clone(),
        &ReportFilter::default(),
        at("2024-04-01T00:00:00Z"),
    )
    .await;

    // What the rows say: failures by reason and week.
    let mut want: BTreeMap<String, BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == Status::Failed) {
        *want
            .entry(reason_label(r))
            .or_default()
            .entry(monday(&job_time(r)))
            .or_default() += 1;
    }
    let mut ranked: Vec<(&String, i64)> = want.iter().map(|(k, v)| (k, v.values().sum())).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    assert!(ranked.len() > MAX_GRID_REASONS);
    let all_weeks: BTreeSet<NaiveDate> = rows.iter().map(|r| monday(&job_time(r))).collect();
    let (first_week, last_week) = (
        all_weeks.first().expect("weeks"),
        all_weeks.last().expect("weeks"),
    );
    let columns = ((*last_week - *first_week).num_days() / 7 + 1) as usize;

    let grid = grid_rows(&html);
    let labels: Vec<&str> = grid.iter().map(|(label, _)| label.as_str()).collect();
    let top: Vec<&str> = ranked[..MAX_GRID_REASONS]
        .iter()
        .map(|(r, _)| r.as_str())
        .collect();
    assert_eq!(labels, top, "the top reasons, most failures first");
    for (label, cells) in &grid {
        assert_eq!(cells.len(), columns, "{label}: one cell per week");
        let mut shown = BTreeMap::new();
        for (i, cell) in cells.iter().enumerate() {
            if let Some((week, n)) = cell {
                let column = *first_week + Duration::weeks(i as i64);
                assert_eq!(week, &iso_label(column), "{label}: column {i}");
                shown.insert(column, *n);
            }
        }
        assert_eq!(&shown, &want[label], "{label}");
    }
    assert!(html.contains("<th scope=\"row\">(no reason given)</th>"));
    assert!(html.contains("The 10 most common reasons above, one row each"));
    assert!(html.contains("reason 00 &lt;b&gt;"), "labels are escaped");

    // In words: the top reason's first, peak and last week.
    let (top_reason, weeks) = (ranked[0].0, &want[ranked[0].0]);
    let peak = weeks
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .expect("a peak");
    let words = format!(
        "<tr><td class=\"reason\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
        escape(top_reason),
        iso_label(*weeks.keys().next().expect("first")),
        iso_label(*peak.0),
        peak.1,
        iso_label(*weeks.keys().next_back().expect("last")),
        weeks.len()
    );
    assert!(html.contains(&words), "missing {words}");
}

/// The page's size when every table and chart is full (see README).
const PAGE_BUDGET: usize = 200_000;

#[tokio::test]
async fn at_every_cap_the_grid_is_capped_and_the_page_stays_in_budget() {
    // 120 weeks of every status over 40 job types, and twelve long reasons
    // failing every week: the fullest grid, and every table at its cap.
    let first = at("2022-01-03T00:00:00Z");
    let mut rows = Vec::new();
    for k in 0..12 {
        let weeks: Vec<(i64, usize)> = (0..120).map(|w| (w, 1 + (w as usize * k) % 13)).collect();
        let mut failed = failures(k, first, &weeks);
        for r in &mut failed {
            let long = format!(
                "{} {}",
                r.fail_reason.take().unwrap_or_default(),
                "x".repeat(400)
            );
            r.fail_reason = Some(long);
        }
        rows.extend(failed);
    }
    let statuses = [Status::Succeeded, Status::Running, Status::Unknown];
    for w in 0..120 {
        for (k, status) in statuses.into_iter().enumerate() {
            let t = first + Duration::weeks(w) + Duration::hours(k as i64);
            let job_type = format!("a-long-job-type-name-{:02}", (w as usize + k) % 40);
            let end = status.is_terminal().then(|| t + Duration::minutes(w));
            let id = format!("{w}-{k}-0123456789abcdef0123456789abcdef");
            rows.push(job(
                Source::Dbss,
                &id,
                Some(&job_type),
                status,
                Some(t),
                end,
            ));
        }
    }
    let now = first + Duration::weeks(121);
    let html = render_all(rows, &ReportFilter::default(), now).await;
    let grid = grid_rows(&html);
    assert_eq!(grid.len(), MAX_GRID_REASONS);
    for (label, cells) in &grid {
        assert_eq!(cells.len(), MAX_WEEKS, "{label}");
        assert!(
            cells.iter().all(Option::is_some),
            "{label}: every week has failures"
        );
    }
    assert!(html.contains("16 earlier weeks are not shown"));
    let start = html
        .find("<h2>Failure reasons by week</h2>")
        .expect("grid section");
    let section = &html[start..start + html[start..].find("<h2>Duration").expect("next section")];
    eprintln!("grid: {} bytes, page: {} bytes", section.len(), html.len());
    assert!(section.len() < 50_000, "grid: {} bytes", section.len());
    assert!(html.len() < PAGE_BUDGET, "page: {} bytes", html.len());
}
