//! `trigger-build`: glue between clap and `aib::steps::trigger_build`, nothing else.
//!
//! It parses the flags, reads the process environment once (the commit and run URL for the
//! artifact tags come from the CI's variables), loads the parameter file (bad input exits 2
//! here, before any request), connects to Azure, runs the step and turns the result into the
//! exit code.

use std::process::ExitCode;
use std::sync::Arc;

use aib::azure::args::AzureArgs;
use aib::azure::env::Env;
use aib::cli::{ParameterArgs, RunArgs, connect, provenance};
use aib::exit::ExitStatus;
use aib::report::{self, Environment, Reporter, report_error};
use aib::steps::trigger_build::{Options, trigger_build, valid_template_name};
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
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    let environment = Environment::from_process();
    let reporter = report::build(cli.run.output.into(), &environment);
    let status = run(&cli, &reporter, &Env::from_process());
    if let Err(err) = reporter.finish() {
        eprintln!("error: {err}");
    }
    status.into()
}

fn run(cli: &Cli, reporter: &Arc<dyn Reporter>, env: &Env) -> ExitStatus {
    let parameters = match cli.parameters.load() {
        Ok(p) => p,
        Err(err) => {
            report_error(reporter.as_ref(), &err, None);
            return ExitStatus::BadInput;
        }
    };
    if let Some(name) = &cli.template_name
        && !valid_template_name(name)
    {
        let err = aib::steps::trigger_build::TriggerError::BadTemplateName(name.clone());
        report_error(reporter.as_ref(), &err, None);
        return ExitStatus::BadInput;
    }
    let azure = match connect(&cli.azure, env, reporter) {
        Ok(azure) => azure,
        Err(status) => return status,
    };
    let (commit, run_url) = provenance(env);
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            report_error(reporter.as_ref(), &err, None);
            return ExitStatus::AzureFailure;
        }
    };
    let root = cli.parameters.root.clone();
    let result = runtime.block_on(async {
        tokio::select! {
            r = trigger_build(&parameters, &root, &options, &azure, reporter) => Some(r),
            () = aib::cli::interrupted() => None,
        }
    });
    match result {
        Some(Ok(_)) => ExitStatus::Success,
        Some(Err(err)) => {
            report_error(reporter.as_ref(), &err, err.hint().as_deref());
            err.exit_status()
        }
        None => {
            reporter.info(
                "interrupted: a template may have been created; remove-templates cleans it up",
            );
            ExitStatus::Interrupted
        }
    }
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
