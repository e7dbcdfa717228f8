//! Incremental syncs from cron: cheap, complete, never doubled, safe when two
//! run at once or one is killed mid-run.

use std::time::Duration;

use chrono::Utc;
use jobtrail::sim::SimConfig;

use crate::util::{Backend, Env, text, utc_ms};

on_both_backends!(
    an_old_job_turning_failed_and_new_jobs_cost_only_a_few_requests,
    a_second_identical_sync_finds_nothing_new_and_skips_final_image_jobs,
);

async fn scalar(env: &Env, sql: &str) -> i64 {
    env.scalar(sql).await
}

/// The simulator's truth as (job_id, raw status, fail_reason) for NoSQL, sorted.
pub(crate) fn nosql_truth(env: &Env) -> Vec<(String, String, Option<String>)> {
    let mut v: Vec<_> = env
        .world()
        .projects
        .values()
        .flat_map(|p| p.nosql.iter())
        .map(|j| {
            (
                j.id.clone(),
                j.status.clone(),
                Some(j.fail_reason.clone()).filter(|r| !r.is_empty()),
            )
        })
        .collect();
    v.sort();
    v
}

/// (job_id, raw status, fail_reason) of every stored NoSQL job, sorted.
pub(crate) async fn nosql_stored(env: &Env) -> Vec<(String, String, Option<String>)> {
    let mut rows: Vec<_> = env
        .rows(
            "SELECT job_id, raw_status, fail_reason FROM jobs WHERE source = 'nosql'",
            &[],
        )
        .await
        .iter()
        .map(|r| {
            (
                text(r, "job_id").expect("job_id"),
                text(r, "raw_status").expect("raw_status"),
                text(r, "fail_reason"),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The first project, and one of its NoSQL jobs started within `days` ago,
/// which the simulator now shows as running.
fn running_job_started_days_ago(env: &Env, days: std::ops::Range<i64>) -> (String, String) {
    let world = env.world();
    let project = world.projects.keys().next().cloned().expect("project");
    let job = world.projects[&project]
        .nosql
        .iter()
        .find(|j| days.contains(&(Utc::now() - j.start).num_days()))
        .unwrap_or_else(|| panic!("a job started {days:?} days ago"))
        .id
        .clone();
    assert!(env.sim.set_nosql_job(&project, &job, "Running", "", None));
    (project, job)
}

async fn an_old_job_turning_failed_and_new_jobs_cost_only_a_few_requests(backend: Backend) {
    let config = SimConfig {
        nosql_jobs: 900,
        history_days: 95,
        ..SimConfig::new(51)
    };
    let Some(env) = Env::start_on(config, backend).await else {
        return;
    };
    let (project, old_id) = running_job_started_days_ago(&env, 44..46);
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    assert_eq!(
        scalar(
            &env,
            &format!(
                "SELECT COUNT(*) FROM jobs WHERE job_id = '{}' AND status = 'running'",
                old_id
            )
        )
        .await,
        1
    );

    // Running jobs older than the incremental range, grouped into 30-day spans.
    let watermark = text(
        &env.rows("SELECT value FROM sync_state WHERE key = 'watermark'", &[])
            .await[0],
        "value",
    )
    .expect("watermark");
    let stale: Vec<String> = env
        .rows(
            "SELECT started_at FROM jobs WHERE source = 'nosql' \
             AND status IN ('running', 'unknown') AND started_at < :watermark ORDER BY started_at",
            &[("watermark", &watermark)],
        )
        .await
        .iter()
        .map(|r| text(r, "started_at").expect("started"))
        .collect();
    let parse = |s: &String| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    };
    let all_starts: Vec<chrono::DateTime<Utc>> = env
        .rows(
            "SELECT started_at FROM jobs WHERE source = 'nosql' ORDER BY started_at",
            &[],
        )
        .await
        .iter()
        .map(|r| parse(&text(r, "started_at").expect("started")))
        .collect();
    // Group the stale running jobs into 30-day spans; re-checking a span costs
    // the cheaper of one lookup per job or one page per 50 stored jobs in it.
    let mut groups: Vec<Vec<chrono::DateTime<Utc>>> = Vec::new();
    for t in stale.iter().map(parse) {
        match groups.last_mut() {
            Some(g) if t - g[0] < chrono::Duration::days(30) => g.push(t),
            _ => groups.push(vec![t]),
        }
    }
    let recheck_cost: usize = groups
        .iter()
        .map(|g| {
            let (first, last) = (g[0], g[g.len() - 1]);
            let in_span = all_starts
                .iter()
                .filter(|t| **t >= first && **t <= last)
                .count();
            g.len().min(in_span.div_ceil(50).max(1))
        })
        .sum();
    let spans = groups.len();

    let ended = Utc::now() - chrono::Duration::days(44);
    assert!(env.sim.set_nosql_job(
        &project,
        &old_id,
        "Failed",
        "Disk full on node 2",
        Some(ended)
    ));
    let added = env.sim.add_nosql_jobs(&project, 30);
    env.sim.clear_requests();
    let run = env.jobtrail(&["sync", "--source", "nosql"]).await;
    run.assert_code(0);

    let requests = env.sim.request_count();
    let new_pages = 1; // 30 new jobs fit one page of 50
    assert!(
        requests <= new_pages + recheck_cost + 2,
        "{requests} requests for {new_pages} new page(s) and {} stale running jobs in {spans} span(s) (re-check cost {recheck_cost})",
        stale.len()
    );
    let old = &env
        .rows(
            "SELECT status, fail_reason, ended_at FROM jobs WHERE job_id = :id",
            &[("id", &old_id)],
        )
        .await[0];
    let (status, reason, ended_at) = (
        text(old, "status").expect("status"),
        text(old, "fail_reason"),
        text(old, "ended_at"),
    );
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("failed", Some("Disk full on node 2"))
    );
    assert!(ended_at.is_some_and(|e| e.starts_with(&utc_ms(ended)[..16])));
    let last = &env
        .rows(
            "SELECT old_status, new_status, fail_reason FROM job_status_changes \
             WHERE job_id = :id ORDER BY id DESC LIMIT 1",
            &[("id", &old_id)],
        )
        .await[0];
    let change = (
        text(last, "old_status"),
        text(last, "new_status").expect("new"),
        text(last, "fail_reason"),
    );
    assert_eq!(
        change,
        (
            Some("running".into()),
            "failed".into(),
            Some("Disk full on node 2".into())
        )
    );
    for id in &added {
        assert_eq!(
            scalar(
                &env,
                &format!("SELECT COUNT(*) FROM jobs WHERE job_id = '{id}'")
            )
            .await,
            1
        );
    }
    assert!(run.stdout.contains("30 new"), "{}", run.stdout);
    assert_eq!(nosql_stored(&env).await, nosql_truth(&env));
}

async fn a_second_identical_sync_finds_nothing_new_and_skips_final_image_jobs(backend: Backend) {
    let Some(env) = Env::start_on(SimConfig::new(52), backend).await else {
        return;
    };
    env.jobtrail(&["sync"]).await.assert_code(0);
    env.sim.clear_requests();
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("(0 new, 0 changed)"), "{}", run.stdout);
    let final_ids: Vec<String> = env
        .rows(
            "SELECT job_id FROM jobs j WHERE source = 'image' AND parent_job_id IS NULL AND status IN ('succeeded', 'failed') \
             AND NOT EXISTS (SELECT 1 FROM jobs s WHERE s.parent_job_id = j.job_id AND s.status NOT IN ('succeeded', 'failed'))",
            &[],
        )
        .await
        .iter()
        .map(|r| text(r, "job_id").expect("job_id"))
        .collect();
    assert!(!final_ids.is_empty());
    for r in env.sim.requests() {
        assert!(
            !final_ids
                .iter()
                .any(|id| r.path.ends_with(&format!("/image-server-jobs/{id}"))),
            "{r:?}"
        );
    }
    let last = &env
        .rows(
            "SELECT jobs_new, jobs_changed FROM sync_runs ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await[0];
    assert_eq!(
        (
            crate::util::int(last, "jobs_new"),
            crate::util::int(last, "jobs_changed")
        ),
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_syncs_at_once_never_interleave_and_the_data_is_complete() {
    let env = Env::start(SimConfig {
        nosql_jobs: 1500,
        latency: Duration::from_millis(40),
        ..SimConfig::new(53)
    })
    .await;
    let (a, b) = tokio::join!(
        env.jobtrail(&["sync", "--source", "nosql"]),
        env.jobtrail(&["sync", "--source", "nosql"])
    );
    let mut finished = 0;
    for run in [&a, &b] {
        match run.code {
            0 => finished += 1,
            1 => assert!(
                run.stderr.contains("another sync is running") && run.stderr.contains("pid "),
                "{}",
                run.stderr
            ),
            other => panic!("unexpected exit {other}: {}", run.stderr),
        }
    }
    assert!(finished >= 1);
    assert_eq!(
        scalar(&env, "SELECT COUNT(*) FROM sync_runs").await,
        finished
    );
    assert_eq!(
        scalar(
            &env,
            "SELECT COUNT(*) FROM sync_runs WHERE status = 'succeeded'"
        )
        .await,
        finished
    );
    assert_eq!(nosql_stored(&env).await, nosql_truth(&env));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_mid_run_leaves_a_sound_database_that_the_next_sync_completes() {
    let env = Env::start(SimConfig {
        nosql_jobs: 3000,
        image_jobs: 40,
        latency: Duration::from_millis(15),
        ..SimConfig::new(54)
    })
    .await;
    let db = env.db().display().to_string();
    let config = env.config_path().display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_jobtrail"))
        .args(["--db", &db, "--config", &config, "sync"])
        .env("CLOUD_SDK_TOKEN", crate::util::TOKEN)
        .env("HOME", env.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill once some rows have landed, but long before the sync can finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let landed = std::fs::metadata(env.db()).map(|m| m.len()).unwrap_or(0) > 0
            && env.sim.request_count() > 20;
        if landed || std::time::Instant::now() > deadline {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "killed before it finished");

    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&env.pool().await)
        .await
        .expect("integrity");
    assert_eq!(check, "ok");
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(0);
    assert_eq!(nosql_stored(&env).await, nosql_truth(&env));
    let interrupted: (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM sync_runs ORDER BY id LIMIT 1")
            .fetch_one(&env.pool().await)
            .await
            .expect("first run");
    assert_eq!(interrupted.0, "failed");
    assert!(interrupted.1.is_some_and(|e| e.contains("interrupted")));
    let image: i64 = scalar(
        &env,
        "SELECT COUNT(*) FROM jobs WHERE source = 'image' AND parent_job_id IS NULL",
    )
    .await;
    let listed = env
        .world()
        .projects
        .values()
        .flat_map(|p| &p.image_jobs)
        .filter(|j| j.listed)
        .count();
    assert_eq!(image as usize, listed);
    let dupes = scalar(&env, "SELECT COUNT(*) FROM (SELECT job_id FROM job_status_changes WHERE old_status IS NULL GROUP BY source, project_id, job_id HAVING COUNT(*) > 1)").await;
    assert_eq!(dupes, 0, "each job first seen once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nosql_job_deleted_in_the_cloud_is_given_up_on_after_three_syncs() {
    let env = Env::start(SimConfig {
        nosql_jobs: 300,
        history_days: 60,
        ..SimConfig::new(57)
    })
    .await;
    let project = env
        .world()
        .projects
        .keys()
        .next()
        .cloned()
        .expect("project");
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    // A job stored unfinished 40 days ago that the cloud no longer knows.
    let started = utc_ms(Utc::now() - chrono::Duration::days(40));
    sqlx::query(
        "INSERT INTO jobs (source, project_id, job_id, job_type, status, raw_status, started_at, \
         raw_json, first_seen_at, last_seen_at, last_sync_id) \
         VALUES ('nosql', ?, 'vanished-job', 'BackupInstance', 'running', 'Running', ?, '{}', ?, ?, 1)",
    )
    .bind(&project)
    .bind(&started)
    .bind(&started)
    .bind(&started)
    .execute(&env.writable_pool().await)
    .await
    .expect("insert");
    let asked = |env: &Env| {
        env.sim
            .requests()
            .iter()
            .filter(|r| {
                r.query
                    .iter()
                    .any(|(k, v)| k == "id" && v == "vanished-job")
            })
            .count()
    };
    for attempt in 1..=3 {
        env.sim.clear_requests();
        let run = env.jobtrail(&["sync", "--source", "nosql"]).await;
        run.assert_code(0);
        assert_eq!(asked(&env), 1, "sync {attempt} looks it up once");
        assert_eq!(
            run.stderr.contains("not found by 3 syncs in a row"),
            attempt == 3,
            "sync {attempt}: {}",
            run.stderr
        );
    }
    env.sim.clear_requests();
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    assert_eq!(asked(&env), 0, "no longer asked for");
    assert_eq!(
        scalar(
            &env,
            "SELECT COUNT(*) FROM jobs WHERE job_id = 'vanished-job' AND status = 'running'"
        )
        .await,
        1,
        "keeps its last stored state"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_given_up_on_is_re_checked_again_once_a_listing_finds_it() {
    let env = Env::start(SimConfig {
        nosql_jobs: 300,
        history_days: 60,
        ..SimConfig::new(58)
    })
    .await;
    let (project, job_id) = running_job_started_days_ago(&env, 40..59);
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    // As if three lookups had missed it.
    let writable = env.writable_pool().await;
    sqlx::query(
        "INSERT INTO sync_state (project_id, source, key, value, updated_at) \
         VALUES (?, 'nosql', ?, '3', 'x')",
    )
    .bind(&project)
    .bind(format!("missing:{}", job_id))
    .execute(&writable)
    .await
    .expect("misses");
    writable.close().await;
    let misses = format!(
        "SELECT COUNT(*) FROM sync_state WHERE key = 'missing:{}'",
        job_id
    );
    assert_eq!(scalar(&env, &misses).await, 1);
    env.jobtrail(&["sync", "--source", "nosql", "--full"])
        .await
        .assert_code(0);
    assert_eq!(scalar(&env, &misses).await, 0, "the full listing found it");
    assert!(
        env.sim
            .set_nosql_job(&project, &job_id, "Failed", "disk full", None)
    );
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    assert_eq!(
        scalar(
            &env,
            &format!(
                "SELECT COUNT(*) FROM jobs WHERE job_id = '{}' AND status = 'failed'",
                job_id
            )
        )
        .await,
        1,
        "re-checked again, so its failure is stored"
    );
}
