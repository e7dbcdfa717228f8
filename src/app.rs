//! The top level: turns parsed arguments into settings, runs the command, and
//! says how it ended. `main.rs` only parses, sets up logging and maps [`Exit`].

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::auth::Credentials;
use crate::cli::{
    CheckArgs, Cli, Command, CompletionsArgs, DemoArgs, GlobalArgs, InitArgs, QueriesArgs,
    QueryArgs, ReportArgs, Shell, SimulateArgs, StatusArgs, StatusFormat, SyncArgs,
};
use crate::config::{
    DbssSettings, Endpoints, ImageSettings, NosqlSettings, ProjectSettings, Settings,
};
use crate::http::{ApiClient, HttpSettings};
use crate::lock::SyncLock;
use crate::progress::Progress;
use crate::store::{RunOutcome, Store};
use crate::sync::{SyncOptions, SyncReport};

/// `--version`: the crate version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("JOBTRAIL_GIT_COMMIT"),
    ")"
);

/// How long a second sync waits for the first before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The process exit status (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    Usage = 2,
    Partial = 3,
}

/// A usage mistake (exit 2) rather than a failure (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<Exit> {
    let global = &cli.global;
    match &cli.command {
        Command::Sync(args) => sync(global, args).await,
        Command::Query(args) => query(global, args).await,
        Command::Queries(args) => queries(global, args),
        Command::Status(args) => status(global, args).await,
        Command::Report(args) => report(global, args).await,
        Command::Demo(args) => demo(global, args).await,
        Command::Simulate(args) => simulate(args).await,
        Command::Init(args) => init(global, args),
        Command::Check(args) => check(global, args).await,
        Command::Completions(args) => completions(args),
    }
}

/// The file `init` writes and `check` reads: `--config`, else `./jobtrail.toml`.
fn config_path(global: &GlobalArgs) -> PathBuf {
    global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("jobtrail.toml"))
}

fn init(global: &GlobalArgs, args: &InitArgs) -> Result<Exit> {
    use crate::init::{InitError, InitOptions};
    let path = args.output.clone().unwrap_or_else(|| config_path(global));
    let mut sources = Vec::new();
    for source in &args.sources {
        if !sources.contains(source) {
            sources.push(*source);
        }
    }
    let options = InitOptions {
        project: args.project.clone(),
        region: args.region.clone(),
        sources,
        endpoint: args.endpoint.clone(),
    };
    let written =
        crate::init::render(&options).and_then(|text| crate::init::write(&path, &text, args.force));
    match written {
        Ok(()) => {}
        Err(InitError::Usage(text)) => return Err(UsageError(text).into()),
        Err(e) => return Err(e.into()),
    }
    if global.quiet == 0 {
        println!("wrote {}", path.display());
        let placeholders = args.project.is_none() || args.region.is_none();
        if placeholders {
            println!(
                "next: fill in the project ID and region marked FILL IN, then run `jobtrail check`"
            );
        } else {
            println!(
                "next: set credentials (HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK), then run `jobtrail check`"
            );
        }
        if global.config.is_none() && args.output.is_some() {
            println!(
                "      (pass --config {} to every command, or set JOBTRAIL_CONFIG)",
                path.display()
            );
        }
    }
    Ok(Exit::Ok)
}

async fn check(global: &GlobalArgs, args: &CheckArgs) -> Result<Exit> {
    let path = config_path(global);
    let report = crate::check::run(
        &path,
        global.db.as_deref(),
        Duration::from_secs(args.timeout),
    )
    .await;
    let mut out = std::io::stdout().lock();
    out.write_all(crate::check::render(&report).as_bytes())?;
    out.flush()?;
    Ok(if report.is_ready() {
        Exit::Ok
    } else {
        Exit::Error
    })
}

fn completions(args: &CompletionsArgs) -> Result<Exit> {
    use clap::CommandFactory;
    use clap_complete::{Shell as Target, generate};
    let shell = match args.shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
    };
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    generate(shell, &mut command, "jobtrail", &mut out);
    out.flush()?;
    Ok(Exit::Ok)
}

/// Loads `--config`, or `./jobtrail.toml` when present, or nothing.
fn load_settings(global: &GlobalArgs) -> Result<Settings> {
    match &global.config {
        Some(path) => Ok(Settings::load(path)?),
        None => {
            let default = Path::new("jobtrail.toml");
            if default.exists() {
                Ok(Settings::load(default)?)
            } else {
                Ok(Settings::default())
            }
        }
    }
}

