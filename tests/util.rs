//! Shared helpers: a simulator plus a temp dir, a config pointing at it, and a
//! runner for the real CLI with a clean, credential-free environment.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Utc};
use jobtrail::sim::{AuditInstance, SimAuth, SimConfig, SimServer, World};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;
use tempfile::TempDir;

pub const TOKEN: &str = "test-iam-token-5f3c9a";

/// The expected text form of a time, written independently of the crate.
pub fn utc_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The result of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A simulator with a temp folder for the database and config.
pub struct Env {
    pub dir: TempDir,
    pub sim: SimServer,
    /// Extra environment for CLI runs (credentials).
    pub env: Vec<(String, String)>,
    pub history_days: u32,
}

impl Env {
    /// Starts a simulator that requires `TOKEN`, with the CLI given that token.
    pub async fn start(config: SimConfig) -> Env {
        Self::start_with(
            config,
            SimAuth::Token(TOKEN.to_owned()),
            &[("CLOUD_SDK_TOKEN", TOKEN)],
        )
        .await
    }

    /// Starts a simulator demanding `auth`, with `env` given to every CLI run.
    pub async fn start_with(mut config: SimConfig, auth: SimAuth, env: &[(&str, &str)]) -> Env {
        config.auth = auth;
        let history_days = config.history_days;
        let sim = SimServer::start(config).await.expect("simulator starts");
        let env = Env {
            dir: tempfile::tempdir().expect("temp dir"),
            sim,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            history_days,
        };
        env.write_config(&env.default_config());
        env
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("jobtrail.db")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("jobtrail.toml")
    }

    pub fn world(&self) -> World {
        self.sim.world()
    }

    /// Every simulated project with all three sources, discovery on, NoSQL
    /// backfill from before the start of the simulated history.
    pub fn default_config(&self) -> String {
        let since = (Utc::now() - chrono::Duration::days(i64::from(self.history_days) + 2))
            .format("%Y-%m-%d");
        let mut text = String::new();
        for project in self.world().projects.keys() {
            text.push_str(&format!(
                "[[project]]\nid = \"{project}\"\nregion = \"cn-north-4\"\n\n[project.nosql]\nsince = \"{since}\"\n\n[project.dbss]\ndiscover = true\n\n[project.image]\ndiscover = true\n\n"
            ));
        }
        text
    }

    /// Writes `jobtrail.toml` with `body` plus endpoints pointing at the simulator.
    pub fn write_config(&self, body: &str) {
        let base = self.sim.base_url();
        let text = format!(
            "{body}\n[endpoints]\nnosql = \"{base}\"\ndbss = \"{base}\"\nimage = \"{base}\"\niam = \"{base}\"\n"
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Runs `jobtrail --db <tmp>/jobtrail.db --config <tmp>/jobtrail.toml ARGS`.
    pub async fn jobtrail(&self, args: &[&str]) -> Run {
        let mut full: Vec<String> = vec![
            "--db".into(),
            self.db().display().to_string(),
            "--config".into(),
            self.config_path().display().to_string(),
        ];
        full.extend(args.iter().map(|s| (*s).to_owned()));
        run_cli(self.dir.path().to_path_buf(), full, self.env.clone()).await
    }

    /// A writable pool on the database, for a test that sets up a state the
    /// simulator cannot produce (close it before the next `jobtrail` run).
    pub async fn writable_pool(&self) -> SqlitePool {
        SqlitePool::connect_with(SqliteConnectOptions::new().filename(self.db()))
            .await
            .expect("open db for writing")
    }

    /// A read-only pool on the database, for assertions.
    pub async fn pool(&self) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(self.db())
            .read_only(true);
        SqlitePool::connect_with(options).await.expect("open db")
    }
}

/// Runs the binary in `dir` with only the given credentials in its environment.
pub async fn run_cli(dir: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> Run {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobtrail"));
        cmd.args(&args)
            .current_dir(&dir)
            .env("HOME", &dir)
            .env("NO_COLOR", "1");
        for key in [
            "HUAWEICLOUD_SDK_AK",
            "HUAWEICLOUD_SDK_SK",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN",
            "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
            "CLOUD_SDK_AK",
            "CLOUD_SDK_SK",
            "CLOUD_SDK_SECURITY_TOKEN",
            "CLOUD_SDK_TOKEN",
            "JOBTRAIL_DB",
            "JOBTRAIL_CONFIG",
            "JOBTRAIL_LOG",
            "JOBTRAIL_PING_URL",
        ] {
            cmd.env_remove(key);
        }
        // Every SDK variable (project ID, IAM and region endpoints) too.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HUAWEICLOUD_SDK_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env);
        let output = cmd.output().expect("run jobtrail");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("runner thread")
}

/// Expected normalized status, per the spec's table, written independently.
pub fn expected_status(source: &str, raw: &str, sub_job: bool) -> &'static str {
    let r = raw.to_ascii_uppercase();
    match (source, r.as_str()) {
        ("nosql", "RUNNING") => "running",
        ("nosql", "COMPLETED") => "succeeded",
        ("nosql", "FAILED") => "failed",
        ("dbss", "INIT" | "READY" | "RUNNING") => "running",
        ("dbss", "SUCCESS") => "succeeded",
        ("dbss", "FAIL" | "ERROR" | "FAILED") => "failed",
        ("image", "WAITING" | "RUNNING") => "running",
        ("image", "ROLLBACK" | "ABORTING") if sub_job => "running",
        ("image", "SUCCESS") => "succeeded",
        ("image", "FAILED") => "failed",
        ("image", "ABNORMAL") if sub_job => "failed",
        _ => "unknown",
    }
}

/// `Some(s)` unless empty.
pub fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The first audit instance of the first project that discovery lists.
pub fn first_listed_instance(world: &World) -> AuditInstance {
    world
        .projects
        .values()
        .flat_map(|p| &p.audit_instances)
        .find(|i| i.listed)
        .expect("a listed audit instance")
        .clone()
}
