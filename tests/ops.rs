//! Running unattended: the metrics file (checked by Prometheus' own parser and
//! against the database), health pings to a loopback server (and to endpoints
//! that refuse or never answer), and `--print-failures` for cron's mail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jobtrail::sim::{SimAuth, SimConfig};

use crate::util::{Backend, Env, Run};

/// A world small enough for several syncs per test.
fn world(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 80,
        history_days: 20,
        dbss_resources: 2,
        image_jobs: 6,
        ..SimConfig::new(seed)
    }
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// Unix seconds, with milliseconds, as the metrics file writes them.
fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

async fn rows<T>(env: &Env, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&env.pool().await)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

// ---------------------------------------------------------------------------
// The metrics file

/// `promtool` when installed. Missing: a loud skip of that check, except in CI
/// (`CI` set), where it fails.
fn promtool() -> Option<&'static str> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("promtool");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "promtool is required in CI (Debian package `prometheus`)"
    );
    eprintln!(
        "\n*** SKIPPED: promtool is not installed (Debian: apt install prometheus); the metrics file is not checked by Prometheus' parser ***\n"
    );
    None
}

/// `promtool check metrics` on the text: the exposition format and its lint rules.
fn promtool_accepts(text: &str) {
    let Some(promtool) = promtool() else {
        return;
    };
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics refused the file:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Samples by series (`name{labels}`, as written) → value. Every family must
/// have HELP and TYPE before its samples.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut described = BTreeSet::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described.insert(rest.split(' ').next().expect("name").to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let name = series.split('{').next().expect("name");
        assert!(described.contains(name), "{name} has no HELP:\n{text}");
        out.insert(series.to_owned(), value.parse().expect("a number"));
    }
    for name in described {
        assert!(
            text.contains(&format!("# TYPE {name} gauge\n")),
            "{name} has no TYPE"
        );
    }
    out
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing from {samples:#?}"))
}

/// The metrics file, parsed after promtool has accepted it.
fn read_metrics(path: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).expect("the metrics file is written");
    promtool_accepts(&text);
    samples(&text)
}

/// The last run's row: (id, finished_at, requests).
async fn last_run(env: &Env) -> (i64, String, i64) {
    rows(
        env,
        "SELECT id, finished_at, requests FROM sync_runs ORDER BY id DESC LIMIT 1",
    )
    .await
    .remove(0)
}

/// Checks what the file says against the database, for a run that ended
/// with `exit_code` and whose row is the last one (`None`: the run stopped
/// before it had one, so it made no requests and no new failures).
async fn check_against_database(
    env: &Env,
    m: &BTreeMap<String, f64>,
    exit_code: i32,
    run_id: Option<i64>,
) {
    assert_eq!(
        value(m, "jobtrail_last_run_exit_code"),
        f64::from(exit_code)
    );
    let ended = value(m, "jobtrail_last_run_timestamp_seconds");
    assert!(ended <= unix(Utc::now()));
    assert!(value(m, "jobtrail_last_run_duration_seconds") > 0.0);
    if let Some(id) = run_id {
        let (last_id, finished_at, requests) = last_run(env).await;
        assert_eq!(last_id, id);
        assert_eq!(value(m, "jobtrail_last_run_requests"), requests as f64);
        assert!(
            ended >= unix(parse_time(&finished_at)),
            "written after the run"
        );
    } else {
        assert_eq!(value(m, "jobtrail_last_run_requests"), 0.0);
    }

    // Jobs by source and status: every pair, zero when empty.
    let counts: Vec<(String, String, i64)> = rows(
        env,
        "SELECT source, status, COUNT(*) FROM jobs GROUP BY 1, 2",
    )
    .await;
    for source in ["nosql", "dbss", "image"] {
        for status in ["running", "succeeded", "failed", "unknown"] {
            let want = counts
                .iter()
                .find(|(s, t, _)| s == source && t == status)
                .map_or(0, |c| c.2);
            let series = format!("jobtrail_jobs{{source=\"{source}\",status=\"{status}\"}}");
            assert_eq!(value(m, &series), want as f64, "{series}");
        }
    }

    // New failures: the run's history rows that turned a job failed.
    let new: Vec<(String, i64)> = rows(
        env,
        &format!(
            "SELECT source, COUNT(DISTINCT project_id || '/' || job_id) FROM job_status_changes \
             WHERE sync_id = {} AND new_status = 'failed' AND old_status IS NOT 'failed' GROUP BY 1",
            run_id.unwrap_or(-1)
        ),
    )
    .await;
    for source in ["nosql", "dbss", "image"] {
        let want = new.iter().find(|(s, _)| s == source).map_or(0, |n| n.1);
        let series = format!("jobtrail_new_failures{{source=\"{source}\"}}");
        assert_eq!(value(m, &series), want as f64, "{series}");
    }

    // The oldest unfinished job's age, measured when the file was written.
    let oldest: Vec<(String, String)> = rows(
        env,
        "SELECT source, MIN(COALESCE(started_at, first_seen_at)) FROM jobs \
         WHERE status IN ('running', 'unknown') GROUP BY 1",
    )
    .await;
    for source in ["nosql", "dbss", "image"] {
        let want = oldest
            .iter()
            .find(|(s, _)| s == source)
            .map_or(0.0, |(_, since)| (ended - unix(parse_time(since))).floor());
        let series = format!("jobtrail_oldest_running_job_age_seconds{{source=\"{source}\"}}");
        // Milliseconds in the file, nanoseconds when it was computed.
        assert!(
            (value(m, &series) - want).abs() <= 1.0,
            "{series}: want {want}"
        );
    }
}

