//! DBSS audit jobs and Workspace image-server jobs: fetched by ID, discovered
//! across pages, normalized with sub-jobs, and per-ID failures that spare the rest.

use jobtrail::sim::{Fault, FaultRule, SimConfig};

use crate::util::{Env, expected_status, utc_ms};

type SubJobRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

type DbssRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn dbss_rows(env: &Env) -> Vec<DbssRow> {
    sqlx::query_as(
        "SELECT job_id, status, job_type, resource_id, resource_name, started_at, ended_at, error_code, fail_reason \
         FROM jobs WHERE source = 'dbss' ORDER BY job_id",
    )
    .fetch_all(&env.pool().await)
    .await
    .expect("dbss rows")
}

/// What the database should hold for DBSS, computed from the simulator's truth.
fn expected_dbss(env: &Env, only_listed: bool) -> Vec<DbssRow> {
    let ms = |v: Option<i64>| {
        v.filter(|m| *m > 0)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(utc_ms)
    };
    let mut rows: Vec<DbssRow> = env
        .world()
        .projects
        .values()
        .flat_map(|p| p.audit_instances.iter())
        .filter(|i| i.listed || !only_listed)
        .flat_map(|i| {
            i.jobs.iter().map(move |j| {
                (
                    j.job_id.clone(),
                    expected_status("dbss", &j.status, false).to_owned(),
                    j.job_type.clone().filter(|t| !t.is_empty()),
                    Some(
                        j.resource_id
                            .clone()
                            .unwrap_or_else(|| i.resource_id.clone()),
                    ),
                    j.server_name.clone().filter(|t| !t.is_empty()),
                    ms(j.begin_time),
                    ms(j.end_time),
                    j.error_code.clone().filter(|t| !t.is_empty()),
                    j.fail_reason.clone().filter(|t| !t.is_empty()),
                )
            })
        })
        .collect();
    rows.sort();
    rows
}

