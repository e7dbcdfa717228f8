//! The first ten minutes: `init` writes a config that `check` passes against the
//! simulator; `check` names each kind of failure with its fix and exit code;
//! help, version and completions. `--help` of every command is snapshotted.

use std::path::{Path, PathBuf};
use std::process::Command;

use jobtrail::config::Settings;
use jobtrail::model::Source;
use jobtrail::sim::{Fault, FaultRule, SimAuth, SimConfig};

use crate::util::{Env, Run, TOKEN, run_cli};

const AK: &str = "HPUAFIRSTRUNAKID0007";
const SK: &str = "sk-first-run-3b1f0e9d8c7a6b5c4d3e";
const WRONG_SK: &str = "sk-first-run-WRONG-0a0b0c0d0e0f1a1b";

fn small() -> SimConfig {
    SimConfig {
        nosql_jobs: 60,
        ..SimConfig::new(10)
    }
}

fn first_project(env: &Env) -> String {
    env.world()
        .projects
        .keys()
        .next()
        .expect("a simulated project")
        .clone()
}

/// Runs the CLI in the env's folder with its credentials (no --config/--db added).
async fn cli(env: &Env, args: &[&str]) -> Run {
    run_cli(
        env.dir.path().to_path_buf(),
        args.iter().map(|s| (*s).to_owned()).collect(),
        env.env.clone(),
    )
    .await
}

/// `check` against `config`.
async fn check(env: &Env, config: &Path) -> Run {
    cli(
        env,
        &[
            "--config",
            &config.display().to_string(),
            "check",
            "--timeout",
            "5",
        ],
    )
    .await
}

