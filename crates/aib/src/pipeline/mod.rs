//! The whole pipeline in-process: the steps a [`Scope`] selects, run in order for one or more
//! environments, each step's outcome feeding the next — what `aib run` does and what the
//! bundled CI pipelines do with one job per step.
//!
//! What feeds what: deploy-infra's `storageBlobEndpoint` output becomes the blob endpoint of
//! upload-scripts and trigger-build (no second ARM read of the account); trigger-build's
//! `templateName` is the template wait-for-build follows; wait-for-build's artifact ids are the
//! run's image version. Nothing is re-read from files or outputs.
//!
//! What it owns and nothing more: the order ([`scope`]), the environment walk
//! ([`environments`]), one start/end line per step, a correlation id per step (so Azure's logs —
//! and the emulator's request log — tell the steps apart), the stop on the first failure (later
//! steps and environments are listed as not run), Ctrl-C between and within steps, and the
//! summary. The steps themselves, their plans and their output are the step modules'.
//!
//! With `what_if`, every step only plans. A step that needs what an earlier step would create
//! (upload-scripts and trigger-build need the storage account deploy-infra plans to create;
//! wait-for-build needs a started build) is skipped with the reason instead of failing.

pub mod environments;
pub mod scope;
mod step_reporter;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use url::Url;
use uuid::Uuid;

pub use scope::{Scope, ScopeError, Step, Switches};

use crate::azure::arm::{ArmClient, ArmOptions};
use crate::azure::{Azure, AzureError, AzureSettings, Observer, connect};
use crate::config::ParameterFile;
use crate::exit::ExitStatus;
use crate::report::{Annotation, Reporter, StepStatus, report_error};
use crate::steps::deploy_infra::{self, Interrupt};
use crate::steps::{remove_templates, trigger_build, upload_scripts, wait_for_build};
use step_reporter::StepReporter;

/// A connected session the pipeline derives one ARM client per step from: the same HTTP pool
/// and token cache, a new correlation id.
#[derive(Clone)]
pub struct Session {
    /// The connection.
    pub azure: Azure,
    /// The ARM settings every step's client starts from.
    pub arm_options: ArmOptions,
    /// Where the Azure layer reports secrets and operation progress.
    pub observer: Arc<dyn Observer>,
}

impl Session {
    /// Connects (no request yet) and keeps what per-step clients need.
    pub fn connect(
        settings: &AzureSettings,
        observer: Arc<dyn Observer>,
    ) -> Result<Session, AzureError> {
        Ok(Session {
            azure: connect(settings, observer.clone())?,
            arm_options: settings.arm.clone(),
            observer,
        })
    }

    /// The session for one step: its own correlation id, shared connection and tokens.
    fn for_step(&self) -> Azure {
        let mut azure = self.azure.clone();
        azure.arm = ArmClient::new(
            azure.cloud.clone(),
            azure.http.clone(),
            azure.tokens.clone(),
            self.observer.clone(),
            ArmOptions {
                correlation_id: Uuid::new_v4(),
                ..self.arm_options.clone()
            },
        );
        azure
    }
}

/// Ctrl-C for a whole run: deploy-infra stops between operations, any other step at once
/// (what was sent goes on in Azure), and no later step starts.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    flag: Interrupt,
    notify: Arc<tokio::sync::Notify>,
}

