//! The run around a step, written once for every front-end (the five step binaries and
//! `aib run` / `aib whoami`): read the process once, build the reporter, load the parameter
//! file, connect, build the runtime, race the step against Ctrl-C/SIGTERM, report how it
//! ended, finish the reporter and hand back the exit status.
//!
//! Each front-end keeps only what is its own (its flags, its `Options`, what it says when
//! interrupted). Before this module each binary carried its own copy of this glue and the
//! copies drifted (one reported an invalid parameter file as one block, another as an
//! annotation per problem); the one version here is the better of them.
//!
//! Every function reports its own failure through the reporter and returns the
//! [`ExitStatus`] the run ends with, so a front-end only passes it on (`?`). Nothing here
//! decides a step's behaviour.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::azure::args::AzureArgs;
use crate::azure::env::Env;
use crate::azure::{Azure, AzureSettings, ReporterObserver};
use crate::config::ParameterFile;
use crate::exit::ExitStatus;
use crate::pipeline::Session;
use crate::report::{self, Annotation, Environment, Flavor, OutputFormat, Reporter, report_error};
use crate::steps::deploy_infra::DeployInfraError;
use crate::steps::remove_templates::RemoveError;
use crate::steps::trigger_build::TriggerError;
use crate::steps::upload_scripts::UploadError;
use crate::steps::wait_for_build::WaitError;

use super::{ParameterArgs, ParameterArgsError};

/// What a front-end reads from its process once, and the reporter built from it: the one
/// value every later piece of the run is given, so no step reads the environment again.
pub struct Context {
    /// Where every message, output and secret goes; finished once when the run ends.
    pub reporter: Arc<dyn Reporter>,
    /// The process environment the Azure settings and the CI provenance are read from.
    pub env: Env,
    /// The CI and terminal the reporter was chosen for.
    pub environment: Environment,
    /// `--output`.
    pub format: OutputFormat,
}

impl Context {
    /// Reads the process environment once and builds the reporter `format` and the CI call
    /// for.
    pub fn from_process(format: OutputFormat) -> Context {
        let environment = Environment::from_process();
        Context {
            reporter: report::build(format, &environment),
            env: Env::from_process(),
            environment,
            format,
        }
    }

    /// The same context with its reporter wrapped (e.g. `aib run` recording GitHub
    /// deployments around it), so the wrapper sees every event and is finished with the run.
    pub fn wrap_reporter(
        mut self,
        wrap: impl FnOnce(Arc<dyn Reporter>, &Env) -> Arc<dyn Reporter>,
    ) -> Context {
        self.reporter = wrap(self.reporter, &self.env);
        self
    }

    /// Runs `body`, then finishes the reporter (clears progress, prints the JSON document,
    /// attaches the summary) whatever the body ended with. `Err` is a status `body` stopped
    /// early with, already reported; `Ok` the status its step ended with.
    pub fn run(self, body: impl FnOnce(&Context) -> Result<ExitStatus, ExitStatus>) -> ExitStatus {
        let status = body(&self).unwrap_or_else(|status| status);
        if let Err(err) = self.reporter.finish() {
            eprintln!("error: {err}");
        }
        status
    }

    /// Whether the output goes to a person at a terminal, where a live line redraws in place;
    /// CI logs and redirected output get one plain line per event instead.
    pub fn interactive_terminal(&self) -> bool {
        matches!(
            report::flavor(self.format, &self.environment),
            Flavor::Terminal {
                interactive: true,
                ..
            }
        )
    }
}

/// A front-end's whole run after its flags are parsed: [`Context::from_process`] for
/// `format`, then [`Context::run`]. The step binaries turn the status into their exit code.
pub fn main_with(
    format: impl Into<OutputFormat>,
    body: impl FnOnce(&Context) -> Result<ExitStatus, ExitStatus>,
) -> ExitStatus {
    Context::from_process(format.into()).run(body)
}

