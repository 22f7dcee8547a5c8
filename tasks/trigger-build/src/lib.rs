//! `trigger-build`: glue between clap and `aib::steps::trigger_build`, nothing else.
//!
//! It parses the flags, checks a --template-name, and maps the flags and the CI's commit and
//! run URL (for the artifact tags) to the step's `Options`. Reading the environment, loading
//! the parameter file (bad input exits 2 before any request), connecting, running the step
//! until it ends or is interrupted and the exit code are `aib::cli`'s shared glue.

use std::ffi::OsString;
use std::process::ExitCode;

use aib::azure::args::AzureArgs;
use aib::cli::{
    Context, ParameterArgs, RunArgs, block_on_interruptible, connect, load_parameters, main_with,
    provenance, runtime,
};
use aib::exit::ExitStatus;
use aib::report::report_error;
use aib::steps::trigger_build::{Options, TriggerError, trigger_build, valid_template_name};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  trigger-build --env sbx                        create <prefix>-<yyyy-MM-dd-HH-mm-ss> and start its build
  trigger-build --env sbx --what-if              print the template JSON it would submit
  trigger-build --env dev --template-name it-x   use this template name
  trigger-build --env local --output json        templateName, templateId, staging group, start time
  trigger-build --env prd --skip-if-unchanged    no new build when the newest image has the same inputs

Exit codes: 0 ok, 1 Azure operation failed (or a build of this image is running), 2 bad input,
3 timeout, 130 interrupted.";

/// Create a new Image Builder template from the parameter file and start its build, without
/// waiting (wait-for-build follows it).
///
/// Customization steps that name an uploaded `script` / `file` point at its blob in the
/// scripts container, with the SHA-256 of the local file, so Image Builder refuses a script
/// that differs from the reviewed one. A build of the same image that is still running
/// refuses the trigger unless --allow-concurrent.
#[derive(Debug, Parser)]
#[command(name = "trigger-build", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    parameters: ParameterArgs,

    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    azure: AzureArgs,

    /// Template name instead of `<namePrefix>-<yyyy-MM-dd-HH-mm-ss>` (UTC).
    /// Example: `--template-name it-ubuntu-hotfix`.
    #[arg(long, value_name = "NAME")]
    template_name: Option<String>,

    /// Start even when a build of the same image (same prefix and resource group) is running.
    #[arg(long)]
    allow_concurrent: bool,

    /// Create nothing when the newest version of the image definition already carries the hash
    /// of this build's inputs (source, customization steps with every script's SHA-256, VM
    /// profile); outputs `skipped=true` and the version id.
    #[arg(long)]
    skip_if_unchanged: bool,

    /// Blob endpoint to use instead of the account's `primaryEndpoints.blob` from ARM.
    /// Example: `--blob-endpoint https://staib.blob.core.windows.net/`.
    #[arg(long, value_name = "URL")]
    blob_endpoint: Option<url::Url>,
}

/// Runs `trigger-build` with `args` (the first is the name it was called by, as in `std::env::args_os`).
///
/// Public so that one multi-call `aib` binary can carry every step: the `trigger-build` executable
/// and `aib trigger-build …` (or `aib` linked under the name `trigger-build`) run this same function.
pub fn main_from(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    main_with(cli.run.output, |cx| run(&cli, cx)).into()
}

fn run(cli: &Cli, cx: &Context) -> Result<ExitStatus, ExitStatus> {
    let reporter = &cx.reporter;
    let parameters = load_parameters(&cli.parameters, reporter.as_ref())?;
    if let Some(name) = &cli.template_name
        && !valid_template_name(name)
    {
        let err = TriggerError::BadTemplateName(name.clone());
        report_error(reporter.as_ref(), &err, None);
        return Err(ExitStatus::BadInput);
    }
    let azure = connect(&cli.azure, &cx.env, reporter)?;
    let (commit, run_url) = provenance(&cx.env);
    let options = Options {
        template_name: cli.template_name.clone(),
        what_if: cli.run.what_if,
        allow_concurrent: cli.allow_concurrent,
        skip_if_unchanged: cli.skip_if_unchanged,
        blob_endpoint: cli.blob_endpoint.clone(),
        commit,
        run_url,
        now: None,
    };
    let runtime = runtime(reporter.as_ref())?;
    Ok(block_on_interruptible(
        &runtime,
        reporter.as_ref(),
        trigger_build(
            &parameters,
            &cli.parameters.root,
            &options,
            &azure,
            reporter,
        ),
        "interrupted: a template may have been created; remove-templates cleans it up",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The clap definition is consistent (no clashing flags between the flattened groups).
    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
