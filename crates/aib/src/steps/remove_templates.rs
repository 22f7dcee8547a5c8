//! The `remove-templates` step: removes this image's earlier Image Builder templates (and what
//! is left in a user-given staging group), safely and in parallel.
//!
//! Safety first: a template is this image's only when its name is exactly
//! `<namePrefix>-<yyyy-MM-dd-HH-mm-ss>` ([`ImageParameters::is_own_template`]), so a prefix that
//! merely starts another image's prefix (`lin-it` and `lin-it-extra`) never matches; the original
//! pipeline matched by substring and deleted the other image's templates. A template Image
//! Builder would refuse to delete (build `Running`/`Canceling`, template `Creating`/`Deleting`)
//! is listed as skipped with its state, unless `cancel_running` asks to cancel its build first.
//!
//! Plan, then apply: the plan decides per template (delete, keep for retention, skip as busy)
//! and is what `what_if` shows. At most `concurrency` DELETE requests are in flight at once —
//! the write burst ARM throttles — but a request only takes milliseconds: once Image Builder has
//! accepted a delete (202) its permit is handed on, and every accepted delete is followed as a
//! long-running operation at the same time, each at its own `Retry-After`, with its own
//! progress line. So the whole step takes about one delete, not `templates / concurrency`
//! deletes (bounding the whole delete, wait included, made 50 templates take 7 deletes' time).
//! A failed delete does not stop the others; the step fails at the end with every failure.
//! Image Builder removes each template's own staging group; a staging group the parameter file
//! names is emptied (or removed, with `remove_staging_group`) only when no template left in the
//! group still uses it. Leftovers there can be of any type (what a failed build left behind):
//! their api-version comes from the provider's registration ([`ProviderVersions`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::azure::Azure;
use crate::azure::arm::{ArmClient, ArmError, Idempotency, LroOptions, Progress, ProviderVersions};
use crate::azure::image_template::{self, Busy, ImageTemplate, RunState};
use crate::config::ImageParameters;
use crate::config::ParameterFile;
use crate::exit::ExitStatus;
use crate::report::{Reporter, Unit};

/// How the step runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// DELETE requests in flight at once (the long-running deletes they start are all followed
    /// at the same time, whatever this is).
    pub concurrency: usize,
    /// Newest finished templates to keep.
    pub keep: usize,
    /// Delete only templates older than this (by the timestamp in their name).
    pub older_than: Option<Duration>,
    /// Cancel running builds of templates that would be deleted, wait for `Canceled`, delete.
    pub cancel_running: bool,
    /// Delete the user-given staging group itself instead of only its leftover resources.
    pub remove_staging_group: bool,
    /// Plan and report only; send no write.
    pub what_if: bool,
    /// How long to wait for a canceled build to leave `Canceling`.
    pub cancel_timeout: Duration,
    /// How often to read a canceling template.
    pub cancel_poll: Duration,
    /// "Now", for ages (tests pass a fixed time).
    pub now: OffsetDateTime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 8,
            keep: 0,
            older_than: None,
            cancel_running: false,
            remove_staging_group: false,
            what_if: false,
            cancel_timeout: Duration::from_secs(30 * 60),
            cancel_poll: Duration::from_secs(10),
            now: OffsetDateTime::now_utc(),
        }
    }
}

/// Why the step could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// No subscription is known.
    #[error("no subscription: set AZURE_SUBSCRIPTION_ID or --subscription-id")]
    NoSubscription,
    /// Listing the templates failed.
    #[error("listing image templates in resource group '{resource_group}'")]
    List {
        /// The group.
        resource_group: String,
        /// The failure.
        #[source]
        source: ArmError,
    },
    /// Some templates (or staging leftovers) could not be removed; the others were.
    #[error("{failed} of {attempted} removals failed ({deleted} templates deleted): {}", .failures.join("; "))]
    Incomplete {
        /// Failed removals.
        failed: usize,
        /// Removals attempted.
        attempted: usize,
        /// Templates deleted.
        deleted: u64,
        /// One line per failure.
        failures: Vec<String>,
    },
}

impl RemoveError {
    /// A missing subscription is bad input (2); the rest are Azure failures or timeouts.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            RemoveError::NoSubscription => ExitStatus::BadInput,
            RemoveError::List { source, .. } => source.exit_status(),
            RemoveError::Incomplete { .. } => ExitStatus::AzureFailure,
        }
    }
}

