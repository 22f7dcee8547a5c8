//! The `wait-for-build` step: follow an Image Builder build until it ends, report each phase
//! with its elapsed time, and turn the end into an outcome (the image version on success, the
//! service's message, the failing customizer and the log's tail on failure).
//!
//! It re-attaches to any template by name (started by trigger-build, by an earlier job that
//! timed out, or by hand), because the source of truth is the template's `lastRunStatus`
//! (contract 2.6: for builds of hours the resource itself is read). When the caller knows the
//! run's operation (the `Azure-AsyncOperation` of `POST …/run`), that is followed too, at the
//! pace its `Retry-After` asks, and its error (code and message) completes a failure. Polls of
//! the template come quickly at first and then at a steady interval, never sooner than a
//! `Retry-After` the service sent.
//!
//! What the user sees: one line per phase change and a heartbeat when a phase lasts (CI logs),
//! a live status line on a terminal ([`Options::live_status`]), an estimated percentage for
//! Azure Pipelines' task progress ([`Reporter::percent`]), and, while `Customizing`, the new
//! lines of `customization.log` grouped per customizer ([`log`]). On timeout the build goes on
//! and the error says how to re-attach, unless `cancel_on_timeout` asks to cancel it.
//! Interruption is the binary's business (it owns the signal); [`cancel`] is what it calls.
//! Nothing here prints; every ARM request goes through `azure::arm`, blob reads through
//! `azure::blob`.

mod log;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::azure::arm::{ArmError, ErrorDetail, Idempotency, LroOptions, retry};
use crate::azure::image_template::{self, ImageTemplate, RunState};
use crate::azure::{Azure, AzureError, elapsed_text};
use crate::config::ParameterFile;
use crate::exit::ExitStatus;
use crate::report::{Annotation, ProgressId, Reporter, Unit};

use log::LogFollower;

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
    /// The run's operation-status URL (the `Azure-AsyncOperation` header of `POST …/run`),
    /// when the caller started the build; followed in addition to `lastRunStatus`.
    pub run_operation: Option<String>,
    /// Keep a live status line (the phase and its elapsed time) for a person at a terminal; the
    /// heartbeat lines are then left out. Binaries set it when stderr is a TTY.
    pub live_status: bool,
    /// Stream `customization.log` while customizing and show its tail on failure.
    pub follow_log: bool,
    /// Lines of `customization.log` shown when the build fails.
    pub log_tail_lines: usize,
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
            run_operation: None,
            live_status: false,
            follow_log: true,
            log_tail_lines: 100,
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
    #[error(
        "the build of image template '{name}' ended {state}: {message}{}{}",
        customizer.as_deref().map(|c| format!("\nfailing customizer: {c}")).unwrap_or_default(),
        log_url.as_deref().map(|u| format!("\ncustomization.log: {u}")).unwrap_or_default()
    )]
    BuildFailed {
        /// Template name.
        name: String,
        /// End state.
        state: String,
        /// The service's message.
        message: String,
        /// The customizer that failed, when the message or the log says.
        customizer: Option<String>,
        /// Where `customization.log` is (a blob URL without any SAS).
        log_url: Option<String>,
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
    /// Where the build's `customization.log` is, when it was found (no SAS in it).
    pub log_url: Option<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// The JSON Schema of [`Outcome`] (what `--output json` prints as `outcome`).
pub fn outcome_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Outcome)).unwrap_or_default()
}

/// The first few polls come this soon after each other, then `poll_interval`.
fn delay(poll: u32, interval: Duration) -> Duration {
    let fast = Duration::from_secs(2).min(interval);
    if poll < 5 { fast } else { interval }
}

/// An estimate of how far a build is, by its phase (and, while customizing, by the customizers
/// started), for a task progress bar: phases do not take equal time, but they come in order.
fn estimate(phase: &str, steps_started: usize, steps: usize) -> u8 {
    match phase.to_ascii_lowercase().as_str() {
        "queued" => 2,
        "building" => 10,
        "customizing" => {
            let share = (45 * steps_started.min(steps))
                .checked_div(steps)
                .unwrap_or(0);
            25 + u8::try_from(share).unwrap_or(45)
        }
        "optimizing" => 72,
        "validating" => 78,
        "distributing" => 85,
        _ => 0,
    }
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

/// The template as ARM returns it, and the `Retry-After` it asked for, if any.
struct Read {
    raw: Value,
    template: ImageTemplate,
    retry_after: Option<Duration>,
}

async fn read_template(azure: &Azure, id: &str, name: &str, rg: &str) -> Result<Read, WaitError> {
    let arm_error = |source| WaitError::Arm {
        what: format!("reading image template '{name}'"),
        source,
    };
    let response = match azure
        .arm
        .send(Method::GET, id, None::<&()>, Idempotency::Idempotent)
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_not_found() => {
            return Err(WaitError::NotFound {
                name: name.to_owned(),
                resource_group: rg.to_owned(),
            });
        }
        Err(e) => return Err(arm_error(e)),
    };
    let raw = response.json_value().unwrap_or(Value::Null);
    let template = serde_json::from_value(raw.clone()).map_err(|e| {
        arm_error(ArmError::Decode {
            method: "GET".into(),
            path: id.to_owned(),
            message: e.to_string(),
        })
    })?;
    Ok(Read {
        raw,
        template,
        retry_after: retry::retry_after(&response.headers, SystemTime::now()),
    })
}