/// `jobtrail_last_success_timestamp_seconds` by (project, source), and the
/// same from `sync_state`.
async fn last_successes(env: &Env, m: &BTreeMap<String, f64>) -> BTreeMap<(String, String), f64> {
    let stored: Vec<(String, String, String)> = rows(
        env,
        "SELECT project_id, source, value FROM sync_state WHERE key = 'last_success'",
    )
    .await;
    let stored: BTreeMap<(String, String), f64> = stored
        .into_iter()
        .map(|(p, s, v)| ((p, s), unix(parse_time(&v))))
        .collect();
    let prefix = "jobtrail_last_success_timestamp_seconds{";
    let in_file: BTreeMap<(String, String), f64> = m
        .iter()
        .filter_map(|(series, v)| {
            let labels = series.strip_prefix(prefix)?.strip_suffix('}')?;
            let (project, source) = labels.split_once(",source=")?;
            let project = project.strip_prefix("project=")?.trim_matches('"');
            Some((
                (project.to_owned(), source.trim_matches('"').to_owned()),
                *v,
            ))
        })
        .collect();
    assert_eq!(in_file, stored, "the file says what the database keeps");
    in_file
}

/// The (project, source) pairs the default configuration syncs.
fn pairs(env: &Env) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for project in env.world().projects.keys() {
        for source in ["dbss", "image", "nosql"] {
            pairs.push((project.clone(), source.to_owned()));
        }
    }
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_after_a_successful_a_partial_and_a_failed_run_match_the_database() {
    let env = Env::start(world(301)).await;
    let metrics = env.dir.path().join("textfile").join("jobtrail.prom");
    std::fs::create_dir_all(metrics.parent().expect("dir")).expect("mkdir");
    // The config key, relative to the config file.
    let base = format!(
        "metrics_file = \"textfile/jobtrail.prom\"\n{}",
        env.default_config()
    );
    env.write_config(&base);
    let project = env
        .world()
        .projects
        .keys()
        .next()
        .cloned()
        .expect("project");
    let flipped = env.world().projects[&project].nosql[3].id.clone();
    assert!(
        env.sim
            .set_nosql_job(&project, &flipped, "Running", "", None)
    );

    // Success: every pair synced completely, when the run finished.
    env.jobtrail(&["sync"]).await.assert_code(0);
    let m = read_metrics(&metrics);
    let (run1, finished1, _) = last_run(&env).await;
    check_against_database(&env, &m, 0, Some(run1)).await;
    let after_success = last_successes(&env, &m).await;
    assert_eq!(
        after_success.keys().cloned().collect::<Vec<_>>(),
        pairs(&env)
    );
    assert!(
        after_success
            .values()
            .all(|t| *t == unix(parse_time(&finished1)))
    );

    // Partial: an image job ID that answers 404; a running job failed meanwhile.
    assert!(
        env.sim
            .set_nosql_job(&project, &flipped, "Failed", "disk full", Some(Utc::now()))
    );
    env.write_config(&base.replacen(
        "[project.image]\ndiscover = true",
        "[project.image]\ndiscover = true\njob_ids = [\"404404404404\"]",
        1,
    ));
    env.jobtrail(&["sync"]).await.assert_code(3);
    let m = read_metrics(&metrics);
    let (run2, finished2, _) = last_run(&env).await;
    check_against_database(&env, &m, 3, Some(run2)).await;
    assert!(value(&m, "jobtrail_new_failures{source=\"nosql\"}") >= 1.0);
    let after_partial = last_successes(&env, &m).await;
    for (pair, at) in &after_partial {
        let failed_pair = pair.0 == project && pair.1 == "image";
        let want = if failed_pair { &finished1 } else { &finished2 };
        assert_eq!(*at, unix(parse_time(want)), "{pair:?}");
    }

    // Failed: the credentials are refused. Nothing synced completely.
    env.sim.set_auth(SimAuth::Token("another-token".into()));
    env.jobtrail(&["sync"]).await.assert_code(1);
    let m = read_metrics(&metrics);
    let (run3, _, _) = last_run(&env).await;
    check_against_database(&env, &m, 1, Some(run3)).await;
    assert_eq!(
        last_successes(&env, &m).await,
        after_partial,
        "kept across a failed run"
    );

    // Failed before a run began (no credentials at all): still written.
    let mut env = env;
    env.env.clear();
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    let m = read_metrics(&metrics);
    check_against_database(&env, &m, 1, None).await;
    assert_eq!(last_run(&env).await.0, run3, "no run was recorded");
    assert_eq!(last_successes(&env, &m).await, after_partial);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_file_is_replaced_whole_while_a_reader_reads_it() {
    let env = Env::start(world(302)).await;
    let dir = env.dir.path().join("textfile");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let metrics = dir.join("jobtrail.prom");
    std::fs::write(&metrics, "# an old file\n").expect("seed");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (done, path) = (done.clone(), metrics.clone());
        std::thread::spawn(move || {
            let (mut reads, mut whole) = (0u64, 0u64);
            // Bounded: the syncs end long before, and `done` stops it then.
            while reads < 5_000_000 && !done.load(std::sync::atomic::Ordering::Relaxed) {
                reads += 1;
                let text = std::fs::read_to_string(&path).expect("the file is always there");
                if text == "# an old file\n" {
                    continue;
                }
                let last = "jobtrail_oldest_running_job_age_seconds{source=\"image\"} ";
                assert!(
                    text.ends_with('\n') && text.contains(last),
                    "a partial file was read:\n{text}"
                );
                whole += 1;
            }
            (reads, whole)
        })
    };
    let flag = metrics.display().to_string();
    for _ in 0..4 {
        env.jobtrail(&["sync", "--metrics-file", &flag])
            .await
            .assert_code(0);
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, whole) = reader.join().expect("the reader saw only whole files");
    assert!(whole > 0, "the reader saw the new file ({reads} reads)");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["jobtrail.prom"], "no temporary file is left behind");
    read_metrics(&metrics);
}

