//! End-to-end tests of `query`: the built-in queries against a sample history,
//! and every refusal, through [`run`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, Utc};

use super::*;
use crate::model::{JobRow, Source, Status};
use crate::normalize::parse_api_time;
use crate::store::Backend;
use crate::test_support::{TestDb, db_with, job, sample_jobs, seen_at};

fn p(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn text(c: &Cell) -> Option<String> {
    match c {
        Cell::Null => None,
        Cell::Text(t) => Some(t.clone()),
        other => panic!("expected text, got {other:?}"),
    }
}

fn int(c: &Cell) -> i64 {
    match c {
        Cell::Integer(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn real(c: &Cell) -> Option<f64> {
    match c {
        Cell::Null => None,
        Cell::Real(f) => Some(*f),
        other => panic!("expected a real, got {other:?}"),
    }
}

fn col<'a>(rs: &ResultSet, row: &'a [Cell], name: &str) -> &'a Cell {
    &row[rs
        .column(name)
        .unwrap_or_else(|| panic!("no column {name}"))]
}

async fn sample_db() -> (TestDb, Vec<JobRow>) {
    let rows = sample_jobs();
    (db_with(std::slice::from_ref(&rows)).await, rows)
}

async fn read_only(db: &TestDb) -> Store {
    Store::open_read_only(&db.path)
        .await
        .expect("open read-only")
}

async fn run_saved(store: &Store, name: &str, params: &[(String, String)]) -> ResultSet {
    run(store, name, None, None, params)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The instant the tests' queries use for a job: start, else end, else first seen.
fn job_time(r: &JobRow) -> String {
    r.started_at
        .clone()
        .or_else(|| r.ended_at.clone())
        .unwrap_or_else(|| seen_at(0))
}

fn iso_week(t: &str) -> String {
    let t = parse_api_time(t).expect("a stored time parses");
    let w = t.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

fn reason(r: &JobRow) -> String {
    r.fail_reason
        .clone()
        .or_else(|| r.error_code.clone())
        .unwrap_or_else(|| "(no reason given)".to_owned())
}

#[tokio::test]
async fn failures_by_reason_counts_each_week_and_reason() {
    let (db, rows) = sample_db().await;
    let store = read_only(&db).await;
    for since in [None, Some("2024-02-01")] {
        let params: Vec<_> = since.map(|s| p("since", s)).into_iter().collect();
        let rs = run_saved(&store, "failures-by-reason", &params).await;
        let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.status == Status::Failed) {
            if since.is_some_and(|s| job_time(r).as_str() < s) {
                continue;
            }
            *expected
                .entry((iso_week(&job_time(r)), reason(r)))
                .or_default() += 1;
        }
        let got: BTreeMap<(String, String), i64> = rs
            .rows
            .iter()
            .map(|row| {
                (
                    (
                        text(col(&rs, row, "week")).expect("week"),
                        text(col(&rs, row, "reason")).expect("reason"),
                    ),
                    int(col(&rs, row, "failures")),
                )
            })
            .collect();
        assert_eq!(got.len(), rs.rows.len(), "one row per week and reason");
        assert_eq!(got, expected, "since {since:?}");
        assert!(
            expected.len() > 10,
            "the sample covers many weeks and reasons"
        );
    }
}

/// (total, succeeded, failed, unfinished, rate)
type Rates = (i64, i64, i64, i64, Option<f64>);

fn rates<'a>(rows: impl Iterator<Item = &'a JobRow>) -> Rates {
    let mut t = (0, 0, 0, 0, None);
    for r in rows {
        t.0 += 1;
        match r.status {
            Status::Succeeded => t.1 += 1,
            Status::Failed => t.2 += 1,
            _ => t.3 += 1,
        }
    }
    if t.1 + t.2 > 0 {
        t.4 = Some(100.0 * t.2 as f64 / (t.1 + t.2) as f64);
    }
    t
}

fn assert_rate(got: Option<f64>, want: Option<f64>) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!((g - w).abs() <= 0.05 + 1e-9, "rate {g} vs {w}"),
        other => panic!("rates differ: {other:?}"),
    }
}