/// The run's async operation, polled no sooner than its `Retry-After`.
struct RunOperation {
    /// The path (and query: its opaque `t`/`c` parameters are kept) on the ARM endpoint.
    path: String,
    next: Instant,
    /// `Succeeded`, `Failed`, `Canceled` once it ended.
    end: Option<String>,
    error: Option<ErrorDetail>,
    /// Polls of the template since the operation ended while `lastRunStatus` still ran.
    lag: u32,
}

impl RunOperation {
    /// Accepts only a URL on the ARM endpoint (the token goes nowhere else).
    fn new(url: &str, azure: &Azure) -> Option<RunOperation> {
        let endpoint = azure.arm.endpoint().as_str();
        let rest = url.strip_prefix(endpoint)?;
        Some(RunOperation {
            path: format!("/{}", rest.trim_start_matches('/')),
            next: Instant::now(),
            end: None,
            error: None,
            lag: 0,
        })
    }

    /// One status read when it is due; the next is no sooner than the `Retry-After` it
    /// answers (`interval` without one), nor than `floor`. `Err` says why following it stops.
    async fn poll(
        &mut self,
        azure: &Azure,
        interval: Duration,
        floor: Duration,
    ) -> Result<(), ArmError> {
        if self.end.is_some() || Instant::now() < self.next {
            return Ok(());
        }
        let response = azure
            .arm
            .send(
                Method::GET,
                &self.path,
                None::<&()>,
                Idempotency::Idempotent,
            )
            .await?;
        let asked = retry::retry_after(&response.headers, SystemTime::now());
        self.next = Instant::now() + asked.unwrap_or(interval).max(floor);
        let body = response.json_value().unwrap_or(Value::Null);
        let status = body["status"].as_str().unwrap_or("InProgress");
        if matches!(
            status.to_ascii_lowercase().as_str(),
            "succeeded" | "failed" | "canceled" | "cancelled"
        ) {
            self.end = Some(status.to_owned());
            self.error = body
                .get("error")
                .and_then(|e| serde_json::from_value::<ErrorDetail>(e.clone()).ok());
        }
        Ok(())
    }
}

/// How long a build that ended waits for its operation's next read (for its error code).
const OPERATION_END_WAIT: Duration = Duration::from_secs(10);

/// The live status line and the task percentage.
struct Live {
    id: Option<ProgressId>,
    percent: Option<u8>,
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
    let first = read_template(azure, &id, &name, &rg).await?;
    let timeout = options.timeout.unwrap_or_else(|| {
        // The template's own limit (0 or absent = 240 minutes) plus a margin.
        let minutes = first.raw["properties"]["buildTimeoutInMinutes"]
            .as_u64()
            .filter(|m| *m > 0)
            .unwrap_or(240);
        Duration::from_secs(minutes * 60 + 30 * 60)
    });
    reporter.info(&format!(
        "Following the build of image template '{name}' (timeout {})",
        elapsed_text(timeout)
    ));
    let mut operation = options
        .run_operation
        .as_deref()
        .and_then(|url| match RunOperation::new(url, azure) {
            Some(op) => Some(op),
            None => {
                reporter.annotate(&Annotation::warning(format!(
                    "the run operation URL is not on the ARM endpoint {}; following lastRunStatus only",
                    azure.arm.endpoint()
                )));
                None
            }
        });
    let mut follower = LogFollower::new(log::steps_of(&first.raw), options.log_tail_lines);
    let mut live = Live {
        id: options
            .live_status
            .then(|| reporter.progress_start("Image build", Unit::Items)),
        percent: None,
    };

