//! A PostgreSQL sync whose project lock goes with its session mid-run (a
//! server restart, a dropped connection, an admin's `pg_terminate_backend`):
//! it commits nothing more, fails naming the lost lock, keeps what it stored,
//! and the next sync completes. Without a server the test says SKIPPED (and
//! fails under CI).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jobtrail::sim::{DEFAULT_PROJECT, Fault, FaultRule, SimConfig};

use crate::incremental::{nosql_stored, nosql_truth};
use crate::util::{Backend, Env, TOKEN, text};

/// Jobs stored, as another session sees them (0 before the tables exist).
async fn jobs_stored(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(conn)
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_sync_that_loses_its_lock_stops_writing_fails_and_keeps_what_it_stored() {
    let config = SimConfig {
        nosql_jobs: 6000,
        image_jobs: 40,
        // Slow enough that the writer commits many times along the way.
        latency: Duration::from_millis(150),
        ..SimConfig::new(86)
    };
    let Some(env) = Env::start_on(config, Backend::Postgres).await else {
        return;
    };
    // One image job answers only after a while, so the sync cannot be done
    // before its lock is taken away, and has rows left to commit after.
    env.sim.add_fault(
        FaultRule::new("/image-server-jobs/", Fault::Hang(Duration::from_secs(8))).times(1),
    );
    let config_path = env.config_path().display().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_jobtrail"))
        .args(["--db", &env.db_arg(), "--config", &config_path, "sync"])
        .env("CLOUD_SDK_TOKEN", TOKEN)
        .env("HOME", env.dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");

    // Once some batches are committed, end the session holding the lock,
    // found by the sync's process id in its application_name.
    let mut conn = env.pg_connection().await;
    let holder = format!("jobtrail sync pid={} host=%", child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let session: i32 = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let session: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name LIKE $1",
        )
        .bind(&holder)
        .fetch_optional(&mut conn)
        .await
        .expect("sessions");
        if let Some(session) = session
            && jobs_stored(&mut conn).await > 0
        {
            break session;
        }
        assert!(
            Instant::now() < deadline,
            "no lock session and committed rows within 30 s"
        );
    };
    let held = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1",
    )
    .bind(session)
    .fetch_one(&mut conn)
    .await
    .expect("locks");
    assert_eq!(held, 1, "the session holds the project's lock");
    let stored_before = jobs_stored(&mut conn).await;
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(session)
        .fetch_one(&mut conn)
        .await
        .expect("terminate");
    assert!(terminated);

    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("waiter")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lost = format!("lost the sync lock of project(s) {DEFAULT_PROJECT}");
    for expected in [
        lost.as_str(),
        "the database session holding it ended",
        "stopped writing",
    ] {
        assert!(stderr.contains(expected), "{expected}:\n{stderr}");
    }

    let run = &env
        .rows("SELECT id, status, error FROM sync_runs ORDER BY id", &[])
        .await[0];
    assert_eq!(text(run, "status").as_deref(), Some("failed"), "{run:?}");
    assert!(
        text(run, "error").is_some_and(|e| e.starts_with(&lost)),
        "{run:?}"
    );
    assert!(
        jobs_stored(&mut conn).await >= stored_before,
        "what was committed stays"
    );
    let status = env.jobtrail(&["status"]).await;
    status.assert_code(0);
    assert!(status.stdout.contains(&lost), "{}", status.stdout);

    // The next sync takes the lock and completes the history.
    env.jobtrail(&["sync"]).await.assert_code(0);
    assert_eq!(nosql_stored(&env).await, nosql_truth(&env));
    let last = &env
        .rows("SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1", &[])
        .await[0];
    assert_eq!(text(last, "status").as_deref(), Some("succeeded"));
}
