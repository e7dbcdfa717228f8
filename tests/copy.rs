//! `jobtrail copy`: a whole history moved between databases (SQLite to
//! SQLite, SQLite to PostgreSQL and back, PostgreSQL to PostgreSQL) arrives
//! identical, the runs' scopes and so `status` included, copying again
//! changes nothing, a target with another history is refused unless merged,
//! and a database from before scopes were recorded still copies.

use chrono::{TimeZone, Utc};
use jobtrail::report::ReportFilter;
use jobtrail::sim::{Fault, FaultRule, SimConfig};
use jobtrail::store::{DatabaseLocation, Store};
use serde_json::Value;

use crate::util::{Env, PgDatabase, Row, text};

/// Every history table, in key order, as `jobtrail query` shows it; the
/// last, `sync_scopes`, is missing from a database older than scopes.
const TABLES: [&str; 5] = [
    "SELECT * FROM sync_runs ORDER BY id",
    "SELECT * FROM jobs ORDER BY source, project_id, job_id",
    "SELECT * FROM job_status_changes ORDER BY id",
    "SELECT * FROM sync_state ORDER BY project_id, source, key",
    "SELECT * FROM sync_scopes ORDER BY sync_id, project_id, source",
];

/// A history: every row of every table, raw JSON read as JSON (PostgreSQL
/// keeps it as jsonb, equal as JSON but not byte for byte).
async fn history(env: &Env, db: &str) -> Vec<Vec<Row>> {
    tables(env, db, &TABLES).await
}

/// [`history`] of the tables `queries` read.
async fn tables(env: &Env, db: &str, queries: &[&str]) -> Vec<Vec<Row>> {
    let mut tables = Vec::new();
    for &sql in queries {
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

/// A history with two runs, a status change, state, and a scope failing
/// since the first run: synced while the image API refused, one job failed in
/// the cloud, synced again; then the image API answers again.
async fn synced_twice(seed: u64) -> Env {
    let env = Env::start(SimConfig::new(seed)).await;
    env.sim
        .add_fault(FaultRule::new("/image-server-jobs", Fault::Status(403)));
    env.jobtrail(&["sync"]).await.assert_code(3);
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
    env.jobtrail(&["sync"]).await.assert_code(3);
    env.sim.clear_faults();
    env
}

/// `jobtrail status` says the image scope has failed since the first run.
async fn assert_image_failing(env: &Env, db: &str) {
    let status = env.jobtrail_on(db, &["status"]).await;
    status.assert_code(0);
    assert!(
        status.stdout.contains("Failing scopes: 1")
            && status
                .stdout
                .lines()
                .any(|l| l.contains("image") && l.contains("failed")),
        "{db}: {}",
        status.stdout
    );
}

/// The line a copy that finds nothing new prints.
const NOTHING_WRITTEN: &str =
    "written: 0 runs, 0 jobs, 0 status changes, 0 state entries, 0 run scopes";

/// Copies the env's history to `target`, twice, then back to `back`; checks
/// everything arrives (the runs' scopes, so what `status` says, included) and
/// nothing is copied twice. Then refuses another history in `target` unless
/// merged, and merging twice adds once, the merged run's scopes under its
/// new number.
async fn round_trip(env: &Env, target: &str, back: &str) {
    let source = env.db_arg();
    let first = copy(env, &source, target, &[]).await;
    first.assert_code(0);
    assert!(
        first.stdout.contains("written: 2 runs") && first.stdout.contains(", 6 run scopes"),
        "two runs of three scopes each: {}",
        first.stdout
    );
    let again = copy(env, &source, target, &[]).await;
    again.assert_code(0);
    assert!(
        again.stdout.contains(NOTHING_WRITTEN),
        "copying again changes nothing: {}",
        again.stdout
    );
    let original = history(env, &source).await;
    assert!(original[1].len() > 100 && original[2].len() > original[1].len());
    assert_eq!(original[4].len(), 6, "{:?}", original[4]);
    assert_eq!(history(env, target).await, original, "copied as it was");
    let source_pages = pages(&source).await;
    assert_eq!(pages(target).await, source_pages, "same report and status");
    assert_image_failing(env, target).await;
    copy(env, target, back, &[]).await.assert_code(0);
    assert_eq!(history(env, back).await, original, "and back again");
    assert_eq!(pages(back).await, source_pages, "the same status back");
    assert_image_failing(env, back).await;
    let again = copy(env, target, back, &[]).await;
    again.assert_code(0);
    assert!(again.stdout.contains(NOTHING_WRITTEN), "{}", again.stdout);

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
        merged.stdout.contains("written: 1 runs") && merged.stdout.contains(", 3 run scopes"),
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
        again.stdout.contains(NOTHING_WRITTEN),
        "merging again changes nothing: {}",
        again.stdout
    );
    // `other` holds every job of the cloud (the image API answered).
    let jobs = "SELECT COUNT(*) FROM jobs";
    assert_eq!(
        env.scalar_on(target, jobs).await,
        env.scalar_on(&other, jobs).await,
        "one row per job"
    );
    // Run 1 of `other` is run 4 of the target, and so are its scopes.
    let scopes = "SELECT project_id, region, source, status, requests, jobs_seen, jobs_new, \
                  jobs_changed, error, failing_since, failed_runs \
                  FROM sync_scopes WHERE sync_id = :run ORDER BY project_id, source";
    let merged_scopes = env.rows_on(target, scopes, &[("run", "4")]).await;
    assert_eq!(merged_scopes.len(), 3);
    assert_eq!(
        merged_scopes,
        env.rows_on(&other, scopes, &[("run", "1")]).await
    );
    assert_eq!(
        env.scalar_on(target, "SELECT COUNT(*) FROM sync_scopes")
            .await,
        4 * 3,
        "each of the four runs has its three scopes, once"
    );
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

    // From one PostgreSQL database to another.
    let second = pg.sibling().await;
    copy(&env, &pg.url, &second.url, &[]).await.assert_code(0);
    assert_eq!(
        history(&env, &second.url).await,
        history(&env, &pg.url).await
    );
    assert_eq!(pages(&second.url).await, pages(&pg.url).await);
    let again = copy(&env, &pg.url, &second.url, &[]).await;
    again.assert_code(0);
    assert!(again.stdout.contains(NOTHING_WRITTEN), "{}", again.stdout);
}

/// A connection to a test PostgreSQL database, to set up what the CLI cannot.
async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::ConnectOptions;
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("database URL");
    options.connect().await.expect("the test database")
}

