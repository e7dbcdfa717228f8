//! `jobtrail copy`: a whole history moved between databases (SQLite to
//! SQLite, SQLite to PostgreSQL and back) arrives identical, copying again
//! changes nothing, and a target with another history is refused unless
//! merged.

use chrono::{TimeZone, Utc};
use jobtrail::report::ReportFilter;
use jobtrail::sim::SimConfig;
use jobtrail::store::{DatabaseLocation, Store};
use serde_json::Value;

use crate::util::{Env, PgDatabase, Row, text};

/// Every table, in key order, as `jobtrail query` shows it.
const TABLES: [&str; 4] = [
    "SELECT * FROM sync_runs ORDER BY id",
    "SELECT * FROM jobs ORDER BY source, project_id, job_id",
    "SELECT * FROM job_status_changes ORDER BY id",
    "SELECT * FROM sync_state ORDER BY project_id, source, key",
];

/// A history: every row of every table, raw JSON read as JSON (PostgreSQL
/// keeps it as jsonb, equal as JSON but not byte for byte).
async fn history(env: &Env, db: &str) -> Vec<Vec<Row>> {
    let mut tables = Vec::new();
    for sql in TABLES {
        let mut rows = env.rows_on(db, sql, &[]).await;
        for row in &mut rows {
            if let Some(raw) = text_of(row, "raw_json") {
                let json: Value = serde_json::from_str(&raw).expect("raw JSON");
                row.insert("raw_json".into(), json);
            }
        }
        tables.push(rows);
    }
    tables
}

fn text_of(row: &Row, key: &str) -> Option<String> {
    row.contains_key(key).then(|| text(row, key)).flatten()
}

/// `jobtrail copy --from FROM --to TO [extra]`.
async fn copy(env: &Env, from: &str, to: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["copy", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    env.jobtrail(&args).await
}

/// The report and status a user gets, as of one fixed instant.
async fn pages(location: &str) -> (String, String) {
    let now = Utc
        .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let location = DatabaseLocation::parse(std::path::Path::new(location)).expect("location");
    let store = Store::open_read_only(location).await.expect("open");
    let html = jobtrail::report::render(&store, &ReportFilter::default(), now)
        .await
        .expect("report");
    let mut status = jobtrail::status::gather_at(&store, now)
        .await
        .expect("status");
    status.database.path.clear();
    status.database.backend = "";
    status.database.file_bytes = 0;
    status.database.wal_bytes = 0;
    store.close().await;
    (html, format!("{status:?}"))
}

/// A history with two runs, a status change and state: synced, one job
/// failed in the cloud, synced again.
async fn synced_twice(seed: u64) -> Env {
    let env = Env::start(SimConfig::new(seed)).await;
    env.jobtrail(&["sync"]).await.assert_code(0);
    let world = env.world();
    let (project, job) = world
        .projects
        .iter()
        .find_map(|(p, d)| {
            d.nosql
                .iter()
                .find(|j| j.status == "Running")
                .map(|j| (p.clone(), j.id.clone()))
        })
        .expect("a running job");
    assert!(env.sim.set_nosql_job(
        &project,
        &job,
        "Failed",
        "Volume detached",
        Some(Utc::now())
    ));
    env.jobtrail(&["sync"]).await.assert_code(0);
    env
}

/// Copies the env's history to `target`, twice, then back to `back`; checks
/// everything arrives and nothing is copied twice. Then refuses another
/// history in `target` unless merged, and merging twice adds once.
async fn round_trip(env: &Env, target: &str, back: &str) {
    let source = env.db_arg();
    let first = copy(env, &source, target, &[]).await;
    first.assert_code(0);
    assert!(first.stdout.contains("written: 2 runs"), "{}", first.stdout);
    let again = copy(env, &source, target, &[]).await;
    again.assert_code(0);
    assert!(
        again
            .stdout
            .contains("written: 0 runs, 0 jobs, 0 status changes, 0 state entries"),
        "copying again changes nothing: {}",
        again.stdout
    );
    let original = history(env, &source).await;
    assert!(original[1].len() > 100 && original[2].len() > original[1].len());
    assert_eq!(history(env, target).await, original, "copied as it was");
    assert_eq!(
        pages(target).await,
        pages(&source).await,
        "same report and status"
    );
    copy(env, target, back, &[]).await.assert_code(0);
    assert_eq!(history(env, back).await, original, "and back again");

    // The target syncs on its own: now it holds a run the source lacks.
    env.jobtrail_on(target, &["sync"]).await.assert_code(0);
    let target_runs = env
        .scalar_on(target, "SELECT COUNT(*) FROM sync_runs")
        .await;
    assert_eq!(target_runs, 3);
    let refused = copy(env, back, target, &[]).await;
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("different history") && refused.stderr.contains("--merge"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        env.scalar_on(target, "SELECT COUNT(*) FROM sync_runs")
            .await,
        target_runs,
        "a refused copy changes nothing"
    );

    // A history of its own (the same cloud synced into a second file),
    // merged in: its runs are added, its newer sightings win, once.
    let other = env.dir.path().join("other.db").display().to_string();
    env.jobtrail_on(&other, &["sync"]).await.assert_code(0);
    let merged = copy(env, &other, target, &["--merge"]).await;
    merged.assert_code(0);
    assert!(
        merged.stdout.contains("written: 1 runs"),
        "{}",
        merged.stdout
    );
    assert_eq!(
        env.scalar_on(target, "SELECT COUNT(*) FROM sync_runs")
            .await,
        target_runs + 1
    );
    let again = copy(env, &other, target, &["--merge"]).await;
    again.assert_code(0);
    assert!(
        again
            .stdout
            .contains("written: 0 runs, 0 jobs, 0 status changes, 0 state entries"),
        "merging again changes nothing: {}",
        again.stdout
    );
    let jobs = env.scalar_on(target, "SELECT COUNT(*) FROM jobs").await;
    assert_eq!(jobs, original[1].len() as i64, "one row per job");
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_between_sqlite_files_is_identical_idempotent_and_refuses_another_history() {
    let env = synced_twice(91).await;
    let target = env.dir.path().join("copy.db").display().to_string();
    let back = env.dir.path().join("back.db").display().to_string();
    round_trip(&env, &target, &back).await;
    let same = copy(&env, &target, &format!("sqlite:{target}"), &[]).await;
    same.assert_code(2);
    assert!(same.stderr.contains("the same database"), "{}", same.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_sqlite_to_postgres_and_back_gives_identical_histories() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let env = synced_twice(92).await;
    let back = env.dir.path().join("back.db").display().to_string();
    round_trip(&env, &pg.url, &back).await;
}
