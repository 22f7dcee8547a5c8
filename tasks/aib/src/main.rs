//! The umbrella `aib` command: glue between clap and the library, nothing else.
//!
//! Each subcommand lives in its own module (`validate.rs`, `schema.rs`, …) with its clap
//! arguments and one `run` function that calls the library and returns an
//! [`ExitStatus`]; `main` only parses, dispatches and turns the status into the exit code.

mod multicall;
mod run;
mod schema;
mod steps;
mod validate;
mod whoami;

use std::ffi::OsString;
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
  aib upload-scripts --env sbx --what-if        one step (the same as the upload-scripts executable)

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
    /// Step: delete earlier image templates of this image (see `aib remove-templates --help`).
    #[command(name = "remove-templates")]
    RemoveTemplates(StepArgs),
    /// Step: plan, then create or update the image's infrastructure (`aib deploy-infra --help`).
    #[command(name = "deploy-infra")]
    DeployInfra(StepArgs),
    /// Step: upload the customization scripts, only what changed (`aib upload-scripts --help`).
    #[command(name = "upload-scripts")]
    UploadScripts(StepArgs),
    /// Step: create the image template and start the build (`aib trigger-build --help`).
    #[command(name = "trigger-build")]
    TriggerBuild(StepArgs),
    /// Step: follow the build to its end and output the image version (`aib wait-for-build --help`).
    #[command(name = "wait-for-build")]
    WaitForBuild(StepArgs),
}

/// A step's own arguments, passed to it untouched (its flags and `--help` are its own).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct StepArgs {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // Called by a step's name (a link or copy of this binary): be that step.
    if let Some(step) = args
        .first()
        .and_then(|program| multicall::step_for_program(program))
    {
        return step.run(args);
    }
    let cli = Cli::parse_from(args);
    let status: ExitStatus = match cli.command {
        Command::RemoveTemplates(step) => {
            return multicall::REMOVE_TEMPLATES.run_as_subcommand(step.args);
        }
        Command::DeployInfra(step) => return multicall::DEPLOY_INFRA.run_as_subcommand(step.args),
        Command::UploadScripts(step) => {
            return multicall::UPLOAD_SCRIPTS.run_as_subcommand(step.args);
        }
        Command::TriggerBuild(step) => {
            return multicall::TRIGGER_BUILD.run_as_subcommand(step.args);
        }
        Command::WaitForBuild(step) => {
            return multicall::WAIT_FOR_BUILD.run_as_subcommand(step.args);
        }
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
