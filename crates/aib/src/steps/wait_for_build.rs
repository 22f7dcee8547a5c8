//! The `wait-for-build` step: follow an Image Builder build until it ends, report each phase
//! with its elapsed time, and turn the end into an outcome (the image version on success, the
//! service's message on failure).
//!
//! It re-attaches to any template by name (started by trigger-build, by an earlier job that
//! timed out, or by hand), because it only reads the template's `lastRunStatus`: polls come
//! quickly at first and then at a steady interval. On timeout the build goes on and the error
//! says how to re-attach, unless `cancel_on_timeout` asks to cancel it. Interruption is the
//! binary's business (it owns the signal); [`cancel`] is what it calls. Nothing here prints;
//! every request goes through `azure::arm`.
//!
//! Not yet here (issue 8): streaming `customization.log` while customizing and the log tail on
//! failure, `##vso[task.setprogress]`, following the run's own async operation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::azure::arm::{ArmError, LroOptions};
use crate::azure::image_template::{self, RunState};
use crate::azure::{Azure, AzureError, elapsed_text};
use crate::config::ParameterFile;
use crate::exit::ExitStatus;
use crate::report::{Annotation, Reporter};

/// How the step runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The template to follow.
    pub template: String,
    /// The steady interval between polls (the first polls come sooner).
    pub poll_interval: Duration,
    /// Give up after this long; `None`: the template's build timeout plus a margin.
    pub timeout: Option<Duration>,
    /// Cancel the build when the timeout is reached instead of leaving it running.
    pub cancel_on_timeout: bool,
    /// `PartiallySucceeded` fails the step.
    pub strict: bool,
    /// A "still <phase>" line after this long without one, so a CI log shows the job is alive.
    pub heartbeat: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            template: String::new(),
            poll_interval: Duration::from_secs(15),
            timeout: None,
            cancel_on_timeout: false,
            strict: false,
            heartbeat: Duration::from_secs(5 * 60),
        }
    }
}

/// Why the step failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// No subscription is known.
    #[error(transparent)]
    Azure(#[from] AzureError),
    /// The template does not exist.
    #[error("image template '{name}' not found in resource group '{resource_group}'")]
    NotFound {
        /// Template name.
        name: String,
        /// Resource group.
        resource_group: String,
    },
    /// The template was never run.
    #[error("image template '{0}' has no build to follow (it was never run); run trigger-build")]
    NeverRun(String),
    /// The build ended `Failed` or `Canceled` (or partially, with `strict`).
    #[error("the build of image template '{name}' ended {state}: {message}")]
    BuildFailed {
        /// Template name.
        name: String,
        /// End state.
        state: String,
        /// The service's message.
        message: String,
    },
    /// The timeout was reached.
    #[error(
        "the build of image template '{name}' did not end within {}; {}",
        elapsed_text(*timeout),
        if *canceled { "it was canceled (--cancel-on-timeout)".to_owned() } else { format!("it goes on: re-attach with wait-for-build --template {name}") }
    )]
    Timeout {
        /// Template name.
        name: String,
        /// The limit.
        timeout: Duration,
        /// Whether it was canceled.
        canceled: bool,
    },
    /// An ARM call failed.
    #[error("{what}")]
    Arm {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: ArmError,
    },
}

impl WaitError {
    /// A failed build is 1, a timeout 3, a missing template bad input (2).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            WaitError::Azure(e) => e.exit_status(),
            WaitError::NotFound { .. } | WaitError::NeverRun(_) => ExitStatus::BadInput,
            WaitError::BuildFailed { .. } => ExitStatus::AzureFailure,
            WaitError::Timeout { .. } => ExitStatus::Timeout,
            WaitError::Arm { source, .. } => source.exit_status(),
        }
    }
}

/// One phase the build went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    /// `Queued`, `Building`, `Customizing`, … as Azure spelled it.
    pub name: String,
    /// Seconds seen in this phase (from the polls).
    pub seconds: u64,
}

/// The step's result, as `--output json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Template name.
    pub template_name: String,
    /// End state (`Succeeded`, `PartiallySucceeded`).
    pub run_state: String,
    /// The gallery image version (or other artifact) ids from the run outputs.
    pub artifact_ids: Vec<String>,
    /// The phases seen, in order, with their time.
    pub phases: Vec<Phase>,
    /// The service's message for a partial success.
    pub message: Option<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// The first few polls come this soon after each other, then `poll_interval`.