// ---------------------------------------------------------------------------
// Health pings

/// The secret part of the ping URLs: it must never be printed.
const PING_KEY: &str = "c0ffee00-5ec7-4e7a-9f00-000000007e57";

/// A loopback healthchecks stand-in recording (path, body) of every POST.
struct PingServer {
    url: String,
    pings: Arc<Mutex<Vec<(String, String)>>>,
}

impl PingServer {
    async fn start() -> PingServer {
        let pings: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let recorded = pings.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let recorded = recorded.clone();
            async move {
                recorded
                    .lock()
                    .expect("lock")
                    .push((uri.path().to_owned(), body));
                "OK"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        PingServer {
            url: format!("http://{addr}/ping/{PING_KEY}"),
            pings,
        }
    }

    /// What the start ping carries: the version, no summary yet.
    fn start_body() -> String {
        format!("jobtrail {} sync starting", jobtrail::app::VERSION)
    }

    /// The pings received since the last call, in order.
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.pings.lock().expect("lock"))
    }
}

fn summary_line(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.starts_with("sync #"))
        .unwrap_or_else(|| panic!("a summary line in {}", run.stdout))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn pings_say_start_then_success_or_fail_with_the_summary() {
    let server = PingServer::start().await;
    let mut env = Env::start(world(303)).await;
    let path = format!("/ping/{PING_KEY}");

    let mut runs = Vec::new();
    let run = env.jobtrail(&["sync", "--ping-url", &server.url]).await;
    run.assert_code(0);
    assert_eq!(
        server.take(),
        [
            (format!("{path}/start"), PingServer::start_body()),
            (path.clone(), summary_line(&run)),
        ]
    );
    runs.push(run);

    // From the config file, partial: /fail.
    let config = env.default_config().replacen(
        "[project.image]\ndiscover = true",
        "[project.image]\ndiscover = true\njob_ids = [\"404404404404\"]",
        1,
    );
    env.write_config(&format!("ping_url = \"{}\"\n{config}", server.url));
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(3);
    let pings = server.take();
    assert_eq!(pings[0].0, format!("{path}/start"));
    assert_eq!(pings[1], (format!("{path}/fail"), summary_line(&run)));
    runs.push(run);

    // From the environment, the credentials refused: /fail with the summary.
    env.write_config(&env.default_config());
    env.sim.set_auth(SimAuth::Token("another-token".into()));
    env.env
        .push(("JOBTRAIL_PING_URL".into(), server.url.clone()));
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    let pings = server.take();
    assert_eq!(
        pings.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        [format!("{path}/start"), format!("{path}/fail")]
    );
    assert_eq!(pings[1].1, summary_line(&run));
    runs.push(run);

    // No credentials at all: the run fails before it starts; /fail says why.
    env.env.retain(|(k, _)| k == "JOBTRAIL_PING_URL");
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    let pings = server.take();
    assert_eq!(pings[1].0, format!("{path}/fail"));
    assert!(
        pings[1].1.starts_with("sync failed: ") && pings[1].1.contains("HUAWEICLOUD_SDK_AK"),
        "{pings:?}"
    );
    runs.push(run);
    for run in &runs {
        assert!(!run.stdout.contains(PING_KEY) && !run.stderr.contains(PING_KEY));
    }
}

