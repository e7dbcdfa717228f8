//! `jobtrail report`: writes the self-contained HTML report.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::{Exit, open_for_reading};
use crate::cli::{GlobalArgs, ReportArgs};
use crate::files::Written;
use crate::report::ReportFilter;
use crate::store::Store;

/// The `-o` value that means standard output.
const STDOUT: &str = "-";

pub(super) async fn run(global: &GlobalArgs, args: &ReportArgs) -> Result<Exit> {
    let filter = ReportFilter {
        since: args.since.clone(),
        until: args.until.clone(),
        sources: args.sources.clone(),
    };
    let store = open_for_reading(global).await?;
    if args.output.as_os_str() == STDOUT {
        let html = crate::report::render(&store, &filter, chrono::Utc::now()).await?;
        store.close().await;
        let mut out = std::io::stdout().lock();
        out.write_all(html.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the report to standard output")?;
        return Ok(Exit::Ok);
    }
    let written = write_report(&store, &filter, &args.output).await?;
    store.close().await;
    // Not after a page sent into a pipe or terminal: that may be this very stdout.
    if global.quiet == 0 && written == Written::File {
        println!("wrote {}", args.output.display());
    }
    Ok(Exit::Ok)
}

/// Renders the HTML report to `path`: a regular file is replaced in one step
/// (a failure leaves neither half a page nor a temporary file), a pipe or
/// terminal is written into ([`crate::files::write_output`]).
pub(super) async fn write_report(
    store: &Store,
    filter: &ReportFilter,
    path: &Path,
) -> Result<Written> {
    let html = crate::report::render(store, filter, chrono::Utc::now()).await?;
    Ok(crate::files::write_output(path, html.as_bytes())?)
}
