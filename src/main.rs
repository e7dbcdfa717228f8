//! The `jobtrail` binary: parse arguments, set up logging, run, map the outcome
//! to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use jobtrail::app::{self, Exit, UsageError};
use jobtrail::cli::{Cli, LogFormat};
use jobtrail::logging;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage mistake under `--log-format json` is a JSON line too.
        Err(e) if e.use_stderr() && logging::json_requested(std::env::args_os()) => {
            let text = e.render().to_string();
            let text = text.trim_end();
            logging::report_error(
                LogFormat::Json,
                text.strip_prefix("error: ").unwrap_or(text),
            );
            return ExitCode::from(Exit::Usage as u8);
        }
        Err(e) => e.exit(),
    };
    let log_format = cli.global.log_format;
    logging::init(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let message = format!("cannot start the async runtime: {e}");
            logging::report_error(log_format, &message);
            return ExitCode::from(Exit::Error as u8);
        }
    };
    let exit = match runtime.block_on(app::run(cli)) {
        Ok(exit) => exit,
        // A closed pipe (`jobtrail query … | head`) is the reader's choice, not an error.
        Err(e) if is_broken_pipe(&e) => Exit::Ok,
        Err(e) => {
            // The whole chain, each cause once: what failed, and why.
            logging::report_error(log_format, &app::describe_error(&e));
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
