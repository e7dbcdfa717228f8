//! The PostgreSQL store against a real server: `JOBTRAIL_TEST_POSTGRES` is a
//! superuser URL (`.ci/with-postgres` starts a throwaway server and sets it),
//! and each test works in a fresh database of its own, dropped at the end.
//! Without the variable the tests say loudly that they were skipped, and fail
//! under CI.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::ConnectOptions;

use super::*;
use crate::model::{JobRow, Source, Status};
use crate::normalize::parse_api_time;
use crate::store::{JobBatch, RunEnd, RunOutcome, RunTotals, StateUpdate};

const SERVER_VAR: &str = "JOBTRAIL_TEST_POSTGRES";

/// Set in a child process started by [`the_password_may_come_from_pgpassword_or_pgpass`].
const CHILD_VAR: &str = "JOBTRAIL_TEST_POSTGRES_CHILD_URL";

/// The test server's superuser URL, or `None` (after saying so) when there is none.
fn server() -> Option<DbUrl> {
    match std::env::var(SERVER_VAR) {
        Ok(url) if !url.is_empty() => Some(DbUrl::parse(&url).expect(SERVER_VAR)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{SERVER_VAR} is not set under CI: run the tests through .ci/with-postgres")
        }
        _ => {
            eprintln!(
                "SKIPPED: no PostgreSQL to test against; set {SERVER_VAR} or run under .ci/with-postgres"
            );
            None
        }
    }
}

/// A fresh database and the store opened on it; dropped with the test.
struct TestDb {
    store: PgStore,
    url: DbUrl,
    server: DbUrl,
    name: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside async: a thread with a runtime of its own, which
        // also works while a failed test unwinds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut conn = server.options().connect().await.expect("server");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .expect("drop database");
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop the test database");
        }
    }
}

async fn test_db() -> Option<TestDb> {
    let server = server()?;
    let name = format!("jobtrail_test_{:016x}", rand::random::<u64>());
    let mut conn = server.options().connect().await.expect("server");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = server.with_database(&name);
    let store = PgStore::open_url(url.clone()).await.expect("open");
    Some(TestDb {
        store,
        url,
        server,
        name,
    })
}

fn at(text: &str) -> DateTime<Utc> {
    parse_api_time(text).expect(text)
}

fn job(id: &str, status: Status) -> JobRow {
    JobRow {
        source: Source::Nosql,
        project_id: "p1".into(),
        job_id: id.into(),
        parent_job_id: None,
        job_type: Some("Backup".into()),
        status,
        raw_status: Some(
            match status {
                Status::Running => "Running",
                Status::Succeeded => "Completed",
                Status::Failed => "Failed",
                Status::Unknown => "Odd",
            }
            .into(),
        ),
        progress: None,
        started_at: Some("2024-03-01T10:00:00.000Z".into()),
        ended_at: None,
        duration_ms: None,
        resource_id: None,
        resource_name: None,
        error_code: None,
        fail_reason: None,
        raw_json: format!(r#"{{"id":"{id}"}}"#),
    }
}

fn batch(rows: Vec<JobRow>) -> JobBatch {
    JobBatch {
        rows,
        state: vec![],
    }
}

/// p1's NoSQL watermark at `value` (a time as the APIs write it).
fn watermark(value: &str) -> StateUpdate {
    StateUpdate::Watermark {
        project_id: "p1".into(),
        source: Source::Nosql,
        at: at(value),
    }
}

/// p1's NoSQL watermark as stored, if any.
async fn stored_watermark(store: &PgStore) -> Option<String> {
    store
        .get_state("p1", Source::Nosql, "watermark")
        .await
        .expect("state")
}

type History = Vec<(String, Option<String>, String, i64)>;

/// (job_id, old_status, new_status, sync_id) of every history row, in order.
async fn history(store: &PgStore) -> History {
    sqlx::query_as(
        "SELECT job_id, old_status, new_status, sync_id FROM job_status_changes ORDER BY id",
    )
    .fetch_all(&store.pool)
    .await
    .expect("history")
}

fn h(id: &str, old: Option<&str>, new: &str, sync: i64) -> (String, Option<String>, String, i64) {
    (id.to_owned(), old.map(str::to_owned), new.to_owned(), sync)
}

async fn count(store: &PgStore, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&store.pool)
        .await
        .expect(sql)
}

/// Stores each batch in a run of its own, finished as succeeded.
async fn sync_batches(store: &PgStore, batches: Vec<Vec<JobRow>>) -> Vec<RunTotals> {
    let mut totals = vec![];
    for (n, rows) in batches.into_iter().enumerate() {
        let when = at("2024-03-21T00:00:00Z") + chrono::Duration::hours(n as i64);
        let run = store.begin_run(&[Source::Nosql], when).await.expect("run");
        store
            .write_batch(run.id, when, &batch(rows))
            .await
            .expect("write");
        totals.push(
            store
                .finish_run(&run, RunEnd::bare(RunOutcome::Succeeded, 1, when))
                .await
                .expect("finish")
                .totals,
        );
    }
    totals
}

#[tokio::test]
async fn migrations_apply_and_reopening_changes_nothing() {
    let Some(db) = test_db().await else { return };
    let objects: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' ORDER BY table_name",
    )
    .fetch_all(&db.store.pool)
    .await
    .expect("tables");
    assert_eq!(
        objects,
        [
            "_sqlx_migrations",
            "failures_by_type_reason",
            "iam_projects",
            "job_status_changes",
            "jobs",
            "recent_failures",
            "running_jobs",
            "sync_runs",
            "sync_scopes",
            "sync_state"
        ]
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'jobs' ORDER BY indexname",
    )
    .fetch_all(&db.store.pool)
    .await
    .expect("indexes");
    assert_eq!(
        indexes,
        [
            "jobs_by_job_type",
            "jobs_by_last_sync",
            "jobs_by_parent",
            "jobs_by_resource",
            "jobs_by_status_started",
            "jobs_not_final",
            "jobs_pkey"
        ]
    );
    let applied = || async {
        sqlx::query_as::<_, (i64, DateTime<Utc>)>(
            "SELECT version, installed_on FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&db.store.pool)
        .await
        .expect("migrations")
    };
    let before = applied().await;
    assert_eq!(before.len(), PG_MIGRATOR.iter().count());
    let again = PgStore::open_url(db.url.clone()).await.expect("reopen");
    assert_eq!(applied().await, before, "nothing applied twice");
    again.close().await;
}