fn delay(poll: u32, interval: Duration) -> Duration {
    let fast = Duration::from_secs(2).min(interval);
    if poll < 5 { fast } else { interval }
}

/// Asks Image Builder to cancel the template's build and follows the cancel request.
pub async fn cancel(azure: &Azure, template_id: &str) -> Result<(), ArmError> {
    image_template::cancel_run(&azure.arm, template_id, &LroOptions::default()).await
}

/// The template id of `name` in the parameter file's resource group.
pub fn template_id(
    parameters: &ParameterFile,
    azure: &Azure,
    name: &str,
) -> Result<String, WaitError> {
    Ok(image_template::template_id(
        azure.subscription_id()?,
        &parameters.parameters.resource_group_name,
        name,
    ))
}

/// Follows the build to its end (or the timeout).
pub async fn wait_for_build(
    parameters: &ParameterFile,
    options: &Options,
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
) -> Result<Outcome, WaitError> {
    let started = Instant::now();
    let name = options.template.clone();
    let rg = parameters.parameters.resource_group_name.clone();
    let id = template_id(parameters, azure, &name)?;
    let read = |what: &'static str| {
        let name = name.clone();
        move |source| WaitError::Arm {
            what: format!("{what} image template '{name}'"),
            source,
        }
    };
    let raw: Value = azure
        .arm
        .get_optional(&id)
        .await
        .map_err(read("reading"))?
        .ok_or_else(|| WaitError::NotFound {
            name: name.clone(),
            resource_group: rg.clone(),
        })?;
    let timeout = options.timeout.unwrap_or_else(|| {
        // The template's own limit (0 or absent = 240 minutes) plus a margin.
        let minutes = raw["properties"]["buildTimeoutInMinutes"]
            .as_u64()
            .filter(|m| *m > 0)
            .unwrap_or(240);
        Duration::from_secs(minutes * 60 + 30 * 60)
    });
    let first: image_template::ImageTemplate =
        serde_json::from_value(raw).map_err(|e| WaitError::Arm {
            what: format!("reading image template '{name}'"),
            source: ArmError::Decode {
                method: "GET".into(),
                path: id.clone(),
                message: e.to_string(),
            },
        })?;
    reporter.info(&format!(
        "Following the build of image template '{name}' (timeout {})",
        elapsed_text(timeout)
    ));

    let mut phases: Vec<Phase> = Vec::new();
    let mut phase_start = Instant::now();
    let mut polls: u32 = 0;
    let mut last_line = Instant::now();
    let mut template = first;
    loop {
        let status = template.properties.last_run_status.clone();
        let Some(status) = status.filter(|s| !s.run_state.is_empty()) else {
            if polls > 3 {
                return Err(WaitError::NeverRun(name));
            }
            polls += 1;
            tokio::time::sleep(delay(polls, options.poll_interval)).await;
            template = refresh(azure, &id, &name, &rg).await?;
            continue;
        };
        let state = RunState::parse(&status.run_state);
        let label = if state.in_progress() {
            status
                .run_sub_state
                .clone()
                .unwrap_or_else(|| status.run_state.clone())
        } else {
            status.run_state.clone()
        };
        if phases.last().map(|p| p.name.as_str()) != Some(label.as_str()) {
            if let Some(last) = phases.last_mut() {
                last.seconds = phase_start.elapsed().as_secs();
                reporter.info(&format!(
                    "  {}: {}",
                    last.name,
                    elapsed_text(phase_start.elapsed())
                ));
            }
            if state.in_progress() {
                reporter.info(&format!(
                    "{}: {label} (elapsed {})",
                    status.run_state,
                    elapsed_text(started.elapsed())
                ));
                phases.push(Phase {
                    name: label.clone(),
                    seconds: 0,
                });
            }
            phase_start = Instant::now();
            last_line = Instant::now();
        } else if state.in_progress() && last_line.elapsed() >= options.heartbeat {
            reporter.info(&format!(
                "  still {label} after {} (elapsed {})",
                elapsed_text(phase_start.elapsed()),
                elapsed_text(started.elapsed())
            ));
            last_line = Instant::now();
        }
        if !state.in_progress() {
            let message = status.message.clone().filter(|m| !m.is_empty());
            return finish(
                azure,
                reporter,
                options,
                &id,
                name,
                status.run_state,
                message,
                phases,
                started,
            )
            .await;
        }
        if started.elapsed() >= timeout {
            let canceled = options.cancel_on_timeout;
            if canceled {
                cancel(azure, &id).await.map_err(read("canceling"))?;
            }
            return Err(WaitError::Timeout {
                name,
                timeout,
                canceled,
            });
        }
        polls += 1;
        let wait =
            delay(polls, options.poll_interval).min(timeout.saturating_sub(started.elapsed()));
        tokio::time::sleep(wait).await;
        template = refresh(azure, &id, &name, &rg).await?;
    }
}

