//! `jobtrail simulate`: serves the simulated cloud on loopback until Ctrl-C and
//! prints a configuration file that points at it: the whole account, whose
//! projects the sync finds through the simulator's IAM, as a user's would.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Exit, UsageError};
use crate::auth::Credentials;
use crate::cli::SimulateArgs;
use crate::sim::{SimAuth, SimConfig, SimServer};

pub(super) async fn run(args: &SimulateArgs) -> Result<Exit> {
    let config = sim_config(args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let server = SimServer::start_on(config, listener).await?;
    for rule in &args.faults {
        server.add_fault(rule.clone());
    }
    let base = server.base_url();
    println!("simulated cloud listening on {base} (Ctrl-C to stop)");
    let account = server.world().account;
    // A sync needs no ID; `--fault path=/ID/` aims at one project.
    println!(
        "its account, as IAM lists it ({} projects; an ID is for --fault path=/ID/ only):",
        account.len()
    );
    for project in &account {
        let state = if project.enabled { "" } else { " (disabled)" };
        println!("  {}  {}{state}", project.id, project.name);
    }
    let credentials = if args.require_auth {
        "the credentials exported here"
    } else {
        "any credentials (e.g. CLOUD_SDK_TOKEN=x)"
    };
    println!("\n# a jobtrail.toml for it: IAM names the projects; sync with {credentials}");
    let since =
        (chrono::Utc::now() - chrono::Duration::days(i64::from(args.days) + 1)).date_naive();
    print!("{}", crate::init::simulator_config(since, &base));
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    server.shutdown().await;
    Ok(Exit::Ok)
}

/// The simulator's settings from the flags, refusing those out of range.
fn sim_config(args: &SimulateArgs) -> Result<SimConfig> {
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
    if args.retire_legacy_dbss {
        config.dbss_paths = crate::sim::DbssPaths::CurrentOnly;
    }
    if !(0.0..=1.0).contains(&args.flip_rate) {
        return Err(UsageError(format!(
            "--flip-rate {} must be between 0 and 1",
            args.flip_rate
        ))
        .into());
    }
    config.running_flip_rate = args.flip_rate;
    if args.require_auth {
        config.auth = sim_auth(Credentials::from_environment()?);
    }
    Ok(config)
}

/// The simulator checks requests against the same credentials jobtrail signs with.
fn sim_auth(credentials: Credentials) -> SimAuth {
    match credentials {
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
    }
}
