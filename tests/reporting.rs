//! Reporting through the real CLI: every saved query checked against the
//! simulator's ground truth (computed here, independently of the crate),
//! read-only enforcement and parameter errors, the output formats, `status`,
//! and the HTML report, also rendered by a real headless browser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use jobtrail::sim::{SimConfig, World};
use serde_json::Value;

use crate::util::{Backend, Env, Run, expected_status, non_empty, utc_ms};

on_both_backends!(
    failure_queries_match_the_simulators_truth,
    duration_and_stuck_job_queries_match_the_simulators_truth,
    job_history_shows_a_job_flipped_between_two_syncs,
    queries_cannot_change_the_database_and_bad_parameters_are_usage_errors,
    every_output_format_parses_back_to_the_same_rows,
    status_counts_match_the_database_and_name_the_last_run,
    the_report_shows_the_simulators_numbers,
    a_database_without_jobs_gets_the_friendly_empty_page,
);

type Row = serde_json::Map<String, Value>;
/// (source, job type)
type TypeKey = (String, Option<String>);
/// (jobs, p50, p95, max) in milliseconds
type Percentiles = (i64, i64, i64, i64);
/// (failures, first, last)
type ReasonSpan = (i64, DateTime<Utc>, DateTime<Utc>);
/// (failed_at, source, job_id, fail_reason, error_code)
type FailureLine = (String, String, String, Option<String>, Option<String>);

/// One job as the database should hold it, from the simulator's truth.
#[derive(Clone, Debug)]
struct Truth {
    source: &'static str,
    id: String,
    job_type: Option<String>,
    status: &'static str,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    fail_reason: Option<String>,
    error_code: Option<String>,
}

impl Truth {
    /// When the job counts: its start, else its end, else when it was first
    /// seen (`seen`, the time of the sync that stored it).
    fn at(&self, seen: DateTime<Utc>) -> DateTime<Utc> {
        self.start.or(self.end).unwrap_or(seen)
    }

    fn duration_ms(&self) -> Option<i64> {
        match (self.start, self.end) {
            (Some(s), Some(e)) if e >= s => Some((e - s).num_milliseconds()),
            _ => None,
        }
    }

    fn reason(&self) -> String {
        self.fail_reason
            .clone()
            .or_else(|| self.error_code.clone())
            .unwrap_or_else(|| "(no reason given)".to_owned())
    }

    fn unfinished(&self) -> bool {
        matches!(self.status, "running" | "unknown")
    }
}

/// Every job a full sync with discovery stores: all NoSQL jobs, the jobs of the
/// listed DBSS instances, the listed image jobs and their sub-jobs.
fn truth(world: &World) -> Vec<Truth> {
    let mut jobs = Vec::new();
    for data in world.projects.values() {
        for j in &data.nosql {
            jobs.push(Truth {
                source: "nosql",
                id: j.id.clone(),
                job_type: non_empty(&j.name),
                status: expected_status("nosql", &j.status, false),
                start: Some(j.start),
                end: j.end,
                fail_reason: non_empty(&j.fail_reason),
                error_code: None,
            });
        }
        let ms = |v: Option<i64>| {
            v.filter(|m| *m > 0)
                .and_then(DateTime::<Utc>::from_timestamp_millis)
        };
        for instance in data.audit_instances.iter().filter(|i| i.listed) {
            for j in &instance.jobs {
                jobs.push(Truth {
                    source: "dbss",
                    id: j.job_id.clone(),
                    job_type: j.job_type.as_deref().and_then(non_empty),
                    status: expected_status("dbss", &j.status, false),
                    start: ms(j.begin_time),
                    end: ms(j.end_time),
                    fail_reason: j.fail_reason.as_deref().and_then(non_empty),
                    error_code: j.error_code.as_deref().and_then(non_empty),
                });
            }
        }
        for j in data.image_jobs.iter().filter(|j| j.listed) {
            jobs.push(Truth {
                source: "image",
                id: j.id.clone(),
                job_type: non_empty(&j.job_type),
                status: expected_status("image", &j.status, false),
                start: Some(j.begin_time),
                end: j.end_time,
                fail_reason: None,
                error_code: None,
            });
            for s in &j.sub_jobs {
                jobs.push(Truth {
                    source: "image",
                    id: s.id.clone(),
                    job_type: non_empty(&s.job_type),
                    status: expected_status("image", &s.status, true),
                    start: Some(s.begin_time),
                    end: s.end_time,
                    fail_reason: s.error_message.as_deref().and_then(non_empty),
                    error_code: s.error_code.as_deref().and_then(non_empty),
                });
            }
        }
    }
    jobs
}

fn iso_week(t: DateTime<Utc>) -> String {
    let w = t.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// The value at rank ceil(p% × n) of `sorted` (nearest rank).
fn nearest_rank(sorted: &[i64], p: usize) -> i64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn small_world(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 400,
        dbss_resources: 4,
        dbss_jobs_per_resource: 3,
        image_jobs: 14,
        ..SimConfig::new(seed)
    }
}

/// A simulator world synced in full into `backend`; returns the env, the
/// truth and the time of the sync (`None`: no PostgreSQL to test against).
async fn synced_on(seed: u64, backend: Backend) -> Option<(Env, Vec<Truth>, DateTime<Utc>)> {
    let env = Env::start_on(small_world(seed), backend).await?;
    let seen = Utc::now();
    env.jobtrail(&["sync"]).await.assert_code(0);
    let jobs = truth(&env.world());
    Some((env, jobs, seen))
}

/// [`synced_on`] SQLite.
async fn synced(seed: u64) -> (Env, Vec<Truth>, DateTime<Utc>) {
    synced_on(seed, Backend::Sqlite).await.expect("SQLite")
}