/// What happened (or, with what-if, would happen) to one template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Deleted.
    Deleted,
    /// Would be deleted (what-if).
    WouldDelete,
    /// Kept by retention (`--keep`, `--older-than`).
    Kept,
    /// Left alone because Image Builder would refuse the delete now.
    Skipped,
    /// The delete (or the cancel before it) failed.
    Failed,
}

/// One template of this image and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateOutcome {
    /// Template name.
    pub name: String,
    /// When it was made (from its name), RFC 3339.
    pub created: String,
    /// `provisioningState`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// The last build's `runState`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_state: Option<String>,
    /// What happened.
    pub action: Action,
    /// Why (kept, skipped, failed), or that its build was canceled first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What happened to the user-given staging group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StagingOutcome {
    /// The group id.
    pub group: String,
    /// `removed`, `emptied`, `wouldRemove`, `wouldEmpty`, `inUse`, `absent`, `failed`.
    pub action: String,
    /// Leftover resources removed (or that would be).
    pub resources: Vec<String>,
    /// Templates still using it, when in use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
}

/// The step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The templates' resource group.
    pub resource_group: String,
    /// The template name prefix matched exactly.
    pub prefix: String,
    /// Nothing was changed.
    pub what_if: bool,
    /// Templates deleted (or, with what-if, to delete).
    pub deleted: u64,
    /// Templates skipped because busy.
    pub skipped: u64,
    /// Templates kept by retention.
    pub kept: u64,
    /// Deletes that failed.
    pub failed: u64,
    /// Builds canceled before their template was deleted.
    pub canceled: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// This image's templates, newest first.
    pub templates: Vec<TemplateOutcome>,
    /// The user-given staging group, if the parameter file names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging: Option<StagingOutcome>,
}

/// The template name's timestamp (`<prefix>-yyyy-MM-dd-HH-mm-ss`, UTC).
pub fn template_time(prefix: &str, name: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
    let stamp = name.strip_prefix(prefix)?.strip_prefix('-')?;
    time::PrimitiveDateTime::parse(stamp, format)
        .ok()
        .map(|t| t.assume_utc())
}

/// Parses `90s`, `45m`, `12h`, `7d`, `2w` (a number and one unit).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        format!("'{text}' is not an age: use a number and a unit, e.g. 7d, 12h, 30m")
    })?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "'{text}' has no known unit: use s, m, h, d or w (e.g. 7d)"
            ));
        }
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// One template's plan.
#[derive(Debug, Clone)]
struct Planned {
    template: ImageTemplate,
    created: OffsetDateTime,
    decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Delete { cancel_first: bool },
    Keep(String),
    Skip(String),
}

/// Decides per template; `own` must be this image's templates (any order).
fn plan(own: Vec<(ImageTemplate, OffsetDateTime)>, options: &Options) -> Vec<Planned> {
    let mut own = own;
    own.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.name.cmp(&a.0.name)));
    let mut finished_seen = 0usize;
    own.into_iter()
        .map(|(template, created)| {
            let busy = template.busy();
            let young = options.older_than.and_then(|age| {
                let age_now = options.now - created;
                (age_now < age).then(|| {
                    format!(
                        "younger than {} (made {})",
                        crate::azure::elapsed_text(age),
                        crate::azure::elapsed_text(age_now.try_into().unwrap_or_default())
                    )
                })
            });
            let decision = match busy {
                Some(Busy::Provisioning(state)) => Decision::Skip(format!(
                    "template {state}: Image Builder refuses to delete it now"
                )),
                Some(Busy::Run(state)) => {
                    let canceling = RunState::parse(&state) == RunState::Canceling;
                    if let Some(young) = young {
                        Decision::Keep(young)
                    } else if options.cancel_running {
                        Decision::Delete { cancel_first: true }
                    } else if canceling {
                        Decision::Skip(format!(
                            "build {state}: wait for Canceled (a template stuck in Canceling for hours needs a support request to Microsoft)"
                        ))
                    } else {
                        Decision::Skip(format!(
                            "build {state}: pass --cancel-running to cancel it and delete the template"
                        ))
                    }
                }
                None => {
                    finished_seen += 1;
                    if finished_seen <= options.keep {
                        Decision::Keep(format!("one of the newest {} (--keep)", options.keep))
                    } else if let Some(young) = young {
                        Decision::Keep(young)
                    } else {
                        Decision::Delete {
                            cancel_first: false,
                        }
                    }
                }
            };
            Planned {
                template,
                created,
                decision,
            }
        })
        .collect()
}