/// `--db` (or `JOBTRAIL_DB`) wins, then the config's `database`, then the default.
fn database_path(global: &GlobalArgs, settings: &Settings, default: &str) -> PathBuf {
    global
        .db
        .clone()
        .or_else(|| settings.database.clone())
        .unwrap_or_else(|| PathBuf::from(default))
}

fn show_progress(global: &GlobalArgs) -> bool {
    global.verbose == 0 && global.quiet == 0 && std::io::stderr().is_terminal()
}

async fn sync(global: &GlobalArgs, args: &SyncArgs) -> Result<Exit> {
    let settings = load_settings(global)?;
    if settings.projects.is_empty() {
        return Err(UsageError(
            "no project is configured: write a jobtrail.toml with a [[project]] (see the README), or pass --config PATH".into(),
        )
        .into());
    }
    let credentials = Credentials::from_environment()?;
    tracing::info!(credentials = %credentials.describe(), "using credentials");
    let client = ApiClient::new(Some(credentials), HttpSettings::default())?;
    let db = database_path(global, &settings, "jobtrail.db");
    let options = SyncOptions {
        sources: args.sources.clone(),
        projects: args.projects.clone(),
        since: args.since,
        until: args.until,
        full: args.full,
    };
    let report = locked_sync(&db, &settings, &client, &options, show_progress(global)).await?;
    finish_sync(global, &report)
}

/// The error and its causes, each said once, joined by `: `. Many errors
/// already end with their cause's text (`cannot migrate …: {source}`), which
/// `{:#}` would print again for every level of the chain.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Takes the database's sync lock, opens it and runs one sync.
pub async fn locked_sync(
    db: &Path,
    settings: &Settings,
    client: &ApiClient,
    options: &SyncOptions,
    progress: bool,
) -> Result<SyncReport> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    let _lock = SyncLock::acquire(db, LOCK_WAIT)?;
    let store = Store::open(db).await?;
    let progress = Progress::new(progress);
    let result = crate::sync::run(settings, &store, client, options, &progress).await;
    progress.finish();
    store.close().await;
    result.map_err(|e| match e {
        crate::sync::SyncError::Usage(text) => UsageError(text).into(),
        other => anyhow::Error::from(other),
    })
}

fn finish_sync(global: &GlobalArgs, report: &SyncReport) -> Result<Exit> {
    for error in report.errors.iter().chain(&report.warnings) {
        tracing::warn!("{error}");
    }
    tracing::info!(
        run = report.run_id,
        outcome = report.outcome.as_str(),
        seen = report.totals.seen,
        new = report.totals.new,
        changed = report.totals.changed,
        requests = report.requests,
        "sync finished"
    );
    if global.quiet == 0 {
        // Warnings above are hidden at -q; the failures are also in `jobtrail status`.
        if global.verbose == 0 {
            let mut err = std::io::stderr().lock();
            for error in report.errors.iter().chain(&report.warnings) {
                let _ = writeln!(err, "warning: {error}");
            }
        }
        println!("{}", report.summary());
    }
    Ok(match report.outcome {
        RunOutcome::Succeeded => Exit::Ok,
        RunOutcome::Partial => Exit::Partial,
        RunOutcome::Failed => {
            if let Some(first) = report.errors.first() {
                bail!("sync #{} failed: {first}", report.run_id);
            }
            Exit::Error
        }
    })
}

/// The saved-query folder: `--queries-dir`, else the config's `queries_dir`.
fn queries_dir(global: &GlobalArgs, flag: Option<&Path>) -> Result<Option<PathBuf>> {
    match flag {
        Some(dir) => Ok(Some(dir.to_path_buf())),
        None => Ok(load_settings(global)?.queries_dir),
    }
}

/// Opens the database read-only for the reporting commands.
async fn open_for_reading(global: &GlobalArgs) -> Result<Store> {
    let settings = load_settings(global)?;
    Ok(Store::open_read_only(&database_path(global, &settings, "jobtrail.db")).await?)
}

async fn query(global: &GlobalArgs, args: &QueryArgs) -> Result<Exit> {
    use crate::query::QueryError;
    let dir = queries_dir(global, args.queries_dir.as_deref())?;
    let store = open_for_reading(global).await?;
    let result = crate::query::run(
        &store,
        args.sql.as_deref().unwrap_or_default(),
        args.file.as_deref(),
        dir.as_deref(),
        &args.params,
    )
    .await;
    store.close().await;
    let rows = match result {
        Ok(rows) => rows,
        Err(
            e @ (QueryError::NoSuchQuery { .. }
            | QueryError::MissingParam { .. }
            | QueryError::UnknownParam { .. }
            | QueryError::DuplicateParam { .. }),
        ) => return Err(UsageError(e.to_string()).into()),
        Err(e) => return Err(e.into()),
    };
    let stdout = std::io::stdout();
    let width = stdout
        .is_terminal()
        .then(|| terminal_size::terminal_size().map(|(w, _)| w.0))
        .flatten();
    let mut out = stdout.lock();
    crate::output::write_results(&mut out, &rows, args.format, width)?;
    out.flush()?;
    Ok(Exit::Ok)
}