async fn scalar(env: &Env, sql: &str) -> i64 {
    env.scalar(sql).await
}

/// SQL for the ISO week (`2024-W09`) of a time column, in the backend's dialect.
fn iso_week_sql(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => format!("strftime('%G-W%V', {column})"),
        Backend::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'IYYY-\"W\"IW')"),
    }
}

/// `jobtrail query ARGS --format json`, parsed.
async fn query_json(env: &Env, args: &[&str]) -> Vec<Row> {
    let mut full = vec!["query"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--format", "json"]);
    let run = env.jobtrail(&full).await;
    run.assert_code(0);
    parse_rows(&run.stdout)
}

fn parse_rows(text: &str) -> Vec<Row> {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    value
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|v| v.as_object().expect("an object per row").clone())
        .collect()
}

fn text(row: &Row, key: &str) -> Option<String> {
    match row.get(key).unwrap_or_else(|| panic!("no column {key}")) {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("{key} is not text: {other}"),
    }
}

fn int(row: &Row, key: &str) -> i64 {
    row.get(key)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{key} is not an integer in {row:?}"))
}

fn real(row: &Row, key: &str) -> Option<f64> {
    match row.get(key).unwrap_or_else(|| panic!("no column {key}")) {
        Value::Null => None,
        v => Some(
            v.as_f64()
                .unwrap_or_else(|| panic!("{key} is not a number")),
        ),
    }
}

/// A rate the query rounded to one decimal, against the exact one.
fn assert_rate(got: Option<f64>, failed: i64, finished: i64, what: &str) {
    match got {
        None => assert_eq!(finished, 0, "{what}: NULL rate with finished jobs"),
        Some(r) => {
            assert!(finished > 0, "{what}: a rate without finished jobs");
            let exact = 100.0 * failed as f64 / finished as f64;
            assert!((r - exact).abs() <= 0.0501, "{what}: {r} vs {exact}");
        }
    }
}

#[derive(Debug, Default, PartialEq)]
struct Tally {
    total: i64,
    succeeded: i64,
    failed: i64,
    unfinished: i64,
}

impl Tally {
    fn add(&mut self, j: &Truth) {
        self.total += 1;
        match j.status {
            "succeeded" => self.succeeded += 1,
            "failed" => self.failed += 1,
            _ => self.unfinished += 1,
        }
    }
}

