//! Where output goes: the one [`Reporter`] trait every step talks to, and its backends.
//!
//! Steps never print. They describe what happens as semantic events (a step starts, a group opens,
//! a transfer progresses, a problem is found in `file:line`, an output is produced, a value is a
//! secret) and the backend picked once at startup by [`detect`] renders them for where we run:
//! a terminal ([`Terminal`]: progress bars on a TTY, timestamped lines otherwise), GitHub Actions
//! ([`GitHub`]: workflow commands and the `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files), Azure
//! Pipelines ([`AzurePipelines`]: `##vso[…]` logging commands) or a script ([`Json`]: one document
//! at the end). Backends write to the writer and the paths they are given when built and never
//! read the environment; [`detect`] is the only place that does.
//!
//! Every backend masks every registered secret with `***` in everything it writes, and announces
//! the secret to the CI (`::add-mask::`, `##vso[task.setsecret]`) before any line that could
//! contain it. Escaping for each CI lives in [`escape`] only.
//!
//! ```
//! use aib::report::{Annotation, Capture, GitHub, GitHubFiles, Reporter, Unit, report_error};
//! use aib::secret::Secret;
//!
//! let log = Capture::new();
//! let reporter: std::sync::Arc<dyn Reporter> =
//!     std::sync::Arc::new(GitHub::new(log.writer(), GitHubFiles::default()));
//! reporter.secret(&Secret::new("s3cr3t"));
//! {
//!     let _group = reporter.group("Upload");
//!     let id = reporter.progress_start("Uploading", Unit::Items);
//!     reporter.progress(id, 1, 1, "a.sh");
//!     reporter.progress_finish(id, "1 uploaded");
//! }
//! reporter.annotate(&Annotation::error("bad s3cr3t").at("p.json", Some(3), Some(7)));
//! let err = std::io::Error::other("denied");
//! report_error(&*reporter, &err, Some("check the role assignment"));
//! reporter.finish()?;
//! assert_eq!(
//!     log.text(),
//!     "::add-mask::s3cr3t\n::group::Upload\nUploading...\nUploading: 1 uploaded\n::endgroup::\n\
//!      ::error file=p.json,line=3,col=7::bad ***\n::error::denied%0Ahint: check the role assignment\n"
//! );
//! # Ok::<(), aib::report::ReportError>(())
//! ```

mod azure;
mod ci;
mod clock;
mod error;
pub mod escape;
mod github;
mod json;
mod mask;
mod progress;
mod terminal;
mod text;

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use azure::AzurePipelines;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{error_chain, error_text, report_error};
pub use github::{GitHub, GitHubFiles};
pub use json::Json;
pub use mask::{MASK, Masker};
pub use terminal::{Terminal, TerminalMode};

use crate::env_vars::EnvVars;
use crate::secret::Secret;

/// The events a step can report; every backend renders all of them.
///
/// Methods take `&self` and the trait is `Send + Sync` so one reporter, behind an
/// `Arc<dyn Reporter>`, serves parallel tokio tasks (uploads report progress concurrently).
/// Event methods cannot fail: losing a log line must not fail a deployment. The ones whose loss
/// would break a pipeline ([`Reporter::output`], [`Reporter::summary`], [`Reporter::finish`])
/// return a [`ReportError`].
pub trait Reporter: Send + Sync {
    /// A pipeline step (e.g. `deploy-infra`) begins; the backend remembers when, for its end line.
    fn step_start(&self, name: &str);

    /// The step named in [`Reporter::step_start`] ended with `status`.
    fn step_end(&self, name: &str, status: StepStatus);

    /// Opens a collapsible group. Prefer [`Group::open`] (or `reporter.group(…)`), whose guard
    /// closes it even on error or panic. CI logs cannot nest groups: an inner group is shown as a
    /// heading line inside the outer one.
    fn group_start(&self, title: &str);

    /// Closes the innermost open group; extra calls are ignored.
    fn group_end(&self);

    /// Starts a progress indicator (a spinner until a total is known); returns its id.
    fn progress_start(&self, title: &str, unit: Unit) -> ProgressId;

    /// `done` of `total` units are finished; `message` says what is being worked on (may be empty).
    fn progress(&self, id: ProgressId, done: u64, total: u64, message: &str);

    /// The state of a long wait changed (e.g. `Running / Customizing, 12m`).
    fn status(&self, id: ProgressId, text: &str);

    /// The indicator `id` is done; `message` is its last word (e.g. `3 uploaded, 5 unchanged`).
    fn progress_finish(&self, id: ProgressId, message: &str);

    /// How far a long wait of unknown length has come, as a whole percentage estimated by the
    /// step (an image build by its phase), with what it is doing. Only Azure Pipelines has a
    /// place for it (`##vso[task.setprogress]`, shown on the task); the other backends show
    /// waits through [`Reporter::status`] and ignore it. No default: a wrapper that forgot to
    /// pass it on would silently drop the percentage (as `aib run`'s step reporter once did).
    fn percent(&self, id: ProgressId, percent: u8, text: &str);