fn config(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 20,
        dbss_resources: 5,
        dbss_jobs_per_resource: 3,
        image_jobs: 12,
        ..SimConfig::new(seed)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dbss_jobs_of_several_resources_are_stored_once_with_times_and_nulls() {
    let env = Env::start(config(21)).await;
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    let expected = expected_dbss(&env, true);
    assert!(expected.len() >= 5, "several jobs");
    assert!(
        expected.iter().any(|r| r.6.is_none()),
        "some job without an end time"
    );
    assert_eq!(dbss_rows(&env).await, expected);
    let raw: String = sqlx::query_scalar("SELECT raw_json FROM jobs WHERE source = 'dbss' LIMIT 1")
        .fetch_one(&env.pool().await)
        .await
        .expect("raw");
    assert!(raw.contains("charge_mode"), "the whole bean is kept: {raw}");
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_pages_through_every_listed_instance_and_image_job() {
    let env = Env::start(SimConfig {
        nosql_jobs: 10,
        dbss_resources: 230,
        dbss_jobs_per_resource: 1,
        image_jobs: 215,
        ..SimConfig::new(23)
    })
    .await;
    env.jobtrail(&["sync", "--source", "dbss", "--source", "image"])
        .await
        .assert_code(0);
    let world = env.world();
    let data = world.projects.values().next().expect("project");
    let pool = env.pool().await;
    let resources: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT resource_id FROM jobs WHERE source = 'dbss' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("resources");
    let mut listed: Vec<String> = data
        .audit_instances
        .iter()
        .filter(|i| i.listed)
        .map(|i| i.resource_id.clone())
        .collect();
    listed.sort();
    assert!(listed.len() > 100, "more than one discovery page of 100");
    assert_eq!(resources, listed);
    let jobs: Vec<String> = sqlx::query_scalar(
        "SELECT job_id FROM jobs WHERE source = 'image' AND parent_job_id IS NULL ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("image jobs");
    let mut want: Vec<String> = data
        .image_jobs
        .iter()
        .filter(|j| j.listed)
        .map(|j| j.id.clone())
        .collect();
    want.sort();
    assert!(want.len() > 100, "more than one list page of 100");
    assert_eq!(jobs, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn image_jobs_and_sub_jobs_are_stored_with_their_parent() {
    let env = Env::start(config(24)).await;
    env.jobtrail(&["sync", "--source", "image"])
        .await
        .assert_code(0);
    let pool = env.pool().await;
    for job in env
        .world()
        .projects
        .values()
        .flat_map(|p| p.image_jobs.iter())
        .filter(|j| j.listed)
    {
        let (status, started, ended): (String, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT status, started_at, ended_at FROM jobs WHERE source = 'image' AND job_id = ? AND parent_job_id IS NULL",
        )
        .bind(&job.id)
        .fetch_one(&pool)
        .await
        .expect("job row");
        assert_eq!(status, expected_status("image", &job.status, false));
        assert_eq!(started, Some(utc_ms(job.begin_time)));
        assert_eq!(ended, job.end_time.map(utc_ms));
        let subs: Vec<SubJobRow> = sqlx::query_as(
            "SELECT job_id, status, resource_name, error_code, fail_reason FROM jobs \
             WHERE source = 'image' AND parent_job_id = ? ORDER BY job_id",
        )
        .bind(&job.id)
        .fetch_all(&pool)
        .await
        .expect("sub rows");
        let mut want: Vec<_> = job
            .sub_jobs
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    expected_status("image", &s.status, true).to_owned(),
                    s.resource_name.clone().filter(|v| !v.is_empty()),
                    s.error_code.clone().filter(|v| !v.is_empty()),
                    s.error_message.clone().filter(|v| !v.is_empty()),
                )
            })
            .collect();
        want.sort();
        assert_eq!(subs, want, "sub-jobs of {}", job.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_ids_fail_alone_and_the_run_is_partial() {
    let env = Env::start(config(25)).await;
    let mut text = env.default_config();
    text = text.replace(
        "[project.dbss]\ndiscover = true",
        "[project.dbss]\ndiscover = true\nresource_ids = [\"no-such-audit-instance\"]",
    );
    text = text.replace(
        "[project.image]\ndiscover = true",
        "[project.image]\ndiscover = true\njob_ids = [\"999999999999\"]",
    );
    env.write_config(&text);
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(3);
    assert!(
        run.stderr.contains("resource no-such-audit-instance") && run.stderr.contains("HTTP 404"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("job 999999999999"), "{}", run.stderr);
    let (status, error): (String, String) =
        sqlx::query_as("SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")
            .fetch_one(&env.pool().await)
            .await
            .expect("run");
    assert_eq!(status, "partial");
    assert!(
        error.contains("no-such-audit-instance") && error.contains("999999999999"),
        "{error}"
    );
    assert_eq!(
        dbss_rows(&env).await,
        expected_dbss(&env, true),
        "every other DBSS job stored"
    );
    let nosql: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE source = 'nosql'")
        .fetch_one(&env.pool().await)
        .await
        .expect("count");
    assert_eq!(
        nosql as usize,
        env.world()
            .projects
            .values()
            .map(|p| p.nosql.len())
            .sum::<usize>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sync_does_not_request_final_image_jobs() {
    let env = Env::start(config(26)).await;
    env.jobtrail(&["sync", "--source", "image"])
        .await
        .assert_code(0);
    let world = env.world();
    let jobs: Vec<_> = world
        .projects
        .values()
        .flat_map(|p| p.image_jobs.iter())
        .filter(|j| j.listed)
        .collect();
    let unfinished: Vec<&str> = jobs
        .iter()
        .filter(|j| {
            let open = |s: &str| !matches!(s, "SUCCESS" | "FAILED" | "ABNORMAL");
            open(&j.status) || j.sub_jobs.iter().any(|s| open(&s.status))
        })
        .map(|j| j.id.as_str())
        .collect();
    assert!(unfinished.len() < jobs.len(), "some jobs are final");
    env.sim.clear_requests();
    env.jobtrail(&["sync", "--source", "image"])
        .await
        .assert_code(0);
    let fetched: Vec<String> = env
        .sim
        .requests()
        .iter()
        .filter_map(|r| {
            r.path
                .rsplit_once("/image-server-jobs/")
                .map(|(_, id)| id.to_owned())
        })
        .collect();
    let mut fetched_sorted = fetched.clone();
    fetched_sorted.sort();
    let mut want: Vec<String> = unfinished.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(
        fetched_sorted, want,
        "only unfinished jobs are asked for again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_dbss_body_fails_only_that_resource() {
    let env = Env::start(config(27)).await;
    let bad = crate::util::first_listed_instance(&env.world()).resource_id;
    env.sim
        .add_fault(FaultRule::new(bad.clone(), Fault::WrongShape));
    let run = env.jobtrail(&["sync", "--source", "dbss"]).await;
    run.assert_code(3);
    assert!(
        run.stderr.contains(&format!("resource {bad}")) && run.stderr.contains("malformed"),
        "{}",
        run.stderr
    );
    let stored = dbss_rows(&env).await;
    let want: Vec<_> = expected_dbss(&env, true)
        .into_iter()
        .filter(|r| r.3.as_deref() != Some(bad.as_str()))
        .collect();
    assert_eq!(stored, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_sql_question_across_all_three_sources() {
    let env = Env::start(config(28)).await;
    env.jobtrail(&["sync"]).await.assert_code(0);
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source, COUNT(*) FROM jobs WHERE status = 'failed' GROUP BY source ORDER BY source",
    )
    .fetch_all(&env.pool().await)
    .await
    .expect("query");
    let world = env.world();
    let count = |f: &dyn Fn() -> usize| f() as i64;
    let p = world.projects.values().next().expect("p");
    let want = vec![
        (
            "dbss".to_owned(),
            count(&|| {
                p.audit_instances
                    .iter()
                    .filter(|i| i.listed)
                    .flat_map(|i| &i.jobs)
                    .filter(|j| expected_status("dbss", &j.status, false) == "failed")
                    .count()
            }),
        ),
        (
            "image".to_owned(),
            count(&|| {
                p.image_jobs
                    .iter()
                    .filter(|j| j.listed)
                    .map(|j| {
                        usize::from(expected_status("image", &j.status, false) == "failed")
                            + j.sub_jobs
                                .iter()
                                .filter(|s| expected_status("image", &s.status, true) == "failed")
                                .count()
                    })
                    .sum()
            }),
        ),
        (
            "nosql".to_owned(),
            count(&|| p.nosql.iter().filter(|j| j.status == "Failed").count()),
        ),
    ];
    let want: Vec<_> = want.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(rows, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn unfinished_dbss_jobs_are_rechecked_after_their_resource_leaves_the_config() {
    let env = Env::start(config(29)).await;
    let world = env.world();
    let project = world.projects.keys().next().expect("project");
    let instance = crate::util::first_listed_instance(&world);
    let job = instance.jobs[0].clone();
    let with_resource = env.default_config().replace(
        "[project.dbss]\ndiscover = true",
        &format!(
            "[project.dbss]\ndiscover = false\nresource_ids = [\"{}\"]",
            instance.resource_id
        ),
    );
    env.write_config(&with_resource);
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    // Force the stored job to look unfinished, then drop the resource from the config.
    {
        let pool = env.writable_pool().await;
        sqlx::query("UPDATE jobs SET status = 'running', raw_status = 'RUNNING' WHERE source = 'dbss' AND job_id = ?")
            .bind(&job.job_id)
            .execute(&pool)
            .await
            .expect("update");
        pool.close().await;
    }
    env.write_config(&env.default_config().replace(
        "[project.dbss]\ndiscover = true",
        "[project.dbss]\ndiscover = false",
    ));
    env.sim.clear_requests();
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|r| r.path.contains(&instance.resource_id)),
        "the resource of the unfinished job is asked again (project {project})"
    );
    let status: String =
        sqlx::query_scalar("SELECT raw_status FROM jobs WHERE source = 'dbss' AND job_id = ?")
            .bind(&job.job_id)
            .fetch_one(&env.pool().await)
            .await
            .expect("status");
    assert_eq!(status, job.status);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_deleted_in_the_cloud_is_given_up_on_after_three_syncs() {
    let env = Env::start(config(30)).await;
    let world = env.world();
    let jobs = &world.projects.values().next().expect("p").image_jobs;
    let (job, other) = (jobs[0].clone(), jobs[1].clone());
    let only = |ids: &str| {
        env.default_config().replace(
            "[project.image]\ndiscover = true",
            &format!("[project.image]\ndiscover = false\njob_ids = [{ids}]"),
        )
    };
    env.write_config(&only(&format!("\"{}\"", job.id)));
    env.jobtrail(&["sync", "--source", "image"])
        .await
        .assert_code(0);
    {
        let pool = env.writable_pool().await;
        sqlx::query("UPDATE jobs SET status = 'running' WHERE source = 'image' AND job_id = ?")
            .bind(&job.id)
            .execute(&pool)
            .await
            .expect("update");
        pool.close().await;
    }
    // The job leaves the config (another stays) and the cloud forgets it.
    env.write_config(&only(&format!("\"{}\"", other.id)));
    env.sim.add_fault(FaultRule::new(
        format!("/image-server-jobs/{}", job.id),
        Fault::Status(404),
    ));
    // NoSQL rides along, so each run has healthy work besides the lost job.
    let sync = ["sync", "--source", "image", "--source", "nosql"];
    for attempt in 1..=2 {
        let run = env.jobtrail(&sync).await;
        run.assert_code(3);
        assert!(
            run.stderr.contains(&format!("job {}", job.id)),
            "sync {attempt}: {}",
            run.stderr
        );
    }
    let third = env.jobtrail(&sync).await;
    third.assert_code(0);
    assert!(
        third.stderr.contains("answered 404 3 syncs in a row"),
        "{}",
        third.stderr
    );
    env.sim.clear_requests();
    env.jobtrail(&["sync", "--source", "image"])
        .await
        .assert_code(0);
    assert!(
        !env.sim.requests().iter().any(|r| r.path.contains(&job.id)),
        "no longer asked for"
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM jobs WHERE source = 'image' AND job_id = ?")
            .bind(&job.id)
            .fetch_one(&env.pool().await)
            .await
            .expect("row kept");
    assert_eq!(status, "running", "its last stored state is kept");
}
