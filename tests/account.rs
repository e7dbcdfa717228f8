//! The whole account with zero project IDs, against a simulator that checks
//! every signature: a region-only project found through IAM and remembered for
//! a day, clear errors when IAM names no project or two, `[account]` syncing
//! every enabled project with only the services its region offers,
//! per-region endpoints used for their region only, and an IAM lookup that
//! fails recorded as a failed run (on either backend).

use std::collections::BTreeSet;

use chrono::Utc;
use jobtrail::sim::{
    Fault, FaultRule, MOS, RequestRecord, SimAuth, SimConfig, SimProject, SimServer, region_offers,
};

use crate::util::{Backend, Env, PgDatabase, Run, opt_int, run_cli, text, utc_ms};

const AK: &str = "HPUAACCOUNTAKID00017";
const SK: &str = "sk-account-7e6d5c4b3a29180f";

fn signed() -> SimAuth {
    SimAuth::AkSk {
        ak: AK.into(),
        sk: SK.into(),
        security_token: None,
    }
}

const KEYS: [(&str, &str); 2] = [("HUAWEICLOUD_SDK_AK", AK), ("HUAWEICLOUD_SDK_SK", SK)];

/// A simulated account (projects in six regions, `MOS`, a disabled one) that
/// demands signatures, with `body` (plus endpoints at the simulator) as config.
async fn account_env(config: SimConfig, body: &str) -> Env {
    let env = Env::start_with(config, signed(), &KEYS).await;
    env.write_config(body);
    env
}

/// The ID of the account's project named `name`.
fn id_of(env: &Env, name: &str) -> String {
    env.world()
        .account
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.id.clone())
        .unwrap_or_else(|| panic!("no project named {name}"))
}

/// Requests to IAM's project APIs.
fn iam_calls(requests: &[RequestRecord]) -> Vec<RequestRecord> {
    requests
        .iter()
        .filter(|r| r.path.starts_with("/v3/projects") || r.path.starts_with("/v3/auth/projects"))
        .cloned()
        .collect()
}

/// Every (project, source) pair with a stored job.
async fn stored_pairs(env: &Env) -> BTreeSet<(String, String)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT project_id, source FROM jobs")
            .fetch_all(&env.pool().await)
            .await
            .expect("pairs");
    rows.into_iter().collect()
}

/// Runs the CLI in the env's folder with its credentials and `extra` variables.
async fn cli(env: &Env, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let mut vars = env.env.clone();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    run_cli(
        env.dir.path().to_path_buf(),
        args.iter().map(|s| (*s).to_owned()).collect(),
        vars,
    )
    .await
}