/// Loads the parameter file the flags select; bad input is reported (each problem at its
/// file position) and ends the run with 2, before any call to Azure.
pub fn load_parameters(
    args: &ParameterArgs,
    reporter: &dyn Reporter,
) -> Result<ParameterFile, ExitStatus> {
    args.load().map_err(|err| {
        report_parameter_error(reporter, &err);
        ExitStatus::BadInput
    })
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

/// Resolves the Azure flags against the environment map; a configuration problem is
/// reported and ends the run with its status (2 for a missing or contradictory setting).
/// `aib whoami` needs the settings themselves, to show the choice even without a token.
pub fn settings(
    args: &AzureArgs,
    env: &Env,
    reporter: &dyn Reporter,
) -> Result<AzureSettings, ExitStatus> {
    AzureSettings::from_args(args, env).map_err(|err| {
        report_error(reporter, &err, None);
        err.exit_status()
    })
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
    let settings = settings(args, env, reporter.as_ref())?;
    let observer = Arc::new(ReporterObserver::new(reporter.clone()));
    Session::connect(&settings, observer).map_err(|err| {
        report_error(reporter.as_ref(), &err, None);
        err.exit_status()
    })
}

/// The runtime a front-end runs its step on: two workers are plenty for a process that mostly
/// waits on HTTP, and leave the CI agent's other cores to other jobs. A failure to build it
/// (no threads left) is reported and ends the run with 1.
pub fn runtime(reporter: &dyn Reporter) -> Result<Runtime, ExitStatus> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| {
            report_error(reporter, &err, None);
            ExitStatus::AzureFailure
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

/// Runs `step` until it ends (`Some`) or the process is interrupted (`None`; the step is
/// dropped where it stands). For a front-end that must do more than say so on an interrupt,
/// such as wait-for-build canceling the build.
pub fn until_interrupted<F: Future>(runtime: &Runtime, step: F) -> Option<F::Output> {
    runtime.block_on(async {
        tokio::select! {
            output = step => Some(output),
            () = interrupted() => None,
        }
    })
}

/// Runs `step` until it ends or the process is interrupted, and gives the run's status: the
/// step's end through [`step_status`], or 130 after `interrupted_message` (what was left
/// half-done in Azure and how to pick it up).
pub fn block_on_interruptible<T, E: StepError>(
    runtime: &Runtime,
    reporter: &dyn Reporter,
    step: impl Future<Output = Result<T, E>>,
    interrupted_message: &str,
) -> ExitStatus {
    match until_interrupted(runtime, step) {
        Some(result) => step_status(reporter, result),
        None => {
            reporter.info(interrupted_message);
            ExitStatus::Interrupted
        }
    }
}

/// Runs `step` to its end, first asking it to stop (`stop`, after saying `message`) on Ctrl-C
/// or SIGTERM: for steps that must not be dropped mid-write (deploy-infra, `aib run`), which
/// stop at their next safe point and end with their own "interrupted" result.
pub fn block_on_stoppable<F: Future>(
    runtime: &Runtime,
    reporter: &Arc<dyn Reporter>,
    message: &'static str,
    stop: impl FnOnce() + Send + 'static,
    step: F,
) -> F::Output {
    let on_signal = reporter.clone();
    runtime.block_on(async {
        tokio::spawn(async move {
            interrupted().await;
            on_signal.info(message);
            stop();
        });
        step.await
    })
}

/// What a front-end needs from a step's error to end the run on it: the exit status it
/// stands for and, when the step knows one, what to do about it.
pub trait StepError: std::error::Error {
    /// The exit status the error stands for (1 Azure, 2 bad input, 3 timeout, 130 interrupt).
    fn exit_status(&self) -> ExitStatus;

    /// What to do about it, printed under the error; `None` when the message says it all.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// Implements [`StepError`] for step errors through their own `exit_status` (and `hint`).
macro_rules! step_errors {
    ($($error:ty $(, $hint:ident)?;)*) => {$(
        impl StepError for $error {
            fn exit_status(&self) -> ExitStatus {
                <$error>::exit_status(self)
            }
            $(fn hint(&self) -> Option<String> {
                <$error>::$hint(self)
            })?
        }
    )*};
}

step_errors! {
    RemoveError;
    DeployInfraError, hint;
    UploadError, hint;
    TriggerError, hint;
    WaitError;
}

/// How a step ended, as the run's status: success, or the error reported once (its causes and
/// hint) and its own status. Steps report their per-item failures themselves; this is the one
/// line that ends the run.
pub fn step_status<T, E: StepError>(reporter: &dyn Reporter, result: Result<T, E>) -> ExitStatus {
    match result {
        Ok(_) => ExitStatus::Success,
        Err(err) => {
            report_error(reporter, &err, err.hint().as_deref());
            err.exit_status()
        }
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
mod tests {
    use super::*;
    use crate::report::{Capture, GitHub};

    /// Held by the tests that listen for signals: the SIGTERM one test sends reaches every
    /// listener in the process, so they must not overlap.
    static SIGNALS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A GitHub Actions reporter writing into a capture: annotations as `::error…` lines.
    fn github_log() -> (Capture, GitHub) {
        let log = Capture::new();
        let reporter = GitHub::new(log.writer(), Default::default());
        (log, reporter)
    }

    /// The commit and run URL come from GitHub Actions, else Azure Pipelines, else nothing.
    #[test]
    fn provenance_reads_the_ci_variables() {
        let github = [
            ("GITHUB_SHA", "abc"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
        ];
        let azure_pipelines = [
            ("BUILD_SOURCEVERSION", "def"),
            ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/org/"),
            ("SYSTEM_TEAMPROJECT", "proj"),
            ("BUILD_BUILDID", "7"),
        ];
        let cases: [(&[(&str, &str)], _); 3] = [
            (
                &github,
                (Some("abc"), Some("https://github.com/o/r/actions/runs/42")),
            ),
            (
                &azure_pipelines,
                (
                    Some("def"),
                    Some("https://dev.azure.com/org/proj/_build/results?buildId=7"),
                ),
            ),
            (&[], (None, None)),
        ];
        for (variables, (commit, run_url)) in cases {
            let env = Env::from_pairs(variables.iter().copied());
            assert_eq!(
                provenance(&env),
                (commit.map(str::to_owned), run_url.map(str::to_owned)),
                "{variables:?}"
            );
        }
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
        let (log, reporter) = github_log();
        report_parameter_error(&reporter, &err);
        let text = log.text();
        assert!(text.contains("::error file="), "{text}");
        assert!(text.contains("qa.image.parameters.json,line="), "{text}");
    }

    /// A failed parameter-file load is reported and ends the run with 2.
    #[test]
    fn a_missing_parameter_file_is_reported_and_ends_with_2() {
        let (log, reporter) = github_log();
        let status = load_parameters(&ParameterArgs::default(), &reporter).unwrap_err();
        assert_eq!(status, ExitStatus::BadInput);
        assert!(
            log.text().contains("::error::no parameter file"),
            "{}",
            log.text()
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the service refused")]
    struct Refused;

    impl StepError for Refused {
        fn exit_status(&self) -> ExitStatus {
            ExitStatus::Timeout
        }
        fn hint(&self) -> Option<String> {
            Some("try again later".to_owned())
        }
    }

    /// A step's error is reported once with its hint and ends the run with its own status;
    /// success reports nothing.
    #[test]
    fn step_errors_are_reported_once_with_their_hint_and_status() {
        let (log, reporter) = github_log();
        assert_eq!(
            step_status::<(), Refused>(&reporter, Ok(())),
            ExitStatus::Success
        );
        assert_eq!(log.text(), "");
        assert_eq!(
            step_status::<(), _>(&reporter, Err(Refused)),
            ExitStatus::Timeout
        );
        let text = log.text();
        assert_eq!(text.matches("::error::").count(), 1, "{text}");
        assert!(
            text.contains("the service refused%0Ahint: try again later"),
            "{text}"
        );
    }

    /// A step that ends before any signal gives its own output.
    #[test]
    fn a_step_that_ends_gives_its_output() {
        let _signals = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
        let (log, reporter) = github_log();
        let runtime = runtime(&reporter).unwrap();
        assert_eq!(until_interrupted(&runtime, async { 7 }), Some(7));
        let status = block_on_interruptible(
            &runtime,
            &reporter,
            async { Err::<(), _>(Refused) },
            "interrupted",
        );
        assert_eq!(status, ExitStatus::Timeout);
        assert!(!log.text().contains("interrupted"), "{}", log.text());
    }
    /// SIGTERM (what a CI agent sends on cancel) drops the step and ends the run with 130,
    /// after the step's message saying what was left.
    #[cfg(unix)]
    #[test]
    fn sigterm_drops_the_step_and_ends_with_130_after_its_message() {
        let _signals = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
        let (log, reporter) = github_log();
        let runtime = runtime(&reporter).unwrap();
        let step = async {
            // Both branches have been polled once (so the listener exists) before this runs on.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &std::process::id().to_string()])
                .status()
                .expect("kill runs");
            assert!(sent.success());
            std::future::pending::<Result<(), Refused>>().await
        };
        let status = block_on_interruptible(&runtime, &reporter, step, "interrupted: left as is");
        assert_eq!(status, ExitStatus::Interrupted);
        assert!(
            log.text().contains("interrupted: left as is"),
            "{}",
            log.text()
        );
    }
}
