//! `jobtrail queries`: lists the saved queries with their descriptions and parameters.

use anyhow::Result;

use super::{Exit, locations};
use crate::cli::{GlobalArgs, QueriesArgs};
use crate::store::Backend;

pub(super) fn run(global: &GlobalArgs, args: &QueriesArgs) -> Result<Exit> {
    let locations = locations(global);
    let dir = locations.queries_dir(args.queries_dir.as_deref())?;
    // The dialect of the database the queries would run on; a configuration
    // that cannot be read lists SQLite's (the error shows where it matters).
    let backend = locations
        .resolve()
        .map_or(Backend::Sqlite, |r| r.database.backend());
    let list = crate::query::saved_queries(backend, dir.as_deref())?;
    let mut out = std::io::stdout().lock();
    crate::query::write_query_list(&mut out, &list)?;
    Ok(Exit::Ok)
}
