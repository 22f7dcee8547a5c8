//! The umbrella `aib` command: glue between clap and the library, nothing else.
//!
//! Subcommands live in their own modules and call one library function each; `main` only
//! decides the exit code (see `aib::exit::ExitStatus`).

use std::process::ExitCode;

use clap::Parser;

/// Build custom VM images with Azure VM Image Builder, from CI or a terminal.
#[derive(Debug, Parser)]
#[command(name = "aib", version, about, long_about = None)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    aib::exit::ExitStatus::Success.into()
}
