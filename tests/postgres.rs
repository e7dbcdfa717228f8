//! Many hosts, one PostgreSQL database (SPEC §8): `--shard` (on either
//! backend), syncs of different projects at once, the same project never
//! twice (the second is told who holds it), a sync killed mid-batch, a
//! read-only role for people and Grafana, and a server that cannot be reached. Each test gets a fresh database; without a
//! server they say SKIPPED (and fail under CI).

use std::time::Duration;

use jobtrail::sim::{DEFAULT_PROJECT, SimConfig};
use jobtrail::store::PgStore;

use crate::incremental::{nosql_stored, nosql_truth};
use crate::util::{Backend, Env, TOKEN, text};

/// A second simulated project, beside the default one.
const OTHER_PROJECT: &str = "7d2f6a1e9b0c4f3a8e5d1c2b3a4f5e6d";

fn two_projects(seed: u64) -> SimConfig {
    SimConfig {
        projects: vec![DEFAULT_PROJECT.to_owned(), OTHER_PROJECT.to_owned()],
        nosql_jobs: 400,
        latency: Duration::from_millis(5),
        ..SimConfig::new(seed)
    }
}

on_both_backends!(shards_split_the_projects_between_hosts);

/// `--shard I/N`: every project in exactly one share, on either backend.
async fn shards_split_the_projects_between_hosts(backend: Backend) {
    let Some(env) = Env::start_on(two_projects(84), backend).await else {
        return;
    };
    let mut seen: Vec<String> = Vec::new();
    for (run, shard) in [(1, "1/2"), (2, "2/2")] {
        env.jobtrail(&["sync", "--source", "nosql", "--shard", shard])
            .await
            .assert_code(0);
        let projects = env
            .rows(
                "SELECT DISTINCT project_id FROM jobs WHERE last_sync_id = :run",
                &[("run", &run.to_string())],
            )
            .await;
        for row in &projects {
            let project = text(row, "project_id").expect("project");
            assert!(!seen.contains(&project), "{project} in two shares");
            seen.push(project);
        }
    }
    seen.sort();
    let mut all = vec![DEFAULT_PROJECT.to_owned(), OTHER_PROJECT.to_owned()];
    all.sort();
    assert_eq!(seen, all, "every project in one share");
    assert_eq!(nosql_stored(&env).await, nosql_truth(&env));

    for bad in ["0/2", "3/2", "2", "x/y"] {
        let run = env.jobtrail(&["sync", "--shard", bad]).await;
        run.assert_code(2);
        assert!(run.stderr.contains("I/N"), "{bad}: {}", run.stderr);
    }
    let both = env
        .jobtrail(&["sync", "--shard", "1/2", "--project", DEFAULT_PROJECT])
        .await;
    both.assert_code(2);
}

