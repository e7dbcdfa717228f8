//! The fault matrix: every fault the simulator can inject, and the outcome a
//! user wants — retried and complete (transient), or a clear per-window / per-ID
//! error with everything else stored (permanent) — then a clean re-sync
//! completes the data. Runs the sync through the library with short timeouts
//! and backoffs so the whole matrix takes seconds.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jobtrail::config::Settings;
use jobtrail::http::{ApiClient, HttpSettings};
use jobtrail::sim::{Fault, FaultRule, SimConfig};
use jobtrail::store::RunOutcome;
use jobtrail::sync::{SyncOptions, SyncReport};

/// Every failure of a sync, one per line, as the user reads them.
fn error_text(report: &SyncReport) -> String {
    let lines: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Retries as in production, but on a millisecond scale.
fn fast_http() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(500),
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        retry_budget: Duration::from_secs(10),
        max_body_bytes: 1024 * 1024,
        ..HttpSettings::default()
    }
}

fn world_config(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 260,
        history_days: 70,
        dbss_resources: 4,
        image_jobs: 8,
        ..SimConfig::new(seed)
    }
}

/// The shared [`SimCase`] with this file's own questions.
struct Case(SimCase);

impl std::ops::Deref for Case {
    type Target = SimCase;
    fn deref(&self) -> &SimCase {
        &self.0
    }
}

impl Case {
    async fn start(seed: u64) -> Case {
        Case(SimCase::start(world_config(seed), "faults.db", fast_http()).await)
    }

    /// (source, job_id) → raw status, as the simulator holds them (listed items only).
    fn truth(&self) -> BTreeMap<(String, String), String> {
        let mut map = BTreeMap::new();
        for data in self.sim.world().projects.values() {
            for j in &data.nosql {
                map.insert(("nosql".into(), j.id.clone()), j.status.clone());
            }
            for i in data.audit_instances.iter().filter(|i| i.listed) {
                for j in &i.jobs {
                    map.insert(("dbss".into(), j.job_id.clone()), j.status.clone());
                }
            }
            for j in data.image_jobs.iter().filter(|j| j.listed) {
                map.insert(("image".into(), j.id.clone()), j.status.clone());
                for s in &j.sub_jobs {
                    map.insert(("image".into(), s.id.clone()), s.status.clone());
                }
            }
        }
        map
    }

    async fn stored(&self) -> BTreeMap<(String, String), String> {
        stored_rows(&self.db()).await
    }
}

async fn stored_rows(db: &Path) -> BTreeMap<(String, String), String> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT source, job_id, raw_status FROM jobs")
            .fetch_all(&pool)
            .await
            .expect("rows");
    pool.close().await;
    rows.into_iter()
        .map(|(s, id, raw)| ((s, id), raw))
        .collect()
}

/// A fault that passes: the sync retries and ends complete.
async fn transient(seed: u64, rule: FaultRule) {
    let case = Case::start(seed).await;
    let fault = format!("{:?}", rule.fault);
    case.sim.add_fault(rule);
    let report = case.sync().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Succeeded,
        "{fault}: {:?}",
        report.errors
    );
    assert_eq!(
        case.stored().await,
        case.truth(),
        "{fault}: complete after retries"
    );
}

/// A fault that stays: that unit fails by name, the rest is stored correctly,
/// and a clean re-sync completes the data.
async fn permanent(seed: u64, rule: FaultRule, error_says: &[&str]) {
    let case = Case::start(seed).await;
    let fault = format!("{:?}", rule.fault);
    case.sim.add_fault(rule);
    let report = case.sync().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Partial,
        "{fault}: {:?}",
        report.errors
    );
    let text = error_text(&report);
    for needle in error_says {
        assert!(
            text.contains(needle),
            "{fault}: error names {needle:?}:\n{text}"
        );
    }
    let truth = case.truth();
    let stored = case.stored().await;
    // A total that keeps changing withholds nothing: every job arrived, but the
    // window is still failed, so the watermark cannot pass it.
    let withholds = !fault.starts_with("ChangingTotal");
    assert!(
        !stored.is_empty() && (stored.len() < truth.len() || !withholds),
        "{fault}: some stored, some missing"
    );
    for (key, raw) in &stored {
        assert_eq!(truth.get(key), Some(raw), "{fault}: stored rows are right");
    }
    case.sim.clear_faults();
    let again = case.sync().await;
    assert_eq!(
        again.outcome,
        RunOutcome::Succeeded,
        "{fault}: {:?}",
        again.errors
    );
    assert_eq!(
        case.stored().await,
        truth,
        "{fault}: a clean re-sync completes the data"
    );
}