/// A NoSQL sync into `db` whose only credentials are those in `file` (the
/// SDK's credentials file), not the env's.
async fn sync_with_credentials_file(env: &Env, db: &str, file: &std::path::Path) -> Run {
    run_cli(
        env.dir.path().to_path_buf(),
        ["--db", db, "sync", "--source", "nosql"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        vec![(
            "HUAWEICLOUD_SDK_CREDENTIALS_FILE".to_owned(),
            file.display().to_string(),
        )],
    )
    .await
}

const REGION_ONLY: &str = "[[project]]\nregion = \"ap-southeast-1\"\n\n[project.nosql]\n\n[project.dbss]\ndiscover = true\n\n[project.image]\ndiscover = true\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_region_only_project_is_found_through_iam_and_asked_for_once_a_day() {
    let env = account_env(SimConfig::account(51), REGION_ONLY).await;
    let id = id_of(&env, "ap-southeast-1");

    env.jobtrail(&["sync"]).await.assert_code(0);
    let requests = env.sim.requests();
    assert!(
        requests.iter().all(|r| r.status == 200),
        "every signature verified"
    );
    let lookups = iam_calls(&requests);
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert_eq!(lookups[0].path, "/v3/projects");
    assert_eq!(
        lookups[0].query,
        [("name".to_owned(), "ap-southeast-1".to_owned())]
    );
    let projects: BTreeSet<String> = stored_pairs(&env)
        .await
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(projects, BTreeSet::from([id.clone()]));

    // The next cron run asks IAM nothing.
    env.sim.clear_requests();
    env.jobtrail(&["sync"]).await.assert_code(0);
    let requests = env.sim.requests();
    assert!(!requests.is_empty(), "it synced");
    assert_eq!(iam_calls(&requests), [], "the answer is remembered");

    // A day later it asks again, once.
    let pool = env.writable_pool().await;
    sqlx::query("UPDATE iam_projects SET fetched_at = ?")
        .bind(utc_ms(Utc::now() - chrono::Duration::hours(25)))
        .execute(&pool)
        .await
        .expect("age the answer");
    pool.close().await;
    env.sim.clear_requests();
    env.jobtrail(&["sync"]).await.assert_code(0);
    env.jobtrail(&["sync"]).await.assert_code(0);
    assert_eq!(iam_calls(&env.sim.requests()).len(), 1);

    // `--full` asks again too.
    env.sim.clear_requests();
    env.jobtrail(&["sync", "--full"]).await.assert_code(0);
    assert_eq!(iam_calls(&env.sim.requests()).len(), 1);

    // What is kept names the project, never the key.
    let kept: Vec<(String, String, String)> =
        sqlx::query_as("SELECT credential, project_id, name FROM iam_projects")
            .fetch_all(&env.pool().await)
            .await
            .expect("kept");
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].1.as_str(), kept[0].2.as_str()),
        (id.as_str(), "ap-southeast-1")
    );
    assert!(
        !kept[0].0.contains(AK) && !kept[0].0.contains(SK),
        "{kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdks_project_id_is_used_instead_of_asking_iam() {
    let env = account_env(SimConfig::account(55), REGION_ONLY).await;
    let id = id_of(&env, "ap-southeast-1");
    let run = cli(
        &env,
        &[
            "--config",
            "jobtrail.toml",
            "--db",
            "env.db",
            "sync",
            "--source",
            "nosql",
        ],
        &[("HUAWEICLOUD_SDK_PROJECT_ID", &id)],
    )
    .await;
    run.assert_code(0);
    assert_eq!(iam_calls(&env.sim.requests()), []);
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|r| r.path == format!("/v3/{id}/jobs")),
        "synced the project the variable names"
    );

    // The credentials file's `project_id`, with keys from that file.
    let file = env.dir.path().join("credentials");
    std::fs::write(
        &file,
        format!("[basic]\nak = {AK}\nsk = {SK}\nproject_id = {id}\n"),
    )
    .expect("write");
    env.sim.clear_requests();
    let run = sync_with_credentials_file(&env, "file.db", &file).await;
    run.assert_code(0);
    assert_eq!(iam_calls(&env.sim.requests()), []);
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|r| r.path == format!("/v3/{id}/jobs"))
    );

    // The file's `iam_endpoint` is where the ID is asked for.
    let iam = SimServer::start(SimConfig {
        auth: signed(),
        ..SimConfig::account(55)
    })
    .await
    .expect("IAM simulator");
    std::fs::write(
        &file,
        format!(
            "[basic]\nak = {AK}\nsk = {SK}\niam_endpoint = {}\n",
            iam.base_url()
        ),
    )
    .expect("write");
    env.sim.clear_requests();
    let run = sync_with_credentials_file(&env, "iam.db", &file).await;
    run.assert_code(0);
    assert_eq!(
        iam_calls(&env.sim.requests()),
        [],
        "not the config's [endpoints] iam"
    );
    assert_eq!(iam_calls(&iam.requests()).len(), 1);
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|r| r.path == format!("/v3/{id}/jobs"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_project_or_two_of_that_name_are_clear_errors_naming_what_iam_returned() {
    let (first, twin, other) = (
        "aaaa0000bbbb1111cccc2222dddd3333",
        "eeee4444ffff5555aaaa6666bbbb7777",
        "cccc8888dddd9999eeee0000ffff1111",
    );
    let config = SimConfig {
        account: vec![
            SimProject::new(first, "cn-north-4"),
            SimProject::new(twin, "cn-north-4").disabled(),
            SimProject::new(other, "ap-southeast-1"),
        ],
        ..SimConfig::new(52)
    };
    let env = account_env(
        config,
        "[[project]]\nregion = \"cn-east-3\"\n[project.nosql]\n",
    )
    .await;
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    for expected in [
        "line 2 (region cn-east-3)",
        "no project named \"cn-east-3\"",
        "returned none",
        &format!("cn-north-4 ({first})"),
        &format!("cn-north-4 ({twin}, disabled)"),
        &format!("ap-southeast-1 ({other})"),
        "id = ",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    assert!(
        env.sim
            .requests()
            .iter()
            .all(|r| r.path.starts_with("/v3/")),
        "only IAM was asked: {:?}",
        env.sim.requests()
    );

    env.write_config("[[project]]\nregion = \"cn-north-4\"\n[project.nosql]\n");
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(1);
    for expected in [
        "returned 2 projects named \"cn-north-4\"",
        &format!("cn-north-4 ({first}), cn-north-4 ({twin}, disabled)"),
        "set `id = \"…\"` in that [[project]]",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    let check = env.jobtrail(&["check", "--timeout", "5"]).await;
    check.assert_code(1);
    assert!(
        check
            .stdout
            .contains("[FAIL] [[project]] at line 2 (region cn-north-4)")
            && check.stdout.contains("returned 2 projects"),
        "{}",
        check.stdout
    );
    // Nothing was synced, nor stored.
    assert!(
        env.sim
            .requests()
            .iter()
            .all(|r| r.path.starts_with("/v3/"))
    );
    assert!(
        iam_calls(&env.sim.requests())
            .iter()
            .all(|r| r.status == 200)
    );
    assert!(stored_pairs(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_account_syncs_every_enabled_project_with_only_its_regions_services() {
    let env = Env::start_with(SimConfig::account(53), signed(), &KEYS).await;
    let base = env.sim.base_url();
    let init = cli(
        &env,
        &[
            "init",
            "--account",
            "--endpoint",
            &base,
            "-o",
            "account.toml",
        ],
        &[],
    )
    .await;
    init.assert_code(0);
    assert!(
        init.stdout.contains("wrote account.toml"),
        "{}",
        init.stdout
    );
    let text = std::fs::read_to_string(env.dir.path().join("account.toml")).expect("written");
    assert!(text.contains("[account]\nprojects = \"all\""), "{text}");
    assert!(
        !text.contains("id = \"") || text.contains("# id"),
        "no project ID:\n{text}"
    );

    let world = env.world();
    let eu = id_of(&env, "eu-west-101");
    let check = cli(
        &env,
        &["--config", "account.toml", "check", "--timeout", "5"],
        &[],
    )
    .await;
    check.assert_code(0);
    for expected in [
        "valid, the whole account",
        "account: 8 projects listed",
        "6 to sync",
        "[skip] MOS (",
        "[skip] cn-north-4_retired (",
        "disabled",
        &format!("Project {eu} (eu-west-101):"),
        "[note] dbss, image  not called: eu-west-101 has no DBSS and Workspace App",
        "Ready:",
    ] {
        assert!(
            check.stdout.contains(expected),
            "{expected}:\n{}",
            check.stdout
        );
    }
    assert_eq!(env.sim.missing_service_calls(), []);

    cli(
        &env,
        &["--config", "account.toml", "--db", "account.db", "sync"],
        &[],
    )
    .await
    .assert_code(0);
    assert_eq!(
        env.sim.missing_service_calls(),
        [],
        "no service called where it is not"
    );
    let expected: BTreeSet<(String, String)> = world
        .account
        .iter()
        .filter(|p| p.enabled && p.name != MOS)
        .flat_map(|p| {
            ["nosql", "dbss", "image"]
                .into_iter()
                .filter(|s| region_offers(p.region(), s))
                .map(|s| (p.id.clone(), s.to_owned()))
        })
        .collect();
    assert_eq!(expected.len(), 14, "the sample account's offered pairs");
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(env.dir.path().join("account.db"))
            .read_only(true),
    )
    .await
    .expect("open");
    let stored: BTreeSet<(String, String)> =
        sqlx::query_as::<_, (String, String)>("SELECT DISTINCT project_id, source FROM jobs")
            .fetch_all(&pool)
            .await
            .expect("pairs")
            .into_iter()
            .collect();
    assert_eq!(stored, expected);
    let skipped: Vec<&str> = world
        .account
        .iter()
        .filter(|p| !p.enabled || p.name == MOS)
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(skipped.len(), 2);
    for r in env.sim.requests() {
        assert!(
            skipped.iter().all(|id| !r.path.contains(id)),
            "{} called for MOS or a disabled project",
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_regions_own_endpoint_is_used_for_that_region_only() {
    let env = Env::start_with(SimConfig::account(54), signed(), &KEYS).await;
    let vpc = SimServer::start(SimConfig {
        auth: signed(),
        ..SimConfig::account(54)
    })
    .await
    .expect("second simulator");
    let b = vpc.base_url();
    env.write_config(&format!(
        "[account]\nprojects = \"all\"\n\n[endpoints.\"ap-southeast-1\"]\nnosql = \"{b}\"\ndbss = \"{b}\"\nimage = \"{b}\"\n"
    ));
    let ap = id_of(&env, "ap-southeast-1");
    let east = id_of(&env, "cn-east-2");
    let east_nosql = format!("/v3/{east}/jobs");
    let run = cli(
        &env,
        &["--config", "jobtrail.toml", "sync"],
        &[("HUAWEICLOUD_SDK_REGION_GAUSSDBFORNOSQL_CN_EAST_2", &b)],
    )
    .await;
    run.assert_code(0);

    let there = vpc.requests();
    for service in ["/v3/", "/audit/", "/image-server-jobs"] {
        assert!(
            there
                .iter()
                .any(|r| r.path.contains(&ap) && r.path.contains(service)),
            "{service} of ap-southeast-1 went to its own endpoint: {there:?}"
        );
    }
    assert!(
        there.iter().any(|r| r.path == east_nosql),
        "the SDK variable moved cn-east-2's NoSQL"
    );
    for r in &there {
        assert!(
            r.path.contains(&ap) || r.path == east_nosql,
            "only those went there, not {}",
            r.path
        );
    }
    let here = env.sim.requests();
    assert!(
        here.iter()
            .all(|r| !r.path.contains(&ap) && r.path != east_nosql)
    );
    assert!(
        here.iter()
            .any(|r| r.path.contains(&east) && r.path.contains("/audit/")),
        "cn-east-2's DBSS stayed at [endpoints]"
    );
    assert_eq!(env.sim.missing_service_calls(), []);
    assert_eq!(vpc.missing_service_calls(), []);
    let pairs = stored_pairs(&env).await;
    for source in ["nosql", "dbss", "image"] {
        assert!(
            pairs.contains(&(ap.clone(), source.to_owned())),
            "{source} of ap-southeast-1 stored"
        );
    }
    assert!(pairs.contains(&(east, "nosql".to_owned())));
}

#[tokio::test(flavor = "multi_thread")]
async fn when_iam_fails_yesterdays_answer_serves_and_a_refused_lookup_says_what_to_do() {
    let env = account_env(SimConfig::account(56), REGION_ONLY).await;
    env.jobtrail(&["sync", "--source", "nosql"])
        .await
        .assert_code(0);
    let pool = env.writable_pool().await;
    sqlx::query("UPDATE iam_projects SET fetched_at = ?")
        .bind(utc_ms(Utc::now() - chrono::Duration::hours(30)))
        .execute(&pool)
        .await
        .expect("age the answer");
    pool.close().await;

    // IAM fails: the day-old answer is used, with a warning.
    env.sim
        .add_fault(FaultRule::new("/v3/projects", Fault::Status(400)).times(1));
    env.sim.clear_requests();
    let run = env.jobtrail(&["sync", "--source", "nosql"]).await;
    run.assert_code(0);
    assert!(
        run.stderr.contains("using IAM's answer of"),
        "{}",
        run.stderr
    );
    let id = id_of(&env, "ap-southeast-1");
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|r| r.path == format!("/v3/{id}/jobs"))
    );

    // Without an answer to fall back on, a refused lookup says what to do.
    env.sim
        .add_fault(FaultRule::new("/v3/projects", Fault::Status(403)));
    let run = cli(
        &env,
        &["--config", "jobtrail.toml", "--db", "fresh.db", "sync"],
        &[],
    )
    .await;
    run.assert_code(1);
    for expected in [
        "cannot find its project ID",
        "HTTP 403",
        "iam:projects:listProjects",
        "[account]",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_for_a_service_the_region_lacks_is_a_note_not_an_error() {
    let env = account_env(
        SimConfig::account(57),
        "[[project]]\nregion = \"eu-west-101\"\n\n[project.nosql]\n\n[project.dbss]\ndiscover = true\n",
    )
    .await;
    let note =
        "line 2: project in eu-west-101: [project.dbss] is not synced: eu-west-101 has no DBSS";
    let check = env.jobtrail(&["check", "--timeout", "5"]).await;
    check.assert_code(0);
    assert!(
        check.stdout.contains(&format!("[note] {note}")),
        "{}",
        check.stdout
    );
    let run = env.jobtrail(&["sync"]).await;
    run.assert_code(0);
    assert_eq!(
        run.stderr.matches(note).count(),
        1,
        "said once: {}",
        run.stderr
    );
    assert_eq!(env.sim.missing_service_calls(), []);
    let eu = id_of(&env, "eu-west-101");
    assert_eq!(
        stored_pairs(&env).await,
        BTreeSet::from([(eu, "nosql".to_owned())])
    );
}

on_both_backends!(a_failed_iam_lookup_is_a_failed_run_that_status_shows);

/// A lookup IAM refuses, or that finds no project of the region's name,
/// fails the sync as today (exit 1, the same message) and is recorded as a
/// failed run, so `status` and the metrics of a cron job show it.
async fn a_failed_iam_lookup_is_a_failed_run_that_status_shows(backend: Backend) {
    let project = "aaaa0000bbbb1111cccc2222dddd3333";
    let config = SimConfig {
        account: vec![SimProject::new(project, "cn-north-4")],
        ..SimConfig::new(58)
    };
    let mut env = account_env(
        config,
        "[[project]]\nregion = \"cn-north-4\"\n[project.nosql]\n",
    )
    .await;
    if backend == Backend::Postgres {
        let Some(pg) = PgDatabase::create().await else {
            return;
        };
        env.backend = backend;
        env.pg = Some(pg);
    }
    env.sim
        .add_fault(FaultRule::new("/v3/projects", Fault::Status(403)));
    let metrics = env.dir.path().join("jobtrail.prom");
    let metrics_arg = metrics.display().to_string();
    let refused = env
        .jobtrail(&["sync", "--metrics-file", &metrics_arg])
        .await;
    refused.assert_code(1);
    for expected in [
        "cannot find its project ID",
        "HTTP 403",
        "iam:projects:listProjects",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected}:\n{}",
            refused.stderr
        );
    }
    let metrics = std::fs::read_to_string(&metrics).expect("metrics file");
    assert!(
        metrics.contains("jobtrail_last_run_exit_code 1"),
        "{metrics}"
    );

    env.sim.clear_faults();
    env.write_config("[[project]]\nregion = \"cn-east-3\"\n[project.nosql]\n");
    let none = env.jobtrail(&["sync"]).await;
    none.assert_code(1);
    assert!(
        none.stderr.contains("no project named \"cn-east-3\""),
        "{}",
        none.stderr
    );

    // A usage mistake is no run.
    env.jobtrail(&["sync", "--since", "2024-02-01", "--until", "2024-01-01"])
        .await
        .assert_code(2);

    let runs = env
        .rows(
            "SELECT id, status, error, finished_at, jobs_seen FROM sync_runs ORDER BY id",
            &[],
        )
        .await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (run, said) in runs.iter().zip([&refused, &none]) {
        assert_eq!(text(run, "status").as_deref(), Some("failed"), "{run:?}");
        assert!(text(run, "finished_at").is_some(), "{run:?}");
        assert_eq!(opt_int(run, "jobs_seen"), Some(0));
        let error = text(run, "error").expect("error");
        assert!(
            said.stderr.contains(error.lines().next().expect("a line")),
            "the run keeps the message the sync printed: {error}\n{}",
            said.stderr
        );
    }
    assert!(text(&runs[0], "error").is_some_and(|e| e.contains("HTTP 403")));
    assert!(text(&runs[1], "error").is_some_and(|e| e.contains("returned none")));

    let status = env.jobtrail(&["status"]).await;
    status.assert_code(0);
    assert!(
        status.stdout.contains("Sync runs: last 2 of 2"),
        "{}",
        status.stdout
    );
    for expected in [
        "failed",
        "cannot find its project ID",
        "HTTP 403",
        "no project named",
    ] {
        assert!(
            status.stdout.contains(expected),
            "{expected}:\n{}",
            status.stdout
        );
    }
    // No scope failed (none was reached), yet status does not call it well.
    assert!(
        status
            .stdout
            .contains("Failing scopes: none, but the newest run (#2) failed: its error is above"),
        "{}",
        status.stdout
    );
    assert!(stored_pairs_on(&env).await.is_empty(), "nothing was synced");
}

/// [`stored_pairs`] on either backend.
async fn stored_pairs_on(env: &Env) -> Vec<crate::util::Row> {
    env.rows("SELECT DISTINCT project_id, source FROM jobs", &[])
        .await
}
