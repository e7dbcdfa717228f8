//! `jobtrail queries`: lists the saved queries with their descriptions and parameters.

use anyhow::Result;

use super::{Exit, locations};
use crate::cli::{GlobalArgs, QueriesArgs};

pub(super) fn run(global: &GlobalArgs, args: &QueriesArgs) -> Result<Exit> {
    let dir = locations(global).queries_dir(args.queries_dir.as_deref())?;
    let list = crate::query::saved_queries(dir.as_deref())?;
    let mut out = std::io::stdout().lock();
    crate::query::write_query_list(&mut out, &list)?;
    Ok(Exit::Ok)
}