fn nosql_page(fault: Fault) -> FaultRule {
    FaultRule::new("/jobs", fault).with_query("offset=50")
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_are_retried_and_nothing_is_lost() {
    let cases: Vec<FaultRule> = vec![
        FaultRule::new("/jobs", Fault::Latency(Duration::from_millis(150))).times(5),
        nosql_page(Fault::TooManyRequests {
            retry_after_secs: Some(1),
        })
        .times(2),
        nosql_page(Fault::TooManyRequests {
            retry_after_secs: None,
        })
        .times(3),
        nosql_page(Fault::Status(500)).times(2),
        FaultRule::new("/audit/", Fault::Status(502)).times(2),
        FaultRule::new("/image-server-jobs/", Fault::Status(503)).times(3),
        nosql_page(Fault::Status(504)).times(2),
        nosql_page(Fault::ConnectionReset).times(2),
        nosql_page(Fault::Hang(Duration::from_secs(3))).times(1),
        nosql_page(Fault::Truncated).times(1),
        FaultRule::new("/image-server-jobs/", Fault::InvalidJson).times(2),
        FaultRule::new("/audit/", Fault::WrongShape).times(1),
        nosql_page(Fault::HtmlPage).times(2),
        FaultRule::new("/jobs", Fault::WrongContentType),
        nosql_page(Fault::ChangingTotal).times(1),
    ];
    for (i, rule) in cases.into_iter().enumerate() {
        transient(100 + i as u64, rule).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_faults_fail_only_their_unit_with_a_clear_error() {
    permanent(
        201,
        nosql_page(Fault::Status(503)),
        &["nosql (project", "window", "HTTP 503", "/jobs?"],
    )
    .await;
    permanent(
        202,
        nosql_page(Fault::InvalidJson),
        &["malformed response", "not valid JSON"],
    )
    .await;
    permanent(203, nosql_page(Fault::Truncated), &["truncated"]).await;
    permanent(
        204,
        nosql_page(Fault::WrongShape),
        &["malformed response", "field `jobs`"],
    )
    .await;
    permanent(205, nosql_page(Fault::HtmlPage), &["HTTP 502", "HTML page"]).await;
    permanent(206, nosql_page(Fault::ConnectionReset), &["gave up after"]).await;
    permanent(
        207,
        nosql_page(Fault::Hang(Duration::from_secs(5))),
        &["timed out"],
    )
    .await;
    permanent(
        208,
        nosql_page(Fault::Oversized(2 * 1024 * 1024)),
        &["larger than the 1048576-byte limit"],
    )
    .await;
    permanent(
        209,
        nosql_page(Fault::TooManyRequests {
            retry_after_secs: Some(1),
        }),
        &["HTTP 429"],
    )
    .await;
    permanent(
        210,
        FaultRule::new("/image-server-jobs/", Fault::Status(404)),
        &["image (project", "job ", "HTTP 404"],
    )
    .await;
    permanent(
        211,
        FaultRule::new("/audit/", Fault::Status(500)).with_query(""),
        &["dbss (project"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_refuses_connections_fails_fast_and_names_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let base = reqwest::Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    let settings = Settings {
        projects: vec![jobtrail::app::simulated_project("p1", &base, 10)],
        ..Settings::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let client = ApiClient::new(None, fast_http()).expect("client");
    let started = std::time::Instant::now();
    let report = jobtrail::app::locked_sync(
        &dir.path().join("x.db"),
        &settings,
        &client,
        &SyncOptions::default(),
        false,
    )
    .await
    .expect("sync runs");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded in time"
    );
    assert_eq!(
        report.outcome,
        RunOutcome::Failed,
        "nothing could be synced"
    );
    let text = error_text(&report);
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("could not connect"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_that_change_status_between_calls_end_up_right() {
    let case = Case::start(301).await;
    case.sim.set_running_flip_rate(1.0);
    let first = case.sync().await;
    assert_eq!(first.outcome, RunOutcome::Succeeded);
    // Every running job served has since become final in the simulator.
    let second = case.sync().await;
    assert_eq!(second.outcome, RunOutcome::Succeeded);
    assert!(second.totals.changed > 0, "changes recorded");
    let third = case.sync().await;
    assert_eq!(third.outcome, RunOutcome::Succeeded);
    assert_eq!(case.stored().await, case.truth());
}

// ---- storage faults: a clear error, and the file left as it was ----

use crate::util::{Env, SimCase};

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let env = Env::start(world_config(401)).await;
    let junk = b"this is a spreadsheet, not a database\n".repeat(200);
    std::fs::write(env.db(), &junk).expect("write junk");
    for args in [&["sync"][..], &["status"][..], &["query", "select 1"][..]] {
        let run = env.jobtrail(args).await;
        run.assert_code(1);
        assert!(
            run.stderr.contains("is not a jobtrail database"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&env.db().display().to_string()),
            "names the file"
        );
    }
    assert_eq!(
        file_bytes(&env.db()),
        junk,
        "never recreated or overwritten"
    );
    assert_eq!(
        env.sim.request_count(),
        0,
        "no request before the database is known to be usable"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_jobtrail_is_refused_untouched() {
    let env = Env::start(world_config(402)).await;
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    {
        let pool = env.writable_pool().await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', 1, x'00', 0)",
        )
        .execute(&pool)
        .await
        .expect("insert");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .expect("checkpoint");
        pool.close().await;
    }
    let before = file_bytes(&env.db());
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("newer jobtrail") && run.stderr.contains("upgrade jobtrail"),
        "{}",
        run.stderr
    );
    assert_eq!(file_bytes(&env.db()), before, "left exactly as it was");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_that_cannot_be_written_gives_a_clear_error() {
    let env = Env::start(world_config(403)).await;
    // /proc refuses new files even to root, so this holds in CI containers too.
    let run = crate::util::run_cli(
        env.dir.path().to_path_buf(),
        vec![
            "--db".into(),
            "/proc/jobtrail-nowhere/jobtrail.db".into(),
            "--config".into(),
            env.config_path().display().to_string(),
            "sync".into(),
        ],
        env.env.clone(),
    )
    .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("/proc/jobtrail-nowhere"),
        "{}",
        run.stderr
    );
    assert_eq!(env.sim.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_the_run_and_keeps_what_was_stored() {
    let case = Case::start(404).await;
    let first = case.sync().await;
    assert_eq!(first.outcome, RunOutcome::Succeeded);
    let before = case.stored().await;

    // New jobs arrive, but the database may not grow by a single page.
    for project in case.sim.world().projects.keys() {
        case.sim.add_nosql_jobs(project, 400);
    }
    let mut sqlite = jobtrail::store::SqliteStore::open(&case.db())
        .await
        .expect("open");
    let pages = sqlite.page_count().await.expect("pages");
    sqlite.limit_pages(pages).await.expect("limit");
    let store = jobtrail::store::Store::Sqlite(sqlite);
    let client = ApiClient::new(None, fast_http()).expect("client");
    let options = SyncOptions {
        full: true,
        ..SyncOptions::default()
    };
    let report = jobtrail::sync::run(
        &case.settings,
        &store,
        &client,
        &options,
        &jobtrail::progress::Progress::hidden(),
    )
    .await;
    let failed = match report {
        Ok(report) => {
            assert_eq!(report.outcome, RunOutcome::Failed, "{:?}", report.errors);
            error_text(&report)
        }
        Err(e) => e.to_string(),
    };
    assert!(failed.contains("full"), "says the disk is full: {failed}");
    store.close().await;

    let check: String = {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(case.db())
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .expect("check")
    };
    assert_eq!(check, "ok");
    let after = case.stored().await;
    for (key, raw) in &before {
        assert_eq!(after.get(key), Some(raw), "{key:?} kept as it was");
    }
    // With room again, the next sync completes.
    let again = case.sync().await;
    assert_eq!(again.outcome, RunOutcome::Succeeded, "{:?}", again.errors);
    assert_eq!(case.stored().await, case.truth());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_database_and_its_wal_and_lock_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start(world_config(405)).await;
    env.jobtrail(&["sync"]).await.assert_code(0);
    let db = env.db().display().to_string();
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let path = format!("{db}{suffix}");
        if let Ok(meta) = std::fs::metadata(&path) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{path}");
        } else {
            assert!(suffix == "-wal" || suffix == "-shm", "{path} exists");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    let env = Env::start(world_config(406)).await;
    let text = format!(
        "{}\n[endpoints]\nnosql = \"http://jobs.example.com\"\n",
        env.default_config()
    );
    std::fs::write(env.config_path(), text).expect("config");
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("endpoints.nosql") && run.stderr.contains("allow_insecure_endpoints"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("line "),
        "names the line: {}",
        run.stderr
    );
}

// ---- regressions found in review ----

#[tokio::test(flavor = "multi_thread")]
async fn a_list_that_keeps_changing_or_claims_an_absurd_total_fails_its_window_only() {
    permanent(
        501,
        nosql_page(Fault::ChangingTotal),
        &["changed while it was paged"],
    )
    .await;
    // Once crashed the process allocating every offset up to the claimed total.
    permanent(
        502,
        FaultRule::new("/jobs", Fault::TotalCount(100_000_000_000_000)).with_query("offset=0"),
        &["total_count 100000000000000 is not plausible"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_that_changes_once_is_read_again_and_complete() {
    let case = Case::start(503).await;
    case.sim
        .add_fault(nosql_page(Fault::ChangingTotal).times(1));
    let report = case.sync().await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{:?}", report.errors);
    assert_eq!(case.stored().await, case.truth());
    let watermark_rows: i64 = {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(case.db())
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
        sqlx::query_scalar("SELECT COUNT(*) FROM sync_state WHERE key = 'watermark'")
            .fetch_one(&pool)
            .await
            .expect("count")
    };
    assert_eq!(watermark_rows, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_403_on_one_resource_fails_only_that_resource() {
    let case = Case::start(504).await;
    let bad = crate::util::first_listed_instance(&case.sim.world());
    case.sim.add_fault(FaultRule::new(
        format!("{}/jobs", bad.resource_id),
        Fault::Status(403),
    ));
    case.sim.add_fault(FaultRule::new(
        format!("jobs/{}", bad.resource_id),
        Fault::Status(403),
    ));
    let report = case.sync().await;
    assert_eq!(report.outcome, RunOutcome::Partial, "{:?}", report.errors);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let first = report.errors[0].to_string();
    assert!(first.contains(&bad.resource_id) && first.contains("HTTP 403"));
    let stored = case.stored().await;
    let missing: Vec<_> = case
        .truth()
        .into_keys()
        .filter(|k| !stored.contains_key(k))
        .collect();
    let bad_jobs: Vec<(String, String)> = bad
        .jobs
        .iter()
        .map(|j| ("dbss".to_owned(), j.job_id.clone()))
        .collect();
    assert_eq!(
        missing, bad_jobs,
        "everything but that resource's jobs is stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_never_answers_costs_one_retry_budget_not_one_per_call() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Accepts connections and never answers; counts them. Bounded: it stops with the test.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let base = reqwest::Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    let mut project = jobtrail::app::simulated_project("p1", &base, 10);
    project.dbss = Some(jobtrail::config::DbssSettings {
        resource_ids: (0..10).map(|i| format!("res-{i}")).collect(),
        discover: false,
    });
    project.image = Some(jobtrail::config::ImageSettings {
        job_ids: (0..10).map(|i| format!("job-{i}")).collect(),
        discover: false,
    });
    let settings = Settings {
        projects: vec![project],
        ..Settings::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let http = HttpSettings {
        timeout: Duration::from_millis(300),
        retry_budget: Duration::from_secs(3),
        ..fast_http()
    };
    let client = ApiClient::new(None, http.clone()).expect("client");
    let report = jobtrail::app::locked_sync(
        &dir.path().join("x.db"),
        &settings,
        &client,
        &SyncOptions::default(),
        false,
    )
    .await
    .expect("sync runs");
    server.abort();
    assert_eq!(report.outcome, RunOutcome::Failed);
    let connections = accepted.load(Ordering::SeqCst);
    assert!(
        connections <= http.max_attempts,
        "one call's attempts reach the dead endpoint, the other 20 calls fail at once ({connections} connections)"
    );
    let text = error_text(&report);
    assert!(
        text.contains("timed out") && text.contains("did not answer earlier in this run"),
        "{text}"
    );
}
