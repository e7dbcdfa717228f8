//! `jobtrail status`: gathers the status from the database and prints it.

use anyhow::Result;

use super::{Exit, open_for_reading};
use crate::cli::{GlobalArgs, StatusArgs, StatusFormat};
use crate::output::Format;

pub(super) async fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<Exit> {
    let store = open_for_reading(global).await?;
    let report = crate::status::gather(&store).await;
    store.close().await;
    let format = match args.format {
        StatusFormat::Table => Format::Table,
        StatusFormat::Json => Format::Json,
    };
    let mut out = std::io::stdout().lock();
    crate::status::write_status(&mut out, &report?, format)?;
    Ok(Exit::Ok)
}
