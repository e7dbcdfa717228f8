//! The report's tests: numbers that match the rows, escaping, filters, caps.

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