#[tokio::test]
async fn failure_rate_by_type_matches_the_rows() {
    let (db, rows) = sample_db().await;
    let rs = run_saved(&read_only(&db).await, "failure-rate-by-type", &[]).await;
    let mut groups: BTreeMap<(String, Option<String>), Vec<&JobRow>> = BTreeMap::new();
    for r in &rows {
        groups
            .entry((r.source.to_string(), r.job_type.clone()))
            .or_default()
            .push(r);
    }
    assert_eq!(rs.rows.len(), groups.len());
    for row in &rs.rows {
        let key = (
            text(col(&rs, row, "source")).expect("source"),
            text(col(&rs, row, "job_type")),
        );
        let want = rates(groups[&key].iter().copied());
        assert_eq!(int(col(&rs, row, "total")), want.0, "{key:?}");
        assert_eq!(int(col(&rs, row, "succeeded")), want.1, "{key:?}");
        assert_eq!(int(col(&rs, row, "failed")), want.2, "{key:?}");
        assert_eq!(int(col(&rs, row, "unfinished")), want.3, "{key:?}");
        assert_rate(real(col(&rs, row, "failure_rate_pct")), want.4);
    }
}

#[tokio::test]
async fn failure_rate_by_week_matches_the_rows() {
    let (db, rows) = sample_db().await;
    let rs = run_saved(&read_only(&db).await, "failure-rate-by-week", &[]).await;
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<&JobRow>> = BTreeMap::new();
    for r in &rows {
        groups
            .entry((
                iso_week(&job_time(r)),
                r.source.to_string(),
                r.job_type.clone(),
            ))
            .or_default()
            .push(r);
    }
    assert_eq!(rs.rows.len(), groups.len());
    for row in &rs.rows {
        let key = (
            text(col(&rs, row, "week")).expect("week"),
            text(col(&rs, row, "source")).expect("source"),
            text(col(&rs, row, "job_type")),
        );
        let want = rates(groups[&key].iter().copied());
        assert_eq!(int(col(&rs, row, "total")), want.0, "{key:?}");
        assert_eq!(int(col(&rs, row, "failed")), want.2, "{key:?}");
        assert_rate(real(col(&rs, row, "failure_rate_pct")), want.4);
    }
}

#[tokio::test]
async fn slowest_job_types_reports_nearest_rank_percentiles() {
    let (db, rows) = sample_db().await;
    let rs = run_saved(&read_only(&db).await, "slowest-job-types", &[]).await;
    let mut groups: BTreeMap<(String, Option<String>), Vec<i64>> = BTreeMap::new();
    for r in &rows {
        if let Some(d) = r.duration_ms {
            groups
                .entry((r.source.to_string(), r.job_type.clone()))
                .or_default()
                .push(d);
        }
    }
    assert_eq!(rs.rows.len(), groups.len());
    let rank = |sorted: &[i64], pct: usize| sorted[(sorted.len() * pct).div_ceil(100) - 1];
    let mut last_p95 = i64::MAX;
    for row in &rs.rows {
        let key = (
            text(col(&rs, row, "source")).expect("source"),
            text(col(&rs, row, "job_type")),
        );
        let mut d = groups[&key].clone();
        d.sort_unstable();
        assert_eq!(int(col(&rs, row, "jobs")), d.len() as i64, "{key:?}");
        assert_eq!(int(col(&rs, row, "p50_ms")), rank(&d, 50), "{key:?}");
        assert_eq!(int(col(&rs, row, "p95_ms")), rank(&d, 95), "{key:?}");
        assert_eq!(int(col(&rs, row, "max_ms")), d[d.len() - 1], "{key:?}");
        let p95 = int(col(&rs, row, "p95_ms"));
        assert!(p95 <= last_p95, "slowest first");
        last_p95 = p95;
    }
}