fn queries(global: &GlobalArgs, args: &QueriesArgs) -> Result<Exit> {
    let dir = queries_dir(global, args.queries_dir.as_deref())?;
    let list = crate::query::saved_queries(dir.as_deref())?;
    let mut out = std::io::stdout().lock();
    crate::query::write_query_list(&mut out, &list)?;
    Ok(Exit::Ok)
}

async fn status(global: &GlobalArgs, args: &StatusArgs) -> Result<Exit> {
    let store = open_for_reading(global).await?;
    let report = crate::status::gather(&store).await;
    store.close().await;
    let format = match args.format {
        StatusFormat::Table => crate::output::Format::Table,
        StatusFormat::Json => crate::output::Format::Json,
    };
    let mut out = std::io::stdout().lock();
    crate::status::write_status(&mut out, &report?, format)?;
    Ok(Exit::Ok)
}

async fn report(global: &GlobalArgs, args: &ReportArgs) -> Result<Exit> {
    let filter = crate::report::ReportFilter {
        since: args.since.clone(),
        until: args.until.clone(),
        sources: args.sources.clone(),
    };
    let store = open_for_reading(global).await?;
    write_report(&store, &filter, &args.output).await?;
    store.close().await;
    if global.quiet == 0 {
        println!("wrote {}", args.output.display());
    }
    Ok(Exit::Ok)
}

/// Renders the HTML report to `path` (through a temporary file, so a failure
/// never leaves half a page behind).
async fn write_report(
    store: &Store,
    filter: &crate::report::ReportFilter,
    path: &Path,
) -> Result<()> {
    let html = crate::report::render(store, filter, chrono::Utc::now()).await?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, html).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Project settings that point every source of a simulated project at `base`.
pub fn simulated_project(id: &str, base: &reqwest::Url, history_days: u32) -> ProjectSettings {
    ProjectSettings {
        id: id.to_owned(),
        region: "cn-north-4".to_owned(),
        nosql: Some(NosqlSettings {
            since: Some(chrono::Utc::now() - chrono::Duration::days(i64::from(history_days) + 1)),
        }),
        dbss: Some(DbssSettings {
            resource_ids: Vec::new(),
            discover: true,
        }),
        image: Some(ImageSettings {
            job_ids: Vec::new(),
            discover: true,
        }),
        endpoints: Endpoints::all(base),
    }
}

async fn demo(global: &GlobalArgs, args: &DemoArgs) -> Result<Exit> {
    use crate::sim::{SimAuth, SimConfig, SimServer};
    // The demo signs every request with a throwaway key pair and the simulator
    // verifies each signature, exactly as the cloud would.
    let ak = "DEMOACCESSKEY0000001".to_owned();
    let sk = crate::auth::Secret::new(format!("demo-secret-{}", args.seed));
    let mut config = SimConfig::demo();
    config.seed = args.seed;
    config.auth = SimAuth::AkSk {
        ak: ak.clone(),
        sk: sk.expose().to_owned(),
        security_token: None,
    };
    let history_days = config.history_days;
    let projects = config.projects.clone();
    let server = SimServer::start(config)
        .await
        .context("cannot start the simulated cloud")?;
    let base = reqwest::Url::parse(&server.base_url())?;
    let settings = Settings {
        projects: projects
            .iter()
            .map(|p| simulated_project(p, &base, history_days))
            .collect(),
        ..Settings::default()
    };
    let credentials = Credentials::AkSk {
        ak,
        sk,
        security_token: None,
        origin: crate::auth::CredentialOrigin::Env("built-in demo key pair"),
    };
    let client = ApiClient::new(Some(credentials), HttpSettings::default())?;
    let db = global
        .db
        .clone()
        .unwrap_or_else(|| PathBuf::from("jobtrail-demo.db"));
    if global.quiet == 0 {
        eprintln!(
            "simulated cloud on {} ({} project(s)); syncing into {}",
            server.base_url(),
            projects.len(),
            db.display()
        );
    }
    let report = locked_sync(
        &db,
        &settings,
        &client,
        &SyncOptions::default(),
        show_progress(global),
    )
    .await?;
    server.shutdown().await;
    let exit = finish_sync(global, &report)?;
    let report_path = demo_report_path(&db);
    let store = Store::open_read_only(&db).await?;
    write_report(
        &store,
        &crate::report::ReportFilter::default(),
        &report_path,
    )
    .await?;
    store.close().await;
    if global.quiet == 0 {
        print_demo_report(&db).await?;
        println!("HTML report: {}", report_path.display());
    }
    Ok(exit)
}

