//! `upload-scripts`: glue between clap and `aib::steps::upload_scripts`, nothing else.
//!
//! It parses the flags, masks a connection string before anything is printed, builds the
//! target (Entra ID through the shared Azure flags, or a connection string for local
//! development) and maps the flags to the step's `Options`. Reading the environment, loading
//! the parameter file (bad input exits 2 before any request), connecting, running the step
//! until it ends or is interrupted and the exit code are `aib::cli`'s shared glue.

use std::ffi::OsString;
use std::process::ExitCode;

use aib::azure::args::AzureArgs;
use aib::azure::blob::shared_key::{AZURE_STORAGE_CONNECTION_STRING, ConnectionString};
use aib::cli::{
    Context, ParameterArgs, RunArgs, block_on_interruptible, connect, load_parameters, main_with,
    runtime,
};
use aib::exit::ExitStatus;
use aib::report::report_error;
use aib::secret::Secret;
use aib::steps::upload_scripts::{Options, Target, upload_scripts};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  upload-scripts --env sbx                      upload scripts/uploads/<os>/ for sbx, only what changed
  upload-scripts --env sbx --what-if --prune    show what would be uploaded, skipped and deleted
  upload-scripts --env dev --concurrency 16     more files in flight at once
  upload-scripts --env local --output json      the outcome (blob URLs, SHA-256, counts) as JSON
  AZURE_STORAGE_CONNECTION_STRING=... upload-scripts --env local   local development with a key

Exit codes: 0 ok, 1 Azure operation failed, 2 bad input, 3 timeout, 130 interrupted.";

/// Upload the image's customization scripts folder to its blob container: only files whose
/// MD5 differs from their blob's, in parallel, with progress.
///
/// The folder is `scriptsFolder` from the parameter file (default `scripts/uploads/<os>/`),
/// the container `containerName` in `storageAccountName`, whose blob endpoint is read from ARM.
/// Requests carry Entra ID tokens for the storage scope; the principal needs the
/// Storage Blob Data Contributor role on the account.
#[derive(Debug, Parser)]
#[command(name = "upload-scripts", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    parameters: ParameterArgs,

    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    azure: AzureArgs,

    /// Files uploaded at the same time (large files also stage this many blocks at once).
    /// Example: `--concurrency 16`.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,

    /// Delete blobs in the container that have no local file (listed before they are deleted;
    /// with --what-if only listed).
    #[arg(long)]
    prune: bool,

    /// Blob endpoint to use instead of the account's `primaryEndpoints.blob` from ARM.
    /// Example: `--blob-endpoint https://staib.blob.core.windows.net/`.
    #[arg(long, value_name = "URL")]
    blob_endpoint: Option<url::Url>,

    /// A storage connection string with an account key or SAS, for local development only
    /// (env AZURE_STORAGE_CONNECTION_STRING). Its secret is masked in all output.
    #[arg(long, value_name = "STRING", hide_env_values = true)]
    connection_string: Option<String>,
}

/// Runs `upload-scripts` with `args` (the first is the name it was called by, as in `std::env::args_os`).
///
/// Public so that one multi-call `aib` binary can carry every step: the `upload-scripts` executable
/// and `aib upload-scripts …` (or `aib` linked under the name `upload-scripts`) run this same function.
pub fn main_from(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    main_with(cli.run.output, |cx| run(&cli, cx)).into()
}

fn run(cli: &Cli, cx: &Context) -> Result<ExitStatus, ExitStatus> {
    let reporter = &cx.reporter;
    let connection = cli.connection_string.clone().or_else(|| {
        cx.env
            .get(AZURE_STORAGE_CONNECTION_STRING)
            .map(str::to_owned)
    });
    if let Some(text) = &connection {
        reporter.secret(&Secret::new(text.clone()));
    }
    let parameters = load_parameters(&cli.parameters, reporter.as_ref())?;
    let target = match &connection {
        Some(text) => match ConnectionString::parse(text) {
            Ok(cs) => Target::ConnectionString(cs),
            Err(err) => {
                report_error(reporter.as_ref(), &err, Some("see `upload-scripts --help`"));
                return Err(ExitStatus::BadInput);
            }
        },
        None => Target::Azure(Box::new(connect(&cli.azure, &cx.env, reporter)?)),
    };
    let options = Options {
        concurrency: usize::from(cli.concurrency),
        prune: cli.prune,
        what_if: cli.run.what_if,
        blob_endpoint: cli.blob_endpoint.clone(),
        line_per_file: !cx.interactive_terminal(),
        ..Options::default()
    };
    let runtime = runtime(reporter.as_ref())?;
    // Per-file failures were reported one by one (with their hint); the step's error is the
    // one line that ends the run, with the hint of an error that stopped it early.
    Ok(block_on_interruptible(
        &runtime,
        reporter.as_ref(),
        upload_scripts(
            &parameters,
            &cli.parameters.root,
            &options,
            &target,
            reporter,
        ),
        "interrupted: blobs whose upload had not been committed were left as they were",
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

    /// --concurrency takes 1 to 256; 0 is refused by the parser (exit 2 before anything runs).
    #[test]
    fn concurrency_is_bounded() {
        let parse =
            |v: &str| Cli::try_parse_from(["upload-scripts", "--env", "sbx", "--concurrency", v]);
        assert_eq!(parse("16").unwrap().concurrency, 16);
        assert!(parse("0").is_err());
        assert!(parse("many").is_err());
        assert_eq!(
            Cli::try_parse_from(["upload-scripts"]).unwrap().concurrency,
            8
        );
    }
}