/// History rows name runs that exist, and a run with history stays, as the
/// foreign key on SQLite says (checked per statement here, see migration 4).
#[tokio::test]
async fn history_names_only_runs_that_exist_and_keeps_them() {
    let Some(db) = test_db().await else { return };
    // Run 1 has history, but no job names it as its last run any more.
    sync_batches(
        &db.store,
        vec![
            vec![job("a", Status::Running)],
            vec![job("a", Status::Failed)],
        ],
    )
    .await;
    let refused = |sql: &'static str| {
        let pool = db.store.pool.clone();
        async move {
            let err = sqlx::raw_sql(sql).execute(&pool).await.expect_err(sql);
            let code = err.as_database_error().and_then(|e| e.code());
            assert_eq!(code.as_deref(), Some("23503"), "{sql}: {err}");
            err.to_string()
        }
    };
    let err = refused(
        "INSERT INTO job_status_changes (source, project_id, job_id, new_status, observed_at, sync_id)
         VALUES ('nosql', 'p1', 'b', 'running', now(), 1), ('nosql', 'p1', 'c', 'running', now(), 7)",
    )
    .await;
    assert!(err.contains("sync run 7"), "{err}");
    refused("UPDATE job_status_changes SET sync_id = 8").await;
    let err = refused("DELETE FROM sync_runs WHERE id = 1").await;
    assert!(err.contains("sync run 1 has rows"), "{err}");
    refused("UPDATE sync_runs SET id = 9 WHERE id = 1").await;
    assert_eq!(
        history(&db.store).await,
        [
            h("a", None, "running", 1),
            h("a", Some("running"), "failed", 2)
        ]
    );
    // A run without history may go, and others' updates pass unchecked.
    let lone = db
        .store
        .begin_run(&[Source::Nosql], at("2024-03-22T00:00:00Z"))
        .await
        .expect("run");
    sqlx::query("DELETE FROM sync_runs WHERE id = $1")
        .bind(lone.id)
        .execute(&db.store.pool)
        .await
        .expect("a run without history is deleted");
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM sync_runs").await, 2);
}

#[tokio::test]
async fn a_database_of_a_newer_jobtrail_is_refused() {
    let Some(db) = test_db().await else { return };
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', true, '\\x00', 0)",
    )
    .execute(&db.store.pool)
    .await
    .expect("future migration");
    let err = PgStore::open_url(db.url.clone())
        .await
        .expect_err("newer schema");
    let known = known_version();
    assert_eq!(
        err.to_string(),
        format!(
            "the database {} was written by a newer jobtrail (schema version 9999, this build knows up to {known}); upgrade jobtrail",
            db.url
        )
    );
}

#[tokio::test]
async fn an_upsert_keeps_first_seen_at_and_updates_the_rest() {
    let Some(db) = test_db().await else { return };
    let mut later = job("a", Status::Failed);
    later.fail_reason = Some("disk full".into());
    later.ended_at = Some("2024-03-01T10:05:00.250Z".into());
    later.duration_ms = Some(300_250);
    sync_batches(
        &db.store,
        vec![vec![job("a", Status::Running)], vec![later]],
    )
    .await;
    type Stored = (
        DateTime<Utc>,
        DateTime<Utc>,
        String,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<i64>,
        i64,
    );
    let row: Stored =
        sqlx::query_as(
            "SELECT first_seen_at, last_seen_at, status, fail_reason, ended_at, duration_ms, last_sync_id FROM jobs",
        )
        .fetch_one(&db.store.pool)
        .await
        .expect("row");
    assert_eq!(
        row,
        (
            at("2024-03-21T00:00:00Z"),
            at("2024-03-21T01:00:00Z"),
            "failed".to_owned(),
            Some("disk full".to_owned()),
            Some(at("2024-03-01T10:05:00.250Z")),
            Some(300_250),
            2
        )
    );
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM jobs").await, 1);
}

#[tokio::test]
async fn history_records_first_sightings_and_changes_but_not_repeats() {
    let Some(db) = test_db().await else { return };
    let mut b_failed = job("b", Status::Failed);
    b_failed.fail_reason = Some("x".into());
    let mut b_other_reason = b_failed.clone();
    b_other_reason.fail_reason = Some("y".into());
    let mut b_other_json = b_other_reason.clone();
    b_other_json.raw_json = r#"{"id":"b","more":1}"#.into();
    let totals = sync_batches(
        &db.store,
        vec![
            vec![job("a", Status::Running), job("b", Status::Running)],
            vec![
                job("a", Status::Running),
                b_failed,
                job("c", Status::Succeeded),
            ],
            vec![b_other_reason],
            vec![b_other_json, job("c", Status::Succeeded)],
        ],
    )
    .await;
    assert_eq!(
        history(&db.store).await,
        vec![
            h("a", None, "running", 1),
            h("b", None, "running", 1),
            // Within a batch, first sightings come before changes.
            h("c", None, "succeeded", 2),
            h("b", Some("running"), "failed", 2),
            h("b", Some("failed"), "failed", 3),
        ]
    );
    let counted: Vec<(i64, i64, i64)> = totals.iter().map(|t| (t.seen, t.new, t.changed)).collect();
    assert_eq!(counted, [(2, 2, 0), (3, 1, 1), (1, 0, 1), (2, 0, 0)]);
    let stored: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT jobs_seen, jobs_new, jobs_changed FROM sync_runs ORDER BY id")
            .fetch_all(&db.store.pool)
            .await
            .expect("runs");
    assert_eq!(stored, counted);
}

#[tokio::test]
async fn a_hand_update_records_a_change_and_other_updates_do_not() {
    let Some(db) = test_db().await else { return };
    sync_batches(
        &db.store,
        vec![vec![job("a", Status::Running), job("b", Status::Running)]],
    )
    .await;
    for sql in [
        "UPDATE jobs SET job_type = 'Restore', progress = 50",
        "UPDATE jobs SET status = 'running', raw_status = 'Running' WHERE job_id = 'a'",
        "UPDATE jobs SET status = 'failed', fail_reason = 'by hand' WHERE job_id = 'a'",
        "UPDATE jobs SET raw_status = NULL WHERE job_id = 'b'",
    ] {
        sqlx::query(sql).execute(&db.store.pool).await.expect(sql);
    }
    type Change = (
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
    );
    let changes: Vec<Change> = sqlx::query_as(
        "SELECT job_id, old_status, new_status, raw_status, fail_reason
             FROM job_status_changes WHERE old_status IS NOT NULL ORDER BY id",
    )
    .fetch_all(&db.store.pool)
    .await
    .expect("changes");
    assert_eq!(
        changes,
        [
            (
                "a".to_owned(),
                Some("running".to_owned()),
                "failed".to_owned(),
                Some("Running".to_owned()),
                Some("by hand".to_owned())
            ),
            (
                "b".to_owned(),
                Some("running".to_owned()),
                "running".to_owned(),
                None,
                None
            ),
        ]
    );
}

