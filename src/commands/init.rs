//! `jobtrail init`: writes a commented configuration file (one project, or the
//! whole account) and says what to do next.

use anyhow::Result;

use super::{Exit, UsageError, locations};
use crate::cli::{GlobalArgs, InitArgs};
use crate::init::{InitError, InitOptions};

pub(super) fn run(global: &GlobalArgs, args: &InitArgs) -> Result<Exit> {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| locations(global).config_file());
    let mut sources = Vec::new();
    for source in &args.sources {
        if !sources.contains(source) {
            sources.push(*source);
        }
    }
    let options = InitOptions {
        project: args.project.clone(),
        region: args.region.clone(),
        account: args.account,
        sources,
        endpoint: args.endpoint.clone(),
    };
    let rendered = match crate::init::render(&options) {
        Ok(rendered) => rendered,
        Err(InitError::Usage(text)) => return Err(UsageError(text).into()),
        Err(e) => return Err(e.into()),
    };
    crate::init::write(&path, &rendered.text, args.force)?;
    if global.quiet == 0 {
        for note in &rendered.notes {
            eprintln!("note: {note}");
        }
        println!("wrote {}", path.display());
        if !args.account && args.region.is_none() {
            println!("next: fill in the region marked FILL IN, then run `jobtrail check`");
        } else {
            let found = if args.account {
                " (it lists the account's projects and what each syncs)"
            } else if args.project.is_none() {
                " (it finds the project ID through IAM)"
            } else {
                ""
            };
            println!(
                "next: set credentials (HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK), then run `jobtrail check`{found}"
            );
        }
        if global.config.is_none() && args.output.is_some() {
            println!(
                "      (pass --config {} to every command, or set JOBTRAIL_CONFIG)",
                path.display()
            );
        }
    }
    Ok(Exit::Ok)
}