async fn failure_queries_match_the_simulators_truth(backend: Backend) {
    let Some((env, jobs, seen)) = synced_on(61, backend).await else {
        return;
    };
    let failed: Vec<&Truth> = jobs.iter().filter(|j| j.status == "failed").collect();
    assert!(failed.len() > 20, "enough failures to be telling");
    for source in ["nosql", "dbss", "image"] {
        assert!(
            failed.iter().any(|j| j.source == source),
            "a {source} failure"
        );
    }

    // failures-by-reason: (week, reason) → count, first and last job time.
    let mut by_reason: BTreeMap<(String, String), ReasonSpan> = BTreeMap::new();
    for j in &failed {
        let t = j.at(seen);
        let e = by_reason
            .entry((iso_week(t), j.reason()))
            .or_insert((0, t, t));
        e.0 += 1;
        e.1 = e.1.min(t);
        e.2 = e.2.max(t);
    }
    let mut want: Vec<(String, String, i64, String, String)> = by_reason
        .into_iter()
        .map(|((week, reason), (n, first, last))| (week, reason, n, utc_ms(first), utc_ms(last)))
        .collect();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(b.2.cmp(&a.2)).then(a.1.cmp(&b.1)));
    let got: Vec<_> = query_json(&env, &["failures-by-reason"])
        .await
        .iter()
        .map(|r| {
            (
                text(r, "week").expect("week"),
                text(r, "reason").expect("reason"),
                int(r, "failures"),
                text(r, "first_seen").expect("first"),
                text(r, "last_seen").expect("last"),
            )
        })
        .collect();
    assert_eq!(got, want);

    // The NoSQL share of it, week by week, straight from the NoSQL task list.
    let mut nosql_weeks: BTreeMap<(String, String), i64> = BTreeMap::new();
    for data in env.world().projects.values() {
        for j in data.nosql.iter().filter(|j| j.status == "Failed") {
            *nosql_weeks
                .entry((iso_week(j.start), j.fail_reason.clone()))
                .or_default() += 1;
        }
    }
    let sql = format!(
        "SELECT {} AS week, fail_reason AS reason, COUNT(*) AS n \
         FROM jobs WHERE source = 'nosql' AND status = 'failed' GROUP BY 1, 2",
        iso_week_sql(backend, "started_at")
    );
    let got: BTreeMap<(String, String), i64> = query_json(&env, &[&sql])
        .await
        .iter()
        .map(|r| {
            (
                (
                    text(r, "week").expect("week"),
                    text(r, "reason").expect("reason"),
                ),
                int(r, "n"),
            )
        })
        .collect();
    assert_eq!(got, nosql_weeks);

    // With :since, only failures from that day on.
    let since_day = (Utc::now() - chrono::Duration::days(30)).date_naive();
    let since = since_day.format("%Y-%m-%d").to_string();
    let from = since_day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let want_since: i64 = failed.iter().filter(|j| j.at(seen) >= from).count() as i64;
    let rows = query_json(
        &env,
        &["failures-by-reason", "--param", &format!("since={since}")],
    )
    .await;
    assert_eq!(
        rows.iter().map(|r| int(r, "failures")).sum::<i64>(),
        want_since
    );
    assert!(want_since > 0 && want_since < failed.len() as i64);

    // failure-rate-by-type.
    let mut by_type: BTreeMap<(String, Option<String>), Tally> = BTreeMap::new();
    for j in &jobs {
        by_type
            .entry((j.source.to_owned(), j.job_type.clone()))
            .or_default()
            .add(j);
    }
    let rows = query_json(&env, &["failure-rate-by-type"]).await;
    let mut got: BTreeMap<(String, Option<String>), Tally> = BTreeMap::new();
    let mut last_rate = f64::INFINITY;
    for r in &rows {
        let key = (text(r, "source").expect("source"), text(r, "job_type"));
        let tally = Tally {
            total: int(r, "total"),
            succeeded: int(r, "succeeded"),
            failed: int(r, "failed"),
            unfinished: int(r, "unfinished"),
        };
        let rate = real(r, "failure_rate_pct");
        assert_rate(
            rate,
            tally.failed,
            tally.succeeded + tally.failed,
            &format!("{key:?}"),
        );
        let rate = rate.unwrap_or(f64::NEG_INFINITY);
        assert!(rate <= last_rate, "highest failure rate first");
        last_rate = rate;
        got.insert(key, tally);
    }
    assert_eq!(got, by_type);

    // failure-rate-by-week.
    let mut by_week: BTreeMap<(String, String, Option<String>), Tally> = BTreeMap::new();
    for j in &jobs {
        by_week
            .entry((
                iso_week(j.at(seen)),
                j.source.to_owned(),
                j.job_type.clone(),
            ))
            .or_default()
            .add(j);
    }
    let rows = query_json(&env, &["failure-rate-by-week"]).await;
    assert_eq!(rows.len(), by_week.len());
    let weeks: Vec<String> = rows
        .iter()
        .map(|r| text(r, "week").expect("week"))
        .collect();
    assert!(weeks.windows(2).all(|w| w[0] >= w[1]), "newest week first");
    for r in &rows {
        let key = (
            text(r, "week").expect("week"),
            text(r, "source").expect("source"),
            text(r, "job_type"),
        );
        let want = by_week.get(&key).unwrap_or_else(|| panic!("no {key:?}"));
        assert_eq!(
            (int(r, "total"), int(r, "failed")),
            (want.total, want.failed)
        );
        assert_rate(
            real(r, "failure_rate_pct"),
            want.failed,
            want.succeeded + want.failed,
            &format!("{key:?}"),
        );
    }

    // recent-failures: newest first, with reasons, :limit rows.
    let failed_at = |j: &Truth| utc_ms(j.end.or(j.start).expect("a failed job has a time"));
    let mut want: Vec<FailureLine> = failed
        .iter()
        .map(|j| {
            (
                failed_at(j),
                j.source.to_owned(),
                j.id.clone(),
                j.fail_reason.clone(),
                j.error_code.clone(),
            )
        })
        .collect();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let got: Vec<_> = query_json(&env, &["recent-failures", "--param", "limit=15"])
        .await
        .iter()
        .map(|r| {
            (
                text(r, "failed_at").expect("failed_at"),
                text(r, "source").expect("source"),
                text(r, "job_id").expect("job_id"),
                text(r, "fail_reason"),
                text(r, "error_code"),
            )
        })
        .collect();
    assert_eq!(got, want[..15]);
    let all = query_json(&env, &["recent-failures"]).await;
    assert_eq!(all.len(), failed.len().min(50), "50 rows by default");
}

async fn duration_and_stuck_job_queries_match_the_simulators_truth(backend: Backend) {
    let Some((env, jobs, _)) = synced_on(62, backend).await else {
        return;
    };

    // slowest-job-types: p50/p95 by nearest rank, computed here.
    let mut durations: BTreeMap<(String, Option<String>), Vec<i64>> = BTreeMap::new();
    for j in &jobs {
        if let Some(d) = j.duration_ms() {
            durations
                .entry((j.source.to_owned(), j.job_type.clone()))
                .or_default()
                .push(d);
        }
    }
    let want: BTreeMap<TypeKey, Percentiles> = durations
        .into_iter()
        .map(|(key, mut v)| {
            v.sort_unstable();
            let n = v.len() as i64;
            let stats = (
                n,
                nearest_rank(&v, 50),
                nearest_rank(&v, 95),
                *v.last().expect("one"),
            );
            (key, stats)
        })
        .collect();
    assert!(
        want.values().any(|s| s.0 >= 20),
        "some job type with many durations"
    );
    let rows = query_json(&env, &["slowest-job-types"]).await;
    let p95s: Vec<i64> = rows.iter().map(|r| int(r, "p95_ms")).collect();
    assert!(p95s.windows(2).all(|w| w[0] >= w[1]), "slowest p95 first");
    let got: BTreeMap<TypeKey, Percentiles> = rows
        .iter()
        .map(|r| {
            (
                (text(r, "source").expect("source"), text(r, "job_type")),
                (
                    int(r, "jobs"),
                    int(r, "p50_ms"),
                    int(r, "p95_ms"),
                    int(r, "max_ms"),
                ),
            )
        })
        .collect();
    assert_eq!(got, want);

    // stuck-jobs: running or unknown for longer than :hours, oldest first.
    let unfinished: Vec<&Truth> = jobs.iter().filter(|j| j.unfinished()).collect();
    for hours in [72_i64, 24 * 30] {
        let now = Utc::now();
        let mut want: Vec<(DateTime<Utc>, String, String)> = unfinished
            .iter()
            .filter_map(|j| {
                let start = j.start?;
                (now - start > chrono::Duration::hours(hours))
                    .then(|| (start, j.source.to_owned(), j.id.clone()))
            })
            .collect();
        want.sort();
        assert!(!want.is_empty(), "some job stuck for {hours} hours");
        let rows = query_json(&env, &["stuck-jobs", "--param", &format!("hours={hours}")]).await;
        let got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                assert!(real(r, "running_hours").expect("hours") >= hours as f64);
                (
                    text(r, "started_at").expect("started"),
                    text(r, "source").expect("source"),
                    text(r, "job_id").expect("job_id"),
                )
            })
            .collect();
        let want: Vec<(String, String, String)> = want
            .into_iter()
            .map(|(t, s, id)| (utc_ms(t), s, id))
            .collect();
        assert_eq!(got, want, "stuck for more than {hours} hours");
    }
    let every = query_json(&env, &["stuck-jobs", "--param", "hours=0"]).await;
    assert_eq!(
        every.len(),
        unfinished.len(),
        "hours=0 lists every running job"
    );

    // The views agree with the truth too.
    let running = query_json(&env, &["SELECT COUNT(*) AS n FROM running_jobs"]).await;
    assert_eq!(int(&running[0], "n"), unfinished.len() as i64);
    let mut want: BTreeMap<(String, Option<String>, String), i64> = BTreeMap::new();
    for j in jobs.iter().filter(|j| j.status == "failed") {
        *want
            .entry((j.source.to_owned(), j.job_type.clone(), j.reason()))
            .or_default() += 1;
    }
    let got: BTreeMap<(String, Option<String>, String), i64> =
        query_json(&env, &["SELECT * FROM failures_by_type_reason"])
            .await
            .iter()
            .map(|r| {
                (
                    (
                        text(r, "source").expect("source"),
                        text(r, "job_type"),
                        text(r, "reason").expect("reason"),
                    ),
                    int(r, "failures"),
                )
            })
            .collect();
    assert_eq!(got, want);
}