impl Stop {
    /// A stop not yet asked for.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the run to stop.
    pub fn trigger(&self) {
        self.flag.trigger();
        self.notify.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.flag.is_triggered()
    }

    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

/// How a run goes: the scope, the switches, and each step's own options (their `what_if` is
/// set from [`Options::what_if`]; wait-for-build's template comes from trigger-build).
#[derive(Debug, Clone)]
pub struct Options {
    /// Which steps.
    pub scope: Scope,
    /// `--wait` and `--remove-previous`.
    pub switches: Switches,
    /// Every step only plans.
    pub what_if: bool,
    /// Repository root: the scripts folders are found under it.
    pub root: PathBuf,
    /// deploy-infra's options.
    pub deploy_infra: deploy_infra::Options,
    /// upload-scripts' options.
    pub upload_scripts: upload_scripts::Options,
    /// trigger-build's options.
    pub trigger_build: trigger_build::Options,
    /// wait-for-build's options.
    pub wait_for_build: wait_for_build::Options,
    /// remove-templates' options.
    pub remove_templates: remove_templates::Options,
    /// Ctrl-C.
    pub stop: Stop,
}

impl Options {
    /// Each step's defaults, for `scope`.
    pub fn new(scope: Scope) -> Options {
        Options {
            scope,
            switches: Switches::default(),
            what_if: false,
            root: PathBuf::from("."),
            deploy_infra: deploy_infra::Options::default(),
            upload_scripts: upload_scripts::Options::default(),
            trigger_build: trigger_build::Options::default(),
            wait_for_build: wait_for_build::Options::default(),
            remove_templates: remove_templates::Options::default(),
            stop: Stop::new(),
        }
    }
}

/// One environment to run, with its parameter file already loaded and validated.
#[derive(Debug, Clone)]
pub struct Target {
    /// `sbx`, `dev`, `local`… (or the file name when given with `--parameters`).
    pub environment: String,
    /// Its parameter file.
    pub parameters: ParameterFile,
}

/// What became of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepResult {
    /// It did what was asked.
    Succeeded,
    /// It failed (the error is in the step's record); the run stopped there.
    Failed,
    /// It had nothing to do (the reason is in the record).
    Skipped,
    /// Ctrl-C stopped it.
    Interrupted,
    /// An earlier failure stopped the run before it.
    NotRun,
}

/// One step of one environment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// What became of it.
    pub result: StepResult,
    /// The `x-ms-correlation-request-id` of its ARM requests (to find them in Azure's logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Why it was skipped, or the error (with its causes and hint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The step's own outcome, as its binary's `--output json` prints it.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub outcome: Value,
}

/// One environment of the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentRecord {
    /// Its name.
    pub environment: String,
    /// Its parameter file.
    pub file: String,
    /// Every step the scope selects, in order (also those not run).
    pub steps: Vec<StepRecord>,
    /// The template trigger-build created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// The gallery image version the build produced (or, when trigger-build skipped an
    /// unchanged build, the one that already holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_version_id: Option<String>,
}

/// The run's result, as `aib run --output json` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The scope's name.
    pub scope: Scope,
    /// The steps the scope and switches select, in order.
    pub steps: Vec<Step>,
    /// Only planned.
    pub what_if: bool,
    /// Every environment asked for, in order (also those not run).
    pub environments: Vec<EnvironmentRecord>,
    /// Every step that ran succeeded (or was skipped).
    pub succeeded: bool,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Why a run stopped; the step's own error has already been reported in full.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    /// A step failed.
    #[error("{step} failed in {environment}{}", not_run_text(.not_run))]
    StepFailed {
        /// Where.
        environment: String,
        /// Which step.
        step: Step,
        /// Its exit status.
        status: ExitStatus,
        /// Environments not started because of it.
        not_run: Vec<String>,
    },
    /// Ctrl-C.
    #[error("interrupted during {step} in {environment}{}", not_run_text(.not_run))]
    Interrupted {
        /// Where.
        environment: String,
        /// Which step.
        step: Step,
        /// Environments not started because of it.
        not_run: Vec<String>,
    },
}

fn not_run_text(not_run: &[String]) -> String {
    if not_run.is_empty() {
        String::new()
    } else {
        format!("; not run: {}", not_run.join(", "))
    }
}

impl PipelineError {
    /// The failed step's status (1 Azure, 2 bad input, 3 timeout), or 130 for Ctrl-C.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            PipelineError::StepFailed { status, .. } => *status,
            PipelineError::Interrupted { .. } => ExitStatus::Interrupted,
        }
    }
}

/// How one step ended, before it becomes a [`StepRecord`].
enum Ended {
    Ok(Value),
    Skipped(String),
    Failed {
        text: String,
        status: ExitStatus,
        outcome: Value,
    },
    Interrupted(String),
}

/// What a step hands to the next ones within an environment.
#[derive(Default)]
struct Carry {
    blob_endpoint: Option<Url>,
    /// what-if: the storage account deploy-infra would create (later steps cannot read it).
    storage_to_create: Option<String>,
    template: Option<String>,
    /// trigger-build's run operation, which wait-for-build follows next to `lastRunStatus`.
    run_operation: Option<String>,
    build_started: bool,
    image_version_id: Option<String>,
}