#[tokio::test]
async fn a_failing_batch_leaves_no_rows_no_history_and_no_watermark() {
    let Some(db) = test_db().await else { return };
    sync_batches(&db.store, vec![vec![job("a", Status::Running)]]).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_c() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.job_id = 'c' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_c BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_c();",
    )
    .execute(&db.store.pool)
    .await
    .expect("trigger");
    let run = db
        .store
        .begin_run(&[Source::Nosql], at("2024-03-22T00:00:00Z"))
        .await
        .expect("run");
    // The job changed and a new one came before the refused row; the watermark
    // those rows justify travels with them.
    let failing = JobBatch {
        rows: vec![
            job("a", Status::Failed),
            job("b", Status::Running),
            job("c", Status::Running),
        ],
        state: vec![watermark("2024-03-22T00:00:00.000Z")],
    };
    let mut writer = db.store.bulk_writer().await.expect("writer");
    let err = writer
        .write_batch(run.id, at("2024-03-22T00:00:00Z"), &failing)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM jobs").await, 1);
    assert_eq!(
        count(
            &db.store,
            "SELECT COUNT(*) FROM jobs WHERE status = 'running'"
        )
        .await,
        1
    );
    assert_eq!(history(&db.store).await, [h("a", None, "running", 1)]);
    assert_eq!(stored_watermark(&db.store).await, None);
    // The writer goes on after a failed batch, and a value that cannot be
    // stored fails before anything is sent.
    let mut bad_time = job("d", Status::Running);
    bad_time.started_at = Some("not a time".into());
    let err = writer
        .write_batch(run.id, at("2024-03-22T00:00:00Z"), &batch(vec![bad_time]))
        .await
        .expect_err("bad time");
    assert!(err.to_string().contains("nosql/p1/d"), "{err}");
    writer
        .write_batch(
            run.id,
            at("2024-03-22T00:00:00Z"),
            &JobBatch {
                rows: vec![job("d", Status::Running)],
                state: vec![watermark("2024-03-22T00:00:00.000Z")],
            },
        )
        .await
        .expect("write");
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM jobs").await, 2);
    assert_eq!(
        stored_watermark(&db.store).await.as_deref(),
        Some("2024-03-22T00:00:00.000Z")
    );
}

#[tokio::test]
async fn a_killed_writer_leaves_no_partial_batch_and_the_next_one_completes() {
    let Some(db) = test_db().await else { return };
    let run = db
        .store
        .begin_run(&[Source::Nosql], at("2024-03-22T00:00:00Z"))
        .await
        .expect("run");
    let now = at("2024-03-22T00:00:00Z");
    let mut writer = db.store.bulk_writer().await.expect("writer");
    let rows: Vec<JobRow> = (0..2_000)
        .map(|n| job(&format!("j{n}"), Status::Running))
        .collect();
    writer
        .write(
            run.id,
            now,
            &JobBatch {
                rows: rows.clone(),
                state: vec![watermark("2024-03-20T00:00:00Z")],
            },
        )
        .await
        .expect("write");
    let pid = writer.backend_pid().await;
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&db.store.pool)
        .await
        .expect("terminate");
    assert!(killed);
    assert!(writer.commit().await.is_err(), "its session is gone");
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM jobs").await, 0);
    assert_eq!(
        count(&db.store, "SELECT COUNT(*) FROM job_status_changes").await,
        0
    );
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM sync_state").await, 0);
    let mut next = db.store.bulk_writer().await.expect("writer");
    next.write_batch(
        run.id,
        now,
        &JobBatch {
            rows,
            state: vec![watermark("2024-03-20T00:00:00Z")],
        },
    )
    .await
    .expect("write");
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM jobs").await, 2_000);
    assert_eq!(
        count(&db.store, "SELECT COUNT(*) FROM job_status_changes").await,
        2_000
    );
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM sync_state").await, 1);
}

#[tokio::test]
async fn a_job_seen_twice_in_one_batch_keeps_both_states_in_order() {
    let Some(db) = test_db().await else { return };
    let rows: Vec<JobRow> = (0..1_203)
        .map(|n| job(&format!("job-{n:04}"), Status::Running))
        .chain([job("job-0007", Status::Failed)])
        .chain((1_203..1_210).map(|n| job(&format!("job-{n:04}"), Status::Running)))
        .chain([job("job-0007", Status::Succeeded)])
        .collect();
    let totals = sync_batches(&db.store, vec![rows]).await;
    let all = history(&db.store).await;
    assert_eq!(all.len(), 1_212, "1,210 first sightings and two changes");
    let of_7: Vec<_> = all.iter().filter(|r| r.0 == "job-0007").cloned().collect();
    assert_eq!(
        of_7,
        [
            h("job-0007", None, "running", 1),
            h("job-0007", Some("running"), "failed", 1),
            h("job-0007", Some("failed"), "succeeded", 1),
        ]
    );
    let firsts: Vec<String> = all
        .iter()
        .filter(|r| r.1.is_none())
        .map(|r| r.0.clone())
        .collect();
    let expected: Vec<String> = (0..1_210).map(|n| format!("job-{n:04}")).collect();
    assert_eq!(firsts, expected, "first sightings in batch order");
    let stored: String = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = 'job-0007'")
        .fetch_one(&db.store.pool)
        .await
        .expect("job");
    assert_eq!(stored, "succeeded", "the last sighting is the row");
    assert_eq!(
        (totals[0].seen, totals[0].new, totals[0].changed),
        (1_210, 1_210, 2)
    );
}