/// Runs the step: list, plan, then (unless what-if) cancel where asked, delete in parallel and
/// clean the user-given staging group.
pub async fn remove_templates(
    parameters: &ParameterFile,
    options: &Options,
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
) -> Result<Outcome, RemoveError> {
    let started = Instant::now();
    let p = &parameters.parameters;
    let prefix = p.image_template.name_prefix.clone();
    let group = p.resource_group_name.clone();
    let sub = azure
        .identity
        .subscription_id
        .clone()
        .ok_or(RemoveError::NoSubscription)?;

    let all = image_template::list_templates(&azure.arm, &sub, &group)
        .await
        .map_err(|source| RemoveError::List {
            resource_group: group.clone(),
            source,
        })?;
    let own: Vec<(ImageTemplate, OffsetDateTime)> = all
        .iter()
        .filter(|t| is_own(p, &t.name))
        .filter_map(|t| template_time(&prefix, &t.name).map(|at| (t.clone(), at)))
        .collect();
    let others = all.len() - own.len();
    let planned = plan(own, options);

    reporter.info(&format!(
        "{} templates of '{prefix}' in resource group '{group}' ({others} other templates left alone)",
        planned.len()
    ));
    for item in &planned {
        let line = match &item.decision {
            Decision::Delete { cancel_first: true } => format!(
                "  {}: {} (cancel its build first)",
                item.template.name,
                if options.what_if {
                    "would delete"
                } else {
                    "delete"
                }
            ),
            Decision::Delete { .. } => format!(
                "  {}: {}",
                item.template.name,
                if options.what_if {
                    "would delete"
                } else {
                    "delete"
                }
            ),
            Decision::Keep(why) => format!("  {}: keep, {why}", item.template.name),
            Decision::Skip(why) => format!("  {}: skip, {why}", item.template.name),
        };
        reporter.info(&line);
    }

    let mut results: Vec<TemplateOutcome> = planned
        .iter()
        .map(|item| {
            let (action, reason) = match &item.decision {
                Decision::Delete { cancel_first } => (
                    if options.what_if {
                        Action::WouldDelete
                    } else {
                        Action::Deleted
                    },
                    cancel_first.then(|| "its build is canceled first".to_owned()),
                ),
                Decision::Keep(why) => (Action::Kept, Some(why.clone())),
                Decision::Skip(why) => (Action::Skipped, Some(why.clone())),
            };
            TemplateOutcome {
                name: item.template.name.clone(),
                created: item
                    .created
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                provisioning_state: item.template.properties.provisioning_state.clone(),
                run_state: item
                    .template
                    .properties
                    .last_run_status
                    .as_ref()
                    .map(|s| s.run_state.clone()),
                action,
                reason,
            }
        })
        .collect();

    let mut failures = Vec::new();
    let mut canceled = 0u64;
    let mut attempted = 0usize;
    // One bound for every write request of the run: template deletes and staging leftovers.
    let writes = Semaphore::new(options.concurrency.max(1));
    if !options.what_if {
        let jobs: Vec<(usize, String, bool)> = planned
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item.decision {
                Decision::Delete { cancel_first } => {
                    Some((i, item.template.id.clone(), cancel_first))
                }
                _ => None,
            })
            .collect();
        attempted = jobs.len();
        let done: Vec<(usize, bool, Result<(), String>)> =
            futures::future::join_all(jobs.into_iter().map(|(i, id, cancel_first)| {
                let arm = &azure.arm;
                let writes = &writes;
                let name = planned[i].template.name.as_str();
                async move {
                    let r =
                        remove_one(arm, writes, &id, name, cancel_first, options, reporter).await;
                    (i, cancel_first && r.is_ok(), r)
                }
            }))
            .await;
        for (i, was_canceled, result) in done {
            if was_canceled {
                canceled += 1;
            }
            if let Err(why) = result {
                results[i].action = Action::Failed;
                results[i].reason = Some(why.clone());
                failures.push(format!("{}: {why}", results[i].name));
            }
        }
    }

    // The user-given staging group.
    let staging = match p.image_template.staging_resource_group.as_deref() {
        Some(given) if !given.trim().is_empty() => {
            let group_id = staging_group_id(&sub, given);
            Some(
                clean_staging(
                    azure,
                    (&sub, &group),
                    &group_id,
                    &planned
                        .iter()
                        .filter(|i| matches!(i.decision, Decision::Delete { .. }))
                        .map(|i| i.template.name.clone())
                        .collect::<Vec<_>>(),
                    options,
                    (reporter, &writes),
                    &mut failures,
                )
                .await,
            )
        }
        _ => None,
    };

    let count = |a: Action| results.iter().filter(|t| t.action == a).count() as u64;
    let outcome = Outcome {
        resource_group: group,
        prefix,
        what_if: options.what_if,
        deleted: count(Action::Deleted) + count(Action::WouldDelete),
        skipped: count(Action::Skipped),
        kept: count(Action::Kept),
        failed: count(Action::Failed),
        canceled,
        elapsed_ms: started.elapsed().as_millis() as u64,
        templates: results,
        staging,
    };
    render(reporter.as_ref(), &outcome, started.elapsed());
    if !failures.is_empty() {
        return Err(RemoveError::Incomplete {
            failed: failures.len(),
            attempted: attempted + usize::from(outcome.staging.is_some()),
            deleted: count_deleted(&outcome),
            failures,
        });
    }
    Ok(outcome)
}