    /// A problem or remark, tied to a file position when one is known.
    fn annotate(&self, annotation: &Annotation);

    /// A plain line of information for people.
    fn info(&self, line: &str);

    /// A named result later pipeline steps consume (e.g. `templateName`).
    fn output(&self, name: &str, value: &str) -> Result<(), ReportError>;

    /// Registers a value that must never appear in output. Announced to the CI at once, before
    /// any later line, and replaced by [`MASK`] in everything written afterwards.
    fn secret(&self, value: &Secret);

    /// Markdown for the job summary (appended; several calls add up).
    fn summary(&self, markdown: &str) -> Result<(), ReportError>;

    /// The step's typed outcome, serialized; only [`Json`] shows it (as `outcome`).
    fn outcome(&self, outcome: serde_json::Value);

    /// Ends reporting: clears progress bars, attaches the Azure Pipelines summary, prints the
    /// JSON document. Binaries call it once, last.
    fn finish(&self) -> Result<(), ReportError>;
}

impl<'r> dyn Reporter + 'r {
    /// Opens a group closed when the returned guard drops (the Rust form of `finally`).
    pub fn group(&self, title: &str) -> Group<'_> {
        Group::open(self, title)
    }
}

/// An open group; dropping it closes the group, also when unwinding from an error or panic.
#[must_use = "the group closes when this guard is dropped"]
pub struct Group<'a> {
    reporter: &'a dyn Reporter,
}

impl<'a> Group<'a> {
    /// Opens a group on `reporter`; it stays open as long as the guard lives.
    pub fn open(reporter: &'a dyn Reporter, title: &str) -> Self {
        reporter.group_start(title);
        Group { reporter }
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        self.reporter.group_end();
    }
}

/// How a step ended, for its closing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// It did what was asked.
    Succeeded,
    /// It failed; the error is reported separately.
    Failed,
    /// It had nothing to do for the chosen scope.
    Skipped,
}

/// What a progress indicator counts, so totals print as `3/8` or `1.2 MiB/4.0 MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Things (files, resources).
    Items,
    /// Bytes.
    Bytes,
}

/// Identifies one progress indicator among several running in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgressId(pub u64);

/// How serious an [`Annotation`] is; the three levels both CIs understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The run fails because of it.
    Error,
    /// Worth attention; the run goes on.
    Warning,
    /// For information (Azure Pipelines has no notice annotation: a plain line there).
    Notice,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        })
    }
}

/// A problem or remark shown as a CI annotation, pointing at a file position when known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Annotation {
    /// How serious it is.
    pub level: Level,
    /// What is wrong and, ideally, what to do (may span lines).
    pub message: String,
    /// The file it is about, as the user named it (relative to the repository in CI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column in `line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub col: Option<u32>,
}

impl Annotation {
    /// An annotation of `level` without a position.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Annotation {
            level,
            message: message.into(),
            file: None,
            line: None,
            col: None,
        }
    }

    /// An error without a position.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Level::Error, message)
    }

    /// A warning without a position.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Level::Warning, message)
    }

    /// A notice without a position.
    pub fn notice(message: impl Into<String>) -> Self {
        Self::new(Level::Notice, message)
    }

    /// Points the annotation at `file`, and at `line`/`col` when known.
    ///
    /// CI systems match annotation paths against the repository's, which use `/`: on Windows a
    /// path joined with `\` is written with `/` (elsewhere `\` is a legal file-name character).
    pub fn at(mut self, file: impl Into<String>, line: Option<u32>, col: Option<u32>) -> Self {
        let file = file.into();
        self.file = Some(if cfg!(windows) {
            file.replace('\\', "/")
        } else {
            file
        });
        self.line = line;
        self.col = col;
        self
    }
}

/// Why an output, a summary or the final document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file the CI gave us (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, the summary file) failed.
    #[error("cannot write {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing to our own output stream failed.
    #[error("cannot write the report")]
    Write(#[source] io::Error),
    /// An output name the CIs would not accept (letters, digits and `_`; not starting with a digit).
    #[error(
        "output name {name:?} is not valid: use letters, digits and `_`, not starting with a digit"
    )]
    OutputName {
        /// The refused name.
        name: String,
    },
    /// The value contains the random heredoc delimiter, so it could forge other outputs.
    #[error("output {name:?} contains its heredoc delimiter and is refused")]
    DelimiterInValue {
        /// The output's name.
        name: String,
    },
    /// The JSON document could not be serialized.
    #[error("cannot serialize the JSON report")]
    Json(#[source] serde_json::Error),
}

/// Whether a binary prints for people (`--output text`, the default) or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Progress and messages for people, in the form the detected CI understands.
    #[default]
    Text,
    /// One JSON document on stdout at the end (`--output json`).
    Json,
}

