//! `wait-for-build`: glue between clap and `aib::steps::wait_for_build`, nothing else.
//!
//! It parses and checks the flags and maps them to the step's `Options`. Reading the
//! environment, loading the parameter file (for the resource group; bad input exits 2 before
//! any request), connecting, following the build until it ends or is interrupted and the exit
//! code are `aib::cli`'s shared glue. It owns what an interrupt does: with
//! --cancel-on-interrupt it cancels the build, else it says how to re-attach.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use aib::azure::Azure;
use aib::azure::args::AzureArgs;
use aib::cli::{
    Context, ParameterArgs, RunArgs, connect, load_parameters, main_with, runtime, step_status,
    until_interrupted,
};
use aib::config::ParameterFile;
use aib::exit::ExitStatus;
use aib::report::{Annotation, Reporter, report_error};
use aib::steps::wait_for_build::{Options, cancel, template_id, wait_for_build};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  wait-for-build --env sbx --template it-ubuntu-2026-11-28-14-00-00
  wait-for-build --env sbx --template NAME --timeout 90 --cancel-on-timeout
  wait-for-build --env local --template NAME --poll-interval 2 --output json
  wait-for-build --env sbx --template NAME --run-operation <Azure-AsyncOperation URL of POST …/run>

customization.log is streamed while the build customizes and its last 100 lines are shown on
failure; reading it needs 'Storage Blob Data Reader' on the staging storage account (without it,
one warning and the wait goes on).

Exit codes: 0 ok, 1 the build failed, 2 bad input, 3 timeout (the build goes on),
130 interrupted.";

/// Follow an Image Builder build until it ends: run state and phase with elapsed time, then
/// the image version (success) or the service's message (failure).
#[derive(Debug, Parser)]
#[command(name = "wait-for-build", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    parameters: ParameterArgs,

    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    azure: AzureArgs,

    /// The template whose build to follow (trigger-build's `templateName` output).
    #[arg(long, value_name = "NAME")]
    template: String,

    /// Seconds between polls once the build is under way (the first polls come sooner).
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0)]
    poll_interval: f64,

    /// Minutes to wait before giving up (default: the template's build timeout plus 30).
    #[arg(long, value_name = "MINUTES")]
    timeout: Option<f64>,

    /// Cancel the build when the timeout is reached (default: leave it running).
    #[arg(long)]
    cancel_on_timeout: bool,

    /// Cancel the build on Ctrl-C / SIGTERM (default: leave it running and say how to re-attach).
    #[arg(long)]
    cancel_on_interrupt: bool,

    /// Fail when the build only partially succeeded.
    #[arg(long)]
    strict: bool,

    /// The run's operation-status URL (the Azure-AsyncOperation of POST …/run), followed in
    /// addition to the template's lastRunStatus when given.
    #[arg(long, value_name = "URL")]
    run_operation: Option<String>,

    /// Do not read customization.log (neither while customizing nor on failure).
    #[arg(long)]
    no_log: bool,
}

/// Runs `wait-for-build` with `args` (the first is the name it was called by, as in `std::env::args_os`).
///
/// Public so that one multi-call `aib` binary can carry every step: the `wait-for-build` executable
/// and `aib wait-for-build …` (or `aib` linked under the name `wait-for-build`) run this same function.
pub fn main_from(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    main_with(cli.run.output, |cx| run(&cli, cx)).into()
}

/// Seconds (or minutes) from a flag; negative, NaN or absurd values are bad input.
fn duration(value: f64, unit: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(value * unit)
        .ok()
        .filter(|d| !d.is_zero())
}

fn run(cli: &Cli, cx: &Context) -> Result<ExitStatus, ExitStatus> {
    let reporter = &cx.reporter;
    let parameters = load_parameters(&cli.parameters, reporter.as_ref())?;
    let Some(poll_interval) = duration(cli.poll_interval, 1.0) else {
        reporter.annotate(&Annotation::error(
            "--poll-interval must be a positive number of seconds",
        ));
        return Err(ExitStatus::BadInput);
    };
    let timeout = match cli.timeout.map(|m| duration(m, 60.0)) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            reporter.annotate(&Annotation::error(
                "--timeout must be a positive number of minutes",
            ));
            return Err(ExitStatus::BadInput);
        }
    };
    let azure = connect(&cli.azure, &cx.env, reporter)?;
    let options = Options {
        template: cli.template.clone(),
        poll_interval,
        timeout,
        cancel_on_timeout: cli.cancel_on_timeout,
        strict: cli.strict,
        run_operation: cli.run_operation.clone(),
        // A live status line only where it redraws in place: a person at a terminal.
        live_status: cx.interactive_terminal(),
        follow_log: !cli.no_log,
        ..Options::default()
    };
    let runtime = runtime(reporter.as_ref())?;
    let followed = until_interrupted(
        &runtime,
        wait_for_build(&parameters, &options, &azure, reporter),
    );
    Ok(match followed {
        Some(result) => step_status(reporter.as_ref(), result),
        None => {
            runtime.block_on(on_interrupt(cli, &parameters, &azure, reporter.as_ref()));
            ExitStatus::Interrupted
        }
    })
}

/// On Ctrl-C / SIGTERM: cancels the build with --cancel-on-interrupt, else leaves it running
/// and says how to re-attach.
async fn on_interrupt(
    cli: &Cli,
    parameters: &ParameterFile,
    azure: &Azure,
    reporter: &dyn Reporter,
) {
    if !cli.cancel_on_interrupt {
        reporter.info(&format!(
            "interrupted: the build goes on; re-attach with wait-for-build --template {}",
            cli.template
        ));
        return;
    }
    match template_id(parameters, azure, &cli.template) {
        Ok(id) => match cancel(azure, &id).await {
            Ok(()) => reporter.info(&format!(
                "interrupted: the build of {} was canceled",
                cli.template
            )),
            Err(err) => report_error(reporter, &err, None),
        },
        Err(err) => report_error(reporter, &err, None),
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

    /// Durations must be positive and finite.
    #[test]
    fn durations_are_checked() {
        assert_eq!(duration(0.5, 1.0), Some(Duration::from_millis(500)));
        assert_eq!(duration(2.0, 60.0), Some(Duration::from_secs(120)));
        assert_eq!(duration(0.0, 1.0), None);
        assert_eq!(duration(-1.0, 1.0), None);
        assert_eq!(duration(f64::NAN, 1.0), None);
    }
}
