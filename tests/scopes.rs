//! Each (project, region, source) scope of a run accounted on its own: one
//! project that answers 403 never hides the others, the run exits 3 naming
//! it, and `jobtrail status` shows it failing, since when.

use jobtrail::sim::{Fault, FaultRule, SimConfig};

use crate::util::{Backend, Env};

const REFUSED: &str = "2b9e4f6a1c3d4e5f8a7b6c5d4e3f2a1b";
const OTHERS: [&str; 2] = [
    "0549b4a43100d4f32f51c01c2fe4acdb",
    "7d2f6a1e9b0c4f3a8e5d1c2b3a4f5e6d",
];

/// project, region, source, status, requests, jobs_seen, error
type ScopeRow = (String, String, String, String, i64, i64, Option<String>);

/// The scope rows of run 1, through `jobtrail query` (either backend).
async fn first_run_scopes(env: &Env) -> Vec<ScopeRow> {
    let rows = env
        .rows(
            "SELECT project_id, region, source, status, requests, jobs_seen, error \
             FROM sync_scopes WHERE sync_id = 1 ORDER BY project_id, source",
            &[],
        )
        .await;
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().expect(k).to_owned();
            let n = |k: &str| r[k].as_i64().expect(k);
            (
                s("project_id"),
                s("region"),
                s("source"),
                s("status"),
                n("requests"),
                n("jobs_seen"),
                r["error"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn three_projects() -> SimConfig {
    SimConfig {
        projects: vec![
            OTHERS[0].to_owned(),
            REFUSED.to_owned(),
            OTHERS[1].to_owned(),
        ],
        nosql_jobs: 30,
        dbss_resources: 3,
        image_jobs: 5,
        ..SimConfig::new(71)
    }
}

/// Jobs the world holds for a project, per source, as a full sync stores them.
fn expected_counts(env: &Env, project: &str) -> [i64; 3] {
    let world = env.world();
    let data = &world.projects[project];
    let nosql = data.nosql.len() as i64;
    let dbss = data
        .audit_instances
        .iter()
        .filter(|i| i.listed)
        .map(|i| i.jobs.len() as i64)
        .sum();
    let image = data
        .image_jobs
        .iter()
        .filter(|j| j.listed)
        .map(|j| 1 + j.sub_jobs.len() as i64)
        .sum();
    [nosql, dbss, image]
}

async fn stored_counts(env: &Env, project: &str) -> [i64; 3] {
    let mut counts = [0; 3];
    for (slot, source) in ["nosql", "dbss", "image"].iter().enumerate() {
        counts[slot] = env
            .scalar(&format!(
                "SELECT COUNT(*) FROM jobs WHERE project_id = '{project}' AND source = '{source}'"
            ))
            .await;
    }
    counts
}

on_both_backends!(one_project_refused_never_hides_the_others_and_status_names_it);

async fn one_project_refused_never_hides_the_others_and_status_names_it(backend: Backend) {
    let Some(env) = Env::start_on(three_projects(), backend).await else {
        return;
    };
    env.sim
        .add_fault(FaultRule::new(format!("/{REFUSED}/"), Fault::Status(403)));

    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(3);
    for project in OTHERS {
        assert_eq!(
            stored_counts(&env, project).await,
            expected_counts(&env, project),
            "every job of {project} is stored"
        );
    }
    assert_eq!(stored_counts(&env, REFUSED).await, [0, 0, 0]);
    for source in ["nosql", "dbss", "image"] {
        let named = format!("{source} (project {REFUSED})");
        assert!(
            run.stdout.contains(&named),
            "the summary names {named}:\n{}",
            run.stdout
        );
        assert!(
            run.stderr.contains(&named) && run.stderr.contains("403"),
            "a warning names {named}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stdout.contains(OTHERS[0]), "{}", run.stdout);

    // Every scope has its own row: requests, jobs and the error.
    let scopes = first_run_scopes(&env).await;
    assert_eq!(scopes.len(), 9);
    for (project, region, source, status, requests, seen, error) in &scopes {
        assert_eq!(region, "cn-north-4");
        assert!(*requests > 0, "{project} {source} made requests");
        if project == REFUSED {
            assert_eq!((status.as_str(), *seen), ("failed", 0));
            assert!(
                error.as_deref().is_some_and(|e| e.contains("403")),
                "{error:?}"
            );
        } else {
            assert_eq!(status, "succeeded", "{project} {source}");
            assert_eq!(error, &None);
            let slot = ["nosql", "dbss", "image"]
                .iter()
                .position(|s| s == source)
                .expect("source");
            assert_eq!(*seen, expected_counts(&env, project)[slot]);
        }
    }
    let run_requests = env
        .scalar("SELECT requests FROM sync_runs WHERE id = 1")
        .await;
    let run_seen = env
        .scalar("SELECT jobs_seen FROM sync_runs WHERE id = 1")
        .await;
    assert_eq!(run_requests, scopes.iter().map(|s| s.4).sum::<i64>());
    assert_eq!(run_seen, scopes.iter().map(|s| s.5).sum::<i64>());

    // Still refused a run later: failing since the first run, two runs in a row.
    env.jobtrail(&["sync"]).await.assert_code(3);
    let status = env.jobtrail(&["status"]).await;
    status.assert_code(0);
    assert!(
        status.stdout.contains("Failing scopes: 3"),
        "{}",
        status.stdout
    );
    for source in ["nosql", "dbss", "image"] {
        assert!(
            status
                .stdout
                .lines()
                .any(|l| l.contains(REFUSED) && l.contains(source) && l.contains("failed")),
            "status names {REFUSED} {source}:\n{}",
            status.stdout
        );
    }
    let json = env.jobtrail(&["status", "--format", "json"]).await;
    json.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let failing = v["failing_scopes"].as_array().expect("failing_scopes");
    assert_eq!(failing.len(), 3);
    let runs = v["recent_runs"].as_array().expect("recent_runs");
    let first_run = runs
        .iter()
        .find(|r| r["id"] == 1)
        .and_then(|r| r["started_at"].as_str())
        .expect("the first run's start");
    for scope in failing {
        assert_eq!(scope["project_id"], REFUSED);
        assert_eq!(scope["status"], "failed");
        assert_eq!(scope["failing_since"], first_run);
        assert_eq!(scope["failed_runs"], 2);
        assert_eq!(scope["last_run_id"], 2);
        assert!(scope["error"].as_str().is_some_and(|e| e.contains("403")));
    }

    // Once it answers again, nothing is failing.
    env.sim.clear_faults();
    env.jobtrail(&["sync"]).await.assert_code(0);
    let status = env.jobtrail(&["status"]).await;
    assert!(
        status.stdout.contains("Failing scopes: none"),
        "{}",
        status.stdout
    );
    assert_eq!(
        stored_counts(&env, REFUSED).await,
        expected_counts(&env, REFUSED)
    );
}