fn no_secret_in(run: &Run) {
    for secret in [SK, WRONG_SK, TOKEN] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// A config of the first simulated project with every source on, all
/// endpoints at `base`.
fn config_at(env: &Env, name: &str, project: &str, base: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    std::fs::write(
        &path,
        format!(
            "[[project]]\nid = \"{project}\"\nregion = \"cn-north-4\"\n[project.nosql]\n[project.dbss]\ndiscover = true\n[project.image]\ndiscover = true\n\n[endpoints]\nnosql = \"{base}\"\ndbss = \"{base}\"\nimage = \"{base}\"\niam = \"{base}\"\n"
        ),
    )
    .expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_valid_config_that_check_passes_against_the_simulator() {
    let env = Env::start(small()).await;
    let project = first_project(&env);
    let base = env.sim.base_url();
    let run = cli(
        &env,
        &[
            "--config",
            "new.toml",
            "init",
            "--project",
            &project,
            "--region",
            "cn-north-4",
            "--endpoint",
            &base,
        ],
    )
    .await;
    run.assert_code(0);
    assert!(run.stdout.contains("wrote new.toml"), "{}", run.stdout);
    let path = env.dir.path().join("new.toml");
    let text = std::fs::read_to_string(&path).expect("written");
    let settings = Settings::parse(&text, &path).expect("init output is a valid config");
    let p = &settings.projects[0];
    assert_eq!(
        (p.id.as_str(), p.region.as_str()),
        (project.as_str(), "cn-north-4")
    );
    assert!(
        Source::ALL.iter().all(|&s| p.has(s)),
        "all three sources on"
    );
    assert_eq!(p.endpoints.nosql.as_str(), format!("{base}/"));
    assert_eq!(
        settings.database.as_ref().and_then(|d| d.sqlite_path()),
        Some(env.dir.path().join("jobtrail.db").as_path())
    );

    // The legacy DBSS path being gone does not matter: sync falls back, check
    // probes the instance list.
    env.sim.set_legacy_dbss_retired(true);
    env.sim.clear_requests();
    let run = check(&env, &path).await;
    run.assert_code(0);
    no_secret_in(&run);
    for line in [
        "[ok]   valid, 1 project",
        "[ok]   IAM token (CLOUD_SDK_TOKEN)",
        "[ok]   nosql",
        "[ok]   dbss",
        "[ok]   image",
        "Ready:",
    ] {
        assert!(run.stdout.contains(line), "{line} missing:\n{}", run.stdout);
    }
    let requests = env.sim.requests();
    assert_eq!(requests.len(), 3, "one request per source: {requests:?}");
    let nosql = requests
        .iter()
        .find(|r| r.path.ends_with("/jobs"))
        .expect("nosql probe");
    let q = |k: &str| {
        nosql
            .query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(q("limit").as_deref(), Some("10"));
    assert_eq!(q("offset").as_deref(), Some("0"));
    assert!(q("start_time").is_some() && q("end_time").is_some());
    assert!(
        requests
            .iter()
            .any(|r| r.path == format!("/v2/{project}/audit/instances"))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path == format!("/v1/{project}/image-server-jobs"))
    );

    // And the file really syncs.
    cli(&env, &["--config", "new.toml", "sync"])
        .await
        .assert_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn init_names_only_the_sources_asked_for_and_never_overwrites() {
    let env = Env::start(small()).await;
    let args = [
        "init",
        "--project",
        "abc123",
        "--region",
        "ap-southeast-1",
        "--source",
        "dbss",
        "-o",
        "conf/jobtrail.toml",
    ];
    cli(&env, &args).await.assert_code(0);
    let path = env.dir.path().join("conf/jobtrail.toml");
    let first = std::fs::read_to_string(&path).expect("written");
    let p = &Settings::parse(&first, &path).expect("valid").projects[0];
    assert!(p.has(Source::Dbss) && !p.has(Source::Nosql) && !p.has(Source::Image));
    assert!(first.contains("# [project.nosql]") && first.contains("# [project.image]"));

    std::fs::write(&path, "# my edits\n").expect("edit");
    let run = cli(&env, &args).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("already exists") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "# my edits\n",
        "untouched"
    );

    let mut forced = args.to_vec();
    forced.push("--force");
    cli(&env, &forced).await.assert_code(0);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), first);

    // A flag value that would make an invalid file is a usage error; nothing is written.
    let run = cli(&env, &["init", "--project", "my project", "-o", "bad.toml"]).await;
    run.assert_code(2);
    assert!(run.stderr.contains("--project"), "{}", run.stderr);
    assert!(!env.dir.path().join("bad.toml").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn placeholders_and_every_config_problem_are_listed_without_any_request() {
    let env = Env::start(small()).await;
    cli(&env, &["init", "-o", "todo.toml"]).await.assert_code(0);
    env.sim.clear_requests();
    let path = env.dir.path().join("todo.toml");
    let run = check(&env, &path).await;
    run.assert_code(1);
    let text = std::fs::read_to_string(&path).expect("read");
    let line = |needle: &str| {
        text.lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .expect("line")
    };
    // The project ID is no placeholder: IAM finds it from the region.
    assert!(!run.stdout.contains("project.id"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "line {}: project.region is still the placeholder",
            line("region =")
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("none made: fix the configuration first")
    );
    assert!(
        run.stdout.contains("Not ready: 1 problem"),
        "{}",
        run.stdout
    );
    // `sync` refuses the placeholder too, instead of calling the cloud with it.
    cli(&env, &["--config", "todo.toml", "sync"])
        .await
        .assert_code(1);
    assert_eq!(env.sim.request_count(), 0);

    let messy = env.dir.path().join("messy.toml");
    std::fs::write(
        &messy,
        "databse = \"x.db\"\n[[project]]\nid = \"p1\"\nregion = \"cn-north-4\"\n[project.nosql]\nsince = \"yesterday\"\n[project.dbss]\ndiscover = \"yes\"\n",
    )
    .expect("write");
    let run = check(&env, &messy).await;
    run.assert_code(1);
    for expected in [
        "line 1: unknown key `databse`",
        "line 6: project.nosql.since = \"yesterday\"",
        "line 8: project.dbss.discover must be true or false",
    ] {
        assert!(run.stdout.contains(expected), "{expected}:\n{}", run.stdout);
    }

    let run = check(&env, &env.dir.path().join("missing.toml")).await;
    run.assert_code(1);
    assert!(run.stdout.contains("jobtrail init"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_signature_is_named_with_the_cloud_code_and_sent_once() {
    let env = Env::start_with(
        small(),
        SimAuth::AkSk {
            ak: AK.into(),
            sk: SK.into(),
            security_token: None,
        },
        &[("HUAWEICLOUD_SDK_AK", AK), ("HUAWEICLOUD_SDK_SK", WRONG_SK)],
    )
    .await;
    let run = check(&env, &env.config_path()).await;
    run.assert_code(1);
    no_secret_in(&run);
    for expected in [
        "[ok]   AK/SK (HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK)",
        "[FAIL] nosql",
        "authentication refused (HTTP 401, error code APIGW.0301",
        "fix: the signature did not verify",
        "[skip] dbss",
        "Not ready: 1 problem",
    ] {
        assert!(run.stdout.contains(expected), "{expected}:\n{}", run.stdout);
    }
    assert_eq!(
        env.sim.request_count(),
        1,
        "after one refused signature nothing else is sent (five lock the key)"
    );

    // The right key pair passes.
    let mut env = env;
    env.env = vec![
        ("HUAWEICLOUD_SDK_AK".into(), AK.into()),
        ("HUAWEICLOUD_SDK_SK".into(), SK.into()),
    ];
    let run = check(&env, &env.config_path()).await;
    run.assert_code(0);
    assert_eq!(
        run.stdout.matches("[ok]   ").count(),
        // config, database, credentials, then three sources per project
        3 + 3 * env.world().projects.len(),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_project_retired_path_and_forbidden_are_told_apart() {
    let env = Env::start(small()).await;
    let base = env.sim.base_url();

    let unknown = config_at(
        &env,
        "unknown.toml",
        "00000000000000000000000000000000",
        &base,
    );
    let run = check(&env, &unknown).await;
    run.assert_code(1);
    assert!(
        run.stdout
            .contains("unknown project (HTTP 404, error code APIGW.0311"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("My Credentials"), "{}", run.stdout);

    // A gateway without these APIs (a wrong path prefix, or an API taken offline).
    let project = first_project(&env);
    let retired = config_at(
        &env,
        "retired.toml",
        &project,
        &format!("{base}/old-gateway"),
    );
    let run = check(&env, &retired).await;
    run.assert_code(1);
    assert_eq!(
        run.stdout
            .matches("API retired or wrong endpoint (HTTP 404, error code APIGW.0101")
            .count(),
        3,
        "{}",
        run.stdout
    );

    env.sim
        .add_fault(FaultRule::new("/audit/instances", Fault::Status(403)));
    let ok = config_at(&env, "ok.toml", &project, &base);
    let run = check(&env, &ok).await;
    run.assert_code(1);
    assert!(run.stdout.contains("[ok]   nosql"), "{}", run.stdout);
    assert!(
        run.stdout.contains("[FAIL] dbss") && run.stdout.contains("access denied (HTTP 403"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("read permission for DBSS"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_ports_and_timeouts_fail_fast_with_what_to_do() {
    let env = Env::start(small()).await;
    let project = first_project(&env);
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let refused = config_at(
        &env,
        "refused.toml",
        &project,
        &format!("http://127.0.0.1:{port}"),
    );
    let started = std::time::Instant::now();
    let run = check(&env, &refused).await;
    run.assert_code(1);
    assert_eq!(
        run.stdout
            .matches(&format!("connection refused by 127.0.0.1:{port}"))
            .count(),
        3,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("is `jobtrail simulate` running?"));
    assert!(started.elapsed().as_secs() < 15, "check answers fast");

    env.sim.add_fault(FaultRule::new(
        "/image-server-jobs",
        Fault::Hang(std::time::Duration::from_secs(10)),
    ));
    let hang = config_at(&env, "hang.toml", &project, &env.sim.base_url());
    let started = std::time::Instant::now();
    let run = cli(
        &env,
        &[
            "--config",
            &hang.display().to_string(),
            "check",
            "--timeout",
            "1",
        ],
    )
    .await;
    run.assert_code(1);
    assert!(
        run.stdout.contains("[FAIL] image") && run.stdout.contains("no answer within 1s"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[ok]   nosql"), "{}", run.stdout);
    assert!(started.elapsed().as_secs() < 8, "a timeout is not retried");
}

// ---------------------------------------------------------------------------
// Help, version, completions

/// Runs the binary synchronously with a fixed terminal width and no colour.
fn run_plain(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_jobtrail"))
        .args(args)
        .env("COLUMNS", "100")
        .env("LINES", "50")
        .env("NO_COLOR", "1")
        .env_remove("JOBTRAIL_DB")
        .env_remove("JOBTRAIL_CONFIG")
        .output()
        .expect("run jobtrail");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const COMMANDS: [&str; 11] = [
    "sync",
    "query",
    "queries",
    "status",
    "report",
    "demo",
    "simulate",
    "init",
    "check",
    "copy",
    "completions",
];

#[test]
fn help_of_every_command_is_reviewed() {
    let (code, top, _) = run_plain(&["--help"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("help", top);
    for command in COMMANDS {
        assert!(top.contains(&format!("  {command} ")), "{command} listed");
        let (code, help, stderr) = run_plain(&[command, "--help"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            help.contains("Examples:\n  jobtrail ") || help.contains("Examples:\n  sqlite3 "),
            "{command} --help ends with examples:\n{help}"
        );
        insta::assert_snapshot!(format!("help_{command}"), help);
    }
}

#[test]
fn version_names_the_commit() {
    let (code, out, _) = run_plain(&["--version"]);
    assert_eq!(code, 0);
    let line = out.trim();
    let rest = line
        .strip_prefix(concat!("jobtrail ", env!("CARGO_PKG_VERSION"), " ("))
        .unwrap_or_else(|| panic!("{line}"));
    let commit = rest.strip_suffix(')').unwrap_or_else(|| panic!("{line}"));
    assert!(
        commit == "unknown commit"
            || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef jobtrail"),
        ("fish", "complete -c jobtrail"),
    ] {
        let (code, out, err) = run_plain(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(marker), "{shell}: {marker} missing");
        for command in COMMANDS {
            assert!(out.contains(command), "{shell}: {command} missing");
        }
    }
    let (code, _, err) = run_plain(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}
