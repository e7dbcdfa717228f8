//! The command handlers, one file each: they turn parsed arguments into
//! settings (through `config`), call the library and are the only code that
//! prints results. Also the process's exit status and how errors are said.

mod check;
mod completions;
mod copy;
mod demo;
mod init;
mod queries;
mod query;
mod report;
mod simulate;
mod status;
mod sync;

use std::io::IsTerminal;

use anyhow::Result;

use crate::cli::{Cli, Command, GlobalArgs, LogFormat};
use crate::config::Locations;
use crate::store::Store;

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
        Command::Sync(args) => sync::run(global, args).await,
        Command::Query(args) => query::run(global, args).await,
        Command::Queries(args) => queries::run(global, args),
        Command::Status(args) => status::run(global, args).await,
        Command::Report(args) => report::run(global, args).await,
        Command::Demo(args) => demo::run(global, args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Init(args) => init::run(global, args),
        Command::Check(args) => check::run(global, args).await,
        Command::Copy(args) => copy::run(global, args).await,
        Command::Completions(args) => completions::run(args),
    }
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

/// Where the flags and the environment say things are; `config` decides the rest.
fn locations(global: &GlobalArgs) -> Locations {
    Locations {
        db: global.db.clone(),
        config: global.config.clone(),
    }
}

/// A progress bar only for a person watching: not at `-v` or `-q`, not into a
/// pipe, not between JSON log lines.
fn show_progress(global: &GlobalArgs) -> bool {
    global.verbose == 0
        && global.quiet == 0
        && global.log_format == LogFormat::Text
        && std::io::stderr().is_terminal()
}

/// Opens the configured database read-only, for the reporting commands.
async fn open_for_reading(global: &GlobalArgs) -> Result<Store> {
    let resolved = locations(global).resolve()?;
    Ok(Store::open_read_only(&resolved.database).await?)
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
