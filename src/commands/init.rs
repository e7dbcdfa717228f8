//! `jobtrail init`: writes a commented configuration file and says what to do next.

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
        sources,
        endpoint: args.endpoint.clone(),
    };
    let written =
        crate::init::render(&options).and_then(|text| crate::init::write(&path, &text, args.force));
    match written {
        Ok(()) => {}
        Err(InitError::Usage(text)) => return Err(UsageError(text).into()),
        Err(e) => return Err(e.into()),
    }
    if global.quiet == 0 {
        println!("wrote {}", path.display());
        let placeholders = args.project.is_none() || args.region.is_none();
        if placeholders {
            println!(
                "next: fill in the project ID and region marked FILL IN, then run `jobtrail check`"
            );
        } else {
            println!(
                "next: set credentials (HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK), then run `jobtrail check`"
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
