//! Shared helpers: a simulator plus a temp dir, a config pointing at it, a
//! database on either backend (a fresh PostgreSQL database per test, from
//! `JOBTRAIL_TEST_POSTGRES`), and a runner for the real CLI with a clean,
//! credential-free environment.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Utc};
use jobtrail::sim::{AuditInstance, SimAuth, SimConfig, SimServer, World};
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqlitePool};
use tempfile::TempDir;

pub const TOKEN: &str = "test-iam-token-5f3c9a";

/// The PostgreSQL server the tests create their databases on: a superuser
/// URL (`.ci/with-postgres` starts a throwaway server and sets it).
pub const POSTGRES_VAR: &str = "JOBTRAIL_TEST_POSTGRES";

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test function `async fn name(backend: Backend)` once per backend,
/// as `name::sqlite` and `name::postgres` (the latter says SKIPPED when no
/// server is given, and fails under CI).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use crate::util::Backend;

                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    super::$name(Backend::Postgres).await
                }
            }
        )*
    };
}

/// A fresh PostgreSQL database for one test, dropped (with any session
/// still on it) when the test ends.
pub struct PgDatabase {
    /// Its URL, password included (given to the CLI, never printed).
    pub url: String,
    server: String,
    name: String,
}

impl PgDatabase {
    /// Creates one, or says SKIPPED and returns `None` when no server is
    /// given (a failure under CI, which must test both backends).
    pub async fn create() -> Option<PgDatabase> {
        let server = match std::env::var(POSTGRES_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var_os("CI").is_some() => {
                panic!(
                    "{POSTGRES_VAR} is not set under CI: run the tests through .ci/with-postgres"
                )
            }
            _ => {
                eprintln!(
                    "SKIPPED: no PostgreSQL to test against; set {POSTGRES_VAR} or run under .ci/with-postgres"
                );
                return None;
            }
        };
        let name = format!("jobtrail_it_{:016x}", rand::random::<u64>());
        let mut conn = connect(&server).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let mut url = reqwest::Url::parse(&server).expect(POSTGRES_VAR);
        url.set_path(&format!("/{name}"));
        Some(PgDatabase {
            url: url.to_string(),
            server,
            name,
        })
    }

    /// Another fresh database on the same server.
    pub async fn sibling(&self) -> PgDatabase {
        Box::pin(PgDatabase::create())
            .await
            .expect("the server is there")
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect(POSTGRES_VAR);
    options.connect().await.expect("the test PostgreSQL server")
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside async: a thread with a runtime of its own, which
        // also works while a failed test unwinds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut conn = connect(&server).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .expect("drop database");
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop the test database");
        }
    }
}

/// A row of `jobtrail query --format json`.
pub type Row = serde_json::Map<String, Value>;

/// Parses `jobtrail query --format json` output.
pub fn parse_rows(text: &str) -> Vec<Row> {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    value
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|v| v.as_object().expect("an object per row").clone())
        .collect()
}

/// A text column (NULL: `None`).
pub fn text(row: &Row, key: &str) -> Option<String> {
    match row.get(key).unwrap_or_else(|| panic!("no column {key}")) {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("{key} is not text: {other}"),
    }
}

/// An integer column that may be NULL.
pub fn opt_int(row: &Row, key: &str) -> Option<i64> {
    match row.get(key).unwrap_or_else(|| panic!("no column {key}")) {
        Value::Null => None,
        v => Some(
            v.as_i64()
                .unwrap_or_else(|| panic!("{key} is not an integer in {row:?}")),
        ),
    }
}

/// An integer column.
pub fn int(row: &Row, key: &str) -> i64 {
    opt_int(row, key).unwrap_or_else(|| panic!("{key} is NULL in {row:?}"))
}

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

/// A simulator with a temp folder for the database (or a PostgreSQL
/// database of its own) and config.
pub struct Env {
    pub dir: TempDir,
    pub sim: SimServer,
    /// Extra environment for CLI runs (credentials).
    pub env: Vec<(String, String)>,
    pub history_days: u32,
    pub backend: Backend,
    /// The database, when the backend is PostgreSQL.
    pub pg: Option<PgDatabase>,
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