/// `jobtrail-demo.db` → `jobtrail-demo-report.html`, beside the database.
fn demo_report_path(db: &Path) -> PathBuf {
    let stem = db.file_stem().map_or_else(
        || "jobtrail-demo".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    db.with_file_name(format!("{stem}-report.html"))
}

/// A few lines that show what landed, and how to ask more.
async fn print_demo_report(db: &Path) -> Result<()> {
    let store = Store::open_read_only(db).await?;
    let counts: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT source, status, COUNT(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2")
            .fetch_all(store.pool())
            .await?;
    let reasons: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT source, reason, SUM(failures) FROM failures_by_type_reason GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 5",
    )
    .fetch_all(store.pool())
    .await?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    writeln!(out, "\njobs by source and status:")?;
    for (source, status, n) in counts {
        writeln!(out, "  {source:<6} {status:<10} {n:>6}")?;
    }
    writeln!(out, "\ntop failure reasons:")?;
    for (source, reason, n) in reasons {
        writeln!(out, "  {n:>4}  {source:<6} {reason}")?;
    }
    writeln!(
        out,
        "\nnext: jobtrail --db {} query recent-failures",
        db.display()
    )?;
    writeln!(
        out,
        "      sqlite3 {} 'select * from recent_failures limit 10'",
        db.display()
    )?;
    Ok(())
}

async fn simulate(args: &SimulateArgs) -> Result<Exit> {
    use crate::sim::{SimAuth, SimConfig, SimServer};
    if !args.listen.ip().is_loopback() {
        return Err(UsageError(format!(
            "--listen {}: the simulator only listens on loopback (127.0.0.1 or ::1)",
            args.listen
        ))
        .into());
    }
    if !(0.0..=1.0).contains(&args.fault_rate) {
        return Err(UsageError(format!(
            "--fault-rate {} must be between 0 and 1",
            args.fault_rate
        ))
        .into());
    }
    let mut config = SimConfig::demo();
    config.seed = args.seed;
    config.nosql_jobs = args.jobs;
    config.history_days = args.days;
    config.latency = Duration::from_millis(args.latency_ms);
    config.rate_limit = args.rate_limit;
    config.fault_rate = args.fault_rate;
    config.legacy_dbss_retired = args.retire_legacy_dbss;
    if !(0.0..=1.0).contains(&args.flip_rate) {
        return Err(UsageError(format!(
            "--flip-rate {} must be between 0 and 1",
            args.flip_rate
        ))
        .into());
    }
    config.running_flip_rate = args.flip_rate;
    if args.require_auth {
        config.auth = match Credentials::from_environment()? {
            Credentials::AkSk {
                ak,
                sk,
                security_token,
                ..
            } => SimAuth::AkSk {
                ak,
                sk: sk.expose().to_owned(),
                security_token: security_token.map(|t| t.expose().to_owned()),
            },
            Credentials::Token { token, .. } => SimAuth::Token(token.expose().to_owned()),
        };
    }
    let projects = config.projects.clone();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let server = SimServer::start_on(config, listener).await?;
    for rule in &args.faults {
        server.add_fault(rule.clone());
    }
    let base = server.base_url();
    println!("simulated cloud listening on {base} (Ctrl-C to stop)\n\n# a jobtrail.toml for it:");
    let since =
        (chrono::Utc::now() - chrono::Duration::days(i64::from(args.days) + 1)).date_naive();
    print!("{}", crate::init::simulator_config(&projects, since, &base));
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    server.shutdown().await;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::describe_error;

    /// An error that, like many, prints its cause in its own message too.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot migrate the database x.db: {source}")]
    struct Migrate {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_of_an_error_is_said_once() {
        let inner = std::io::Error::other("index jobs_by_last_sync already exists");
        let error = anyhow::Error::new(Migrate { source: inner }).context("cannot open the store");
        assert_eq!(
            describe_error(&error),
            "cannot open the store: cannot migrate the database x.db: index jobs_by_last_sync already exists"
        );
    }

    #[test]
    fn causes_not_yet_said_are_joined_in_order() {
        let error = anyhow::Error::new(std::io::Error::other("disk full"))
            .context("cannot write x.db")
            .context("sync failed");
        assert_eq!(
            describe_error(&error),
            "sync failed: cannot write x.db: disk full"
        );
    }
}