async fn refresh(
    azure: &Azure,
    id: &str,
    name: &str,
    rg: &str,
) -> Result<image_template::ImageTemplate, WaitError> {
    image_template::get_template(&azure.arm, id)
        .await
        .map_err(|source| WaitError::Arm {
            what: format!("reading image template '{name}'"),
            source,
        })?
        .ok_or_else(|| WaitError::NotFound {
            name: name.to_owned(),
            resource_group: rg.to_owned(),
        })
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
    options: &Options,
    id: &str,
    name: String,
    run_state: String,
    message: Option<String>,
    phases: Vec<Phase>,
    started: Instant,
) -> Result<Outcome, WaitError> {
    let state = RunState::parse(&run_state);
    let failed = match state {
        RunState::Succeeded => false,
        RunState::PartiallySucceeded => options.strict,
        _ => true,
    };
    if failed {
        return Err(WaitError::BuildFailed {
            name,
            state: run_state,
            message: message.unwrap_or_default(),
        });
    }
    let outputs: Vec<Value> =
        azure
            .arm
            .list(&format!("{id}/runOutputs"))
            .await
            .map_err(|source| WaitError::Arm {
                what: format!("reading the run outputs of image template '{name}'"),
                source,
            })?;
    let artifact_ids: Vec<String> = outputs
        .iter()
        .filter_map(|o| {
            o["properties"]["artifactId"]
                .as_str()
                .or(o["properties"]["artifactUri"].as_str())
                .map(str::to_owned)
        })
        .collect();
    if state == RunState::PartiallySucceeded {
        reporter.annotate(&Annotation::warning(format!(
            "the build of image template '{name}' partially succeeded: {}",
            message
                .as_deref()
                .unwrap_or("some distribution targets failed")
        )));
    }
    let outcome = Outcome {
        template_name: name,
        run_state,
        artifact_ids,
        phases,
        message,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let line = format!(
        "build of {} {} in {}: {}",
        outcome.template_name,
        outcome.run_state,
        elapsed_text(started.elapsed()),
        outcome.artifact_ids.join(", ")
    );
    reporter.info(&line);
    let outputs = [
        ("runState", outcome.run_state.clone()),
        (
            "imageVersionId",
            outcome.artifact_ids.first().cloned().unwrap_or_default(),
        ),
    ];
    for (n, v) in outputs {
        if let Err(e) = reporter.output(n, &v) {
            crate::report::report_error(reporter.as_ref(), &e, None);
        }
    }
    let mut md = format!("### wait-for-build\n\n{line}\n\n| Phase | Time |\n|---|---:|\n");
    for p in &outcome.phases {
        md.push_str(&format!("| {} | {} s |\n", p.name, p.seconds));
    }
    if let Err(e) = reporter.summary(&md) {
        crate::report::report_error(reporter.as_ref(), &e, None);
    }
    if let Ok(value) = serde_json::to_value(&outcome) {
        reporter.outcome(value);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first polls come fast (at most 2 s, never slower than the interval), then steady.
    #[test]
    fn polls_are_fast_first_then_steady() {
        let i = Duration::from_secs(15);
        assert_eq!(delay(1, i), Duration::from_secs(2));
        assert_eq!(delay(9, i), i);
        assert_eq!(
            delay(1, Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }

    /// A failed build is exit 1, a timeout 3, a template that does not exist 2.
    #[test]
    fn errors_map_to_exit_codes() {
        let failed = WaitError::BuildFailed {
            name: "t".into(),
            state: "Failed".into(),
            message: "m".into(),
        };
        assert_eq!(failed.exit_status(), ExitStatus::AzureFailure);
        let timeout = WaitError::Timeout {
            name: "t".into(),
            timeout: Duration::from_secs(60),
            canceled: false,
        };
        assert_eq!(timeout.exit_status(), ExitStatus::Timeout);
        assert!(timeout.to_string().contains("wait-for-build --template t"));
        assert_eq!(
            WaitError::NeverRun("t".into()).exit_status(),
            ExitStatus::BadInput
        );
    }
}