fn count_deleted(outcome: &Outcome) -> u64 {
    outcome
        .templates
        .iter()
        .filter(|t| t.action == Action::Deleted)
        .count() as u64
}

fn is_own(p: &ImageParameters, name: &str) -> bool {
    p.image_template.is_own_template(name)
}

/// A staging group given as a name or as an id, as an id.
fn staging_group_id(sub: &str, given: &str) -> String {
    let given = given.trim().trim_end_matches('/');
    if given.starts_with('/') {
        given.to_owned()
    } else {
        format!("/subscriptions/{sub}/resourceGroups/{given}")
    }
}

/// Sends one DELETE while holding a write permit and follows it without one: the bound is on
/// requests in flight (the burst ARM throttles), not on the operations they start. A 404 means
/// already gone, unless it says the type or namespace is unknown (a wrong api-version would
/// otherwise pass for a removed resource).
async fn bounded_delete(
    arm: &ArmClient,
    writes: &Semaphore,
    path: &str,
    lro: &LroOptions,
) -> Result<(), ArmError> {
    let started = {
        // Never closed: an error here would only mean the request goes without a permit.
        let _permit = writes.acquire().await;
        arm.begin(
            reqwest::Method::DELETE,
            path,
            None::<&()>,
            Idempotency::Idempotent,
        )
        .await
    };
    match started {
        Ok(started) => arm.wait(started, lro).await.map(|_| ()),
        Err(e) if already_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A 404 about the resource, not about its type or namespace.
fn already_gone(e: &ArmError) -> bool {
    e.is_not_found()
        && !e.code().is_some_and(|c| {
            c.eq_ignore_ascii_case("InvalidResourceType")
                || c.eq_ignore_ascii_case("InvalidResourceNamespace")
        })
}

/// Cancels (when asked) and deletes one template, with a progress line of its own. Cancels are
/// few (one per running build, only with `cancel_running`) and are not bounded.
async fn remove_one(
    arm: &ArmClient,
    writes: &Semaphore,
    id: &str,
    name: &str,
    cancel_first: bool,
    options: &Options,
    reporter: &Arc<dyn Reporter>,
) -> Result<(), String> {
    let progress_id = reporter.progress_start(name, Unit::Items);
    let lro = {
        let reporter = reporter.clone();
        LroOptions {
            progress: Some(Arc::new(move |p: &Progress<'_>| {
                reporter.status(
                    progress_id,
                    &format!("{}, {}", p.state, crate::azure::elapsed_text(p.elapsed)),
                );
            })),
            timeout: None,
        }
    };
    let result = async {
        if cancel_first {
            reporter.status(progress_id, "canceling its build");
            let started = Instant::now();
            let cancel_lro = LroOptions {
                timeout: Some(options.cancel_timeout),
                ..lro.clone()
            };
            match image_template::cancel_run(arm, id, &cancel_lro).await {
                Ok(()) => {}
                Err(ArmError::OperationTimeout { .. }) => return Err(stuck(options)),
                // A build that ended meanwhile cannot be canceled; the delete decides.
                Err(e) if e.code() == Some("OperationNotAllowed") => {}
                Err(e) => {
                    return Err(format!(
                        "cancel failed: {}",
                        crate::report::error_text(&e, None)
                    ));
                }
            }
            let left = options.cancel_timeout.saturating_sub(started.elapsed());
            wait_not_canceling(arm, id, left, options.cancel_poll)
                .await
                .map_err(|e| e.unwrap_or_else(|| stuck(options)))?;
        }
        reporter.status(progress_id, "deleting");
        bounded_delete(arm, writes, id, &lro)
            .await
            .map_err(|e| crate::report::error_text(&e, None))
    }
    .await;
    match &result {
        Ok(()) => reporter.progress_finish(progress_id, "deleted"),
        Err(why) => reporter.progress_finish(progress_id, &format!("failed: {why}")),
    }
    result
}

/// A build still `Canceling` when the wait ended, with Microsoft's advice.
fn stuck(options: &Options) -> String {
    format!(
        "its build is still Canceling after {}; it cannot be deleted until the cancel ends. Microsoft's advice for a template stuck in Canceling: wait and retry later, and if it stays so for hours open a support request (https://aka.ms/azvmimagebuilderts)",
        crate::azure::elapsed_text(options.cancel_timeout)
    )
}

/// Reads the template until its build is no longer `Running`/`Canceling`: `Err(None)` when
/// `limit` passed first, `Err(Some(why))` when a read failed.
async fn wait_not_canceling(
    arm: &ArmClient,
    id: &str,
    limit: Duration,
    poll: Duration,
) -> Result<(), Option<String>> {
    let started = Instant::now();
    loop {
        match image_template::get_template(arm, id).await {
            Ok(None) => return Ok(()),
            Ok(Some(t)) if !t.run_state().is_some_and(|s| s.in_progress()) => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) => return Err(Some(crate::report::error_text(&e, None))),
        }
        let elapsed = started.elapsed();
        if elapsed >= limit {
            return Err(None);
        }
        tokio::time::sleep(poll.min(limit - elapsed)).await;
    }
}

