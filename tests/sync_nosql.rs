//! The NoSQL job history end to end: every job stored once with the right
//! fields, only requests the real API accepts, retries, and failures that lose nothing.

use chrono::{DateTime, Utc};
use jobtrail::sim::{Fault, FaultRule, SimConfig};
use sqlx::Row;

use crate::util::{Backend, Env, expected_status, non_empty, opt_int, text, utc_ms};

type NosqlRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The project's NoSQL rows as `jobtrail query` shows them, on either backend.
async fn nosql_rows(env: &Env, project: &str) -> Vec<NosqlRow> {
    env.rows(
        "SELECT job_id, job_type, status, raw_status, progress, started_at, ended_at, duration_ms, \
         resource_id, resource_name, fail_reason FROM jobs \
         WHERE source = 'nosql' AND project_id = :project ORDER BY job_id",
        &[("project", project)],
    )
    .await
    .iter()
    .map(|r| {
        (
            text(r, "job_id").expect("job_id"),
            text(r, "job_type"),
            text(r, "status").expect("status"),
            text(r, "raw_status"),
            opt_int(r, "progress"),
            text(r, "started_at"),
            text(r, "ended_at"),
            opt_int(r, "duration_ms"),
            text(r, "resource_id"),
            text(r, "resource_name"),
            text(r, "fail_reason"),
        )
    })
    .collect()
}

on_both_backends!(
    every_job_of_a_95_day_history_is_stored_once_with_normalized_fields,
    rerunning_a_sync_adds_no_rows,
);

fn history_config(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 700,
        history_days: 95,
        ..SimConfig::new(seed)
    }
}

