//! The flags every step binary shares, declared once as clap `Args` structs that the binaries
//! `#[command(flatten)]`: which parameter file, how to print, and whether to only show the plan.
//!
//! Azure connection flags live in [`crate::azure::args`]. Nothing here touches the network:
//! [`ParameterArgs::load`] reads and validates the parameter file, so bad input ends with exit
//! status 2 before any call to Azure.
//!
//! The glue every binary (the five steps and `aib run`) needs around those flags lives here
//! once too: [`report_parameter_error`] (each problem at its file position), [`connect`]
//! (settings and session, failures reported) and [`provenance`] (the CI's commit and run URL).

use std::path::PathBuf;
use std::sync::Arc;

use crate::azure::args::AzureArgs;
use crate::azure::env::Env;
use crate::azure::{Azure, AzureSettings, ReporterObserver};
use crate::config::{self, ConfigError, ParameterFile};
use crate::exit::ExitStatus;
use crate::pipeline::Session;
use crate::report::{Annotation, OutputFormat, Reporter, report_error};

/// Which parameter file a step uses.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ParameterArgs {
    /// Environment: picks `parameters/<ENV>.image.parameters[.<OS>].json` under --root.
    /// Example: `--env sbx`.
    #[arg(short, long, value_name = "ENV")]
    pub env: Option<String>,

    /// OS variant: `parameters/<ENV>.image.parameters.<OS>.json`, falling back to the file
    /// without an OS. Example: `--os windows`.
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,

    /// The parameter file itself; wins over --env and --os.
    /// Example: `--parameters parameters/dev.image.parameters.json`.
    #[arg(short, long = "parameters", value_name = "FILE")]
    pub parameters: Option<PathBuf>,

    /// Repository root: where `parameters/` and the scripts folders are looked up.
    /// Example: `--root ../image-repo`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
}

/// Why a step could not pick its one parameter file.
#[derive(Debug, thiserror::Error)]
pub enum ParameterArgsError {
    /// Neither `--parameters` nor `--env` was given.
    #[error("no parameter file: give --env <ENV> (e.g. --env sbx) or --parameters <FILE>")]
    Missing,
    /// The lookup or the file itself failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl ParameterArgs {
    /// Finds the one file the flags select and loads it (parsed, validated, scripts checked).
    pub fn load(&self) -> Result<ParameterFile, ParameterArgsError> {
        let explicit: Vec<PathBuf> = self.parameters.iter().cloned().collect();
        if explicit.is_empty() && self.env.is_none() {
            return Err(ParameterArgsError::Missing);
        }
        let files = config::locate(
            &self.root,
            self.env.as_deref(),
            self.os.as_deref(),
            &explicit,
        )?;
        let path = files
            .into_iter()
            .next()
            .ok_or(ParameterArgsError::Missing)?;
        Ok(config::load(&path, &self.root)?)
    }
}

/// How a step prints and whether it changes anything.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// `text` for people (default; annotations on GitHub Actions and Azure Pipelines) or `json`
    /// for scripts (one document on stdout). Example: `--output json | jq .outputs`.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Output::Text)]
    pub output: Output,

    /// Show what would change and change nothing (reads only; exit 0).
    /// Example: `--what-if` on a pull request.
    #[arg(long)]
    pub what_if: bool,
}

/// The `--output` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Progress and messages for people.
    #[default]
    Text,
    /// One JSON document on stdout at the end.
    Json,
}

impl From<Output> for OutputFormat {
    fn from(output: Output) -> Self {
        match output {
            Output::Text => OutputFormat::Text,
            Output::Json => OutputFormat::Json,
        }
    }
}

/// Reports why the parameter file could not be used: each problem of an invalid file as an
/// error annotation at its `file:line:column` (so CI marks the line), anything else once.
/// Every binary ends such a run with exit status 2.
pub fn report_parameter_error(reporter: &dyn Reporter, error: &ParameterArgsError) {
    match error {
        ParameterArgsError::Config(err) if !err.problems().is_empty() => {
            for p in err.problems() {
                let message = match &p.hint {
                    Some(hint) => format!("{}: {}\nhint: {hint}", p.path, p.message),
                    None => format!("{}: {}", p.path, p.message),
                };
                let line = u32::try_from(p.position.line).ok();
                let col = u32::try_from(p.position.column).ok();
                reporter.annotate(&Annotation::error(message).at(&p.file, line, col));
            }
        }
        other => report_error(reporter, other, None),
    }
}