async fn job_history_shows_a_job_flipped_between_two_syncs(backend: Backend) {
    let Some(env) = Env::start_on(small_world(63), backend).await else {
        return;
    };
    let world = env.world();
    let (project, job) = world
        .projects
        .iter()
        .flat_map(|(p, d)| d.nosql.iter().map(move |j| (p.clone(), j.clone())))
        .find(|(_, j)| j.status == "Running")
        .expect("a running NoSQL job");
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    let end = Utc::now() - chrono::Duration::minutes(1);
    assert!(env.sim.set_nosql_job(
        &project,
        &job.id,
        "Failed",
        "Disk full on node 3",
        Some(end)
    ));
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);

    let id_param = format!("job_id={}", job.id);
    let rows = query_json(&env, &["job-history", "--param", &id_param]).await;
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                text(r, "source").expect("source"),
                text(r, "project_id").expect("project"),
                text(r, "old_status"),
                text(r, "new_status").expect("new"),
                text(r, "raw_status"),
                text(r, "fail_reason"),
            )
        })
        .collect();
    let nosql = || "nosql".to_owned();
    assert_eq!(
        got,
        vec![
            (
                nosql(),
                project.clone(),
                None,
                "running".to_owned(),
                Some("Running".to_owned()),
                None
            ),
            (
                nosql(),
                project.clone(),
                Some("running".to_owned()),
                "failed".to_owned(),
                Some("Failed".to_owned()),
                Some("Disk full on node 3".to_owned())
            ),
        ]
    );
    assert!(int(&rows[0], "sync_id") < int(&rows[1], "sync_id"));
    let observed: Vec<String> = rows
        .iter()
        .map(|r| text(r, "observed_at").expect("observed"))
        .collect();
    assert!(observed[0] <= observed[1], "oldest first");

    let rows = query_json(
        &env,
        &[
            "job-history",
            "--param",
            &id_param,
            "--param",
            "source=dbss",
        ],
    )
    .await;
    assert!(rows.is_empty(), "no such DBSS job");
    let rows = query_json(
        &env,
        &["job-history", "-p", &id_param, "-p", "source=nosql"],
    )
    .await;
    assert_eq!(rows.len(), 2);
}

async fn queries_cannot_change_the_database_and_bad_parameters_are_usage_errors(backend: Backend) {
    let Some((env, jobs, _)) = synced_on(64, backend).await else {
        return;
    };
    let count = || scalar(&env, "SELECT COUNT(*) FROM jobs");
    assert_eq!(count().await, jobs.len() as i64);
    let runs = scalar(&env, "SELECT COUNT(*) FROM sync_runs").await;
    for sql in [
        "DELETE FROM jobs",
        "DROP TABLE jobs",
        "INSERT INTO sync_runs (started_at, status, sources) VALUES ('2024-01-01T00:00:00.000Z', 'running', 'nosql')",
        "UPDATE jobs SET status = 'failed'",
    ] {
        let run = env.jobtrail(&["query", sql]).await;
        assert_ne!(run.code, 0, "{sql} must fail");
        assert!(
            run.stderr.contains("read-only") && run.stderr.contains("changes nothing"),
            "{sql}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{sql}: {}", run.stdout);
    }
    assert_eq!(count().await, jobs.len() as i64);
    assert_eq!(
        scalar(&env, "SELECT COUNT(*) FROM sync_runs").await,
        runs,
        "no run added"
    );
    assert_eq!(
        scalar(&env, "SELECT COUNT(*) FROM jobs WHERE status = 'failed'").await,
        jobs.iter().filter(|j| j.status == "failed").count() as i64
    );

    let run = env.jobtrail(&["query", "job-history"]).await;
    run.assert_code(2);
    assert!(
        run.stderr.contains(":job_id") && run.stderr.contains("--param job_id="),
        "{}",
        run.stderr
    );
    let run = env
        .jobtrail(&["query", "recent-failures", "--param", "colour=red"])
        .await;
    run.assert_code(2);
    assert!(run.stderr.contains(":colour"), "{}", run.stderr);
    let run = env
        .jobtrail(&[
            "query",
            "SELECT :a AS a",
            "--param",
            "a=1",
            "--param",
            "b=2",
        ])
        .await;
    run.assert_code(2);
    assert!(run.stderr.contains(":b"), "{}", run.stderr);
    let run = env.jobtrail(&["query", "no-such-report"]).await;
    run.assert_code(2);
    assert!(run.stderr.contains("recent-failures"), "{}", run.stderr);
}