    /// [`Env::start`] with the database on `backend`; `None` when that is
    /// PostgreSQL and no server is given (the test is skipped, loudly).
    pub async fn start_on(config: SimConfig, backend: Backend) -> Option<Env> {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await?),
        };
        let mut env = Env::start(config).await;
        env.backend = backend;
        env.pg = pg;
        Some(env)
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
            backend: Backend::Sqlite,
            pg: None,
        };
        env.write_config(&env.default_config());
        env
    }

    /// The SQLite file (used when the backend is SQLite).
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("jobtrail.db")
    }

    /// What `--db` gets: the SQLite file or the PostgreSQL URL.
    pub fn db_arg(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self.db().display().to_string(),
        }
    }

    /// `jobtrail query SQL --format json` (`-p` pairs in `params`), parsed;
    /// the query must succeed.
    pub async fn rows(&self, sql: &str, params: &[(&str, &str)]) -> Vec<Row> {
        self.rows_on(&self.db_arg(), sql, params).await
    }

    /// [`Env::rows`] from another database (`--db db`).
    pub async fn rows_on(&self, db: &str, sql: &str, params: &[(&str, &str)]) -> Vec<Row> {
        let mut args: Vec<String> =
            vec!["query".into(), sql.into(), "--format".into(), "json".into()];
        for (name, value) in params {
            args.push("-p".into());
            args.push(format!("{name}={value}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = self.jobtrail_on(db, &args).await;
        run.assert_code(0);
        parse_rows(&run.stdout)
    }

    /// The one integer `sql` returns (its first column, first row).
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.scalar_on(&self.db_arg(), sql).await
    }

    /// [`Env::scalar`] from another database (`--db db`).
    pub async fn scalar_on(&self, db: &str, sql: &str) -> i64 {
        let rows = self.rows_on(db, sql, &[]).await;
        let row = rows.first().unwrap_or_else(|| panic!("no row from {sql}"));
        row.values()
            .next()
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("{sql}: not an integer: {row:?}"))
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

    /// Runs `jobtrail --db <database> --config <tmp>/jobtrail.toml ARGS`.
    pub async fn jobtrail(&self, args: &[&str]) -> Run {
        self.jobtrail_on(&self.db_arg(), args).await
    }

    /// [`Env::jobtrail`] on another database (`--db db`).
    pub async fn jobtrail_on(&self, db: &str, args: &[&str]) -> Run {
        let mut full: Vec<String> = vec![
            "--db".into(),
            db.to_owned(),
            "--config".into(),
            self.config_path().display().to_string(),
        ];
        full.extend(args.iter().map(|s| (*s).to_owned()));
        run_cli(self.dir.path().to_path_buf(), full, self.env.clone()).await
    }

    /// A connection to the PostgreSQL database, for a test that looks at or
    /// sets up what the CLI does not show.
    pub async fn pg_connection(&self) -> sqlx::PgConnection {
        connect(&self.pg.as_ref().expect("a PostgreSQL test").url).await
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
            "PGPASSWORD",
            "PGPASSFILE",
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

/// A simulated cloud, a temporary folder and settings that point at every
/// project of the simulator's world: where a sync test of faults starts.
pub struct SimCase {
    pub sim: SimServer,
    pub dir: TempDir,
    pub settings: jobtrail::config::Settings,
    db_name: &'static str,
    http: jobtrail::http::HttpSettings,
}

impl SimCase {
    /// Starts `config`'s world; syncs go to `db_name` in the folder, through
    /// a client with `http`'s settings.
    pub async fn start(
        config: SimConfig,
        db_name: &'static str,
        http: jobtrail::http::HttpSettings,
    ) -> SimCase {
        let days = config.history_days;
        let sim = SimServer::start(config).await.expect("simulator");
        let base = reqwest::Url::parse(&sim.base_url()).expect("url");
        let settings = jobtrail::config::Settings {
            projects: sim
                .world()
                .projects
                .keys()
                .map(|p| jobtrail::app::simulated_project(p, &base, days))
                .collect(),
            ..jobtrail::config::Settings::default()
        };
        SimCase {
            sim,
            dir: tempfile::tempdir().expect("tempdir"),
            settings,
            db_name,
            http,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join(self.db_name)
    }

    /// One sync of every project with a fresh client.
    pub async fn sync(&self) -> jobtrail::sync::SyncReport {
        let client = jobtrail::http::ApiClient::new(None, self.http.clone()).expect("client");
        jobtrail::app::locked_sync(
            &self.db(),
            &self.settings,
            &client,
            &jobtrail::sync::SyncOptions::default(),
            false,
        )
        .await
        .expect("sync runs")
    }
}
