//! `jobtrail report`: writes the self-contained HTML report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Exit, open_for_reading};
use crate::cli::{GlobalArgs, ReportArgs};
use crate::report::ReportFilter;
use crate::store::Store;

pub(super) async fn run(global: &GlobalArgs, args: &ReportArgs) -> Result<Exit> {
    let filter = ReportFilter {
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
pub(super) async fn write_report(store: &Store, filter: &ReportFilter, path: &Path) -> Result<()> {
    let html = crate::report::render(store, filter, chrono::Utc::now()).await?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, html).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