/// A JSON value as the CSV writer prints it: NULL as an empty field.
fn csv_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("unexpected JSON value {other}"),
    }
}

async fn every_output_format_parses_back_to_the_same_rows(backend: Backend) {
    let Some((env, _, _)) = synced_on(65, backend).await else {
        return;
    };
    let cases: [&[&str]; 5] = [
        &["recent-failures", "--param", "limit=40"],
        &["failure-rate-by-type"],
        &["slowest-job-types"],
        &["stuck-jobs", "--param", "hours=1"],
        &[
            "SELECT job_id, parent_job_id, progress, duration_ms, fail_reason, 1.5 AS half, \
             'a,b \"c\"' AS quoted, 'line\nbreak' AS multi FROM jobs ORDER BY source, job_id LIMIT 60",
        ],
    ];
    for args in cases {
        let run = |format: &'static str| {
            let mut full = vec!["query"];
            full.extend_from_slice(args);
            full.extend_from_slice(&["--format", format]);
            let env = &env;
            async move {
                let run: Run = env.jobtrail(&full).await;
                run.assert_code(0);
                run.stdout
            }
        };
        let json = parse_rows(&run("json").await);
        assert!(!json.is_empty(), "{args:?}: some rows");

        // Integers are JSON numbers, NULL is null.
        for r in &json {
            for (key, v) in r {
                let integer_column = matches!(
                    key.as_str(),
                    "total" | "failed" | "failures" | "jobs" | "p50_ms" | "p95_ms" | "duration_ms"
                );
                if integer_column && !v.is_null() {
                    assert!(v.is_i64(), "{args:?}: {key} = {v}");
                }
            }
        }
        assert!(
            json.iter().any(|r| r.values().any(Value::is_null)),
            "{args:?}: some NULL to check"
        );

        let ndjson: Vec<Row> = run("ndjson")
            .await
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("{e}: {line}"))
                    .as_object()
                    .expect("an object per line")
                    .clone()
            })
            .collect();
        assert_eq!(ndjson, json, "{args:?}: ndjson");

        let csv_out = run("csv").await;
        let mut reader = csv::Reader::from_reader(csv_out.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        let mut keys: Vec<&String> = json[0].keys().collect();
        let mut sorted_header: Vec<&String> = header.iter().collect();
        keys.sort();
        sorted_header.sort();
        assert_eq!(sorted_header, keys, "{args:?}: csv columns");
        let records: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.expect("record").iter().map(str::to_owned).collect())
            .collect();
        let want: Vec<Vec<String>> = json
            .iter()
            .map(|r| header.iter().map(|c| csv_text(&r[c])).collect())
            .collect();
        assert_eq!(records, want, "{args:?}: csv");

        let table = run("table").await;
        for column in &header {
            assert!(
                table.contains(column.as_str()),
                "{args:?}: table has {column}"
            );
        }
    }
}

async fn status_counts_match_the_database_and_name_the_last_run(backend: Backend) {
    let Some((env, jobs, _)) = synced_on(66, backend).await else {
        return;
    };
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    let run = env.jobtrail(&["status", "--format", "json"]).await;
    run.assert_code(0);
    let status: Value = serde_json::from_str(&run.stdout).expect("status JSON");
    let total = scalar(&env, "SELECT COUNT(*) FROM jobs").await;
    assert_eq!(total, jobs.len() as i64);
    assert_eq!(status["total_jobs"].as_i64(), Some(total));
    assert_eq!(status["total_runs"].as_i64(), Some(2));
    for source in ["nosql", "dbss", "image"] {
        let entry = status["jobs_by_source"]
            .as_array()
            .expect("by source")
            .iter()
            .find(|e| e["source"] == source)
            .unwrap_or_else(|| panic!("no {source}"));
        for state in ["running", "succeeded", "failed", "unknown"] {
            let in_db = scalar(
                &env,
                &format!(
                    "SELECT COUNT(*) FROM jobs WHERE source = '{source}' AND status = '{state}'"
                ),
            )
            .await;
            let in_truth = jobs
                .iter()
                .filter(|j| j.source == source && j.status == state)
                .count() as i64;
            assert_eq!(entry[state].as_i64(), Some(in_db), "{source} {state}");
            assert_eq!(in_db, in_truth, "{source} {state}");
        }
    }
    let unfinished = jobs.iter().filter(|j| j.unfinished()).count() as i64;
    assert_eq!(status["still_running"]["count"].as_i64(), Some(unfinished));
    let runs = status["recent_runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[0]["sources"], "nosql", "newest first");
    let watermarks = status["watermarks"].as_array().expect("watermarks");
    assert!(watermarks.iter().any(|w| w["source"] == "nosql"));

    let run = env.jobtrail(&["status"]).await;
    run.assert_code(0);
    let last_started = runs[0]["started_at"].as_str().expect("started");
    assert!(
        run.stdout.contains("Sync runs: last 2 of 2"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(last_started), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("Jobs by source and status ({total} in all)")),
        "{}",
        run.stdout
    );
}

/// The text between `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    Some(&s[from..from + s[from..].find(end)?])
}