/// Turns the env's SQLite file into one as jobtrail left it before scopes
/// and the IAM cache were added (schema 3): no `sync_scopes`, no `iam_projects`.
async fn make_it_older_than_scopes(env: &Env) {
    let pool = env.writable_pool().await;
    sqlx::raw_sql(
        "DROP TABLE sync_scopes; DROP TABLE iam_projects; \
         DELETE FROM _sqlx_migrations WHERE version >= 4",
    )
    .execute(&pool)
    .await
    .expect("downgrade");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_before_scopes_copies_without_them() {
    let env = synced_twice(93).await;
    make_it_older_than_scopes(&env).await;
    let source = env.db_arg();
    let older = &TABLES[..4];
    let original = tables(&env, &source, older).await;
    let target = env.dir.path().join("copy.db").display().to_string();
    let first = copy(&env, &source, &target, &[]).await;
    first.assert_code(0);
    assert!(
        first.stdout.contains("written: 2 runs") && first.stdout.contains(", 0 run scopes"),
        "{}",
        first.stdout
    );
    assert_eq!(tables(&env, &target, older).await, original);
    assert_eq!(
        env.scalar_on(&target, "SELECT COUNT(*) FROM sync_scopes")
            .await,
        0
    );
    let again = copy(&env, &source, &target, &[]).await;
    again.assert_code(0);
    assert!(again.stdout.contains(NOTHING_WRITTEN), "{}", again.stdout);

    // The same from a PostgreSQL database from before scopes (schema 2).
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    copy(&env, &source, &pg.url, &[]).await.assert_code(0);
    sqlx::raw_sql(
        "DROP TABLE sync_scopes; DROP TABLE iam_projects; \
         DELETE FROM _sqlx_migrations WHERE version >= 3",
    )
    .execute(&mut connect(&pg.url).await)
    .await
    .expect("downgrade");
    let back = env.dir.path().join("back.db").display().to_string();
    let copied = copy(&env, &pg.url, &back, &[]).await;
    copied.assert_code(0);
    assert!(
        copied.stdout.contains(", 0 run scopes"),
        "{}",
        copied.stdout
    );
    assert_eq!(tables(&env, &back, older).await, original);
}
