//! `upload-scripts`: glue between clap and `aib::steps::upload_scripts`, nothing else.
//!
//! It parses the flags, reads the process environment once, loads the parameter file (bad
//! input exits 2 here, before any request), builds the target (Entra ID through the shared
//! Azure flags, or a connection string for local development), runs the step and turns the
//! result into the exit code.

use std::process::ExitCode;
use std::sync::Arc;

use aib::azure::args::AzureArgs;
use aib::azure::blob::shared_key::{AZURE_STORAGE_CONNECTION_STRING, ConnectionString};
use aib::azure::env::Env;
use aib::azure::{AzureSettings, ReporterObserver, connect};
use aib::cli::{ParameterArgs, RunArgs};
use aib::exit::ExitStatus;
use aib::report::{self, Environment, Flavor, Reporter, report_error};
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
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    let environment = Environment::from_process();
    let format = cli.run.output.into();
    let reporter = report::build(format, &environment);
    let status = run(&cli, &reporter, &Env::from_process(), &environment);
    if let Err(err) = reporter.finish() {
        eprintln!("error: {err}");
    }
    status.into()
}

fn run(
    cli: &Cli,
    reporter: &Arc<dyn Reporter>,
    env: &Env,
    environment: &Environment,
) -> ExitStatus {
    let connection = cli
        .connection_string
        .clone()
        .or_else(|| env.get(AZURE_STORAGE_CONNECTION_STRING).map(str::to_owned));
    if let Some(text) = &connection {
        reporter.secret(&Secret::new(text.clone()));
    }
    let parameters = match cli.parameters.load() {
        Ok(p) => p,
        Err(err) => {
            report_error(reporter.as_ref(), &err, None);
            return ExitStatus::BadInput;
        }
    };
    let target = match &connection {
        Some(text) => match ConnectionString::parse(text) {
            Ok(cs) => Target::ConnectionString(cs),
            Err(err) => {
                report_error(reporter.as_ref(), &err, Some("see `upload-scripts --help`"));
                return ExitStatus::BadInput;
            }
        },
        None => {
            let settings = match AzureSettings::from_args(&cli.azure, env) {
                Ok(s) => s,
                Err(err) => {
                    report_error(reporter.as_ref(), &err, None);
                    return err.exit_status();
                }
            };
            let observer = Arc::new(ReporterObserver::new(reporter.clone()));
            match connect(&settings, observer) {
                Ok(azure) => Target::Azure(Box::new(azure)),
                Err(err) => {
                    report_error(reporter.as_ref(), &err, None);
                    return err.exit_status();
                }
            }
        }
    };
    let options = Options {
        concurrency: usize::from(cli.concurrency),
        prune: cli.prune,
        what_if: cli.run.what_if,
        blob_endpoint: cli.blob_endpoint.clone(),
        line_per_file: !matches!(
            report::flavor(cli.run.output.into(), environment),
            Flavor::Terminal {
                interactive: true,
                ..
            }
        ),
        ..Options::default()
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
            r = upload_scripts(&parameters, &root, &options, &target, reporter) => Some(r),
            () = aib::cli::interrupted() => None,
        }
    });
    match result {
        Some(Ok(_)) => ExitStatus::Success,
        Some(Err(err)) => {
            // Per-file failures were reported one by one (with their hint); this is the one
            // line that ends the run, with the hint of an error that stopped it early.
            report_error(reporter.as_ref(), &err, err.hint().as_deref());
            err.exit_status()
        }
        None => {
            reporter.info(
                "interrupted: blobs whose upload had not been committed were left as they were",
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