fn tile(html: &str, label: &str) -> String {
    between(html, &format!("data-tile=\"{label}\"><b>"), "</b>")
        .unwrap_or_else(|| panic!("no tile {label}"))
        .to_owned()
}

/// Reads a page cell's HTML back to text.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

async fn write_report(env: &Env, args: &[&str]) -> String {
    let path = env.dir.path().join("report.html");
    let out = path.display().to_string();
    let mut full = vec!["report", "-o", out.as_str()];
    full.extend_from_slice(args);
    let run = env.jobtrail(&full).await;
    run.assert_code(0);
    assert!(run.stdout.contains("wrote "), "{}", run.stdout);
    std::fs::read_to_string(&path).expect("report written")
}

async fn the_report_shows_the_simulators_numbers(backend: Backend) {
    let Some((env, jobs, seen)) = synced_on(67, backend).await else {
        return;
    };
    let html = write_report(&env, &[]).await;
    let failed: Vec<&Truth> = jobs.iter().filter(|j| j.status == "failed").collect();
    assert_eq!(tile(&html, "jobs"), jobs.len().to_string());
    assert_eq!(tile(&html, "failed"), failed.len().to_string());
    assert_eq!(
        tile(&html, "succeeded"),
        jobs.iter()
            .filter(|j| j.status == "succeeded")
            .count()
            .to_string()
    );
    assert_eq!(
        tile(&html, "running or unknown"),
        jobs.iter().filter(|j| j.unfinished()).count().to_string()
    );

    // Failures per source.
    for source in ["nosql", "dbss", "image"] {
        let mut want = Tally::default();
        for j in jobs.iter().filter(|j| j.source == source) {
            want.add(j);
        }
        let row = between(&html, &format!("<tr data-source=\"{source}\">"), "</tr>")
            .unwrap_or_else(|| panic!("no row for {source}"));
        let cells: Vec<String> = row
            .split("<td")
            .skip(1)
            .filter_map(|c| between(c, ">", "</td>").map(str::to_owned))
            .collect();
        assert_eq!(
            cells[1..5],
            [
                want.total.to_string(),
                want.succeeded.to_string(),
                want.failed.to_string(),
                want.unfinished.to_string()
            ],
            "{source}: {row}"
        );
    }

    // Top failure reasons, as counted across every source.
    let mut reasons: BTreeMap<String, i64> = BTreeMap::new();
    for j in &failed {
        *reasons.entry(j.reason()).or_default() += 1;
    }
    let section = between(&html, "<h2>Top failure reasons</h2>", "</table>").expect("reasons");
    let shown: Vec<(String, i64)> = section
        .split("<td class=\"reason\">")
        .skip(1)
        .map(|cell| {
            let reason = unescape(&cell[..cell.find("</td>").expect("reason end")]);
            let n = between(cell, "<td class=\"num\">", "</td>")
                .expect("count")
                .parse()
                .expect("a number");
            (reason, n)
        })
        .collect();
    assert!(shown.len() >= 5, "{section}");
    for (reason, n) in &shown {
        assert_eq!(reasons.get(reason), Some(n), "{reason}");
    }
    let counts: Vec<i64> = shown.iter().map(|s| s.1).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "most common first");
    let mut all: Vec<i64> = reasons.values().copied().collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(counts, all[..counts.len()], "the top ones");
    reason_grid_matches(&html, &failed, seen);

    // Only NoSQL, from a day on.
    let html = write_report(&env, &["--source", "nosql"]).await;
    let nosql = jobs.iter().filter(|j| j.source == "nosql").count();
    assert_eq!(tile(&html, "jobs"), nosql.to_string());
    assert!(!html.contains("<tr data-source=\"dbss\">"));
}

/// The reasons-by-week grid holds, for each of the ten most common reasons,
/// the failures of each week, as counted here from the simulator's truth.
fn reason_grid_matches(html: &str, failed: &[&Truth], seen: DateTime<Utc>) {
    let mut want: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for j in failed {
        *want
            .entry(j.reason())
            .or_default()
            .entry(iso_week(j.at(seen)))
            .or_default() += 1;
    }
    let mut ranked: Vec<(&String, i64)> = want.iter().map(|(r, w)| (r, w.values().sum())).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let grid = between(html, "<table class=\"heat\">", "</table>").expect("the reason grid");
    assert!(
        !html.contains("earlier weeks are not shown"),
        "the whole history is in the grid"
    );
    let body = between(grid, "<tbody>", "</tbody>").expect("grid rows");
    let rows: Vec<&str> = body.split("<tr>").skip(1).collect();
    assert_eq!(rows.len(), ranked.len().min(10), "{grid}");
    for (row, (reason, _)) in rows.iter().zip(&ranked) {
        let label = unescape(between(row, ">", "</th>").expect("row label"));
        assert_eq!(&&label, reason, "the reasons in the table's order");
        let cells = &row[row.find("</th>").expect("label end")..];
        let shown: BTreeMap<String, i64> = cells
            .split(" title=\"")
            .skip(1)
            .filter_map(|cell| between(cell, "", "\"")?.split_once(": "))
            .map(|(week, n)| (week.to_owned(), n.parse().expect("a count")))
            .collect();
        assert_eq!(&shown, &want[*reason], "{reason}");
    }
}