/// Empties (or removes) the user-given staging group when no template left in the group uses it.
/// Leftovers may be of any type: each is deleted with the api-version its provider's
/// registration lists for it (read once per namespace).
async fn clean_staging(
    azure: &Azure,
    (sub, group): (&str, &str),
    group_id: &str,
    planned_deletes: &[String],
    options: &Options,
    (reporter, writes): (&Arc<dyn Reporter>, &Semaphore),
    failures: &mut Vec<String>,
) -> StagingOutcome {
    let mut outcome = StagingOutcome {
        group: group_id.to_owned(),
        action: String::new(),
        resources: Vec::new(),
        used_by: Vec::new(),
    };
    let remaining = match image_template::list_templates(&azure.arm, sub, group).await {
        Ok(all) => all,
        Err(e) => {
            outcome.action = "failed".into();
            failures.push(format!(
                "staging group {group_id}: {}",
                crate::report::error_text(&e, None)
            ));
            return outcome;
        }
    };
    // With what-if nothing was deleted: only the templates that would stay count.
    let would_go = |t: &ImageTemplate| options.what_if && planned_deletes.contains(&t.name);
    outcome.used_by = remaining
        .iter()
        .filter(|t| {
            t.staging_group_id()
                .is_some_and(|g| g.trim_end_matches('/').eq_ignore_ascii_case(group_id))
        })
        .filter(|t| !would_go(t))
        .map(|t| t.name.clone())
        .collect();
    if !outcome.used_by.is_empty() {
        outcome.action = "inUse".into();
        reporter.info(&format!(
            "staging group {group_id} is still used by {}; left as it is",
            outcome.used_by.join(", ")
        ));
        return outcome;
    }
    #[derive(serde::Deserialize)]
    struct Resource {
        id: String,
    }
    let resources: Vec<Resource> = match azure.arm.list(&format!("{group_id}/resources")).await {
        Ok(r) => r,
        Err(e) if e.is_not_found() => {
            outcome.action = "absent".into();
            return outcome;
        }
        Err(e) => {
            outcome.action = "failed".into();
            failures.push(format!(
                "staging group {group_id}: {}",
                crate::report::error_text(&e, None)
            ));
            return outcome;
        }
    };
    outcome.resources = resources.iter().map(|r| r.id.clone()).collect();
    if options.what_if {
        outcome.action = if options.remove_staging_group {
            "wouldRemove".into()
        } else {
            "wouldEmpty".into()
        };
        reporter.info(&format!(
            "staging group {group_id}: would {} ({} leftover resources)",
            if options.remove_staging_group {
                "remove the group"
            } else {
                "remove leftover resources"
            },
            outcome.resources.len()
        ));
        return outcome;
    }
    if options.remove_staging_group {
        match azure.arm.delete(group_id).await {
            Ok(()) => {
                outcome.action = "removed".into();
                reporter.info(&format!("staging group {group_id}: removed"));
            }
            Err(e) => {
                outcome.action = "failed".into();
                failures.push(format!(
                    "staging group {group_id}: {}",
                    crate::report::error_text(&e, None)
                ));
            }
        }
        return outcome;
    }
    let versions = ProviderVersions::new();
    let results: Vec<(String, Result<(), ArmError>)> =
        futures::future::join_all(outcome.resources.iter().map(|id| {
            let (arm, versions) = (&azure.arm, &versions);
            async move {
                let r = match versions.versioned(arm, id).await {
                    Ok(path) => bounded_delete(arm, writes, &path, &LroOptions::default()).await,
                    Err(e) => Err(e),
                };
                (id.clone(), r)
            }
        }))
        .await;
    let mut ok = true;
    for (id, r) in results {
        if let Err(e) = r {
            ok = false;
            failures.push(format!(
                "staging leftover {id}: {}",
                crate::report::error_text(&e, None)
            ));
        }
    }
    outcome.action = if ok { "emptied" } else { "failed" }.into();
    reporter.info(&format!(
        "staging group {group_id}: {} leftover resources removed{}",
        outcome.resources.len(),
        if ok { "" } else { " (some failed)" }
    ));
    outcome
}

