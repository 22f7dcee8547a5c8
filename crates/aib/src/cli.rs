//! The flags every step binary shares, declared once as clap `Args` structs that the binaries
//! `#[command(flatten)]`: which parameter file, how to print, and whether to only show the plan.
//!
//! Azure connection flags live in [`crate::azure::args`]. Nothing here touches the network:
//! [`ParameterArgs::load`] reads and validates the parameter file, so bad input ends with exit
//! status 2 before any call to Azure.
//!
//! The glue every front-end (the five steps, `aib run`, `aib whoami`) needs around those flags
//! lives once in `cli/step.rs` and is re-exported here: [`main_with`] (reporter built and
//! finished), [`load_parameters`] (each problem at its file position, exit 2), [`connect`],
//! [`runtime`], [`block_on_interruptible`] and [`step_status`] (how the step ended, reported
//! once), and [`provenance`] (the CI's commit and run URL).

mod step;

use std::path::PathBuf;

use crate::config::{self, ConfigError, ParameterFile};
use crate::report::OutputFormat;

pub use step::{
    Context, StepError, block_on_interruptible, block_on_stoppable, connect, interrupted,
    load_parameters, main_with, provenance, report_parameter_error, runtime, session, settings,
    step_status, until_interrupted,
};

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
