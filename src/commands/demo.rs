//! `jobtrail demo`: starts the simulated cloud, syncs it into a database of
//! its own, writes the HTML report and prints a short summary.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Exit, locations, show_progress};
use crate::app::{locked_sync, simulated_project};
use crate::auth::{CredentialOrigin, Credentials, Secret};
use crate::cli::{DemoArgs, GlobalArgs};
use crate::config::Settings;
use crate::http::{ApiClient, HttpSettings};
use crate::report::ReportFilter;
use crate::sim::{SimAuth, SimConfig, SimServer};
use crate::store::{FailureReasonCount, JobCount, Store};
use crate::sync::SyncOptions;
use crate::text::for_terminal;

/// The summary shows this many failure reasons.
const TOP_REASONS: u32 = 5;

pub(super) async fn run(global: &GlobalArgs, args: &DemoArgs) -> Result<Exit> {
    // The demo signs every request with a throwaway key pair and the simulator
    // verifies each signature, exactly as the cloud would.
    let ak = "DEMOACCESSKEY0000001".to_owned();
    let sk = Secret::new(format!("demo-secret-{}", args.seed));
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
        origin: CredentialOrigin::Env("built-in demo key pair"),
    };
    let client = ApiClient::new(Some(credentials), HttpSettings::default())?;
    let db = locations(global).demo_database();
    if global.quiet == 0 {
        let text = format!(
            "simulated cloud on {} ({} project(s)); syncing into {}",
            server.base_url(),
            projects.len(),
            db.display()
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

/// `jobtrail-demo.db` → `jobtrail-demo-report.html`, beside the database.
fn demo_report_path(db: &Path) -> PathBuf {
    let stem = db.file_stem().map_or_else(
        || "jobtrail-demo".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    db.with_file_name(format!("{stem}-report.html"))
}

/// A few lines that show what landed, and how to ask more.
async fn print_summary(db: &Path) -> Result<()> {
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
    db: &Path,
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
    writeln!(
        out,
        "\nnext: jobtrail --db {} query recent-failures",
        db.display()
    )?;
    writeln!(
        out,
        "      sqlite3 {} 'select * from recent_failures limit 10'",
        db.display()
    )
}