async fn every_job_of_a_95_day_history_is_stored_once_with_normalized_fields(backend: Backend) {
    let Some(env) = Env::start_on(history_config(11), backend).await else {
        return;
    };
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);

    let world = env.world();
    for (project, data) in &world.projects {
        assert!(
            data.nosql.iter().any(|j| j.utc_offset_minutes == 480),
            "the history includes +0800 times"
        );
        let oldest = data.nosql.iter().map(|j| j.start).min().expect("jobs");
        assert!(
            Utc::now() - oldest > chrono::Duration::days(90),
            "history spans > 90 days"
        );
        let rows = nosql_rows(&env, project).await;
        assert_eq!(
            rows.len(),
            data.nosql.len(),
            "one row per job of project {project}"
        );
        let mut expected = data.nosql.clone();
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        for (row, job) in rows.iter().zip(&expected) {
            let ended: Option<DateTime<Utc>> = job.end;
            let want: crate::sync_nosql::NosqlRow = (
                job.id.clone(),
                Some(job.name.clone()),
                expected_status("nosql", &job.status, false).to_owned(),
                Some(job.status.clone()),
                job.progress.trim_end_matches('%').parse().ok(),
                Some(utc_ms(job.start)),
                ended.map(utc_ms),
                ended.map(|e| (e - job.start).num_milliseconds()),
                Some(job.instance_id.clone()),
                Some(job.instance_name.clone()),
                non_empty(&job.fail_reason),
            );
            assert_eq!(row, &want, "job {}", job.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_sends_only_requests_the_real_api_accepts() {
    let env = Env::start(history_config(12)).await;
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    let requests = env.sim.requests();
    assert!(requests.len() > 10, "paged through many windows and pages");
    for r in requests.iter().filter(|r| r.path.ends_with("/jobs")) {
        assert_eq!(r.status, 200, "{r:?}");
        let get = |k: &str| {
            r.query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let limit: u32 = get("limit")
            .and_then(|l| l.parse().ok())
            .expect("limit sent");
        assert!([10, 20, 50].contains(&limit), "{r:?}");
        let parse =
            |v: String| DateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S%z").expect("time format");
        let start = parse(get("start_time").expect("start_time"));
        let end = parse(get("end_time").expect("end_time"));
        assert!(
            end > start && end - start <= chrono::Duration::days(30),
            "{r:?}"
        );
        assert!(end.with_timezone(&Utc) <= Utc::now());
    }
}

async fn rerunning_a_sync_adds_no_rows(backend: Backend) {
    let Some(env) = Env::start_on(history_config(13), backend).await else {
        return;
    };
    env.jobtrail(&["sync"]).await.assert_code(0);
    let before = env.scalar("SELECT COUNT(*) FROM jobs").await;
    let second = env.jobtrail(&["sync", "--full"]).await;
    second.assert_code(0);
    assert!(
        second.stdout.contains("(0 new, 0 changed)"),
        "{}",
        second.stdout
    );
    assert_eq!(env.scalar("SELECT COUNT(*) FROM jobs").await, before);
    let history = env.scalar("SELECT COUNT(*) FROM job_status_changes").await;
    assert_eq!(
        history, before,
        "one first-seen history row per job, nothing more"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_pages_throttling_and_unavailability_are_retried_without_loss() {
    let env = Env::start(history_config(14)).await;
    env.sim.add_fault(
        FaultRule::new("/jobs", Fault::Status(503))
            .with_query("offset=50")
            .times(3),
    );
    env.sim.add_fault(
        FaultRule::new(
            "/jobs",
            Fault::TooManyRequests {
                retry_after_secs: Some(1),
            },
        )
        .times(2),
    );
    env.sim.add_fault(
        FaultRule::new("/jobs", Fault::Status(500))
            .with_query("offset=0")
            .times(1),
    );
    let run = env.jobtrail(&["sync", "--source", "nosql"]).await;
    run.assert_code(0);
    let retried: Vec<u16> = env
        .sim
        .requests()
        .iter()
        .map(|r| r.status)
        .filter(|s| *s != 200)
        .collect();
    assert_eq!(retried.iter().filter(|s| **s == 503).count(), 3);
    assert_eq!(retried.iter().filter(|s| **s == 429).count(), 2);
    let world = env.world();
    let (project, data) = world.projects.iter().next().expect("project");
    assert_eq!(nosql_rows(&env, project).await.len(), data.nosql.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_fails_only_its_window_and_touches_nothing_stored() {
    let env = Env::start(history_config(15)).await;
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    let snapshot = |pool: sqlx::SqlitePool| async move {
        sqlx::query(
            "SELECT source, project_id, job_id, status, raw_status, started_at, ended_at, fail_reason, raw_json, first_seen_at \
             FROM jobs ORDER BY 1, 2, 3",
        )
        .fetch_all(&pool)
        .await
        .expect("snapshot")
        .iter()
        .map(|r| (0..10).map(|i| r.get::<Option<String>, _>(i)).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    };
    let before = snapshot(env.pool().await).await;

    // Re-read a known range; its first window answers with broken JSON every time.
    let since = (Utc::now() - chrono::Duration::days(80))
        .format("%Y-%m-%d")
        .to_string();
    let marker = format!("start_time={since}T00%3A00%3A00%2B0000");
    env.sim
        .add_fault(FaultRule::new("/jobs", Fault::InvalidJson).with_query(marker));
    let run = env
        .jobtrail(&["sync", "--source", "nosql", "--since", &since])
        .await;
    run.assert_code(3);
    let project = env
        .world()
        .projects
        .keys()
        .next()
        .cloned()
        .expect("project");
    for needle in [
        "nosql (project",
        project.as_str(),
        &format!("/v3/{project}/jobs"),
        "not valid JSON",
    ] {
        assert!(
            run.stderr.contains(needle),
            "stderr names {needle:?}:\n{}",
            run.stderr
        );
    }
    assert!(run.stdout.contains("partial"), "{}", run.stdout);
    assert_eq!(
        snapshot(env.pool().await).await,
        before,
        "stored rows untouched"
    );
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")
            .fetch_one(&env.pool().await)
            .await
            .expect("run row");
    assert_eq!(status, "partial");
    assert!(error.is_some_and(|e| e.contains("not valid JSON")));

    // Once the fault passes, a re-sync completes without duplicates.
    env.sim.clear_faults();
    env.jobtrail(&["sync", "--source", "nosql", "--since", &since])
        .await
        .assert_code(0);
    let world = env.world();
    assert_eq!(
        nosql_rows(&env, &project).await.len(),
        world.projects[&project].nosql.len()
    );
}
