//! `jobtrail query`: runs SQL or a saved query read-only and prints the rows.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use super::{Exit, UsageError, locations, open_for_reading};
use crate::cli::{GlobalArgs, QueryArgs};
use crate::output::{Destination, Format};
use crate::query::QueryError;

pub(super) async fn run(global: &GlobalArgs, args: &QueryArgs) -> Result<Exit> {
    if args.spreadsheet_safe && args.format != Format::Csv {
        return Err(UsageError(
            "--spreadsheet-safe only applies to --format csv (JSON and tables are not read as formulas)"
                .into(),
        )
        .into());
    }
    let dir = locations(global).queries_dir(args.queries_dir.as_deref())?;
    let store = open_for_reading(global).await?;
    let result = crate::query::run(
        &store,
        args.sql.as_deref().unwrap_or_default(),
        args.file.as_deref(),
        dir.as_deref(),
        &args.params,
    )
    .await;
    store.close().await;
    let rows = match result {
        Ok(rows) => rows,
        Err(
            e @ (QueryError::NoSuchQuery { .. }
            | QueryError::MissingParam { .. }
            | QueryError::UnknownParam { .. }
            | QueryError::DuplicateParam { .. }),
        ) => return Err(UsageError(e.to_string()).into()),
        Err(e) => return Err(e.into()),
    };
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let to = Destination {
        width: terminal
            .then(|| terminal_size::terminal_size().map(|(w, _)| w.0))
            .flatten(),
        terminal,
        spreadsheet_safe: args.spreadsheet_safe,
    };
    let mut out = stdout.lock();
    crate::output::write_results(&mut out, &rows, args.format, to)?;
    out.flush()?;
    Ok(Exit::Ok)
}
