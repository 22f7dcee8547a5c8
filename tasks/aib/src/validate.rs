//! `aib validate`: find parameter files by the lookup rules, check each one, print what each
//! would deploy where (or every problem), and exit 2 when any file is invalid.
//!
//! The checking and the summary are the library's (`aib::config`); this module only turns
//! flags into a file list and hands the outcome to the reporter (`aib::report`): summaries as
//! lines in a group per file, problems as error annotations at their `file:line:column` (so
//! GitHub and Azure Pipelines mark the line), a Markdown job summary, and the whole
//! [`Validation`] as the JSON outcome for `--output json`.

use std::path::PathBuf;

use aib::config::{self, FileOutcome, Problem, Validation};
use aib::exit::ExitStatus;
use aib::report::{self, Annotation, OutputFormat, Reporter, report_error};

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
    /// Environment whose file to check: `sbx`, `dev`, `prd`, `local`, … (default: every
    /// environment that has a file under <root>/parameters). Example: `--env prd`.
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

    /// `text` for people (default; annotations on GitHub Actions and Azure Pipelines) or
    /// `json` for scripts (one document on stdout). Example: `--output json`.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Output::Text)]
    pub output: Output,
}

/// How the outcome is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Readable summary per file, problems with hints.
    Text,
    /// One JSON document whose `outcome` is `{"valid": bool, "files": [...]}`.
    Json,
}

/// Locates, checks and reports; returns Success or BadInput.
pub fn run(args: &Args) -> ExitStatus {
    let reporter = report::detect(match args.output {
        Output::Text => OutputFormat::Text,
        Output::Json => OutputFormat::Json,
    });
    let status = check(args, &*reporter);
    if let Err(err) = reporter.finish() {
        eprintln!("error: {err}");
    }
    status
}

fn check(args: &Args, reporter: &dyn Reporter) -> ExitStatus {
    let paths = match config::locate(
        &args.root,
        args.env.as_deref(),
        args.os.as_deref(),
        &args.parameters,
    ) {
        Ok(paths) => paths,
        Err(err) => {
            report_error(
                reporter,
                &err,
                Some("see `aib validate --help` for the lookup rules"),
            );
            return err.exit_status();
        }
    };
    let validation = Validation::of_files(&paths, &args.root);
    for outcome in &validation.files {
        match outcome {
            FileOutcome::Valid { summary } => {
                let _group = reporter.group(&format!("{}: valid", summary.file));
                for line in summary.details() {
                    reporter.info(&line);
                }
            }
            FileOutcome::Invalid { file, problems } => {
                let n = problems.len();
                let s = if n == 1 { "" } else { "s" };
                let _group = reporter.group(&format!("{file}: {n} problem{s}"));
                for problem in problems {
                    reporter.annotate(&annotation(problem));
                }
            }
            FileOutcome::Unreadable { file, error } => {
                reporter.annotate(&Annotation::error(error.clone()).at(file, None, None));
            }
        }
    }
    let (valid, invalid) = validation.counts();
    reporter.info(&format!("{valid} valid, {invalid} invalid"));
    if let Err(err) = reporter.summary(&validation.markdown()) {
        report_error(reporter, &err, None);
    }
    reporter.outcome(serde_json::to_value(&validation).unwrap_or_default());
    if validation.valid {
        ExitStatus::Success
    } else {
        ExitStatus::BadInput
    }
}

/// `path: message` with the hint on its own line, at the problem's file position.
fn annotation(problem: &Problem) -> Annotation {
    let mut message = if problem.path.is_empty() {
        problem.message.clone()
    } else {
        format!("{}: {}", problem.path, problem.message)
    };
    if let Some(hint) = &problem.hint {
        message.push_str("\nhint: ");
        message.push_str(hint);
    }
    let line = u32::try_from(problem.position.line).ok();
    let column = u32::try_from(problem.position.column).ok();
    Annotation::error(message).at(&problem.file, line, column)
}
