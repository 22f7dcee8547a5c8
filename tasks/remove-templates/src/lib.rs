//! `remove-templates`: glue between clap and `aib::steps::remove_templates`, nothing else.
//!
//! It parses the flags and maps them to the step's `Options`; reading the environment,
//! loading the parameter file (bad input exits 2 before any request), connecting, running the
//! step until it ends or is interrupted and the exit code are `aib::cli`'s shared glue.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use aib::azure::args::AzureArgs;
use aib::cli::{
    Context, ParameterArgs, RunArgs, block_on_interruptible, connect, load_parameters, main_with,
    runtime,
};
use aib::exit::ExitStatus;
use aib::steps::remove_templates::{Options, parse_age, remove_templates};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  remove-templates --env sbx                     delete every finished template of this image
  remove-templates --env sbx --what-if           list what would be deleted, kept and skipped
  remove-templates --env sbx --keep 2            keep the two newest finished templates
  remove-templates --env sbx --older-than 7d     delete only templates older than a week
  remove-templates --env sbx --cancel-running    cancel running builds first, then delete
  remove-templates --env local --output json     the outcome (deleted, kept, skipped) as JSON

Exit codes: 0 ok, 1 Azure operation failed, 2 bad input, 3 timeout, 130 interrupted.";

/// Remove this image's earlier Image Builder templates: only names that are exactly
/// `<namePrefix>-<yyyy-MM-dd-HH-mm-ss>` in the parameter file's resource group, never another
/// image's, never one whose build is running (unless --cancel-running), in parallel.
///
/// Image Builder removes each template's own staging group. A `stagingResourceGroup` named in
/// the parameter file is emptied of leftovers (or removed, with --remove-staging-group) once no
/// template uses it any more.
#[derive(Debug, Parser)]
#[command(name = "remove-templates", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    parameters: ParameterArgs,

    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    azure: AzureArgs,

    /// DELETE requests in flight at once (the write burst ARM throttles); every delete they
    /// start is followed at the same time, whatever this is. Example: `--concurrency 16`.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,

    /// Keep the newest N finished templates. Example: `--keep 2`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep: u32,

    /// Delete only templates older than this (by the timestamp in their name): a number and
    /// s, m, h, d or w. Example: `--older-than 7d`.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    older_than: Option<Duration>,

    /// Cancel running builds of templates that would be deleted, wait for Canceled, then
    /// delete them. Without it, such templates are skipped.
    #[arg(long)]
    cancel_running: bool,

    /// How long to wait for a canceled build to leave Canceling. Example: `--cancel-timeout 1h`.
    #[arg(long, value_name = "AGE", value_parser = parse_age, default_value = "30m")]
    cancel_timeout: Duration,

    /// Remove the parameter file's stagingResourceGroup itself (when no template uses it)
    /// instead of only the resources left in it.
    #[arg(long)]
    remove_staging_group: bool,
}

/// Runs `remove-templates` with `args` (the first is the name it was called by, as in `std::env::args_os`).
///
/// Public so that one multi-call `aib` binary can carry every step: the `remove-templates` executable
/// and `aib remove-templates …` (or `aib` linked under the name `remove-templates`) run this same function.
pub fn main_from(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    main_with(cli.run.output, |cx| run(&cli, cx)).into()
}

fn run(cli: &Cli, cx: &Context) -> Result<ExitStatus, ExitStatus> {
    let reporter = &cx.reporter;
    let parameters = load_parameters(&cli.parameters, reporter.as_ref())?;
    let azure = connect(&cli.azure, &cx.env, reporter)?;
    let options = Options {
        concurrency: usize::from(cli.concurrency),
        keep: cli.keep as usize,
        older_than: cli.older_than,
        cancel_running: cli.cancel_running,
        remove_staging_group: cli.remove_staging_group,
        what_if: cli.run.what_if,
        cancel_timeout: cli.cancel_timeout,
        ..Options::default()
    };
    let runtime = runtime(reporter.as_ref())?;
    Ok(block_on_interruptible(
        &runtime,
        reporter.as_ref(),
        remove_templates(&parameters, &options, &azure, reporter),
        "interrupted: deletes already sent go on in Azure; run remove-templates again to see what is left",
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

    /// Ages and counts are checked by the parser (exit 2 before anything runs).
    #[test]
    fn flags_are_checked_by_the_parser() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["remove-templates", "--env", "sbx"].iter().chain(args))
        };
        assert_eq!(
            parse(&["--older-than", "7d"]).unwrap().older_than,
            Some(Duration::from_secs(604_800))
        );
        assert!(parse(&["--older-than", "7 days"]).is_err());
        assert!(parse(&["--keep", "-1"]).is_err());
        assert!(parse(&["--concurrency", "0"]).is_err());
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.concurrency, 8);
        assert_eq!(defaults.keep, 0);
        assert!(!defaults.cancel_running);
    }
}
