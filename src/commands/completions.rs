//! `jobtrail completions`: prints a shell completion script.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::{Shell as Target, generate};

use super::Exit;
use crate::cli::{Cli, CompletionsArgs, Shell};

pub(super) fn run(args: &CompletionsArgs) -> Result<Exit> {
    let shell = match args.shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
    };
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    generate(shell, &mut command, "jobtrail", &mut out);
    out.flush()?;
    Ok(Exit::Ok)
}