/// Runs a sync pinging `url`; returns the run and how long it took.
async fn sync_pinging(env: &Env, url: &str) -> (Run, Duration) {
    let started = Instant::now();
    let run = env.jobtrail(&["sync", "--ping-url", url]).await;
    (run, started.elapsed())
}

fn assert_warned_without_the_key(run: &Run, port: u16) {
    assert!(
        run.stderr.contains("ping to http://127.0.0.1:")
            && run.stderr.contains(&format!("{port}/…")),
        "a warning names the ping, redacted: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(PING_KEY) && !run.stdout.contains(PING_KEY),
        "the key is never printed: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ping_endpoint_that_refuses_or_never_answers_costs_a_bounded_few_seconds() {
    let env = Env::start(world(304)).await;

    // Accepts connections and never answers, on a run that succeeds: exit 0.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let (run, took) = sync_pinging(&env, &format!("http://127.0.0.1:{port}/{PING_KEY}")).await;
    run.assert_code(0);
    assert_warned_without_the_key(&run, port);
    assert!(took < Duration::from_secs(30), "{took:?}");

    // Refuses connections (the port was free a moment ago), on a run that
    // fails: still exit 1, not something else.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    env.sim.set_auth(SimAuth::Token("another-token".into()));
    let (run, took) = sync_pinging(&env, &format!("http://127.0.0.1:{port}/{PING_KEY}")).await;
    run.assert_code(1);
    assert_warned_without_the_key(&run, port);
    assert!(took < Duration::from_secs(30), "{took:?}");
}

// ---------------------------------------------------------------------------
// --print-failures

/// (source, project, job ID) of each `new failure:` line, and every line is one.
fn printed_failures(stdout: &str) -> BTreeSet<(String, String, String)> {
    stdout
        .lines()
        .filter(|l| !l.starts_with("sync #"))
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            assert!(
                line.starts_with("new failure: ") && words[3] == "project" && words[5] == "job",
                "{line}"
            );
            (
                words[2].to_owned(),
                words[4].to_owned(),
                words[6].to_owned(),
            )
        })
        .collect()
}

