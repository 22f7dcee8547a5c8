//! The umbrella `aib` command: glue between clap and the library, nothing else.
//!
//! Each subcommand lives in its own module (`validate.rs`, `schema.rs`, …) with its clap
//! arguments and one `run` function that calls the library and returns an
//! [`ExitStatus`]; `main` only parses, dispatches and turns the status into the exit code.

mod run;
mod schema;
mod steps;
mod validate;
mod whoami;

use std::process::ExitCode;

use aib::exit::ExitStatus;
use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  aib run --env sbx --scope All --wait          the whole pipeline for sbx (see aib run --help)
  aib steps --scope \"Only image\" --wait         which steps a scope runs
  aib validate                                  check every bundled file under ./parameters
  aib validate --env prd --os windows           check parameters/prd.image.parameters.windows.json
  aib validate --parameters my.parameters.json  check one file of your own
  aib schema > schema/image.parameters.schema.json   regenerate the committed JSON Schema

Exit codes: 0 ok, 1 Azure operation failed, 2 bad input, 3 timeout, 130 interrupted.";

/// Build custom VM images with Azure VM Image Builder, from CI or a terminal.
///
/// aib reads an image parameter file (the ARM deploymentParameters format, comments allowed),
/// checks it against Azure's rules before any call to Azure, and runs the pipeline steps.
#[derive(Debug, Parser)]
#[command(name = "aib", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::Args),
    Steps(steps::Args),
    Validate(validate::Args),
    Schema(schema::Args),
    Whoami(whoami::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status: ExitStatus = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Steps(args) => steps::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Whoami(args) => whoami::run(&args),
    };
    status.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The clap definition is consistent (no clashing flags, every arg documented by clap rules).
    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