/// Runs the scope's steps for each target in order, stopping at the first failure. Reports a
/// start and end line per step, the outcome (also on failure) and a summary table.
pub async fn run(
    targets: &[Target],
    options: &Options,
    session: &Session,
    reporter: &Arc<dyn Reporter>,
) -> Result<Outcome, PipelineError> {
    let started = Instant::now();
    let steps = options.scope.steps(options.switches);
    let mut outcome = Outcome {
        scope: options.scope,
        steps: steps.clone(),
        what_if: options.what_if,
        environments: Vec::new(),
        succeeded: true,
        elapsed_ms: 0,
    };
    let step_list: Vec<&str> = steps.iter().map(|s| s.name()).collect();
    reporter.info(&format!(
        "Scope \"{}\"{}: {}",
        options.scope,
        if options.what_if { " (what-if)" } else { "" },
        step_list.join(" → ")
    ));
    let mut failure: Option<PipelineError> = None;
    for (i, target) in targets.iter().enumerate() {
        let mut record = EnvironmentRecord {
            environment: target.environment.clone(),
            file: target.parameters.file.clone(),
            steps: Vec::new(),
            template_name: None,
            image_version_id: None,
        };
        if failure.is_some() {
            record.steps = steps.iter().map(|s| not_run(*s)).collect();
            outcome.environments.push(record);
            continue;
        }
        if targets.len() > 1 {
            reporter.info(&format!(
                "Environment {} of {}: {} ({})",
                i + 1,
                targets.len(),
                target.environment,
                target.parameters.file
            ));
        }
        let mut carry = Carry::default();
        for step in &steps {
            if failure.is_some() {
                record.steps.push(not_run(*step));
                continue;
            }
            if options.stop.is_triggered() {
                failure = Some(PipelineError::Interrupted {
                    environment: target.environment.clone(),
                    step: *step,
                    not_run: Vec::new(),
                });
                record.steps.push(not_run(*step));
                continue;
            }
            let label = format!("{step} ({})", target.environment);
            reporter.step_start(&label);
            let azure = session.for_step();
            let correlation_id = azure.arm.correlation_id().to_string();
            let step_started = Instant::now();
            let step_reporter = Arc::new(StepReporter::new(reporter.clone()));
            let as_reporter: Arc<dyn Reporter> = step_reporter.clone();
            let ended = run_step(*step, target, options, &azure, &as_reporter, &mut carry).await;
            let reported = step_reporter.take_outcome().unwrap_or(Value::Null);
            let (result, message, value, status) = match ended {
                Ended::Ok(v) => (StepResult::Succeeded, None, pick(v, reported), None),
                Ended::Skipped(why) => {
                    reporter.info(&format!("{step}: skipped: {why}"));
                    (StepResult::Skipped, Some(why), reported, None)
                }
                Ended::Failed {
                    text,
                    status,
                    outcome: v,
                } => (
                    StepResult::Failed,
                    Some(text),
                    pick(v, reported),
                    Some(status),
                ),
                Ended::Interrupted(text) => {
                    reporter.info(&text);
                    (
                        StepResult::Interrupted,
                        Some(text),
                        reported,
                        Some(ExitStatus::Interrupted),
                    )
                }
            };
            reporter.step_end(
                &label,
                match result {
                    StepResult::Succeeded => StepStatus::Succeeded,
                    StepResult::Skipped => StepStatus::Skipped,
                    _ => StepStatus::Failed,
                },
            );
            record.steps.push(StepRecord {
                step: *step,
                result,
                correlation_id: Some(correlation_id),
                elapsed_ms: millis(step_started.elapsed()),
                message,
                outcome: value,
            });
            match status {
                Some(ExitStatus::Interrupted) => {
                    failure = Some(PipelineError::Interrupted {
                        environment: target.environment.clone(),
                        step: *step,
                        not_run: Vec::new(),
                    });
                }
                Some(status) => {
                    failure = Some(PipelineError::StepFailed {
                        environment: target.environment.clone(),
                        step: *step,
                        status,
                        not_run: Vec::new(),
                    });
                }
                None => {}
            }
        }
        record.template_name = carry.template.clone();
        record.image_version_id = carry.image_version_id.clone();
        outcome.environments.push(record);
    }
    if let Some(f) = &mut failure {
        let later: Vec<String> = outcome
            .environments
            .iter()
            .filter(|e| e.steps.iter().all(|s| s.result == StepResult::NotRun))
            .map(|e| e.environment.clone())
            .collect();
        match f {
            PipelineError::StepFailed { not_run, .. }
            | PipelineError::Interrupted { not_run, .. } => {
                *not_run = later;
            }
        }
    }
    outcome.succeeded = failure.is_none();
    outcome.elapsed_ms = millis(started.elapsed());
    report_end(&outcome, failure.as_ref(), reporter.as_ref());
    match failure {
        None => Ok(outcome),
        Some(f) => Err(f),
    }
}

