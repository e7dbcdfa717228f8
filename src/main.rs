//! The `jobtrail` binary: parse arguments, set up logging, run, map the outcome
//! to an exit code. Everything else lives in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use jobtrail::app::{self, Exit, UsageError};
use jobtrail::cli::{Cli, GlobalArgs, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    let exit = match runtime.block_on(app::run(cli)) {
        Ok(exit) => exit,
        // A closed pipe (`jobtrail query … | head`) is the reader's choice, not an error.
        Err(e) if is_broken_pipe(&e) => Exit::Ok,
        Err(e) => {
            // The whole chain, each cause once: what failed, and why.
            eprintln!("error: {}", app::describe_error(&e));
            if e.downcast_ref::<UsageError>().is_some() {
                Exit::Usage
            } else {
                Exit::Error
            }
        }
    };
    ExitCode::from(exit as u8)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| broken_pipe(cause, 0))
}

/// Looks through wrapped io errors too (CSV and JSON writers wrap them).
fn broken_pipe(e: &(dyn std::error::Error + 'static), depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return true;
        }
        if let Some(inner) = io.get_ref() {
            return broken_pipe(inner, depth + 1);
        }
    }
    if let Some(csv) = e.downcast_ref::<csv::Error>()
        && let csv::ErrorKind::Io(io) = csv.kind()
    {
        return io.kind() == std::io::ErrorKind::BrokenPipe;
    }
    e.source().is_some_and(|s| broken_pipe(s, depth + 1))
}

/// Diagnostics go to stderr: `JOBTRAIL_LOG` if set, else warnings (-v info,
/// -vv debug, -vvv trace; -q errors only). ANSI colours only on a terminal.
fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (q, _) if q > 0 => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let crate_level = format!(
        "jobtrail={level},{}",
        if global.verbose >= 3 { "info" } else { "warn" }
    );
    let filter =
        EnvFilter::try_from_env("JOBTRAIL_LOG").unwrap_or_else(|_| EnvFilter::new(crate_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match global.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
