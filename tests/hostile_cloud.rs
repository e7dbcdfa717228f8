//! A cloud that answers with hostile data: IDs that would move the request to
//! another path, values of megabytes, JSON nested past every parser's limit,
//! bytes that are not UTF-8, and a list that shows one job twice in two states.
//! Each is stored within the caps or refused, and the user is told (a warning
//! printed and kept in `sync_runs.error`).

use std::time::Duration;

use chrono::Utc;
use jobtrail::http::HttpSettings;
use jobtrail::sim::{DEFAULT_PROJECT, Fault, FaultRule, SimConfig};
use jobtrail::store::RunOutcome;
use jobtrail::sync::SyncReport;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;

use crate::util::{Env, SimCase};

/// Retries as in production, on a millisecond scale; bodies up to the default limit.
fn fast_http() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(20),
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        retry_budget: Duration::from_secs(10),
        ..HttpSettings::default()
    }
}

/// One window of NoSQL history (three pages of 50), a few DBSS and image jobs.
fn small_world() -> SimConfig {
    SimConfig {
        nosql_jobs: 150,
        history_days: 20,
        dbss_resources: 2,
        image_jobs: 4,
        ..SimConfig::new(18)
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
    async fn start(config: SimConfig) -> Case {
        Case(SimCase::start(config, "hostile.db", fast_http()).await)
    }

    async fn pool(&self) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(self.db())
            .read_only(true);
        SqlitePool::connect_with(options).await.expect("open")
    }

    /// `sync_runs.error` of the latest run.
    async fn run_record(&self) -> String {
        let pool = self.pool().await;
        let text: Option<String> =
            sqlx::query_scalar("SELECT error FROM sync_runs ORDER BY id DESC LIMIT 1")
                .fetch_one(&pool)
                .await
                .expect("run");
        pool.close().await;
        text.unwrap_or_default()
    }

    /// The NoSQL jobs of the default project, newest first (the list's order).
    fn nosql_jobs(&self) -> Vec<jobtrail::sim::NosqlJob> {
        self.sim.world().projects[DEFAULT_PROJECT].nosql.clone()
    }
}