/// A job the writer takes for new, stored by another session meanwhile: its
/// COPY meets the duplicate key, and the batch is written the general way,
/// its history as if there had been no race.
#[tokio::test]
async fn a_job_stored_meanwhile_by_another_session_is_upserted_not_refused() {
    let Some(db) = test_db().await else { return };
    let first = db
        .store
        .begin_run(&[Source::Nosql], at("2024-03-22T00:00:00Z"))
        .await
        .expect("run");
    let second = db
        .store
        .begin_run(&[Source::Nosql], at("2024-03-22T01:00:00Z"))
        .await
        .expect("run");
    // The other session writes `a` and `b` and keeps its transaction open.
    let mut other = db.store.bulk_writer().await.expect("writer");
    other
        .write(
            first.id,
            at("2024-03-22T00:00:00Z"),
            &batch(vec![job("a", Status::Running), job("b", Status::Running)]),
        )
        .await
        .expect("write");
    // A new writer takes its first batch for new: its COPY waits on the
    // other transaction's key.
    let mut writer = db.store.bulk_writer().await.expect("writer");
    let pid = writer.backend_pid().await;
    let racing = tokio::spawn(async move {
        let written = writer
            .write_batch(
                second.id,
                at("2024-03-22T01:00:00Z"),
                &batch(vec![job("c", Status::Running), job("a", Status::Failed)]),
            )
            .await;
        writer.close().await;
        written
    });
    let waiting = async {
        loop {
            let event: Option<String> =
                sqlx::query_scalar("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1")
                    .bind(pid)
                    .fetch_one(&db.store.pool)
                    .await
                    .expect("activity");
            if event.as_deref() == Some("Lock") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .expect("the COPY waits on the other session's key");
    other.commit().await.expect("commit");
    other.close().await;
    racing.await.expect("task").expect("the batch is written");
    assert_eq!(
        history(&db.store).await,
        [
            h("a", None, "running", first.id),
            h("b", None, "running", first.id),
            h("c", None, "running", second.id),
            h("a", Some("running"), "failed", second.id),
        ]
    );
    let stored: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT job_id, status, last_sync_id FROM jobs ORDER BY job_id")
            .fetch_all(&db.store.pool)
            .await
            .expect("jobs");
    assert_eq!(
        stored,
        [
            ("a".to_owned(), "failed".to_owned(), second.id),
            ("b".to_owned(), "running".to_owned(), first.id),
            ("c".to_owned(), "running".to_owned(), second.id),
        ]
    );
}

#[tokio::test]
async fn hostile_text_round_trips_through_copy() {
    let Some(db) = test_db().await else { return };
    let hostile = "tab\there, newline\nthere, cr\r, backslash \\ \\N \\\\t, quote ' \" , \
                   comma; 中文 émoji 🚀, nul\0end, \u{7f}\u{1b}[0m";
    let mut row = job("j\t1\\N", Status::Failed);
    row.project_id = "p\n1".into();
    row.job_type = Some(hostile.into());
    row.fail_reason = Some(hostile.into());
    row.resource_name = Some(String::new());
    row.progress = Some(-1);
    row.duration_ms = Some(i64::MAX);
    row.started_at = Some("0001-01-01T00:00:00.000Z".into());
    row.ended_at = Some("9999-12-31T23:59:59.999Z".into());
    row.raw_json = concat!(
        r#"{"name":"tab\there \"q\" back\\slash \\u0000 é 中","#,
        r#""nul":"a\u0000b","lone":"\ud800","pair":"\ud83d\ude80","#,
        r#""num":1.50,"big":12345678901234567890,"nested":{"k":[1,null,true]}}"#
    )
    .into();
    let run = db
        .store
        .begin_run(&[Source::Nosql], at("2024-03-22T00:00:00Z"))
        .await
        .expect("run");
    db.store
        .write_batch(
            run.id,
            at("2024-03-22T00:00:00Z"),
            &batch(vec![row.clone()]),
        )
        .await
        .expect("write");
    type Back = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let back: Back = sqlx::query_as(
        "SELECT project_id, job_id, job_type, fail_reason, resource_name, progress, duration_ms,
                started_at, ended_at FROM jobs",
    )
    .fetch_one(&db.store.pool)
    .await
    .expect("row");
    let stored_hostile = hostile.replace('\0', "\u{FFFD}");
    assert_eq!(
        back,
        (
            "p\n1".to_owned(),
            "j\t1\\N".to_owned(),
            Some(stored_hostile.clone()),
            Some(stored_hostile),
            Some(String::new()),
            Some(-1),
            Some(i64::MAX),
            Some(at("0001-01-01T00:00:00Z")),
            Some(at("9999-12-31T23:59:59.999Z")),
        )
    );
    let json: (String, String, String, String, String, String) = sqlx::query_as(
        "SELECT raw_json->>'name', raw_json->>'nul', raw_json->>'lone', raw_json->>'pair',
                raw_json->>'num', raw_json->>'big' FROM jobs",
    )
    .fetch_one(&db.store.pool)
    .await
    .expect("json");
    assert_eq!(
        json,
        (
            "tab\there \"q\" back\\slash \\u0000 é 中".to_owned(),
            "a\u{FFFD}b".to_owned(),
            "\u{FFFD}".to_owned(),
            "🚀".to_owned(),
            "1.50".to_owned(),
            "12345678901234567890".to_owned()
        )
    );
}

#[tokio::test]
async fn batches_of_one_transaction_land_together_at_commit_and_not_before() {
    let Some(db) = test_db().await else { return };
    let now = at("2024-03-22T00:00:00Z");
    let run = db
        .store
        .begin_run(&[Source::Nosql], now)
        .await
        .expect("run");
    let ids = |ids: &[&str]| batch(ids.iter().map(|id| job(id, Status::Running)).collect());
    let mut writer = db.store.bulk_writer().await.expect("writer");
    writer
        .write(run.id, now, &ids(&["a", "b"]))
        .await
        .expect("write");
    writer
        .write(run.id, now, &ids(&["c", "a"]))
        .await
        .expect("write");
    assert_eq!(
        count(&db.store, "SELECT COUNT(*) FROM jobs").await,
        0,
        "nothing before the commit"
    );
    writer.commit().await.expect("commit");
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM jobs").await, 3);
    writer
        .write(run.id, now, &ids(&["d"]))
        .await
        .expect("write");
    writer.close().await;
    assert_eq!(
        count(&db.store, "SELECT COUNT(*) FROM jobs").await,
        3,
        "uncommitted is rolled back"
    );
    assert_eq!(history(&db.store).await.len(), 3);
}

#[tokio::test]
async fn the_sync_reads_answer_as_on_sqlite() {
    let Some(db) = test_db().await else { return };
    let image = |id: &str, parent: Option<&str>, status: Status| {
        let mut row = job(id, status);
        row.source = Source::Image;
        row.parent_job_id = parent.map(str::to_owned);
        row
    };
    let dbss = |id: &str, resource: &str, status: Status| {
        let mut row = job(id, status);
        row.source = Source::Dbss;
        row.resource_id = Some(resource.into());
        row
    };
    let mut unknown_start = job("n2", Status::Unknown);
    unknown_start.started_at = None;
    let mut later = job("n3", Status::Running);
    later.started_at = Some("2024-03-05T00:00:00.000Z".into());
    sync_batches(
        &db.store,
        vec![vec![
            job("n1", Status::Running),
            unknown_start,
            later,
            job("n4", Status::Succeeded),
            image("i1", None, Status::Succeeded),
            image("i1-s1", Some("i1"), Status::Succeeded),
            image("i2", None, Status::Succeeded),
            image("i2-s1", Some("i2"), Status::Running),
            image("i3", None, Status::Running),
            dbss("d1", "r1", Status::Succeeded),
            dbss("d2", "r1", Status::Failed),
            dbss("d3", "r2", Status::Succeeded),
            dbss("d4", "r2", Status::Running),
        ]],
    )
    .await;
    let unfinished = db
        .store
        .unfinished_jobs(Source::Nosql, "p1", None)
        .await
        .expect("unfinished");
    let ids: Vec<&str> = unfinished.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(
        ids,
        ["n2", "n1", "n3"],
        "unknown start first, then by start"
    );
    assert_eq!(unfinished[1].started_at, Some(at("2024-03-01T10:00:00Z")));
    assert_eq!(unfinished[0].raw_status.as_deref(), Some("Odd"));
    let before = db
        .store
        .unfinished_jobs(Source::Nosql, "p1", Some(at("2024-03-02T00:00:00Z")))
        .await
        .expect("unfinished");
    let ids: Vec<&str> = before.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, ["n2", "n1"]);
    assert_eq!(
        db.store.finished_image_jobs("p1").await.expect("images"),
        HashSet::from(["i1".to_owned()])
    );
    assert_eq!(
        db.store
            .settled_dbss_resources("p1", at("2024-03-21T00:00:00Z"))
            .await
            .expect("settled"),
        HashSet::from(["r1".to_owned()])
    );
    assert!(
        db.store
            .settled_dbss_resources("p1", at("2024-03-21T00:00:00.001Z"))
            .await
            .expect("settled")
            .is_empty()
    );
    assert_eq!(
        db.store
            .start_times_between(
                Source::Nosql,
                "p1",
                "Running",
                at("2024-03-01T10:00:00Z"),
                at("2024-03-05T00:00:00Z")
            )
            .await
            .expect("times"),
        [at("2024-03-01T10:00:00Z"), at("2024-03-05T00:00:00Z")]
    );
    assert_eq!(db.store.job_count().await.expect("count"), 13);

    let miss = |id: &str, count| StateUpdate::Misses {
        project_id: "p1".into(),
        source: Source::Nosql,
        miss: crate::store::MissUpdate {
            id: id.into(),
            count,
        },
    };
    let now = at("2024-03-22T00:00:00Z");
    for update in [miss("n1", 1), miss("gone", 2), miss("gone", 3)] {
        db.store.set_state(&update, now).await.expect("set");
    }
    assert_eq!(
        db.store
            .miss_counts("p1", Source::Nosql)
            .await
            .expect("misses"),
        HashMap::from([("n1".to_owned(), 1), ("gone".to_owned(), 3)])
    );
    // Run 1 stored n1: its miss count is forgotten, the other stays.
    db.store
        .forget_misses_of_seen_jobs(1)
        .await
        .expect("forget");
    assert_eq!(
        db.store
            .miss_counts("p1", Source::Nosql)
            .await
            .expect("misses"),
        HashMap::from([("gone".to_owned(), 3)])
    );
    let updated: DateTime<Utc> = sqlx::query_scalar("SELECT updated_at FROM sync_state")
        .fetch_one(&db.store.pool)
        .await
        .expect("updated");
    assert_eq!(updated, now);
}

#[tokio::test]
async fn a_batch_keeps_the_last_of_a_state_key_given_twice() {
    let Some(db) = test_db().await else { return };
    let now = at("2024-03-22T00:00:00Z");
    let run = db
        .store
        .begin_run(&[Source::Nosql], now)
        .await
        .expect("run");
    let state = JobBatch {
        rows: vec![],
        state: vec![
            watermark("2024-03-20T00:00:00Z"),
            watermark("2024-03-21T00:00:00Z"),
        ],
    };
    db.store
        .write_batch(run.id, now, &state)
        .await
        .expect("write");
    assert_eq!(
        stored_watermark(&db.store).await.as_deref(),
        Some("2024-03-21T00:00:00.000Z")
    );
}

#[tokio::test]
async fn a_run_left_running_by_a_dead_process_is_closed_and_a_live_one_is_not() {
    let Some(db) = test_db().await else { return };
    let now = at("2024-03-22T00:00:00Z");
    let dying = PgStore::open_url(db.url.clone()).await.expect("open");
    let dead = dying.begin_run(&[Source::Dbss], now).await.expect("run");
    let other_host = PgStore::open_url(db.url.clone()).await.expect("open");
    let live = other_host
        .begin_run(&[Source::Nosql, Source::Image], now)
        .await
        .expect("run");
    let status = |id: i64| {
        let pool = db.store.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>, String)>(
                "SELECT status, error, sources FROM sync_runs WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("run")
        }
    };
    assert_eq!(status(dead.id).await.0, "running", "its process is alive");
    // The process dies: its session ends, and its run lock with it.
    dying.close().await;
    let next = db
        .store
        .begin_run(&[Source::Nosql], now)
        .await
        .expect("run");
    assert_eq!(
        status(dead.id).await,
        (
            "failed".to_owned(),
            Some("interrupted: the process ended before the run finished".to_owned()),
            "dbss".to_owned()
        )
    );
    assert_eq!(
        status(live.id).await,
        ("running".to_owned(), None, "nosql,image".to_owned())
    );
    let totals = other_host
        .finish_run(
            &live,
            RunEnd {
                error: Some("one project failed"),
                ..RunEnd::bare(RunOutcome::Partial, 7, now)
            },
        )
        .await
        .expect("finish");
    assert_eq!(totals.totals, RunTotals::default());
    let finished: (String, i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT status, requests, finished_at FROM sync_runs WHERE id = $1")
            .bind(live.id)
            .fetch_one(&db.store.pool)
            .await
            .expect("run");
    assert_eq!(finished, ("partial".to_owned(), 7, Some(now)));
    db.store
        .finish_run(&next, RunEnd::bare(RunOutcome::Succeeded, 0, now))
        .await
        .expect("finish");
    // Finished runs hold no lock: beginning another closes nothing of theirs.
    db.store
        .begin_run(&[Source::Nosql], now)
        .await
        .expect("run");
    assert_eq!(status(next.id).await.0, "succeeded");
}

#[tokio::test]
async fn different_projects_lock_at_once_and_the_same_one_is_refused_naming_host_and_pid() {
    let Some(db) = test_db().await else { return };
    let wait = Duration::from_millis(400);
    let first = db
        .store
        .lock_projects(&["p1", "p3"], wait)
        .await
        .expect("p1, p3");
    let second = db
        .store
        .lock_projects(&["p2"], wait)
        .await
        .expect("p2 at the same time");
    assert_eq!(first.projects().len(), 2);
    let started = Instant::now();
    let err = db
        .store
        .lock_projects(&["p4", "p3"], wait)
        .await
        .expect_err("p3 is taken");
    assert!(started.elapsed() >= wait, "it waited first");
    let text = err.to_string();
    assert!(
        text.starts_with("another sync of project p3 is running on this database (host "),
        "{text}"
    );
    assert!(
        text.contains(&format!(", pid {})", std::process::id())),
        "{text}"
    );
    assert!(text.contains(&super::lock::host_name()), "{text}");
    // The refused attempt holds nothing: p4 is free.
    let third = db.store.lock_projects(&["p4"], wait).await.expect("p4");
    // A sync waiting for a lock gets it when the holder finishes in time.
    let waiting = {
        let store = db.store.clone();
        tokio::spawn(async move { store.lock_projects(&["p2"], Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.release().await;
    let after_wait = waiting
        .await
        .expect("task")
        .expect("p2 after its holder finished");
    assert_eq!(after_wait.projects(), ["p2"]);
    drop((first, third));
}

#[tokio::test]
async fn a_lock_is_released_when_its_session_dies() {
    let Some(db) = test_db().await else { return };
    let wait = Duration::from_millis(300);
    let mut held = db.store.lock_projects(&["p1"], wait).await.expect("p1");
    held.check().await.expect("held");
    db.store
        .lock_projects(&["p1"], wait)
        .await
        .expect_err("taken");
    // As when its process is killed: the server ends the session.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(held.backend_pid())
        .execute(&db.store.pool)
        .await
        .expect("terminate");
    let again = db
        .store
        .lock_projects(&["p1"], Duration::from_secs(5))
        .await
        .expect("released with its session");
    assert!(matches!(held.check().await, Err(PgLockError::Lost { .. })));
    // Dropping a guard releases its locks too.
    drop(again);
    db.store
        .lock_projects(&["p1"], Duration::from_secs(5))
        .await
        .expect("released on drop");
}

#[tokio::test]
async fn connection_errors_name_the_database_and_never_the_password() {
    // Nothing listens on port 1: refused at once.
    let started = Instant::now();
    let err = PgStore::open("postgres://jobtrail:hunter2-secret@127.0.0.1:1/history")
        .await
        .expect_err("refused");
    assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(2));
    let text = err.to_string();
    assert!(
        text.starts_with("cannot connect to the PostgreSQL database postgres://jobtrail:***@127.0.0.1:1/history: "),
        "{text}"
    );
    for shown in [text, format!("{err:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    let Some(server) = server() else { return };
    let wrong = format!(
        "postgres://{}:hunter2-secret@{}:{}/postgres",
        server.options().get_username(),
        server.host(),
        server.port()
    );
    let err = PgStore::open(&wrong).await.expect_err("wrong password");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains(&format!("{}:{}/postgres", server.host(), server.port())),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn the_password_may_come_from_pgpassword_or_pgpass() {
    let Some(db) = test_db().await else { return };
    let raw = ::url::Url::parse(&std::env::var(SERVER_VAR).expect("url")).expect("url");
    let password = percent_encoding::percent_decode_str(raw.password().expect("a password"))
        .decode_utf8()
        .expect("utf-8")
        .into_owned();
    let user = db.url.options().get_username().to_owned();
    let no_password = format!(
        "postgres://{user}@{}:{}/{}",
        db.url.host(),
        db.url.port(),
        db.name
    );
    let dir = tempfile::tempdir().expect("dir");
    let pgpass = dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "{}:{}:{}:{user}:{password}\n",
            db.url.host(),
            db.url.port(),
            db.name
        ),
    )
    .expect("pgpass");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("mode");
    }
    let child = |env: &[(&str, &std::ffi::OsStr)]| {
        let mut command = std::process::Command::new(std::env::current_exe().expect("exe"));
        command
            .args([
                "store::postgres::tests::child_opens_with_a_password_from_the_environment",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_VAR, &no_password)
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .env("HOME", dir.path());
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().expect("child")
    };
    for env in [
        vec![("PGPASSWORD", std::ffi::OsStr::new(&password))],
        vec![("PGPASSFILE", pgpass.as_os_str())],
    ] {
        let out = child(&env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("CHILD OPENED"),
            "{env:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And without either, the server refuses: the password really came from them.
    let out = child(&[]);
    assert!(!out.status.success());
}

/// Run only as the child of [`the_password_may_come_from_pgpassword_or_pgpass`].
#[tokio::test]
async fn child_opens_with_a_password_from_the_environment() {
    let Ok(url) = std::env::var(CHILD_VAR) else {
        return;
    };
    let store = PgStore::open(&url)
        .await
        .expect("open with the password from the environment");
    store.close().await;
    println!("CHILD OPENED");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    // Accepts the connection, then says nothing (as a host behind a black hole would).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let silent = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = PgStore::open(&format!(
        "postgres://jobtrail:hunter2@127.0.0.1:{port}/history?sslmode=disable"
    ))
    .await
    .expect_err("no answer");
    assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(2));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to the PostgreSQL database postgres://jobtrail:***@127.0.0.1:{port}/history: no answer within 5 seconds"
        )
    );
    silent.abort();
}

/// A statement's parts: SQL text around numbered slots.
fn statement(parts: &[&str]) -> Vec<crate::store::SqlPart> {
    use crate::store::SqlPart;
    parts
        .iter()
        .map(
            |p| match p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => SqlPart::Param(n),
                None => SqlPart::Sql((*p).to_owned()),
            },
        )
        .collect()
}

#[tokio::test]
async fn read_only_sql_decodes_values_as_sqlite_types_them() {
    use crate::store::SqlValue::{Blob, Integer, Null, Real, Text};
    let Some(db) = test_db().await else { return };
    let sql = "SELECT 1::int2 AS a, 2::int4, 3::int8, 1.5::float8, 12.5::numeric, 10::numeric, \
               true, 'x'::text, 'y'::varchar, '{\"b\": 1, \"a\": [true]}'::jsonb, '{\"a\": 1}'::json, \
               '\\x00ff'::bytea, '2024-03-01T10:00:00.5+08:00'::timestamptz, \
               '2024-03-01 10:00:00'::timestamp, '2024-03-01'::date, interval '1 day 02:00:00', \
               ARRAY[1, 2], NULL::text";
    let got = db
        .store
        .run_read_only(&statement(&[sql]), &[])
        .await
        .expect("runs");
    assert_eq!(got.columns[0], "a");
    assert_eq!(
        got.rows,
        vec![vec![
            Integer(1),
            Integer(2),
            Integer(3),
            Real(1.5),
            Real(12.5),
            Integer(10),
            Integer(1),
            Text("x".into()),
            Text("y".into()),
            Text(r#"{"a": [true], "b": 1}"#.into()),
            Text(r#"{"a": 1}"#.into()),
            Blob(vec![0, 255]),
            Text("2024-03-01T02:00:00.500Z".into()),
            Text("2024-03-01T10:00:00.000Z".into()),
            Text("2024-03-01".into()),
            Text("1 day 02:00:00".into()),
            Text("{1,2}".into()),
            Null,
        ]]
    );
}

#[tokio::test]
async fn read_only_sql_types_parameters_as_the_server_infers_them() {
    use crate::store::SqlValue::{Integer, Null, Text};
    let Some(db) = test_db().await else { return };
    sync_batches(
        &db.store,
        vec![vec![job("a", Status::Running), job("b", Status::Failed)]],
    )
    .await;
    let run = |parts: Vec<crate::store::SqlPart>, params: Vec<crate::store::SqlValue>| {
        let store = db.store.clone();
        async move {
            store
                .run_read_only(&parts, &params)
                .await
                .expect("runs")
                .rows
        }
    };
    // A date given as text is compared as a time; an integer limits.
    let rows = run(
        statement(&[
            "SELECT job_id FROM jobs WHERE started_at >= ",
            "$0",
            " ORDER BY job_id LIMIT ",
            "$1",
        ]),
        vec![Text("2024-03-01".into()), Integer(1)],
    )
    .await;
    assert_eq!(rows, vec![vec![Text("a".into())]]);
    // An optional parameter, typed where it is used twice.
    let rows = run(
        statement(&[
            "SELECT COUNT(*) FROM jobs WHERE (CAST(",
            "$0",
            " AS timestamptz) IS NULL OR started_at < CAST(",
            "$0",
            " AS timestamptz))",
        ]),
        vec![Text("2024-03-01T10:00:00.001Z".into())],
    )
    .await;
    assert_eq!(rows, vec![vec![Integer(2)]]);
    // An optional parameter left out, and one used twice, untyped once.
    let rows = run(
        statement(&[
            "SELECT COUNT(*) FROM jobs WHERE (",
            "$0",
            " IS NULL OR status = ",
            "$0",
            ")",
        ]),
        vec![Null],
    )
    .await;
    assert_eq!(rows, vec![vec![Integer(2)]]);
    // A parameter only selected is text to PostgreSQL (as a literal would
    // be) unless the SQL says otherwise.
    let rows = run(statement(&["SELECT ", "$0", " AS n"]), vec![Integer(3)]).await;
    assert_eq!(rows, vec![vec![Text("3".into())]]);
    let rows = run(
        statement(&["SELECT CAST(", "$0", " AS bigint) AS n"]),
        vec![Integer(3)],
    )
    .await;
    assert_eq!(rows, vec![vec![Integer(3)]]);
}

#[tokio::test]
async fn read_only_sql_refuses_every_write_and_keeps_other_errors() {
    use crate::store::AdhocError;
    let Some(db) = test_db().await else { return };
    sync_batches(&db.store, vec![vec![job("a", Status::Running)]]).await;
    for sql in [
        "DELETE FROM jobs",
        "UPDATE jobs SET status = 'failed'",
        "DROP TABLE jobs",
        "CREATE TABLE x (a int)",
        "WITH d AS (DELETE FROM jobs RETURNING 1) SELECT COUNT(*) FROM d",
        "SELECT nextval(pg_get_serial_sequence('sync_runs', 'id'))",
    ] {
        let err = db
            .store
            .run_read_only(&statement(&[sql]), &[])
            .await
            .expect_err(sql);
        assert!(
            matches!(err, AdhocError::WriteRefused { .. }),
            "{sql}: {err}"
        );
    }
    assert_eq!(count(&db.store, "SELECT COUNT(*) FROM jobs").await, 1);
    let err = db
        .store
        .run_read_only(&statement(&["SELECT * FROM nowhere"]), &[])
        .await
        .expect_err("no table");
    assert!(matches!(err, AdhocError::Failed(_)), "{err}");
    assert!(
        err.to_string().contains("\"nowhere\" does not exist"),
        "{err}"
    );
    // Columns are known without rows.
    let empty = db
        .store
        .run_read_only(
            &statement(&["SELECT job_id, status FROM jobs WHERE false"]),
            &[],
        )
        .await
        .expect("runs");
    assert_eq!(empty.columns, ["job_id", "status"]);
    assert!(empty.rows.is_empty());
}

/// Copies a whole history between two stores through the export and import
/// methods, as `jobtrail copy` does.
async fn copy_history(
    from: &crate::store::Store,
    to: &crate::store::Store,
) -> crate::store::ImportCounts {
    use crate::store::ImportMode;
    let mut import = to
        .begin_import(ImportMode::SameHistory)
        .await
        .expect("begin");
    import
        .runs(&from.export_runs(0, 1_000).await.expect("runs"))
        .await
        .expect("runs");
    import.end_runs().expect("same history");
    // Small chunks, so paging by key is exercised.
    let mut scope_key = None;
    loop {
        let scopes = from
            .export_scopes(scope_key.as_ref(), 2)
            .await
            .expect("scopes");
        let Some(last) = scopes.last() else { break };
        scope_key = Some(last.scope_key());
        import.scopes(&scopes).await.expect("scopes");
    }
    let mut after = 0;
    loop {
        let changes = from.export_changes(after, 7).await.expect("changes");
        let Some(last) = changes.last() else { break };
        after = last.id;
        import.changes(&changes).await.expect("changes");
    }
    let mut key = None;
    loop {
        let jobs = from.export_jobs(key.as_ref(), 7).await.expect("jobs");
        let Some(last) = jobs.last() else { break };
        key = Some(last.key());
        import.jobs(&jobs).await.expect("jobs");
    }
    import
        .state(&from.export_state(None, 1_000).await.expect("state"))
        .await
        .expect("state");
    import.commit().await.expect("commit")
}

#[tokio::test]
async fn status_and_report_reads_answer_as_on_sqlite() {
    use crate::store::{JobWindow, Store};
    use crate::test_support::{db_with, sample_jobs};
    let Some(db) = test_db().await else { return };
    let mut later = sample_jobs();
    for row in later
        .iter_mut()
        .filter(|r| r.status == Status::Running)
        .take(5)
    {
        row.status = Status::Failed;
        row.fail_reason = Some("gave up".into());
    }
    let sqlite = db_with(&[sample_jobs(), later]).await;
    let sqlite = &sqlite.store;
    let miss = StateUpdate::Misses {
        project_id: "p1".into(),
        source: Source::Dbss,
        miss: crate::store::MissUpdate {
            id: "r9".into(),
            count: 2,
        },
    };
    sqlite
        .set_state(&miss, at("2024-03-20T00:00:05Z"))
        .await
        .expect("state");
    // Two runs with scopes, which `status` shows: p2 failing since the
    // first, p3's NoSQL failing once (its DBSS did not).
    for (day, scopes) in [
        (
            "2024-03-21T00:00:00Z",
            vec![
                scope("p1", RunOutcome::Succeeded),
                scope("p2", RunOutcome::Failed),
            ],
        ),
        (
            "2024-03-22T00:00:00Z",
            vec![
                scope("p2", RunOutcome::Partial),
                scope("p3", RunOutcome::Failed),
                crate::store::ScopeRecord {
                    source: Source::Dbss,
                    ..scope("p3", RunOutcome::Succeeded)
                },
            ],
        ),
    ] {
        let run = sqlite
            .begin_run(&[Source::Nosql], at(day))
            .await
            .expect("run");
        let end = RunEnd {
            scopes: &scopes,
            ..RunEnd::bare(RunOutcome::Partial, 4, at(day))
        };
        sqlite.finish_run(&run, end).await.expect("finish");
    }
    let postgres = &Store::Postgres(db.store.clone());
    let copied = copy_history(sqlite, postgres).await;
    assert_eq!(
        (copied.runs, copied.scopes, copied.jobs, copied.state),
        (4, 5, 300, 1)
    );
    assert_eq!(
        copy_history(sqlite, postgres).await,
        crate::store::ImportCounts::default(),
        "copying again changes nothing"
    );

    macro_rules! same {
        ($($call:tt)*) => {{
            let a = sqlite.$($call)*.await.expect(stringify!($($call)*));
            let b = postgres.$($call)*.await.expect(stringify!($($call)*));
            assert_eq!(a, b, "{}", stringify!($($call)*));
        }};
    }
    same!(history_counts());
    same!(failing_scopes());
    assert_eq!(postgres.failing_scopes().await.expect("failing").len(), 2);
    same!(export_scopes(None, 100));
    same!(count_runs());
    same!(recent_runs(10));
    same!(sync_state_entries());
    same!(job_counts());
    same!(count_unfinished());
    same!(oldest_unfinished());
    same!(top_failure_reasons(5));
    same!(count_jobs());
    same!(unfinished_counts(&[], at("2024-02-01T00:00:00Z")));
    same!(unfinished_counts(
        &[Source::Image],
        at("2024-02-01T00:00:00Z")
    ));
    same!(oldest_running_jobs(&[], 7));
    same!(oldest_running_jobs(&[Source::Dbss, Source::Nosql], 100));
    same!(export_runs(0, 100));
    same!(export_changes(0, 10_000));
    same!(export_state(None, 100));
    let windows = [
        JobWindow::default(),
        JobWindow {
            since: Some(at("2024-01-15T00:00:00Z")),
            until: Some(at("2024-02-20T00:00:00Z")),
            sources: &[Source::Nosql, Source::Image],
        },
    ];
    for window in &windows {
        same!(recent_failures(window, 12));
        let mut a = sqlite.job_groups(window).await.expect("groups");
        let mut b = postgres.job_groups(window).await.expect("groups");
        for groups in [&mut a, &mut b] {
            for g in groups.iter_mut() {
                g.durations_ms.sort_unstable();
            }
            groups.sort_by_key(|g| (g.source, g.job_type.clone(), g.status.as_str(), g.week));
        }
        assert!(a.len() > 10);
        assert_eq!(a, b, "job groups in {window:?}");
        let mut a = sqlite.failure_groups(window).await.expect("failures");
        let mut b = postgres.failure_groups(window).await.expect("failures");
        for groups in [&mut a, &mut b] {
            groups.sort_by_key(|g| (g.reason.clone(), g.source, g.job_type.clone()));
        }
        assert_eq!(a, b, "failure groups in {window:?}");
    }
    // Jobs read back as stored, raw JSON equal as JSON.
    let jobs = |mut v: Vec<crate::store::JobRecord>| {
        for r in &mut v {
            let json: serde_json::Value = serde_json::from_str(&r.job.raw_json).expect("json");
            r.job.raw_json = json.to_string();
        }
        v
    };
    assert_eq!(
        jobs(sqlite.export_jobs(None, 1_000).await.expect("jobs")),
        jobs(postgres.export_jobs(None, 1_000).await.expect("jobs"))
    );

    // And back into a new SQLite file: the same scope rows, the same status.
    let back = db_with(&[]).await;
    let back = &back.store;
    assert_eq!(copy_history(postgres, back).await.scopes, 5);
    for (a, b) in [(sqlite, back), (postgres, back)] {
        assert_eq!(
            a.export_scopes(None, 100).await.expect("scopes"),
            b.export_scopes(None, 100).await.expect("scopes")
        );
        assert_eq!(
            a.failing_scopes().await.expect("failing"),
            b.failing_scopes().await.expect("failing")
        );
    }
}

/// A scope of project `project` (NoSQL) that ended with `outcome`.
fn scope(project: &str, outcome: RunOutcome) -> crate::store::ScopeRecord {
    crate::store::ScopeRecord {
        project_id: project.into(),
        region: "cn-north-4".into(),
        source: Source::Nosql,
        outcome,
        requests: 3,
        error: (outcome != RunOutcome::Succeeded).then(|| format!("{project} refused")),
    }
}

#[tokio::test]
async fn scopes_are_counted_in_the_run_s_transaction_and_a_failing_streak_is_dated() {
    let Some(db) = test_db().await else { return };
    let store = &db.store;
    let mut counts = vec![];
    for (day, rows, scopes) in [
        (
            "2024-03-01T00:00:00Z",
            vec![job("a", Status::Running), job("b", Status::Failed)],
            vec![
                scope("p1", RunOutcome::Succeeded),
                scope("p2", RunOutcome::Failed),
            ],
        ),
        (
            "2024-03-02T00:00:00Z",
            vec![job("a", Status::Failed)],
            vec![
                scope("p1", RunOutcome::Failed),
                scope("p2", RunOutcome::Partial),
            ],
        ),
    ] {
        let when = at(day);
        let run = store.begin_run(&[Source::Nosql], when).await.expect("run");
        store
            .write_batch(run.id, when, &batch(rows))
            .await
            .expect("write");
        let end = RunEnd {
            scopes: &scopes,
            ..RunEnd::bare(RunOutcome::Partial, 9, when)
        };
        counts.push(store.finish_run(&run, end).await.expect("finish"));
        if counts.len() == 2 {
            // Run 2 saw `a` become failed; `b` was failed already.
            let news = store.new_failures(&run).await.expect("new failures");
            let ids: Vec<&str> = news.iter().map(|f| f.job_id.as_str()).collect();
            assert_eq!(ids, ["a"]);
            assert_eq!(
                store.new_failure_counts(&run).await.expect("counts"),
                vec![(Source::Nosql, 1)]
            );
        }
    }
    let seen = |c: &crate::store::RunCounts| (c.totals.seen, c.totals.new, c.totals.changed);
    assert_eq!(seen(&counts[0]), (2, 2, 0));
    assert_eq!(counts[0].scopes[0], counts[0].totals, "p1 stored them all");
    assert_eq!(counts[0].scopes[1], RunTotals::default());
    assert_eq!(seen(&counts[1]), (1, 0, 1));
    let failing: Vec<(String, String, String, i64, String)> = store
        .failing_scopes()
        .await
        .expect("failing")
        .into_iter()
        .map(|f| {
            (
                f.project_id,
                f.status,
                f.failing_since,
                f.failed_runs,
                f.last_run_at,
            )
        })
        .collect();
    let row = |p: &str, s: &str, since: &str, n| {
        (
            p.to_owned(),
            s.to_owned(),
            since.to_owned(),
            n,
            "2024-03-02T00:00:00.000Z".to_owned(),
        )
    };
    assert_eq!(
        failing,
        vec![
            row("p2", "partial", "2024-03-01T00:00:00.000Z", 2),
            row("p1", "failed", "2024-03-02T00:00:00.000Z", 1),
        ],
        "longest failing first, times as SQLite gives them"
    );
    assert!(
        store
            .oldest_unfinished_by_source()
            .await
            .expect("oldest")
            .is_empty(),
        "nothing is running any more"
    );
}

#[tokio::test]
async fn iam_answers_last_successes_and_the_dbss_path_read_back_as_on_sqlite() {
    use crate::model::{DbssJobsPath, IamProject};
    use crate::store::{IamCacheKey, IamLookup, LastSuccess};

    let Some(db) = test_db().await else { return };
    let store = &db.store;
    let key = |lookup| IamCacheKey {
        credential: "c1",
        endpoint: "https://iam.example/",
        lookup,
    };
    let project = |id: &str, enabled| IamProject {
        id: id.into(),
        name: format!("{id}-name"),
        enabled,
    };
    let all = [project("b", true), project("a", true), project("c", false)];
    let first = at("2024-03-01T00:00:00.123Z");
    assert_eq!(
        store
            .cached_iam_projects(&key(IamLookup::Account))
            .await
            .expect("read"),
        None
    );
    store
        .cache_iam_projects(&key(IamLookup::Account), &all, first)
        .await
        .expect("store");
    let read = store
        .cached_iam_projects(&key(IamLookup::Account))
        .await
        .expect("read")
        .expect("cached");
    assert_eq!(
        (read.projects.as_slice(), read.fetched_at),
        (&all[..], first)
    );
    let later = at("2024-03-02T00:00:00Z");
    store
        .cache_iam_projects(&key(IamLookup::Account), &all[2..], later)
        .await
        .expect("replace");
    let read = store
        .cached_iam_projects(&key(IamLookup::Account))
        .await
        .expect("read")
        .expect("cached");
    assert_eq!(
        (read.projects.as_slice(), read.fetched_at),
        (&all[2..], later)
    );
    assert_eq!(
        store
            .cached_iam_projects(&key(IamLookup::Name("cn-north-4")))
            .await
            .expect("read"),
        None
    );

    store
        .record_complete_syncs(&[("p1", Source::Nosql), ("p1", Source::Dbss)], first)
        .await
        .expect("record");
    store
        .record_complete_syncs(&[("p1", Source::Dbss)], later)
        .await
        .expect("record");
    let want = |source, at| LastSuccess {
        project_id: "p1".into(),
        source,
        at,
    };
    assert_eq!(
        store.last_successes().await.expect("read"),
        vec![want(Source::Dbss, later), want(Source::Nosql, first)]
    );

    assert_eq!(store.dbss_jobs_path("p1").await.expect("read"), None);
    store
        .set_state(
            &StateUpdate::DbssJobsPath {
                project_id: "p1".into(),
                path: DbssJobsPath::Legacy,
            },
            later,
        )
        .await
        .expect("set");
    assert_eq!(
        store.dbss_jobs_path("p1").await.expect("read"),
        Some(DbssJobsPath::Legacy)
    );
}