fn not_run(step: Step) -> StepRecord {
    StepRecord {
        step,
        result: StepResult::NotRun,
        correlation_id: None,
        elapsed_ms: 0,
        message: None,
        outcome: Value::Null,
    }
}

/// The step's returned outcome, else what it reported (deploy-infra reports one on failure).
fn pick(returned: Value, reported: Value) -> Value {
    if returned.is_null() {
        reported
    } else {
        returned
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reports a step's error in full (once) and turns it into [`Ended::Failed`].
fn failed(
    reporter: &dyn Reporter,
    error: &dyn std::error::Error,
    hint: Option<String>,
    status: ExitStatus,
) -> Ended {
    report_error(reporter, error, hint.as_deref());
    Ended::Failed {
        text: crate::report::error_text(error, hint.as_deref()),
        status,
        outcome: Value::Null,
    }
}

fn value<T: Serialize>(outcome: &T) -> Value {
    serde_json::to_value(outcome).unwrap_or(Value::Null)
}

/// Runs `step` for `target`, racing Ctrl-C (deploy-infra gets the flag and stops between
/// operations instead).
async fn run_step(
    step: Step,
    target: &Target,
    options: &Options,
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
    carry: &mut Carry,
) -> Ended {
    let parameters = &target.parameters;
    let p = &parameters.parameters;
    let stop = &options.stop;
    match step {
        Step::DeployInfra => {
            let opts = deploy_infra::Options {
                what_if: options.what_if,
                interrupt: stop.flag.clone(),
                ..options.deploy_infra.clone()
            };
            match deploy_infra::deploy_infra(parameters, azure, reporter.clone(), &opts).await {
                Ok(o) => {
                    if let Some(out) = &o.outputs {
                        carry.blob_endpoint = Url::parse(&out.storage_blob_endpoint).ok();
                    }
                    if o.what_if {
                        carry.storage_to_create = o
                            .resources
                            .iter()
                            .find(|r| {
                                matches!(
                                    r.kind,
                                    deploy_infra::Kind::StorageAccount
                                        | deploy_infra::Kind::Container
                                ) && r.action == deploy_infra::Action::Create
                            })
                            .map(|_| p.storage_account_name.clone());
                    }
                    Ended::Ok(value(&o))
                }
                Err(deploy_infra::DeployInfraError::Interrupted {
                    applied,
                    not_applied,
                }) => {
                    let err = deploy_infra::DeployInfraError::Interrupted {
                        applied,
                        not_applied,
                    };
                    Ended::Interrupted(err.to_string())
                }
                Err(e) => failed(reporter.as_ref(), &e, e.hint(), e.exit_status()),
            }
        }
        Step::UploadScripts => {
            if let Some(account) = &carry.storage_to_create {
                return Ended::Skipped(format!(
                    "storage account '{account}' does not exist yet (deploy-infra would create it); run without --what-if to upload"
                ));
            }
            let opts = upload_scripts::Options {
                what_if: options.what_if,
                blob_endpoint: options
                    .upload_scripts
                    .blob_endpoint
                    .clone()
                    .or_else(|| carry.blob_endpoint.clone()),
                ..options.upload_scripts.clone()
            };
            let target_azure = upload_scripts::Target::Azure(Box::new(azure.clone()));
            let fut = upload_scripts::upload_scripts(
                parameters,
                &options.root,
                &opts,
                &target_azure,
                reporter,
            );
            tokio::select! {
                r = fut => match r {
                    Ok(o) => Ended::Ok(value(&o)),
                    Err(e) => failed(reporter.as_ref(), &e, None, e.exit_status()),
                },
                () = stop.wait() => Ended::Interrupted(
                    "interrupted: blobs whose upload had not been committed were left as they were".into()),
            }
        }
        Step::TriggerBuild => {
            if let Some(account) = &carry.storage_to_create {
                let named =
                    trigger_build::hash_step_files(p, &parameters.scripts_dir(&options.root))
                        .map(|h| !h.is_empty())
                        .unwrap_or(true);
                if named {
                    return Ended::Skipped(format!(
                        "its scripts would be read from storage account '{account}', which does not exist yet (deploy-infra would create it)"
                    ));
                }
            }
            let opts = trigger_build::Options {
                what_if: options.what_if,
                blob_endpoint: options
                    .trigger_build
                    .blob_endpoint
                    .clone()
                    .or_else(|| carry.blob_endpoint.clone()),
                ..options.trigger_build.clone()
            };
            let fut =
                trigger_build::trigger_build(parameters, &options.root, &opts, azure, reporter);
            tokio::select! {
                r = fut => match r {
                    Ok(o) => {
                        if o.skipped {
                            carry.image_version_id = o.existing_version_id.clone();
                        } else if !o.what_if {
                            carry.template = Some(o.template_name.clone());
                            carry.run_operation = o.run_operation.clone();
                            carry.build_started = true;
                        }
                        Ended::Ok(value(&o))
                    }
                    Err(e) => failed(reporter.as_ref(), &e, e.hint(), e.exit_status()),
                },
                () = stop.wait() => Ended::Interrupted(
                    "interrupted: a template may have been created; remove-templates cleans it up".into()),
            }
        }
        Step::WaitForBuild => {
            let Some(template) = carry.template.clone().filter(|_| carry.build_started) else {
                return Ended::Skipped(if options.what_if {
                    "--what-if: no build was started".to_owned()
                } else {
                    "trigger-build started no build (the newest image already has these inputs)"
                        .to_owned()
                });
            };
            let opts = wait_for_build::Options {
                template: template.clone(),
                run_operation: carry
                    .run_operation
                    .clone()
                    .or_else(|| options.wait_for_build.run_operation.clone()),
                ..options.wait_for_build.clone()
            };
            let fut = wait_for_build::wait_for_build(parameters, &opts, azure, reporter);
            tokio::select! {
                r = fut => match r {
                    Ok(o) => {
                        carry.image_version_id = o
                            .artifact_ids
                            .iter()
                            .find(|id| id.to_ascii_lowercase().contains("/versions/"))
                            .or(o.artifact_ids.first())
                            .cloned();
                        Ended::Ok(value(&o))
                    }
                    Err(e) => failed(reporter.as_ref(), &e, None, e.exit_status()),
                },
                () = stop.wait() => Ended::Interrupted(format!(
                    "interrupted: the build of {template} goes on; re-attach with wait-for-build --env {} --template {template}",
                    target.environment)),
            }
        }
        Step::RemoveTemplates => {
            let opts = remove_templates::Options {
                what_if: options.what_if,
                ..options.remove_templates.clone()
            };
            let fut = remove_templates::remove_templates(parameters, &opts, azure, reporter);
            tokio::select! {
                r = fut => match r {
                    Ok(o) => Ended::Ok(value(&o)),
                    Err(e) => failed(reporter.as_ref(), &e, None, e.exit_status()),
                },
                () = stop.wait() => Ended::Interrupted(
                    "interrupted: deletes already sent go on in Azure; run remove-templates again to see what is left".into()),
            }
        }
    }
}

/// The closing lines, the job summary and the outcome document.
fn report_end(outcome: &Outcome, failure: Option<&PipelineError>, reporter: &dyn Reporter) {
    for env in &outcome.environments {
        if let Some(t) = &env.template_name {
            reporter.info(&format!("{}: image template {t}", env.environment));
        }
        if let Some(v) = &env.image_version_id {
            reporter.info(&format!("{}: image version {v}", env.environment));
        }
    }
    match failure {
        None => reporter.info(&format!(
            "Pipeline done: scope \"{}\" in {}.",
            outcome.scope,
            outcome
                .environments
                .iter()
                .map(|e| e.environment.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(f) => reporter.annotate(&Annotation::error(format!("pipeline stopped: {f}"))),
    }
    if let Err(e) = reporter.summary(&summary_markdown(outcome)) {
        reporter.annotate(&Annotation::warning(format!(
            "job summary not written: {e}"
        )));
    }
    reporter.outcome(value(outcome));
}

/// The job summary: one row per environment and step, then the image versions.
pub fn summary_markdown(outcome: &Outcome) -> String {
    let mut md = format!(
        "### aib run: scope \"{}\"{}\n\n| Environment | Step | Result | Time |\n|---|---|---|---|\n",
        outcome.scope,
        if outcome.what_if { " (what-if)" } else { "" }
    );
    for env in &outcome.environments {
        for s in &env.steps {
            let result = match s.result {
                StepResult::Succeeded => "✅ succeeded",
                StepResult::Failed => "❌ failed",
                StepResult::Skipped => "⏭ skipped",
                StepResult::Interrupted => "⏹ interrupted",
                StepResult::NotRun => "not run",
            };
            let time = if s.result == StepResult::NotRun {
                String::new()
            } else {
                format!("{:.1} s", s.elapsed_ms as f64 / 1000.0)
            };
            md.push_str(&format!(
                "| {} | {} | {result} | {time} |\n",
                env.environment, s.step
            ));
        }
    }
    for env in &outcome.environments {
        if let Some(v) = &env.image_version_id {
            md.push_str(&format!("\n{}: image version `{v}`\n", env.environment));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: Step, result: StepResult) -> StepRecord {
        StepRecord {
            step,
            result,
            correlation_id: None,
            elapsed_ms: 1500,
            message: None,
            outcome: Value::Null,
        }
    }

    /// The summary has a row per environment and step, and names the image version.
    #[test]
    fn summary_lists_every_step_and_the_image_version() {
        let outcome = Outcome {
            scope: Scope::All,
            steps: vec![Step::DeployInfra, Step::TriggerBuild],
            what_if: false,
            environments: vec![
                EnvironmentRecord {
                    environment: "sbx".into(),
                    file: "parameters/sbx.image.parameters.json".into(),
                    steps: vec![
                        record(Step::DeployInfra, StepResult::Succeeded),
                        record(Step::TriggerBuild, StepResult::Failed),
                    ],
                    template_name: None,
                    image_version_id: None,
                },
                EnvironmentRecord {
                    environment: "dev".into(),
                    file: "parameters/dev.image.parameters.json".into(),
                    steps: vec![
                        record(Step::DeployInfra, StepResult::NotRun),
                        record(Step::TriggerBuild, StepResult::NotRun),
                    ],
                    template_name: None,
                    image_version_id: Some("/x/versions/1.0.0".into()),
                },
            ],
            succeeded: false,
            elapsed_ms: 0,
        };
        let md = summary_markdown(&outcome);
        assert!(
            md.contains("| sbx | deploy-infra | ✅ succeeded | 1.5 s |"),
            "{md}"
        );
        assert!(
            md.contains("| sbx | trigger-build | ❌ failed | 1.5 s |"),
            "{md}"
        );
        assert!(md.contains("| dev | deploy-infra | not run |  |"), "{md}");
        assert!(
            md.contains("dev: image version `/x/versions/1.0.0`"),
            "{md}"
        );
    }

    /// The error names the step and environment and what was not run; Ctrl-C is 130.
    #[test]
    fn pipeline_error_names_the_step_and_what_was_not_run() {
        let e = PipelineError::StepFailed {
            environment: "sbx".into(),
            step: Step::WaitForBuild,
            status: ExitStatus::AzureFailure,
            not_run: vec!["dev".into(), "prd".into()],
        };
        assert_eq!(
            e.to_string(),
            "wait-for-build failed in sbx; not run: dev, prd"
        );
        assert_eq!(e.exit_status(), ExitStatus::AzureFailure);
        let i = PipelineError::Interrupted {
            environment: "dev".into(),
            step: Step::DeployInfra,
            not_run: vec![],
        };
        assert_eq!(i.exit_status(), ExitStatus::Interrupted);
    }

    /// A stop asked for before the wait begins is seen at once; one asked for later wakes it.
    #[tokio::test]
    async fn stop_wakes_waiters_before_and_after_the_trigger() {
        let stop = Stop::new();
        stop.trigger();
        tokio::time::timeout(Duration::from_secs(1), stop.wait())
            .await
            .expect("an earlier trigger is seen");
        let later = Stop::new();
        let s = later.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.trigger();
        });
        tokio::time::timeout(Duration::from_secs(1), later.wait())
            .await
            .expect("a later trigger wakes the waiter");
    }
}