/// (source, project_id, job_id) of each row `sql` returns, read through
/// `jobtrail query` (so on either backend).
async fn job_keys(env: &Env, sql: &str) -> BTreeSet<(String, String, String)> {
    env.rows(sql, &[])
        .await
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().expect(k).to_owned();
            (s("source"), s("project_id"), s("job_id"))
        })
        .collect()
}

/// The jobs the database says became failed in the last run.
async fn became_failed(env: &Env) -> BTreeSet<(String, String, String)> {
    job_keys(
        env,
        "SELECT DISTINCT source, project_id, job_id FROM job_status_changes \
         WHERE sync_id = (SELECT MAX(id) FROM sync_runs) \
           AND new_status = 'failed' AND (old_status IS NULL OR old_status <> 'failed')",
    )
    .await
}

/// The saved query `new-failures` (last sync), as (source, project, job ID).
async fn saved_query(env: &Env, args: &[&str]) -> BTreeSet<(String, String, String)> {
    let mut full = vec!["query", "new-failures", "--format", "json"];
    full.extend_from_slice(args);
    let run = env.jobtrail(&full).await;
    run.assert_code(0);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("json");
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().expect(k).to_owned();
            (s("source"), s("project_id"), s("job_id"))
        })
        .collect()
}

on_both_backends!(print_failures_lists_exactly_the_jobs_that_became_failed_in_the_run);

async fn print_failures_lists_exactly_the_jobs_that_became_failed_in_the_run(backend: Backend) {
    let Some(env) = Env::start_on(world(305), backend).await else {
        return;
    };
    let project = env
        .world()
        .projects
        .keys()
        .next()
        .cloned()
        .expect("project");
    let flipped = env.world().projects[&project].nosql[5].id.clone();
    assert!(
        env.sim
            .set_nosql_job(&project, &flipped, "Running", "", None)
    );

    // The first sync: every failed job is news.
    let run = env.jobtrail(&["sync", "--print-failures"]).await;
    run.assert_code(0);
    let first = printed_failures(&run.stdout);
    let failed_jobs = job_keys(
        &env,
        "SELECT source, project_id, job_id FROM jobs WHERE status = 'failed'",
    )
    .await;
    assert!(!first.is_empty());
    assert_eq!(first, became_failed(&env).await);
    assert_eq!(first, failed_jobs);
    assert_eq!(saved_query(&env, &[]).await, first);
    assert!(run.stdout.starts_with("sync #"), "the summary comes first");

    // Nothing new: nothing printed but the summary; with -q, nothing at all.
    let run = env.jobtrail(&["sync", "--print-failures"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let run = env.jobtrail(&["-q", "sync", "--print-failures"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, "");

    // A running job fails, with a reason that tries to drive the terminal.
    let reason = "disk full\u{1b}[2J\nforged line";
    assert!(
        env.sim
            .set_nosql_job(&project, &flipped, "Failed", reason, Some(Utc::now()))
    );
    let run = env.jobtrail(&["-q", "sync", "--print-failures"]).await;
    run.assert_code(0);
    let want = BTreeSet::from([("nosql".to_owned(), project.clone(), flipped.clone())]);
    assert_eq!(printed_failures(&run.stdout), want);
    assert_eq!(became_failed(&env).await, want);
    assert_eq!(run.stdout.lines().count(), 1);
    assert!(
        run.stdout.contains("disk full\\x1b[2J\\nforged line") && !run.stdout.contains('\u{1b}'),
        "{}",
        run.stdout
    );
    // The saved query names any sync; the first one still lists its own.
    assert_eq!(saved_query(&env, &[]).await, want);
    assert_eq!(saved_query(&env, &["--param", "sync_id=1"]).await, first);
}