/// Outputs, the summary line and table, and the outcome document.
fn render(reporter: &dyn Reporter, outcome: &Outcome, elapsed: Duration) {
    let line = if outcome.what_if {
        format!(
            "what-if: {} would be deleted, {} kept, {} skipped",
            outcome.deleted, outcome.kept, outcome.skipped
        )
    } else {
        format!(
            "{} deleted, {} kept, {} skipped{}{} in {:.1}s",
            outcome.deleted,
            outcome.kept,
            outcome.skipped,
            if outcome.canceled > 0 {
                format!(", {} builds canceled", outcome.canceled)
            } else {
                String::new()
            },
            if outcome.failed > 0 {
                format!(", {} failed", outcome.failed)
            } else {
                String::new()
            },
            elapsed.as_secs_f64()
        )
    };
    reporter.info(&line);
    let names = |a: &[Action]| -> String {
        let list: Vec<&str> = outcome
            .templates
            .iter()
            .filter(|t| a.contains(&t.action))
            .map(|t| t.name.as_str())
            .collect();
        serde_json::to_string(&list).unwrap_or_default()
    };
    let skipped: serde_json::Map<String, serde_json::Value> = outcome
        .templates
        .iter()
        .filter(|t| t.action == Action::Skipped)
        .map(|t| {
            (
                t.name.clone(),
                serde_json::Value::String(t.reason.clone().unwrap_or_default()),
            )
        })
        .collect();
    let outputs = [
        ("deleted", outcome.deleted.to_string()),
        ("skipped", outcome.skipped.to_string()),
        ("kept", outcome.kept.to_string()),
        ("failed", outcome.failed.to_string()),
        (
            "deletedTemplates",
            names(&[Action::Deleted, Action::WouldDelete]),
        ),
        ("keptTemplates", names(&[Action::Kept])),
        (
            "skippedTemplates",
            serde_json::Value::Object(skipped).to_string(),
        ),
    ];
    for (name, value) in outputs {
        if let Err(e) = reporter.output(name, &value) {
            crate::report::report_error(reporter, &e, None);
        }
    }
    let mut md = format!(
        "### remove-templates\n\n{line}\n\n| Template | State | Action | Why |\n|---|---|---|---|\n"
    );
    const ROWS: usize = 100;
    for t in outcome.templates.iter().take(ROWS) {
        let state = match (&t.provisioning_state, &t.run_state) {
            (Some(p), Some(r)) => format!("{p} / build {r}"),
            (Some(p), None) => p.clone(),
            (None, Some(r)) => format!("build {r}"),
            (None, None) => String::new(),
        };
        md.push_str(&format!(
            "| `{}` | {} | {:?} | {} |\n",
            t.name,
            state,
            t.action,
            t.reason.as_deref().unwrap_or("").replace('|', "\\|")
        ));
    }
    if outcome.templates.len() > ROWS {
        md.push_str(&format!(
            "\n… and {} more templates.\n",
            outcome.templates.len() - ROWS
        ));
    }
    if let Some(s) = &outcome.staging {
        md.push_str(&format!(
            "\nStaging group `{}`: {} ({} leftover resources)\n",
            s.group,
            s.action,
            s.resources.len()
        ));
    }
    if let Err(e) = reporter.summary(&md) {
        crate::report::report_error(reporter, &e, None);
    }
    if let Ok(value) = serde_json::to_value(outcome) {
        reporter.outcome(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stamp: &str) -> OffsetDateTime {
        template_time("lin", &format!("lin-{stamp}")).unwrap()
    }

    fn tpl(stamp: &str, run: Option<&str>) -> (ImageTemplate, OffsetDateTime) {
        let mut body = serde_json::json!({
            "id": format!("/x/lin-{stamp}"), "name": format!("lin-{stamp}"),
            "properties": {"provisioningState": "Succeeded"}
        });
        if let Some(run) = run {
            body["properties"]["lastRunStatus"] = serde_json::json!({"runState": run});
        }
        (serde_json::from_value(body).unwrap(), at(stamp))
    }

    fn decisions(planned: &[Planned]) -> Vec<(String, String)> {
        planned
            .iter()
            .map(|p| {
                let d = match &p.decision {
                    Decision::Delete { cancel_first } => format!("delete{cancel_first}"),
                    Decision::Keep(_) => "keep".into(),
                    Decision::Skip(_) => "skip".into(),
                };
                (p.template.name.clone(), d)
            })
            .collect()
    }

    /// Newest first; `keep` counts only finished templates; running builds are skipped unless
    /// canceling was asked for.
    #[test]
    fn plan_keeps_the_newest_finished_and_skips_running_builds() {
        let own = vec![
            tpl("2026-11-01-00-00-00", Some("Succeeded")),
            tpl("2026-11-03-00-00-00", Some("Running")),
            tpl("2026-11-02-00-00-00", Some("Failed")),
            tpl("2026-10-01-00-00-00", None),
        ];
        let options = Options {
            keep: 1,
            now: at("2026-11-28-00-00-00"),
            ..Options::default()
        };
        let d = decisions(&plan(own.clone(), &options));
        let names: Vec<&str> = d.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "lin-2026-11-03-00-00-00",
                "lin-2026-11-02-00-00-00",
                "lin-2026-11-01-00-00-00",
                "lin-2026-10-01-00-00-00"
            ]
        );
        let what: Vec<&str> = d.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(what, ["skip", "keep", "deletefalse", "deletefalse"]);

        let cancel = Options {
            cancel_running: true,
            ..options.clone()
        };
        assert_eq!(decisions(&plan(own, &cancel))[0].1, "deletetrue");
    }

    /// `older_than` keeps templates younger than the age, by the timestamp in their names.
    #[test]
    fn plan_respects_older_than() {
        let own = vec![
            tpl("2026-11-27-12-00-00", None),
            tpl("2026-11-20-00-00-00", None),
        ];
        let options = Options {
            older_than: Some(Duration::from_secs(3 * 86_400)),
            now: at("2026-11-28-00-00-00"),
            ..Options::default()
        };
        let what: Vec<String> = decisions(&plan(own, &options))
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(what, ["keep", "deletefalse"]);
    }

    /// Ages take one number and one unit; anything else is refused with an example.
    #[test]
    fn parse_age_reads_number_and_unit() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(1_209_600)));
        assert!(parse_age("7").unwrap_err().contains("unit"));
        assert!(parse_age("d").unwrap_err().contains("e.g."));
        assert!(parse_age("7 days").is_err());
    }

    /// Only `<prefix>-<timestamp>` names have a time; longer prefixes do not.
    #[test]
    fn template_time_needs_the_exact_prefix() {
        assert!(template_time("lin-it", "lin-it-2026-11-28-10-00-00").is_some());
        assert!(template_time("lin-it", "lin-it-extra-2026-11-28-10-00-00").is_none());
        assert!(template_time("lin-it", "lin-it-2026-11-28").is_none());
    }
}
