//! `jobtrail demo`: starts the simulated cloud (an account of several projects
//! in several regions), syncs it into a database of its own with a config that
//! names no project ID, writes the HTML report and prints a short summary.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Exit, locations, show_progress};
use crate::app::locked_sync;
use crate::auth::{CredentialOrigin, Credentials, Secret};
use crate::cli::{DemoArgs, GlobalArgs};
use crate::config::Settings;
use crate::http::{ApiClient, HttpSettings};
use crate::report::ReportFilter;
use crate::sim::{SimAuth, SimConfig, SimServer};
use crate::store::{DatabaseLocation, FailureReasonCount, JobCount, Store};
use crate::sync::SyncOptions;
use crate::text::for_terminal;

/// The summary shows this many failure reasons.
const TOP_REASONS: u32 = 5;

pub(super) async fn run(global: &GlobalArgs, args: &DemoArgs) -> Result<Exit> {
    // The demo signs every request with a throwaway key pair and the simulator
    // verifies each signature, exactly as the cloud would.
    let ak = "DEMOACCESSKEY0000001".to_owned();
    let sk = Secret::new(format!("demo-secret-{}", args.seed));
    let config = SimConfig {
        auth: SimAuth::AkSk {
            ak: ak.clone(),
            sk: sk.expose().to_owned(),
            security_token: None,
        },
        ..demo_account(args.seed)
    };
    let server = SimServer::start(config)
        .await
        .context("cannot start the simulated cloud")?;
    let world = server.world();
    let regions: BTreeSet<&str> = world
        .projects
        .keys()
        .filter_map(|id| world.region_of(id))
        .collect();
    // No project ID anywhere: IAM names them, as for a user's `[account]`.
    let settings = Settings::parse(
        &demo_config(&server.base_url(), DEMO_HISTORY_DAYS),
        Path::new("jobtrail-demo.toml"),
    )?;
    let credentials = Credentials::AkSk {
        ak,
        sk,
        security_token: None,
        origin: CredentialOrigin::Env("built-in demo key pair"),
    };
    let client = ApiClient::new(Some(credentials), HttpSettings::default())?;
    let db = locations(global).demo_database()?;
    if global.quiet == 0 {
        let text = format!(
            "simulated cloud on {} (an account of {} projects in {} regions, found through IAM); syncing into {db}",
            server.base_url(),
            world.projects.len(),
            regions.len(),
        );
        crate::logging::notice(global.log_format, &text);
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
    let exit = super::sync::finish(global, &report)?;
    let report_path = demo_report_path(&db);
    let store = Store::open_read_only(&db).await?;
    super::report::write_report(&store, &ReportFilter::default(), &report_path).await?;
    store.close().await;
    if global.quiet == 0 {
        print_summary(&db).await?;
        println!("HTML report: {}", report_path.display());
    }
    Ok(exit)
}

/// Days of NoSQL history the demo's account holds (and its first sync reads).
const DEMO_HISTORY_DAYS: u32 = 120;

/// The demo's cloud: the simulator's sample account (projects in six regions,
/// some without NoSQL, DBSS or Workspace App, plus `MOS` and a disabled one),
/// busier than the tests'.
fn demo_account(seed: u64) -> SimConfig {
    SimConfig {
        nosql_jobs: 700,
        history_days: DEMO_HISTORY_DAYS,
        dbss_resources: 4,
        image_jobs: 25,
        ..SimConfig::account(seed)
    }
}

/// The demo's `jobtrail.toml`: the whole account from the simulator, as
/// `jobtrail simulate` prints it, NoSQL read from the start of its history.
fn demo_config(base: &str, history_days: u32) -> String {
    let since = chrono::Utc::now() - chrono::Duration::days(i64::from(history_days) + 1);
    crate::init::simulator_config(since.date_naive(), base)
}

/// `jobtrail-demo.db` → `jobtrail-demo-report.html`, beside the database
/// (in the current folder for a PostgreSQL database).
fn demo_report_path(db: &DatabaseLocation) -> PathBuf {
    let Some(db) = db.sqlite_path() else {
        return PathBuf::from("jobtrail-demo-report.html");
    };
    let stem = db.file_stem().map_or_else(
        || "jobtrail-demo".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    db.with_file_name(format!("{stem}-report.html"))
}

/// A few lines that show what landed, and how to ask more.
async fn print_summary(db: &DatabaseLocation) -> Result<()> {
    let store = Store::open_read_only(db).await?;
    let counts = store.job_counts().await;
    let reasons = store.top_failure_reasons(TOP_REASONS).await;
    store.close().await;
    let mut out = std::io::stdout().lock();
    write_summary(&mut out, db, &counts?, &reasons?)?;
    Ok(())
}

fn write_summary(
    out: &mut dyn Write,
    db: &DatabaseLocation,
    counts: &[JobCount],
    reasons: &[FailureReasonCount],
) -> std::io::Result<()> {
    writeln!(out, "\njobs by source and status:")?;
    for JobCount {
        source,
        status,
        jobs,
    } in counts
    {
        writeln!(out, "  {source:<6} {status:<10} {jobs:>6}")?;
    }
    writeln!(out, "\ntop failure reasons:")?;
    for FailureReasonCount {
        source,
        reason,
        failures,
    } in reasons
    {
        writeln!(out, "  {failures:>4}  {source:<6} {}", for_terminal(reason))?;
    }
    writeln!(out, "\nnext: jobtrail --db {db} query recent-failures")?;
    match db {
        DatabaseLocation::Sqlite(path) => writeln!(
            out,
            "      sqlite3 {} 'select * from recent_failures limit 10'",
            path.display()
        ),
        DatabaseLocation::Postgres(url) => writeln!(
            out,
            "      psql -h {} -p {} -d {} -c 'select * from recent_failures limit 10'",
            url.host(),
            url.port(),
            url.database()
        ),
    }
}