#[tokio::test]
async fn percentiles_on_a_known_small_set() {
    // 20 durations 1..=20 s: p50 is the 10th, p95 the 19th.
    let start = parse_api_time("2024-01-01T00:00:00Z").expect("time");
    let rows: Vec<JobRow> = (1..=20)
        .map(|s| {
            job(
                Source::Nosql,
                &format!("j{s}"),
                Some("Backup"),
                Status::Succeeded,
                Some(start),
                Some(start + Duration::seconds(s)),
            )
        })
        .collect();
    let db = db_with(&[rows]).await;
    let rs = run_saved(&db.store, "slowest-job-types", &[]).await;
    assert_eq!(rs.rows.len(), 1);
    let row = &rs.rows[0];
    assert_eq!(int(col(&rs, row, "p50_ms")), 10_000);
    assert_eq!(int(col(&rs, row, "p95_ms")), 19_000);
    assert_eq!(int(col(&rs, row, "max_ms")), 20_000);
}

#[tokio::test]
async fn recent_failures_lists_the_newest_first_with_reasons() {
    let (db, rows) = sample_db().await;
    let rs = run_saved(&read_only(&db).await, "recent-failures", &[p("limit", "7")]).await;
    let mut failed: Vec<&JobRow> = rows.iter().filter(|r| r.status == Status::Failed).collect();
    let at = |r: &JobRow| {
        r.ended_at
            .clone()
            .or_else(|| r.started_at.clone())
            .unwrap_or_else(|| seen_at(0))
    };
    failed.sort_by(|a, b| {
        at(b)
            .cmp(&at(a))
            .then(a.source.as_str().cmp(b.source.as_str()))
            .then(a.job_id.cmp(&b.job_id))
    });
    let want: Vec<(String, String, Option<String>, Option<String>)> = failed
        .iter()
        .take(7)
        .map(|r| {
            (
                at(r),
                r.job_id.clone(),
                r.fail_reason.clone(),
                r.error_code.clone(),
            )
        })
        .collect();
    let got: Vec<_> = rs
        .rows
        .iter()
        .map(|row| {
            (
                text(col(&rs, row, "failed_at")).expect("failed_at"),
                text(col(&rs, row, "job_id")).expect("job_id"),
                text(col(&rs, row, "fail_reason")),
                text(col(&rs, row, "error_code")),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Default limit is 50, all sources.
    let rs = run_saved(&db.store, "recent-failures", &[]).await;
    assert_eq!(rs.rows.len(), failed.len().min(50));
    let sources: BTreeSet<_> = rs
        .rows
        .iter()
        .map(|r| text(col(&rs, r, "source")))
        .collect();
    assert_eq!(sources.len(), 3);
}

#[tokio::test]
async fn stuck_jobs_are_measured_from_now() {
    let now = Utc::now();
    let mut rows = sample_jobs();
    let fresh = |id: &str, ago: i64, status| {
        job(
            Source::Dbss,
            id,
            Some("START"),
            status,
            Some(now - Duration::hours(ago)),
            None,
        )
    };
    rows.push(fresh("recent-2h", 2, Status::Running));
    rows.push(fresh("old-48h", 48, Status::Running));
    rows.push(fresh("odd-30h", 30, Status::Unknown));
    let db = db_with(std::slice::from_ref(&rows)).await;
    let store = read_only(&db).await;
    for hours in ["24", "1.5", "0"] {
        let limit: f64 = hours.parse().expect("number");
        let rs = run_saved(&store, "stuck-jobs", &[p("hours", hours)]).await;
        let want: BTreeSet<String> = rows
            .iter()
            .filter(|r| matches!(r.status, Status::Running | Status::Unknown))
            .filter(|r| {
                let since = r.started_at.clone().unwrap_or_else(|| seen_at(0));
                let since: DateTime<Utc> = parse_api_time(&since).expect("time");
                (now - since).num_seconds() as f64 / 3600.0 > limit
            })
            .map(|r| r.job_id.clone())
            .collect();
        let got: BTreeSet<String> = rs
            .rows
            .iter()
            .map(|r| text(col(&rs, r, "job_id")).expect("job_id"))
            .collect();
        assert_eq!(got, want, "hours {hours}");
        assert!(got.contains("old-48h"));
        assert_eq!(got.contains("recent-2h"), limit < 2.0);
    }
    // The default is 24 hours.
    let rs = run_saved(&store, "stuck-jobs", &[]).await;
    let ids: BTreeSet<_> = rs
        .rows
        .iter()
        .map(|r| text(col(&rs, r, "job_id")).expect("id"))
        .collect();
    assert!(ids.contains("odd-30h") && !ids.contains("recent-2h"));
}

#[tokio::test]
async fn job_history_follows_one_job_across_syncs() {
    let t = parse_api_time("2024-01-02T03:04:05Z").expect("time");
    let running = job(
        Source::Image,
        "702364883651395584",
        Some("CREATE_IMAGE"),
        Status::Running,
        Some(t),
        None,
    );
    let mut failed = job(
        Source::Image,
        "702364883651395584",
        Some("CREATE_IMAGE"),
        Status::Failed,
        Some(t),
        Some(t + Duration::minutes(5)),
    );
    failed.fail_reason = Some("image build failed".into());
    let mut same_id_elsewhere = running.clone();
    same_id_elsewhere.source = Source::Nosql;
    let other = job(
        Source::Image,
        "0702364883651395584",
        None,
        Status::Succeeded,
        Some(t),
        Some(t),
    );
    let db = db_with(&[
        vec![running.clone(), same_id_elsewhere, other],
        vec![running.clone()],
        vec![failed],
    ])
    .await;
    let store = read_only(&db).await;
    // A numeric-looking ID binds as an integer yet still matches the text column.
    let rs = run_saved(
        &store,
        "job-history",
        &[p("job_id", "702364883651395584"), p("source", "image")],
    )
    .await;
    let got: Vec<_> = rs
        .rows
        .iter()
        .map(|r| {
            (
                text(col(&rs, r, "old_status")),
                text(col(&rs, r, "new_status")).expect("new"),
                text(col(&rs, r, "fail_reason")),
                text(col(&rs, r, "observed_at")).expect("observed"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (None, "running".into(), None, seen_at(0)),
            (
                Some("running".into()),
                "failed".into(),
                Some("image build failed".into()),
                seen_at(2)
            ),
        ]
    );
    // Without :source, the same ID in another source shows too; a leading zero is another job.
    let rs = run_saved(&store, "job-history", &[p("job_id", "702364883651395584")]).await;
    assert_eq!(rs.rows.len(), 3);
    let rs = run_saved(&store, "job-history", &[p("job_id", "0702364883651395584")]).await;
    assert_eq!(rs.rows.len(), 1);
    // :job_id is required.
    let err = run(&store, "job-history", None, None, &[])
        .await
        .expect_err("missing");
    assert!(
        matches!(&err, QueryError::MissingParam { name, .. } if name == "job_id"),
        "{err}"
    );
    assert!(err.to_string().contains(":job_id"), "{err}");
}

async fn job_count(db: &TestDb) -> i64 {
    let rs = run(&db.store, "SELECT COUNT(*) FROM jobs", None, None, &[])
        .await
        .expect("count");
    int(&rs.rows[0][0])
}

const WRITES: [&str; 7] = [
    "DELETE FROM jobs",
    "DROP TABLE jobs",
    "INSERT INTO sync_runs (started_at, status, sources) VALUES ('x', 'running', 'nosql')",
    "UPDATE jobs SET status = 'failed'",
    "CREATE TABLE evil (x)",
    "WITH doomed AS (SELECT job_id FROM jobs) DELETE FROM jobs WHERE job_id IN (SELECT job_id FROM doomed)",
    "VACUUM",
];

#[tokio::test]
async fn writes_are_refused_on_a_read_only_store() {
    let (db, rows) = sample_db().await;
    let store = read_only(&db).await;
    for sql in WRITES {
        let err = run(&store, sql, None, None, &[]).await.expect_err(sql);
        assert!(matches!(err, QueryError::ReadOnly { .. }), "{sql}: {err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("query opens the database read-only;"),
            "{msg}"
        );
        assert!(msg.contains("changes nothing"), "{msg}");
        assert_eq!(job_count(&db).await, rows.len() as i64, "{sql}");
    }
}

#[tokio::test]
async fn writes_are_refused_even_through_a_writable_store() {
    let (db, rows) = sample_db().await;
    for sql in WRITES {
        let err = run(&db.store, sql, None, None, &[]).await.expect_err(sql);
        assert!(matches!(err, QueryError::ReadOnly { .. }), "{sql}: {err}");
    }
    // A statement that tries to lift the guard only affects its own connection.
    run(&db.store, "PRAGMA query_only = OFF", None, None, &[])
        .await
        .expect("pragma");
    assert_eq!(job_count(&db).await, rows.len() as i64);
    // The guard does not leak into the store: it can still write.
    db.store
        .begin_run(
            &[Source::Nosql],
            parse_api_time(&seen_at(9)).expect("a time"),
        )
        .await
        .expect("store still writable");
}

#[tokio::test]
async fn a_second_statement_is_refused() {
    let (db, rows) = sample_db().await;
    for sql in [
        "SELECT 1; DELETE FROM jobs",
        "SELECT 1;\n-- done\nDROP TABLE jobs;",
    ] {
        let err = run(&db.store, sql, None, None, &[]).await.expect_err(sql);
        assert!(
            matches!(err, QueryError::MultipleStatements { .. }),
            "{err}"
        );
    }
    assert_eq!(job_count(&db).await, rows.len() as i64);
    // A trailing semicolon and comment are fine.
    let rs = run(&db.store, "SELECT 1 AS one; -- bye\n", None, None, &[])
        .await
        .expect("ok");
    assert_eq!(rs.rows, vec![vec![Cell::Integer(1)]]);
}

#[tokio::test]
async fn named_params_skip_literals_identifiers_and_comments() {
    let db = db_with(&[]).await;
    let sql = "SELECT ':not_a_param' AS \"a:b\", -- :in_a_comment\n\
               /* :also_not */ :x AS [c:d], 'it''s :quoted' AS e, :x + 1 AS f";
    let rs = run(&db.store, sql, None, None, &[p("x", "5")])
        .await
        .expect("runs");
    assert_eq!(rs.columns, vec!["a:b", "c:d", "e", "f"]);
    assert_eq!(
        rs.rows,
        vec![vec![
            Cell::Text(":not_a_param".into()),
            Cell::Integer(5),
            Cell::Text("it's :quoted".into()),
            Cell::Integer(6),
        ]]
    );
}

#[tokio::test]
async fn params_are_typed_from_their_text() {
    let db = db_with(&[]).await;
    let sql = "SELECT typeof(:i), typeof(:r), typeof(:t), typeof(:z), typeof(:e), :i + 0";
    let params = [
        p("i", "-42"),
        p("r", "1.5"),
        p("t", "2024-01-01"),
        p("z", "0123"),
        p(":e", ""),
    ];
    let rs = run(&db.store, sql, None, None, &params)
        .await
        .expect("runs");
    assert_eq!(
        rs.rows[0],
        vec![
            Cell::from("integer"),
            Cell::from("real"),
            Cell::from("text"),
            Cell::from("text"),
            Cell::from("text"),
            Cell::Integer(-42),
        ]
    );
}

#[tokio::test]
async fn missing_and_unknown_params_are_named() {
    let db = db_with(&[]).await;
    let err = run(&db.store, "SELECT :a, :b", None, None, &[p("a", "1")])
        .await
        .expect_err("missing b");
    assert!(matches!(&err, QueryError::MissingParam { name, .. } if name == "b"));
    assert!(
        err.to_string().contains(":b") && err.to_string().contains("--param b="),
        "{err}"
    );

    let err = run(
        &db.store,
        "SELECT :a",
        None,
        None,
        &[p("a", "1"), p("c", "2")],
    )
    .await
    .expect_err("unknown c");
    assert!(matches!(&err, QueryError::UnknownParam { name, .. } if name == "c"));
    assert!(
        err.to_string().contains(":c") && err.to_string().contains(":a"),
        "{err}"
    );

    let err = run(&db.store, "recent-failures", None, None, &[p("hours", "3")])
        .await
        .expect_err("unknown hours");
    assert!(
        err.to_string()
            .contains("saved query `recent-failures` has no parameter :hours"),
        "{err}"
    );

    let err = run(
        &db.store,
        "SELECT :a",
        None,
        None,
        &[p("a", "1"), p("a", "2")],
    )
    .await
    .expect_err("twice");
    assert!(matches!(err, QueryError::DuplicateParam { .. }));
}

#[tokio::test]
async fn other_placeholder_forms_are_refused_not_bound_to_null() {
    let db = db_with(&[]).await;
    for (sql, token) in [
        ("SELECT ?", "?"),
        ("SELECT ?1", "?1"),
        ("SELECT @name", "@name"),
        ("SELECT $name", "$name"),
        ("SELECT :1", ":1"),
    ] {
        let err = run(&db.store, sql, None, None, &[]).await.expect_err(sql);
        assert!(
            matches!(&err, QueryError::Placeholder { token: t, .. } if t == token),
            "{sql}: {err}"
        );
    }
    // `$` inside an identifier is part of the name, not a placeholder.
    let scanned = params::scan("SELECT 1 AS a$b", "t").expect("scans");
    assert!(scanned.names.is_empty());
}

#[tokio::test]
async fn unknown_names_and_bad_sql_are_clear() {
    let db = db_with(&[]).await;
    let err = run(&db.store, "no-such-query", None, None, &[])
        .await
        .expect_err("unknown");
    let msg = err.to_string();
    assert!(
        msg.contains("no saved query named `no-such-query`") && msg.contains("stuck-jobs"),
        "{msg}"
    );
    let err = run(&db.store, "SELECT * FROM nowhere", None, None, &[])
        .await
        .expect_err("bad");
    assert!(err.to_string().contains("no such table: nowhere"), "{err}");
    // A saved name may be given with its file extension.
    run(&db.store, "failure-rate-by-type.sql", None, None, &[])
        .await
        .expect("by file name");
}

#[test]
fn the_query_list_shows_names_descriptions_and_params() {
    let queries = saved_queries(Backend::Sqlite, None).expect("built-ins");
    let mut out = Vec::new();
    write_query_list(&mut out, &queries).expect("write");
    let text = String::from_utf8(out).expect("utf-8");
    for q in &queries {
        assert!(text.contains(&q.name));
        assert!(text.contains(&q.description), "{}", q.description);
    }
    assert!(text.contains(":hours (default 24)"));
    assert!(text.contains(":job_id, :source (optional)"));
}

#[tokio::test]
async fn values_keep_their_storage_types() {
    let db = db_with(&[]).await;
    let rs = run(
        &db.store,
        "SELECT 1, 2.5, 'x', NULL, x'00ff', 1e999",
        None,
        None,
        &[],
    )
    .await
    .expect("runs");
    assert_eq!(
        rs.rows[0],
        vec![
            Cell::Integer(1),
            Cell::Real(2.5),
            Cell::from("x"),
            Cell::Null,
            Cell::Blob(vec![0, 255]),
            Cell::Real(f64::INFINITY),
        ]
    );
    // Columns are known even when there are no rows.
    let rs = run(
        &db.store,
        "SELECT job_id, status FROM jobs",
        None,
        None,
        &[],
    )
    .await
    .expect("runs");
    assert_eq!(rs.columns, vec!["job_id", "status"]);
    assert!(rs.rows.is_empty());
}