fn warnings(report: &SyncReport) -> String {
    report
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a request path is one of the APIs' own, with no `.`/`..` segment.
fn is_api_path(path: &str) -> bool {
    let s: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |v: &str| !v.is_empty() && v != "." && v != "..";
    match s.as_slice() {
        ["v3", _, "jobs"] | ["v2", _, "audit", "instances"] | ["v1", _, "image-server-jobs"] => {
            true
        }
        ["v1", _, "image-server-jobs", j] => id(j),
        ["v1", _, "dbss", "audit", "jobs", r] | ["v1", _, "audit", r, "jobs"] => id(r),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_ids_from_discovery_are_never_requested_and_the_user_is_told() {
    let case = Case::start(small_world()).await;
    let planted = vec![".".to_owned(), "..".to_owned(), "a/../b".to_owned()];
    case.sim.add_fault(FaultRule::new(
        "/audit/instances",
        Fault::ExtraIds(planted.clone()),
    ));
    case.sim.add_fault(FaultRule::new(
        "/image-server-jobs",
        Fault::ExtraIds(planted),
    ));
    let report = case.sync().await;
    let outside: Vec<String> = case
        .sim
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| !is_api_path(p))
        .collect();
    assert!(outside.is_empty(), "requests outside the API: {outside:?}");
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{:?}", report.errors);
    let said = warnings(&report);
    for (source, kind) in [("dbss", "resource"), ("image", "job")] {
        assert!(
            said.contains(&format!(
                "{source} (project {DEFAULT_PROJECT}): 3 {kind} ID(s) not requested"
            )),
            "{said}"
        );
    }
    assert!(
        said.contains("\"..\"") && said.contains("not requested"),
        "{said}"
    );
    assert!(
        case.run_record().await.contains("warning: "),
        "kept with the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dot_id_in_the_configuration_is_refused_with_its_key_and_line() {
    let env = Env::start(SimConfig {
        nosql_jobs: 5,
        ..SimConfig::new(3)
    })
    .await;
    env.write_config(&format!(
        "[[project]]\nid = \"{DEFAULT_PROJECT}\"\nregion = \"cn-north-4\"\n\n[project.image]\njob_ids = [\n  \"702364883651395584\",\n  \"..\",\n]\n"
    ));
    let run = env.jobtrail(&["sync"]).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("line 8")
            && run.stderr.contains("project.image.job_ids")
            && run.stderr.contains("\"..\""),
        "{}",
        run.stderr
    );
    assert_eq!(env.sim.request_count(), 0, "nothing was requested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_reason_is_stored_cut_and_the_report_stays_small() {
    let env = Env::start(small_world()).await;
    let world = env.world();
    let job = &world.projects[DEFAULT_PROJECT].nosql[3];
    let reason = "quota exceeded; ".repeat(5 * 1024 * 1024 / 16);
    assert!(env.sim.set_nosql_job(
        DEFAULT_PROJECT,
        &job.id,
        "Failed",
        &reason,
        Some(job.start + chrono::Duration::minutes(2)),
    ));
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(0);
    let pool = env.pool().await;
    let (stored, raw_len, status, original, cut_record): (
        String,
        i64,
        String,
        Option<i64>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT fail_reason, length(raw_json), json_extract(raw_json, '$.status'), \
             json_extract(raw_json, '$._jobtrail.original_bytes'), \
             (SELECT error FROM sync_runs ORDER BY id DESC LIMIT 1) \
             FROM jobs WHERE job_id = ?",
    )
    .bind(&job.id)
    .fetch_one(&pool)
    .await
    .expect("the job is stored");
    pool.close().await;
    assert!(stored.len() <= 4096, "{}", stored.len());
    assert!(stored.starts_with("quota exceeded; "));
    assert!(stored.ends_with("…[cut: 5242880 bytes]"), "{stored:.100}");
    assert!(raw_len <= 64 * 1024, "{raw_len}");
    assert_eq!(
        status, "Failed",
        "json_extract still finds the parsed fields"
    );
    assert!(original > Some(5_242_880), "{original:?}");
    assert!(
        cut_record
            .as_deref()
            .is_some_and(|r| r.contains("warning: ")),
        "{cut_record:?}"
    );
    assert!(
        run.stderr
            .contains("stored with values cut to the storage limits")
            && run
                .stderr
                .contains("fail_reason in 1 (up to 5242880 bytes)"),
        "{}",
        run.stderr
    );

    let page = env.dir.path().join("report.html");
    env.jobtrail(&["report", "-o", &page.display().to_string()])
        .await
        .assert_code(0);
    let size = std::fs::metadata(&page).expect("report").len();
    assert!(size < 100 * 1024, "report of {size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_answers_leave_a_small_database() {
    let case = Case::start(small_world()).await;
    // Every NoSQL page's first job carries 8 MB of text.
    let member = format!("\"blob\":\"{}\"", "x".repeat(8 * 1024 * 1024));
    case.sim.add_fault(FaultRule::new(
        "/jobs",
        Fault::JobMember(member.into_bytes()),
    ));
    let report = case.sync().await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{:?}", report.errors);
    let pool = case.pool().await;
    let (jobs, biggest): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), MAX(length(raw_json)) FROM jobs WHERE source = 'nosql'")
            .fetch_one(&pool)
            .await
            .expect("count");
    pool.close().await;
    assert_eq!(jobs, 150);
    assert!(biggest <= 64 * 1024, "{biggest}");
    let size = std::fs::metadata(case.db()).expect("db").len()
        + std::fs::metadata(case.db().with_extension("db-wal")).map_or(0, |m| m.len());
    assert!(size < 8 * 1024 * 1024, "database of {size} bytes");
    assert!(
        warnings(&report).contains("raw_json in "),
        "{}",
        warnings(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_job_keeps_json_extract_working_over_the_table() {
    let case = Case::start(small_world()).await;
    let depth = 100_000;
    let member = format!("\"deep\":{}1{}", "[".repeat(depth), "]".repeat(depth));
    case.sim.add_fault(
        FaultRule::new("/jobs", Fault::JobMember(member.into_bytes())).with_query("offset=0"),
    );
    let report = case.sync().await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{:?}", report.errors);
    let pool = case.pool().await;
    let found: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE json_extract(raw_json, '$.status') IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .expect("json_extract over every job works");
    let why: String = sqlx::query_scalar(
        "SELECT json_extract(raw_json, '$._jobtrail.cut') FROM jobs \
         WHERE json_extract(raw_json, '$._jobtrail.original_depth') > 1000",
    )
    .fetch_one(&pool)
    .await
    .expect("the deep job says why it was cut");
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    assert_eq!(found, total);
    assert!(why.contains("levels deep"), "{why}");
    assert!(
        warnings(&report).contains("nested up to 100001 levels deep"),
        "{}",
        warnings(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_be_read_is_left_out_by_name_and_its_page_kept() {
    let case = Case::start(small_world()).await;
    // A second `id` (nested past serde's recursion limit): that job cannot be read.
    let member = format!("\"id\":{{\"x\":{}{}}}", "[".repeat(500), "]".repeat(500));
    case.sim.add_fault(
        FaultRule::new("/jobs", Fault::JobMember(member.into_bytes())).with_query("offset=50"),
    );
    let report = case.sync().await;
    assert_eq!(report.outcome, RunOutcome::Partial, "{:?}", report.errors);
    let text: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("1 job(s) could not be read") && text[0].contains("jobs[0]"),
        "{text:?}"
    );
    let pool = case.pool().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE source = 'nosql'")
        .fetch_one(&pool)
        .await
        .expect("count");
    let watermark: Option<String> = sqlx::query_scalar(
        "SELECT value FROM sync_state WHERE source = 'nosql' AND key = 'watermark'",
    )
    .fetch_optional(&pool)
    .await
    .expect("state");
    pool.close().await;
    assert_eq!(stored, 149, "the rest of the page is stored");
    assert!(watermark.is_some(), "the window is not blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_that_is_not_utf8_costs_that_byte_not_the_window() {
    let case = Case::start(small_world()).await;
    case.sim.add_fault(
        FaultRule::new("/jobs", Fault::JobMember(b"\"note\":\"caf\xe9\"".to_vec()))
            .with_query("offset=0"),
    );
    let report = case.sync().await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{:?}", report.errors);
    let said = warnings(&report);
    assert!(
        said.contains("1 answer(s) were not valid UTF-8 (1 invalid byte sequence(s)"),
        "{said}"
    );
    assert!(case.run_record().await.contains("not valid UTF-8"));
    let pool = case.pool().await;
    let (note, stored): (String, i64) = sqlx::query_as(
        "SELECT (SELECT json_extract(raw_json, '$.note') FROM jobs WHERE raw_json LIKE '%\"note\"%'), \
         (SELECT COUNT(*) FROM jobs WHERE source = 'nosql')",
    )
    .fetch_one(&pool)
    .await
    .expect("stored");
    pool.close().await;
    assert_eq!(note, "caf\u{fffd}");
    assert_eq!(stored, 150);
    // The next sync goes on from the window, with the fault still there.
    let again = case.sync().await;
    assert_eq!(again.outcome, RunOutcome::Succeeded, "{:?}", again.errors);
}

/// The wire form of a NoSQL job, as the list sends it, in `status`.
fn wire_job(job: &jobtrail::sim::NosqlJob, status: &str) -> String {
    let time = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S+0000").to_string();
    let end = if status == "Running" {
        String::new()
    } else {
        time(job.start + chrono::Duration::minutes(3))
    };
    serde_json::json!({
        "id": job.id, "name": job.name, "status": status,
        "start_time": time(job.start), "end_time": end,
        "progress": if status == "Running" { "40%" } else { "" },
        "instance": {"id": job.instance_id, "name": job.instance_name},
        "fail_reason": "",
    })
    .to_string()
}

/// One sync where job `nosql[50]` (first on the page at offset 50) is `world`
/// there and `copy` on the page at offset 100; `copy_last` chooses which page
/// answers last. Returns its stored status and its history.
async fn moved_job(world: &str, copy: &str, copy_last: bool) -> (String, Vec<String>) {
    let case = Case::start(small_world()).await;
    let job = case.nosql_jobs()[50].clone();
    let end = (world != "Running").then(|| job.start + chrono::Duration::minutes(3));
    assert!(
        case.sim
            .set_nosql_job(DEFAULT_PROJECT, &job.id, world, "", end)
    );
    let delay = Duration::from_millis(400);
    let after = if copy_last { delay } else { Duration::ZERO };
    case.sim.add_fault(
        FaultRule::new(
            "/jobs",
            Fault::MovedJob {
                job: wire_job(&job, copy),
                after,
            },
        )
        .with_query("offset=100"),
    );
    if !copy_last {
        case.sim
            .add_fault(FaultRule::new("/jobs", Fault::Latency(delay)).with_query("offset=50"));
    }
    let report = case.sync().await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{:?}", report.errors);
    let pool = case.pool().await;
    let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = ?")
        .bind(&job.id)
        .fetch_one(&pool)
        .await
        .expect("stored");
    let history: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT old_status, new_status FROM job_status_changes WHERE job_id = ? ORDER BY id",
    )
    .bind(&job.id)
    .fetch_all(&pool)
    .await
    .expect("history");
    pool.close().await;
    let history = history
        .into_iter()
        .map(|(old, new)| format!("{}→{new}", old.unwrap_or_default()))
        .collect();
    (status, history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_two_pages_ends_in_its_newest_state_whatever_page_answers_last() {
    // The later page shows it finished: it ends finished, its history in order.
    for copy_last in [false, true] {
        assert_eq!(
            moved_job("Running", "Completed", copy_last).await,
            (
                "succeeded".to_owned(),
                vec!["→running".to_owned(), "running→succeeded".to_owned()]
            ),
            "copy_last = {copy_last}"
        );
    }
    // The later page shows an older state: it never goes back to running.
    for copy_last in [false, true] {
        assert_eq!(
            moved_job("Completed", "Running", copy_last).await,
            ("succeeded".to_owned(), vec!["→succeeded".to_owned()]),
            "copy_last = {copy_last}"
        );
    }
}