async fn a_database_without_jobs_gets_the_friendly_empty_page(backend: Backend) {
    let Some(env) = Env::start_on(small_world(68), backend).await else {
        return;
    };
    let project = env
        .world()
        .projects
        .keys()
        .next()
        .cloned()
        .expect("project");
    env.write_config(&format!(
        "[[project]]\nid = \"{project}\"\nregion = \"cn-north-4\"\n\n[project.image]\njob_ids = []\ndiscover = false\n"
    ));
    env.jobtrail(&["sync"]).await.assert_code(0);
    assert_eq!(scalar(&env, "SELECT COUNT(*) FROM jobs").await, 0);
    let html = write_report(&env, &[]).await;
    assert!(html.contains("<h2>No jobs yet</h2>"), "{html}");
    assert!(html.contains("jobtrail sync"));
    assert!(!html.contains("data-tile="), "no numbers on an empty page");

    let status = env.jobtrail(&["status", "--format", "json"]).await;
    status.assert_code(0);
    let status: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(status["total_jobs"].as_i64(), Some(0));
    let rows = query_json(&env, &["recent-failures"]).await;
    assert!(rows.is_empty());
}

// ---------------------------------------------------------------------------
// The report in a real browser.

/// The Chromium binary on PATH, if any.
fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Runs headless Chromium on `page` with `extra` flags; returns (stdout, stderr).
fn chromium(binary: &Path, profile: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let mut cmd = std::process::Command::new(binary);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium output");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Console messages Chromium logged. The page has no scripts, so any message at
/// all (a CSP violation, a resource that failed to load) is a fault; Chromium
/// logs them as `INFO:CONSOLE` whatever their level.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

#[test]
fn console_messages_are_found_in_chromiums_log() {
    let log = "[7:7:1123/163251.692401:INFO:CONSOLE:1] \"Executing inline script violates the following Content Security Policy directive\", source: file:///r.html (1)\n\
               [7:9:1123/162410.480751:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n\
               [7:7:1123/163253.386247:INFO:CONSOLE(1)] \"boom\", source: file:///r.html (1)\n";
    assert_eq!(console_errors(log).len(), 2);
    assert!(console_errors("[1:1:0/0:ERROR:dbus/bus.cc:405] no bus").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_renders_in_headless_chromium_without_console_errors() {
    let Some(binary) = find_chromium() else {
        if in_ci() {
            panic!("chromium is not installed; CI must install it (apt-get install -y chromium)");
        }
        eprintln!(
            "SKIPPED the_report_renders_in_headless_chromium_without_console_errors: \
             chromium is not installed (apt-get install -y chromium); CI fails instead of skipping"
        );
        return;
    };
    let (env, jobs, _) = synced(69).await;
    let page = env.dir.path().join("report.html");
    env.jobtrail(&["report", "-o", &page.display().to_string()])
        .await
        .assert_code(0);
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-chromium.png");
    let _ = std::fs::remove_file(&screenshot);

    let (binary2, page2, shot, dir) = (
        binary.clone(),
        page.clone(),
        screenshot.clone(),
        env.dir.path().to_path_buf(),
    );
    let (dom, shot_log) = tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir_in(&dir).expect("profile dir");
        let (dom, dom_log) = chromium(&binary2, profile.path(), &page2, &["--dump-dom".into()]);
        let profile = tempfile::tempdir_in(&dir).expect("profile dir");
        let (_, shot_log) = chromium(
            &binary2,
            profile.path(),
            &page2,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2400".into(),
                "--hide-scrollbars".into(),
            ],
        );
        (dom, format!("{dom_log}\n{shot_log}"))
    })
    .await
    .expect("chromium thread");

    let errors = console_errors(&shot_log);
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));
    // The browser parsed and kept the whole page: the headline numbers and every section.
    assert!(dom.contains("<h1>jobtrail report</h1>"), "{dom}");
    let jobs_tile = format!("data-tile=\"jobs\"><b>{}</b>", jobs.len());
    assert!(dom.contains(&jobs_tile), "{dom}");
    for heading in [
        "Jobs per week by status",
        "Failure rate by job type",
        "Top failure reasons",
        "Failure reasons by week",
        "Duration by job type (p50 / p95)",
    ] {
        assert!(dom.contains(heading), "{heading} missing");
    }
    assert!(dom.contains("<svg"), "charts rendered");
    assert!(dom.contains("<table class=\"heat\">"), "the reason grid");
    assert!(dom.trim_end().ends_with("</html>"), "the whole page");

    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 20_000, "a real picture, {} bytes", png.len());
    eprintln!("screenshot: {}", screenshot.display());
}

// ---------------------------------------------------------------------------
// The same history on both backends.

/// Every built-in saved query with the parameters it needs, as a user runs them.
fn saved_query_runs(job_id: &str) -> Vec<Vec<String>> {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    vec![
        owned(&["failure-rate-by-type"]),
        owned(&["failure-rate-by-type", "-p", "since=2024-01-01"]),
        owned(&["failure-rate-by-week"]),
        owned(&["failures-by-reason"]),
        owned(&["job-history", "-p", &format!("job_id={job_id}")]),
        owned(&["recent-failures", "-p", "limit=500"]),
        owned(&["slowest-job-types"]),
        owned(&["stuck-jobs", "-p", "hours=0"]),
    ]
}

/// A query's rows with what depends on when each backend's sync ran taken
/// out: times from the sync itself (jobtrail's own first sighting stands in
/// for a job's unknown start) and hours measured from now.
fn comparable(rows: Vec<Row>, synced_after: DateTime<Utc>) -> Vec<Row> {
    rows.into_iter()
        .map(|mut row| {
            row.remove("running_hours");
            for value in row.values_mut() {
                let recent = value
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t >= synced_after);
                if recent {
                    *value = Value::String("(the sync's own time)".into());
                }
            }
            row
        })
        .collect()
}

