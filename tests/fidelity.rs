//! True to the real APIs: DBSS on whichever jobs path the cloud has (current
//! first, remembered per project), image jobs whose sub-job list is cut short
//! completed from the sub-jobs list, and settled DBSS instances read again so a
//! new failure shows in the next run.

use std::collections::BTreeSet;

use jobtrail::sim::{DbssPaths, Fault, FaultRule, SimConfig};

use crate::util::Env;

fn config(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 10,
        dbss_resources: 5,
        dbss_jobs_per_resource: 3,
        image_jobs: 10,
        ..SimConfig::new(seed)
    }
}

/// (job_id, resource_id) of every DBSS job of the listed audit instances.
fn listed_dbss_jobs(env: &Env) -> BTreeSet<(String, String)> {
    env.world()
        .projects
        .values()
        .flat_map(|p| &p.audit_instances)
        .filter(|i| i.listed)
        .flat_map(|i| {
            i.jobs
                .iter()
                .map(|j| (j.job_id.clone(), i.resource_id.clone()))
        })
        .collect()
}

async fn stored_dbss_jobs(env: &Env) -> BTreeSet<(String, String)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT job_id, resource_id FROM jobs WHERE source = 'dbss'")
            .fetch_all(&env.pool().await)
            .await
            .expect("dbss rows");
    rows.into_iter().collect()
}

/// Requests served on the legacy DBSS jobs path and on the current one.
fn dbss_job_requests(env: &Env) -> (usize, usize) {
    let requests = env.sim.requests();
    let legacy = requests
        .iter()
        .filter(|r| r.path.contains("/dbss/audit/jobs/"))
        .count();
    let current = requests
        .iter()
        .filter(|r| r.path.contains("/audit/") && r.path.ends_with("/jobs"))
        .count();
    (legacy, current)
}