/// The test's own store on the env's database, to hold locks as another host would.
async fn other_host(env: &Env) -> PgStore {
    PgStore::open(&env.pg.as_ref().expect("PostgreSQL").url)
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_syncs_of_different_projects_run_at_once_and_of_one_project_never() {
    let Some(env) = Env::start_on(two_projects(81), Backend::Postgres).await else {
        return;
    };
    let host = other_host(&env).await;
    let held = host
        .lock_projects(&[DEFAULT_PROJECT], Duration::ZERO)
        .await
        .expect("lock");

    // Another project is not held up by it.
    env.jobtrail(&["sync", "--project", OTHER_PROJECT])
        .await
        .assert_code(0);

    // The same project is: the sync waits briefly, then names the holder.
    let refused = env.jobtrail(&["sync", "--project", DEFAULT_PROJECT]).await;
    refused.assert_code(1);
    assert!(
        refused.stderr.contains(&format!(
            "another sync of project {DEFAULT_PROJECT} is running"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains(&format!("pid {}", std::process::id())),
        "names the holder's pid: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("host "), "{}", refused.stderr);

    // A sync that finds it held waits for it.
    let waiting = env.jobtrail(&["sync", "--project", DEFAULT_PROJECT]);
    let release = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        held.release().await;
    };
    let (waited, ()) = tokio::join!(waiting, release);
    waited.assert_code(0);

    // Both projects at once, from two processes.
    for project in [DEFAULT_PROJECT, OTHER_PROJECT] {
        env.sim.add_nosql_jobs(project, 60);
    }
    let (a, b) = tokio::join!(
        env.jobtrail(&["sync", "--project", DEFAULT_PROJECT]),
        env.jobtrail(&["sync", "--project", OTHER_PROJECT])
    );
    a.assert_code(0);
    b.assert_code(0);
    assert_eq!(nosql_stored(&env).await, nosql_truth(&env));
    let unfinished = env
        .scalar("SELECT COUNT(*) FROM sync_runs WHERE status <> 'succeeded'")
        .await;
    assert_eq!(unfinished, 0, "every run closed as succeeded");
    host.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_sync_killed_mid_batch_leaves_no_partial_batch_and_the_next_completes() {
    let config = SimConfig {
        nosql_jobs: 6000,
        image_jobs: 80,
        // Slow enough that the writer commits many times along the way.
        latency: Duration::from_millis(150),
        ..SimConfig::new(82)
    };
    let Some(env) = Env::start_on(config, Backend::Postgres).await else {
        return;
    };
    let config_path = env.config_path().display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_jobtrail"))
        .args(["--db", &env.db_arg(), "--config", &config_path, "sync"])
        .env("CLOUD_SDK_TOKEN", TOKEN)
        .env("HOME", env.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once some batches are committed, long before it can finish.
    let mut conn = env.pg_connection().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        // No table yet: the sync has not set the database up.
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
        if stored > 0 || std::time::Instant::now() > deadline {
            break;
        }
    }
    let finished: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs WHERE status <> 'running'")
            .fetch_one(&mut conn)
            .await
            .expect("runs");
    child.kill().expect("SIGKILL");
    assert!(
        !child.wait().expect("wait").success(),
        "killed before it finished"
    );
    assert_eq!(finished, 0, "killed mid-run");

    // Whole batches only: every stored job has its first sighting, and every
    // history row its job.
    let orphans: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM job_status_changes c \
                 WHERE c.source = j.source AND c.project_id = j.project_id AND c.job_id = j.job_id \
                   AND c.old_status IS NULL)),
                (SELECT COUNT(*) FROM job_status_changes c WHERE NOT EXISTS (SELECT 1 FROM jobs j \
                 WHERE c.source = j.source AND c.project_id = j.project_id AND c.job_id = j.job_id))",
    )
    .fetch_one(&mut conn)
    .await
    .expect("orphans");
    assert_eq!(orphans, (0, 0));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert!(stored > 0, "some batches were committed before the kill");

    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(0);
    assert_eq!(nosql_stored(&env).await, nosql_truth(&env));
    let first = &env
        .rows(
            "SELECT status, error FROM sync_runs ORDER BY id LIMIT 1",
            &[],
        )
        .await[0];
    assert_eq!(text(first, "status").as_deref(), Some("failed"));
    assert!(
        text(first, "error").is_some_and(|e| e.contains("interrupted")),
        "{first:?}"
    );
    let dupes = env
        .scalar(
            "SELECT COUNT(*) FROM (SELECT job_id FROM job_status_changes WHERE old_status IS NULL \
             GROUP BY source, project_id, job_id HAVING COUNT(*) > 1) d",
        )
        .await;
    assert_eq!(dupes, 0, "each job first seen once");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_read_only_role_can_query_status_and_report_but_not_write() {
    let Some(env) = Env::start_on(SimConfig::new(83), Backend::Postgres).await else {
        return;
    };
    env.jobtrail(&["sync"]).await.assert_code(0);
    let role = format!("jt_reader_{:08x}", rand::random::<u32>());
    let mut conn = env.pg_connection().await;
    // What the README tells a team to run for people and Grafana.
    let grants = format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'reader-pw';
         GRANT CONNECT ON DATABASE \"{db}\" TO {role};
         GRANT USAGE ON SCHEMA public TO {role};
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};",
        db = env
            .pg
            .as_ref()
            .expect("pg")
            .url
            .rsplit('/')
            .next()
            .expect("name"),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(grants))
        .execute(&mut conn)
        .await
        .expect("role");
    let mut url = reqwest::Url::parse(&env.db_arg()).expect("url");
    url.set_username(&role).expect("user");
    url.set_password(Some("reader-pw")).expect("password");
    let reader = url.to_string();

    let jobs = env
        .rows_on(&reader, "SELECT COUNT(*) AS n FROM jobs", &[])
        .await;
    assert!(crate::util::int(&jobs[0], "n") > 0);
    env.jobtrail_on(&reader, &["query", "recent-failures"])
        .await
        .assert_code(0);
    let status = env.jobtrail_on(&reader, &["status"]).await;
    status.assert_code(0);
    assert!(
        status.stdout.contains(&format!("postgres://{role}:***@")),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("reader-pw"));
    let out = env.dir.path().join("reader.html").display().to_string();
    env.jobtrail_on(&reader, &["report", "-o", &out])
        .await
        .assert_code(0);
    let refused = env.jobtrail_on(&reader, &["sync"]).await;
    assert_ne!(refused.code, 0, "a reader cannot sync");
    assert!(!refused.stderr.contains("reader-pw"), "{}", refused.stderr);

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP OWNED BY {role}; DROP ROLE {role};"
    )))
    .execute(&mut conn)
    .await
    .expect("drop role");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_that_cannot_be_reached_fails_at_once_naming_host_port_and_database() {
    let dir = tempfile::tempdir().expect("dir");
    // Port 1 on loopback: nothing listens, the connection is refused.
    let run = crate::util::run_cli(
        dir.path().to_path_buf(),
        [
            "--db",
            "postgres://ops:hunter2@127.0.0.1:1/history",
            "status",
        ]
        .map(String::from)
        .to_vec(),
        Vec::new(),
    )
    .await;
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("postgres://ops:***@127.0.0.1:1/history"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    let help = crate::util::run_cli(
        dir.path().to_path_buf(),
        vec!["--help".into()],
        vec![(
            "JOBTRAIL_DB".into(),
            "postgres://ops:hunter2@127.0.0.1:1/history".into(),
        )],
    )
    .await;
    assert!(!help.stdout.contains("hunter2"), "--help hides JOBTRAIL_DB");
}