/// Resolves the Azure flags against the environment map and connects (no request yet), with
/// the reporter masking secrets and showing operation progress. A failure is reported here;
/// the caller only returns the status (2 for configuration, 1 for a refused credential).
pub fn connect(
    args: &AzureArgs,
    env: &Env,
    reporter: &Arc<dyn Reporter>,
) -> Result<Azure, ExitStatus> {
    session(args, env, reporter).map(|s| s.azure)
}

/// [`connect`] for `aib run`: the session keeps what the pipeline needs to give each step its
/// own ARM client (and correlation id) on the same connection.
pub fn session(
    args: &AzureArgs,
    env: &Env,
    reporter: &Arc<dyn Reporter>,
) -> Result<Session, ExitStatus> {
    let settings = AzureSettings::from_args(args, env).map_err(|err| {
        report_error(reporter.as_ref(), &err, None);
        err.exit_status()
    })?;
    let observer = Arc::new(ReporterObserver::new(reporter.clone()));
    Session::connect(&settings, observer).map_err(|err| {
        report_error(reporter.as_ref(), &err, None);
        err.exit_status()
    })
}

/// Resolves on Ctrl-C or SIGTERM: a CI agent sends SIGTERM when a job is canceled, and a step
/// must then stop as cleanly as on Ctrl-C (exit 130, saying what was and was not done).
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The commit and the run's URL from GitHub Actions or Azure Pipelines variables: the
/// provenance trigger-build tags every image version with.
pub fn provenance(env: &Env) -> (Option<String>, Option<String>) {
    let commit = env
        .get("GITHUB_SHA")
        .or_else(|| env.get("BUILD_SOURCEVERSION"))
        .map(str::to_owned);
    let github = match (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_RUN_ID"),
    ) {
        (Some(s), Some(r), Some(id)) => Some(format!("{s}/{r}/actions/runs/{id}")),
        _ => None,
    };
    let azure = match (
        env.get("SYSTEM_COLLECTIONURI"),
        env.get("SYSTEM_TEAMPROJECT"),
        env.get("BUILD_BUILDID"),
    ) {
        (Some(c), Some(p), Some(id)) => Some(format!(
            "{}/{p}/_build/results?buildId={id}",
            c.trim_end_matches('/')
        )),
        _ => None,
    };
    (commit, github.or(azure))
}

#[cfg(test)]
mod glue_tests {
    use super::*;

    /// The commit and run URL come from GitHub Actions, else Azure Pipelines, else nothing.
    #[test]
    fn provenance_reads_the_ci_variables() {
        let gh = Env::from_pairs([
            ("GITHUB_SHA", "abc".to_owned()),
            ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
            ("GITHUB_REPOSITORY", "o/r".to_owned()),
            ("GITHUB_RUN_ID", "42".to_owned()),
        ]);
        assert_eq!(
            provenance(&gh),
            (
                Some("abc".into()),
                Some("https://github.com/o/r/actions/runs/42".into())
            )
        );
        let azp = Env::from_pairs([
            ("BUILD_SOURCEVERSION", "def".to_owned()),
            (
                "SYSTEM_COLLECTIONURI",
                "https://dev.azure.com/org/".to_owned(),
            ),
            ("SYSTEM_TEAMPROJECT", "proj".to_owned()),
            ("BUILD_BUILDID", "7".to_owned()),
        ]);
        assert_eq!(
            provenance(&azp),
            (
                Some("def".into()),
                Some("https://dev.azure.com/org/proj/_build/results?buildId=7".into())
            )
        );
        assert_eq!(
            provenance(&Env::from_pairs::<&str, String>([])),
            (None, None)
        );
    }

    /// Each problem of an invalid file becomes its own annotation at the file position.
    #[test]
    fn parameter_problems_are_annotated_at_their_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("parameters")).unwrap();
        std::fs::write(
            dir.path().join("parameters/qa.image.parameters.json"),
            "{\n  \"parameters\": {\n    \"location\": { \"value\": 3 }\n  }\n}\n",
        )
        .unwrap();
        let args = ParameterArgs {
            env: Some("qa".into()),
            root: dir.path().to_path_buf(),
            ..ParameterArgs::default()
        };
        let err = args.load().unwrap_err();
        let log = crate::report::Capture::new();
        let reporter = crate::report::GitHub::new(log.writer(), Default::default());
        report_parameter_error(&reporter, &err);
        let text = log.text();
        assert!(text.contains("::error file="), "{text}");
        assert!(text.contains("qa.image.parameters.json,line="), "{text}");
    }
}
