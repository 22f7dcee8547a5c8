//! `aib validate`: find parameter files by the lookup rules, check each one, print what each
//! would deploy where (or every problem), and exit 2 when any file is invalid.
//!
//! The checking and the summary are the library's (`aib::config`); this module only turns
//! flags into a file list and prints the outcome as text or JSON. Text is printed here until
//! the reporter (`aib::report`) grows a home for it.

use std::io::Write;
use std::path::PathBuf;

use aib::config::{self, Validation};
use aib::exit::ExitStatus;

const EXAMPLES: &str = "\
Examples:
  aib validate
      every bundled file: parameters/<env>.image.parameters[.<os>].json
  aib validate --env sbx
      parameters/sbx.image.parameters.json
  aib validate --env prd --os windows
      parameters/prd.image.parameters.windows.json (else parameters/prd.image.parameters.json)
  aib validate --parameters a.json --parameters b.json --output json
      two files of your own, as one JSON document
  aib validate --root ../images
      the bundled files of another checkout

Exit status: 0 when every file is valid, 2 when any file is invalid or missing.";

/// Check parameter files before anything is deployed, and summarise them.
///
/// Every problem of a file is listed with file:line:column, the parameter path, what was
/// expected and a hint. Steps that name a script (`"script"`/`"file"`) are checked against the
/// scripts folder (default scripts/uploads/<os>, relative to --root).
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Environment whose file to check, e.g. `sbx`, `dev`, `prd`, `local` (default: every
    /// environment that has a file under <root>/parameters).
    #[arg(short, long, value_name = "ENV")]
    pub env: Option<String>,

    /// OS variant: use `<env>.image.parameters.<OS>.json`, falling back to
    /// `<env>.image.parameters.json`. Example: `--os windows`.
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,

    /// A parameter file to check; repeat for several. Wins over --env and --os.
    /// Example: `--parameters parameters/dev.image.parameters.json`.
    #[arg(short, long = "parameters", value_name = "FILE")]
    pub parameters: Vec<PathBuf>,

    /// Repository root: where `parameters/` and the scripts folders are looked up.
    /// Example: `--root ../images`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,

    /// `text` for people (default) or `json` for scripts (one document on stdout).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Output::Text)]
    pub output: Output,
}

/// How the outcome is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Readable summary per file, problems with hints.
    Text,
    /// One JSON document: `{"valid": bool, "files": [...]}`.
    Json,
}

/// Locates, checks and prints; returns Success or BadInput.
pub fn run(args: &Args) -> ExitStatus {
    let paths = match config::locate(
        &args.root,
        args.env.as_deref(),
        args.os.as_deref(),
        &args.parameters,
    ) {
        Ok(paths) => paths,
        Err(err) => {
            match args.output {
                Output::Text => eprintln!("error: {err}"),
                Output::Json => print(&serde_json::json!({
                    "valid": false,
                    "error": err.to_string(),
                    "files": [],
                })),
            }
            return err.exit_status();
        }
    };
    let validation = Validation::of_files(&paths, &args.root);
    match args.output {
        Output::Text => print(&validation),
        Output::Json => print(&serde_json::to_value(&validation).unwrap_or_default()),
    }
    if validation.valid {
        ExitStatus::Success
    } else {
        ExitStatus::BadInput
    }
}

fn print(value: &dyn std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`aib validate | head`) is not worth a panic; the exit code still tells.
    let _ = writeln!(out, "{value:#}");
}