/// Two rows' values equal, numbers to within the rounding of a percentage
/// (SQLite rounds a double, PostgreSQL an exact numeric).
fn assert_same_rows(sqlite: &[Row], postgres: &[Row], what: &str) {
    assert_eq!(sqlite.len(), postgres.len(), "{what}: row count");
    for (a, b) in sqlite.iter().zip(postgres) {
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{what}: columns"
        );
        for (key, x) in a {
            let y = &b[key];
            let close = match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 0.051,
                _ => false,
            };
            assert!(
                x == y || close,
                "{what}: {key} is {x} on SQLite, {y} on PostgreSQL\n{a:?}\n{b:?}"
            );
        }
    }
}

/// The report's numbers: its tiles, its per-source table and its top reasons.
fn report_numbers(html: &str) -> Vec<String> {
    let mut numbers: Vec<String> = ["jobs", "failed", "succeeded", "running or unknown"]
        .iter()
        .map(|label| tile(html, label))
        .collect();
    for source in ["nosql", "dbss", "image"] {
        numbers.push(
            between(html, &format!("<tr data-source=\"{source}\">"), "</tr>")
                .unwrap_or("")
                .to_owned(),
        );
    }
    numbers.push(
        between(html, "<h2>Top failure reasons</h2>", "</table>")
            .expect("reasons")
            .to_owned(),
    );
    numbers
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_history_synced_into_sqlite_and_postgres_gives_the_same_rows_and_numbers() {
    let Some(pg) = crate::util::PgDatabase::create().await else {
        return;
    };
    let env = Env::start(small_world(70)).await;
    let started = Utc::now();
    let (sqlite, postgres) = (env.db_arg(), pg.url.clone());
    for db in [&sqlite, &postgres] {
        env.jobtrail_on(db, &["sync"]).await.assert_code(0);
    }
    // A job that turns failed between two syncs, on both.
    let world = env.world();
    let (project, job) = world
        .projects
        .iter()
        .flat_map(|(p, d)| d.nosql.iter().map(move |j| (p.clone(), j.id.clone())))
        .find(|(p, id)| {
            world.projects[p]
                .nosql
                .iter()
                .any(|j| &j.id == id && j.status == "Running")
        })
        .expect("a running NoSQL job");
    assert!(
        env.sim
            .set_nosql_job(&project, &job, "Failed", "Quota exceeded", Some(Utc::now()))
    );
    for db in [&sqlite, &postgres] {
        env.jobtrail_on(db, &["sync"]).await.assert_code(0);
    }

    // The same rows: key, status, raw status, times to the millisecond,
    // reason, resource; the same history; the same raw JSON.
    let jobs = "SELECT source, project_id, job_id, parent_job_id, job_type, status, raw_status, \
                progress, started_at, ended_at, duration_ms, resource_id, resource_name, \
                error_code, fail_reason FROM jobs ORDER BY source, project_id, job_id";
    let history = "SELECT source, project_id, job_id, old_status, new_status, raw_status, \
                   fail_reason, sync_id FROM job_status_changes \
                   ORDER BY source, project_id, job_id, id";
    for sql in [jobs, history] {
        let a = env.rows_on(&sqlite, sql, &[]).await;
        assert!(a.len() > 100, "{sql}");
        assert_eq!(a, env.rows_on(&postgres, sql, &[]).await, "{sql}");
    }
    let raw =
        "SELECT source, project_id, job_id, raw_json FROM jobs ORDER BY source, project_id, job_id";
    let json = |rows: Vec<Row>| -> Vec<Value> {
        rows.iter()
            .map(|r| serde_json::from_str(&text(r, "raw_json").expect("raw_json")).expect("JSON"))
            .collect()
    };
    assert_eq!(
        json(env.rows_on(&sqlite, raw, &[]).await),
        json(env.rows_on(&postgres, raw, &[]).await),
        "raw JSON, equal as JSON"
    );

    // Every saved query runs on both and answers alike.
    for args in saved_query_runs(&job) {
        let mut full: Vec<&str> = vec!["query"];
        full.extend(args.iter().map(String::as_str));
        full.extend(["--format", "json"]);
        let mut answers = Vec::new();
        for db in [&sqlite, &postgres] {
            let run = env.jobtrail_on(db, &full).await;
            run.assert_code(0);
            answers.push(comparable(parse_rows(&run.stdout), started));
        }
        assert!(!answers[0].is_empty(), "{args:?} has rows");
        assert_same_rows(&answers[0], &answers[1], &args.join(" "));
    }

    // The same status numbers.
    let status = |db: String| {
        let env = &env;
        async move {
            let run = env.jobtrail_on(&db, &["status", "--format", "json"]).await;
            run.assert_code(0);
            let s: Value = serde_json::from_str(&run.stdout).expect("status JSON");
            (
                s["total_runs"].clone(),
                s["total_jobs"].clone(),
                s["jobs_by_source"].clone(),
                s["still_running"]["count"].clone(),
                s["still_running"]["oldest"]["job_id"].clone(),
                s["recent_runs"].as_array().map(|r| r.len()),
            )
        }
    };
    assert_eq!(status(sqlite.clone()).await, status(postgres.clone()).await);

    // The same report numbers.
    let report = |db: String, name: &'static str| {
        let env = &env;
        async move {
            let path = env.dir.path().join(name);
            let out = path.display().to_string();
            env.jobtrail_on(&db, &["report", "-o", &out])
                .await
                .assert_code(0);
            std::fs::read_to_string(&path).expect("report")
        }
    };
    let (a, b) = (
        report(sqlite.clone(), "sqlite.html").await,
        report(postgres.clone(), "postgres.html").await,
    );
    assert_eq!(report_numbers(&a), report_numbers(&b));
}