/// What [`detect`] needs to know about the process environment, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `GITHUB_ACTIONS=true`.
    pub github_actions: bool,
    /// `TF_BUILD=True` (Azure Pipelines).
    pub azure_pipelines: bool,
    /// `GITHUB_OUTPUT`: the file outputs are appended to.
    pub github_output: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: the file the job summary is appended to.
    pub github_step_summary: Option<PathBuf>,
    /// `AGENT_TEMPDIRECTORY`: where the Azure Pipelines summary file is written.
    pub agent_temp_directory: Option<PathBuf>,
    /// `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    pub no_color: bool,
    /// stderr is a terminal, so progress bars can redraw in place.
    pub stderr_is_tty: bool,
}

impl Environment {
    /// Reads the variables and the terminal state of this process.
    pub fn from_process() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        Environment {
            github_actions: var(EnvVars::GITHUB_ACTIONS) == "true",
            azure_pipelines: var(EnvVars::TF_BUILD).eq_ignore_ascii_case("true"),
            github_output: path(EnvVars::GITHUB_OUTPUT),
            github_step_summary: path(EnvVars::GITHUB_STEP_SUMMARY),
            agent_temp_directory: path(EnvVars::AGENT_TEMPDIRECTORY),
            no_color: std::env::var_os(EnvVars::NO_COLOR).is_some_and(|v| !v.is_empty()),
            stderr_is_tty: io::stderr().is_terminal(),
        }
    }
}

/// Which backend an environment calls for; [`flavor`] decides, [`detect`] builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A person at a terminal (or a log without a CI we know).
    Terminal {
        /// Redraw progress bars in place (stderr is a TTY).
        interactive: bool,
        /// Use colours (a TTY and no `NO_COLOR`).
        color: bool,
    },
    /// GitHub Actions workflow commands.
    GitHub,
    /// Azure Pipelines logging commands.
    AzurePipelines,
    /// One JSON document for scripts.
    Json,
}

/// Picks the backend: `--output json` wins, then GitHub Actions, then Azure Pipelines, else a
/// terminal.
pub fn flavor(format: OutputFormat, env: &Environment) -> Flavor {
    if format == OutputFormat::Json {
        Flavor::Json
    } else if env.github_actions {
        Flavor::GitHub
    } else if env.azure_pipelines {
        Flavor::AzurePipelines
    } else {
        Flavor::Terminal {
            interactive: env.stderr_is_tty,
            color: env.stderr_is_tty && !env.no_color,
        }
    }
}

/// Reads the environment once and builds the reporter for it. CI logs and JSON go to stdout; the
/// terminal reporter writes to stderr (as do the JSON backend's human lines), keeping stdout for
/// results.
pub fn detect(format: OutputFormat) -> Arc<dyn Reporter> {
    build(format, &Environment::from_process())
}

/// Builds the reporter `env` calls for (what [`detect`] does after reading the environment).
pub fn build(format: OutputFormat, env: &Environment) -> Arc<dyn Reporter> {
    match flavor(format, env) {
        Flavor::Json => Arc::new(Json::new(Box::new(io::stdout()), Box::new(io::stderr()))),
        Flavor::GitHub => Arc::new(GitHub::new(
            Box::new(io::stdout()),
            GitHubFiles {
                output: env.github_output.clone(),
                step_summary: env.github_step_summary.clone(),
            },
        )),
        Flavor::AzurePipelines => {
            // One directory per process, so parallel jobs on one agent never share a summary file;
            // the file name is the title the run's Extensions tab shows.
            let summary = env.agent_temp_directory.as_ref().map(|dir| {
                dir.join(format!("aib-{}", uuid::Uuid::new_v4()))
                    .join("Image Builder.md")
            });
            Arc::new(AzurePipelines::new(Box::new(io::stdout()), summary))
        }
        Flavor::Terminal {
            interactive: true,
            color,
        } => Arc::new(Terminal::new(
            Box::new(io::stderr()),
            TerminalMode::Interactive {
                target: indicatif::ProgressDrawTarget::stderr(),
                color,
            },
        )),
        Flavor::Terminal {
            interactive: false, ..
        } => Arc::new(Terminal::new(Box::new(io::stderr()), TerminalMode::Plain)),
    }
}

/// The writer every backend takes: stdout, stderr, a file, or a [`Capture`] in tests.
pub type Output = Box<dyn Write + Send>;

/// An in-memory writer that can be read back: hand one clone to a backend, read the other.
///
/// Tests across the workspace use it to check what a step reported, byte for byte.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// A boxed clone to give to a backend.
    pub fn writer(&self) -> Output {
        Box::new(self.clone())
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Locks a mutex, going on after a panic elsewhere: a reporter must still close groups and print
/// the error while a panic unwinds.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
