//! `jobtrail check`: lints the configuration, probes each source and prints the verdict.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use super::{Exit, locations};
use crate::cli::{CheckArgs, GlobalArgs};

pub(super) async fn run(global: &GlobalArgs, args: &CheckArgs) -> Result<Exit> {
    let path = locations(global).config_file();
    let report =
        crate::check::run(&path, global.db.as_ref(), Duration::from_secs(args.timeout)).await;
    let mut out = std::io::stdout().lock();
    out.write_all(crate::check::render(&report).as_bytes())?;
    out.flush()?;
    Ok(if report.is_ready() {
        Exit::Ok
    } else {
        Exit::Error
    })
}