    let mut phases: Vec<Phase> = Vec::new();
    let mut phase_start = Instant::now();
    let mut polls: u32 = 0;
    let mut last_line = Instant::now();
    let mut read = first;
    let mut customizing_seen = false;
    let result = loop {
        let template = &read.template;
        let status = template.properties.last_run_status.clone();
        let Some(status) = status.filter(|s| !s.run_state.is_empty()) else {
            if polls > 3 {
                break Err(WaitError::NeverRun(name.clone()));
            }
            polls += 1;
            tokio::time::sleep(delay(polls, options.poll_interval)).await;
            match read_template(azure, &id, &name, &rg).await {
                Ok(r) => read = r,
                Err(e) => break Err(e),
            }
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
        let customizing = state.in_progress() && label.eq_ignore_ascii_case("customizing");
        if phases.last().map(|p| p.name.as_str()) != Some(label.as_str()) {
            follower.close_group(reporter.as_ref());
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
        } else if state.in_progress()
            && !options.live_status
            && last_line.elapsed() >= options.heartbeat
        {
            follower.close_group(reporter.as_ref());
            reporter.info(&format!(
                "  still {label} after {} (elapsed {})",
                elapsed_text(phase_start.elapsed()),
                elapsed_text(started.elapsed())
            ));
            last_line = Instant::now();
        }
        // The log: new lines while customizing, and once more when customizing just ended so
        // its last lines are not lost.
        if options.follow_log && (customizing || customizing_seen) {
            follower.poll(azure, template, None, reporter, true).await;
            customizing_seen = customizing;
        }
        if state.in_progress() {
            let (done, total) = follower.step_counts();
            let percent = estimate(&label, done, total);
            let step = follower
                .current_step()
                .filter(|_| customizing)
                .map(|s| format!(", {s}"))
                .unwrap_or_default();
            let text = format!(
                "{} / {label} {}{step} (elapsed {})",
                status.run_state,
                elapsed_text(phase_start.elapsed()),
                elapsed_text(started.elapsed())
            );
            if live.percent != Some(percent) {
                live.percent = Some(percent);
                reporter.percent(live.id.unwrap_or(ProgressId(0)), percent, &label);
            }
            if let Some(id) = live.id {
                reporter.status(id, &text);
            }
        }

        // The run's operation, when known: its end (with its error) may come before the
        // template shows it; after a few polls it is taken as the end.
        if let Some(op) = operation.as_mut() {
            let floor = delay(polls, options.poll_interval);
            // The template says the build ended: read the operation's end too (its error code)
            // when its next read is due soon, without polling it before its Retry-After.
            let soon = op.next.saturating_duration_since(Instant::now());
            if !state.in_progress() && op.end.is_none() && soon <= OPERATION_END_WAIT {
                tokio::time::sleep(soon).await;
            }
            if let Err(e) = op.poll(azure, options.poll_interval, floor).await {
                reporter.annotate(&Annotation::warning(format!(
                    "cannot read the run's operation status (following lastRunStatus only): {e}"
                )));
                operation = None;
            }
        }
        let op_end = operation.as_mut().and_then(|op| {
            let end = op.end.clone()?;
            if state.in_progress() {
                op.lag += 1;
            }
            Some((end, op.error.clone(), op.lag))
        });

        let ended = if !state.in_progress() {
            Some((status.run_state.clone(), status.message.clone()))
        } else {
            match &op_end {
                Some((end, error, lag)) if *lag > 3 => {
                    Some((end.clone(), error.as_ref().map(|e| e.message.clone())))
                }
                _ => None,
            }
        };
        if let Some((run_state, message)) = ended {
            follower.close_group(reporter.as_ref());
            let mut message = message.filter(|m| !m.is_empty());
            if let Some((_, Some(error), _)) = &op_end
                && !error.code.is_empty()
            {
                let text = message.unwrap_or_else(|| error.message.clone());
                message = Some(if text.contains(&error.code) {
                    text
                } else {
                    format!("{}: {text}", error.code)
                });
            }
            break finish(
                azure,
                reporter,
                options,
                &id,
                &read.template,
                &mut follower,
                End {
                    name: name.clone(),
                    run_state,
                    message,
                    phases: std::mem::take(&mut phases),
                    started,
                },
            )
            .await;
        }
        if started.elapsed() >= timeout {
            follower.close_group(reporter.as_ref());
            let canceled = options.cancel_on_timeout;
            if canceled && let Err(source) = cancel(azure, &id).await {
                break Err(WaitError::Arm {
                    what: format!("canceling image template '{name}'"),
                    source,
                });
            }
            break Err(WaitError::Timeout {
                name: name.clone(),
                timeout,
                canceled,
            });
        }
        polls += 1;
        let mut wait = delay(polls, options.poll_interval);
        if let Some(asked) = read.retry_after {
            wait = wait.max(asked);
        }
        if let Some(op) = &operation
            && op.end.is_none()
        {
            // Wake for the operation when it is due before the template.
            wait = wait.min(op.next.saturating_duration_since(Instant::now()));
        }
        let wait = wait.min(timeout.saturating_sub(started.elapsed()));
        tokio::time::sleep(wait).await;
        match read_template(azure, &id, &name, &rg).await {
            Ok(r) => read = r,
            Err(e) => {
                follower.close_group(reporter.as_ref());
                break Err(e);
            }
        }
    };
    if let Some(id) = live.id {
        let last = match &result {
            Ok(o) => o.run_state.clone(),
            Err(WaitError::BuildFailed { state, .. }) => state.clone(),
            Err(WaitError::Timeout { .. }) => "timed out".to_owned(),
            Err(_) => "stopped".to_owned(),
        };
        reporter.progress_finish(id, &last);
    }
    result
}

/// How the build ended, for [`finish`].
struct End {
    name: String,
    run_state: String,
    message: Option<String>,
    phases: Vec<Phase>,
    started: Instant,
}

async fn finish(
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
    options: &Options,
    id: &str,
    template: &ImageTemplate,
    follower: &mut LogFollower,
    end: End,
) -> Result<Outcome, WaitError> {
    let End {
        name,
        run_state,
        message,
        phases,
        started,
    } = end;
    let state = RunState::parse(&run_state);
    let failed = match state {
        RunState::Succeeded => false,
        RunState::PartiallySucceeded => options.strict,
        _ => true,
    };
    if failed {
        let message = message.unwrap_or_default();
        let mut customizer = log::failed_step_in(&message);
        let mut log_url = None;
        if options.follow_log {
            // Read the log to its end: the one the message names, else this run's newest.
            if let Some(log_name) = log::log_name_in(&message) {
                follower.use_log(azure, template, &log_name).await;
            }
            follower.poll(azure, template, None, reporter, false).await;
            customizer = customizer.or_else(|| follower.current_step());
            log_url = follower.url().map(str::to_owned);
            show_tail(reporter.as_ref(), &follower.tail(), log_url.as_deref());
        }
        return Err(WaitError::BuildFailed {
            name,
            state: run_state,
            message,
            customizer,
            log_url,
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
        log_url: follower.url().map(str::to_owned),
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

/// The last lines of the log: in a collapsible group for reading, and as an error annotation
/// so the CI's summary of the run shows them without opening the log.
fn show_tail(reporter: &dyn Reporter, tail: &[String], url: Option<&str>) {
    if tail.is_empty() {
        return;
    }
    let title = format!("customization.log: last {} lines", tail.len());
    {
        let _group = reporter.group(&title);
        for line in tail {
            reporter.info(line);
        }
    }
    let mut text = match url {
        Some(url) => format!("{title} ({url}):\n"),
        None => format!("{title}:\n"),
    };
    text.push_str(&tail.join("\n"));
    reporter.annotate(&Annotation::error(text));
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

    /// A failed build is exit 1, a timeout 3, a template that does not exist 2; a failure
    /// names the customizer and the log when known.
    #[test]
    fn errors_map_to_exit_codes() {
        let failed = WaitError::BuildFailed {
            name: "t".into(),
            state: "Failed".into(),
            message: "m".into(),
            customizer: Some("'boom' (Shell, step 1 of 1)".into()),
            log_url: Some("https://a.blob.core.windows.net/packerlogs/g/customization.log".into()),
        };
        assert_eq!(failed.exit_status(), ExitStatus::AzureFailure);
        assert_eq!(
            failed.to_string(),
            "the build of image template 't' ended Failed: m\nfailing customizer: 'boom' (Shell, step 1 of 1)\ncustomization.log: https://a.blob.core.windows.net/packerlogs/g/customization.log"
        );
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

    /// The estimate only moves forward with the phases and, while customizing, with the
    /// customizers started; unknown phases say 0.
    #[test]
    fn estimate_grows_with_the_phases() {
        let order = [
            "Queued",
            "Building",
            "Customizing",
            "Optimizing",
            "Validating",
            "Distributing",
        ];
        let values: Vec<u8> = order.iter().map(|p| estimate(p, 0, 3)).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        assert_eq!(estimate("customizing", 0, 2), 25);
        assert_eq!(estimate("Customizing", 1, 2), 47);
        assert_eq!(estimate("Customizing", 5, 2), 70);
        assert!(estimate("Customizing", 2, 2) < estimate("Optimizing", 0, 0));
        assert_eq!(estimate("Paused", 0, 0), 0);
    }

    /// The outcome's JSON format is reviewed like code: any change shows in this snapshot.
    #[test]
    fn outcome_schema_is_stable() {
        insta::assert_json_snapshot!(outcome_schema());
    }
}