#[tokio::test(flavor = "multi_thread")]
async fn dbss_works_when_only_the_current_jobs_path_exists() {
    let env = Env::start(config(61)).await;
    env.sim.set_dbss_paths(DbssPaths::CurrentOnly);
    for _ in 0..2 {
        env.sim.clear_requests();
        env.jobtrail(&["sync", "--source", "dbss"])
            .await
            .assert_code(0);
        assert_eq!(stored_dbss_jobs(&env).await, listed_dbss_jobs(&env));
        let (legacy, current) = dbss_job_requests(&env);
        assert_eq!(legacy, 0, "the retired path is never asked");
        assert!(current > 0, "settled instances are read again");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dbss_works_when_only_the_legacy_jobs_path_exists_and_remembers_it() {
    let env = Env::start(config(62)).await;
    env.sim.set_dbss_paths(DbssPaths::LegacyOnly);
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    assert_eq!(stored_dbss_jobs(&env).await, listed_dbss_jobs(&env));
    let (legacy, current) = dbss_job_requests(&env);
    assert!(legacy > 0);
    assert!(
        (1..=16).contains(&current),
        "the missing current path is given up after its first answers ({current})"
    );

    env.sim.clear_requests();
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    let (legacy, current) = dbss_job_requests(&env);
    assert_eq!(
        current, 0,
        "the second run goes straight to the legacy path"
    );
    assert_eq!(
        legacy,
        listed_dbss_jobs(&env)
            .iter()
            .map(|(_, r)| r)
            .collect::<BTreeSet<_>>()
            .len()
    );
}

/// Each listed image job of the world: its id and the ids of all its sub-jobs.
fn listed_image_jobs(env: &Env) -> Vec<(String, BTreeSet<String>)> {
    env.world()
        .projects
        .values()
        .flat_map(|p| &p.image_jobs)
        .filter(|j| j.listed)
        .map(|j| {
            (
                j.id.clone(),
                j.sub_jobs.iter().map(|s| s.id.clone()).collect(),
            )
        })
        .collect()
}

async fn stored_sub_jobs(env: &Env, parent: &str) -> BTreeSet<String> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT job_id FROM jobs WHERE source = 'image' AND parent_job_id = ?")
            .bind(parent)
            .fetch_all(&env.pool().await)
            .await
            .expect("sub-jobs");
    ids.into_iter().collect()
}

fn cut_short(seed: u64) -> SimConfig {
    SimConfig {
        image_sub_jobs_max: 250,
        image_sub_jobs_cut: Some(2),
        ..config(seed)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_job_whose_sub_job_list_is_cut_short_ends_with_every_sub_job_stored() {
    let env = Env::start(cut_short(39)).await;
    let jobs = listed_image_jobs(&env);
    assert!(
        jobs.iter().any(|(_, subs)| subs.len() > 100),
        "a job needs more than one page of sub-jobs"
    );
    env.jobtrail(&["sync", "--source", "image"])
        .await
        .assert_code(0);
    for (id, subs) in &jobs {
        assert_eq!(&stored_sub_jobs(&env, id).await, subs, "sub-jobs of {id}");
    }
    let requests = env.sim.requests();
    let sub_list: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/image-server-sub-jobs"))
        .collect();
    let param = |r: &&jobtrail::sim::RequestRecord, k: &str| {
        r.query
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    assert!(sub_list.iter().all(|r| {
        param(r, "limit")
            .and_then(|l| l.parse::<u32>().ok())
            .is_some_and(|l| (1..=100).contains(&l))
            && param(r, "job_type").is_some()
            && param(r, "job_id").is_some()
    }));
    assert!(
        sub_list
            .iter()
            .any(|r| param(r, "offset").as_deref() == Some("100")),
        "more than one page of one type"
    );
    let whole: usize = jobs.iter().filter(|(_, subs)| subs.len() <= 2).count();
    let asked: BTreeSet<String> = sub_list.iter().filter_map(|r| param(r, "job_id")).collect();
    assert_eq!(
        asked.len(),
        jobs.len() - whole,
        "only jobs cut short are completed from the list"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sub_jobs_that_cannot_all_be_found_are_stored_and_the_job_is_reported() {
    let env = Env::start(cut_short(39)).await;
    env.sim
        .add_fault(FaultRule::new("/image-server-sub-jobs", Fault::Status(400)));
    let run = env.jobtrail(&["sync", "--source", "image"]).await;
    run.assert_code(3);
    let short: Vec<(String, BTreeSet<String>)> = listed_image_jobs(&env)
        .into_iter()
        .filter(|(_, subs)| subs.len() > 2)
        .collect();
    assert!(!short.is_empty());
    for (id, subs) in &short {
        let stored = stored_sub_jobs(&env, id).await;
        assert_eq!(stored.len(), 2, "what the job carried is stored: {id}");
        assert!(stored.is_subset(subs));
        assert!(
            run.stderr.contains(&format!("job {id}")),
            "{id} is named:\n{}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_job_of_a_settled_dbss_instance_is_stored_by_the_next_sync() {
    let env = Env::start(config(63)).await;
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    let world = env.world();
    let (project, settled) = world
        .projects
        .iter()
        .flat_map(|(p, data)| data.audit_instances.iter().map(move |i| (p.clone(), i)))
        .find(|(_, i)| {
            i.listed
                && i.jobs
                    .iter()
                    .all(|j| matches!(j.status.as_str(), "SUCCESS" | "FAIL"))
        })
        .expect("an audit instance whose jobs are all final");
    let new_job = env
        .sim
        .add_dbss_job(&project, &settled.resource_id, "FAIL")
        .expect("job added");
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM jobs WHERE source = 'dbss' AND job_id = ?")
            .bind(&new_job)
            .fetch_optional(&env.pool().await)
            .await
            .expect("query");
    assert_eq!(
        status.as_deref(),
        Some("failed"),
        "the new failure is stored"
    );

    // An account may let settled instances rest: then the next run does not ask.
    let text = std::fs::read_to_string(env.config_path()).expect("config");
    std::fs::write(
        env.config_path(),
        format!("[dbss]\nsettled_recheck = \"6h\"\n\n{text}"),
    )
    .expect("config");
    let later = env
        .sim
        .add_dbss_job(&project, &settled.resource_id, "FAIL")
        .expect("job added");
    env.sim.clear_requests();
    env.jobtrail(&["sync", "--source", "dbss"])
        .await
        .assert_code(0);
    assert!(
        env.sim.requests().iter().all(|r| !r
            .path
            .contains(&format!("/audit/{}/jobs", settled.resource_id))),
        "a settled instance rests for settled_recheck"
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE job_id = ?")
        .bind(&later)
        .fetch_one(&env.pool().await)
        .await
        .expect("count");
    assert_eq!(stored, 0);
}
