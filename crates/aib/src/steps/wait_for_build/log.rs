//! Following `customization.log` while a build runs, and its tail when the build fails.
//!
//! Image Builder writes the log of each build to the staging storage account
//! (`packerlogs/<guid>/customization.log`, contract 8.9). To find it: the template's
//! `exactStagingResourceGroup` → the storage account in it → its blob endpoint → the newest
//! `<guid>/customization.log` in container `packerlogs` written since the run started. Each poll
//! then reads only the bytes after the ones already shown (a ranged read), and prints the whole
//! new lines, grouped per customizer (`(telemetry) Starting provisioner …` opens a group,
//! `(telemetry) ending …` closes it), so the user sees which provisioner runs.
//!
//! Reading blobs needs a data role (Storage Blob Data Reader); Contributor on the group is not
//! enough. Without it, the follower says once, as a warning, what to grant, and stops: the log
//! is a help, never a reason to fail the wait. Other failures are retried at the next poll and
//! reported once.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::azure::blob::download::{DATA_READER_ROLE, DATA_READER_ROLE_ID};
use crate::azure::blob::{BlobAuth, BlobError, Container};
use crate::azure::storage::StorageAccount;
use crate::azure::{Azure, image_template::ImageTemplate};
use crate::report::{Annotation, Reporter};

/// The container Image Builder writes its logs to.
const CONTAINER: &str = "packerlogs";
/// The log's file name in each build's folder.
const FILE: &str = "customization.log";
/// Logs written this long before the run's start still count as this run's (clock skew).
const START_SLACK: time::Duration = time::Duration::minutes(2);
/// Consecutive failed reads before the user is told (once) that the log cannot be read.
const QUIET_FAILURES: u32 = 3;

/// A customization step as the template lists it, for naming groups and the failing step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Step {
    /// The step's `name`, empty when it has none.
    pub name: String,
    /// `Shell`, `PowerShell`, `File`, …
    pub kind: String,
}

impl Step {
    /// `'name' (Shell, step 2 of 3)` or `Shell step 2 of 3`.
    fn label(&self, index: usize, total: usize) -> String {
        if self.name.is_empty() {
            format!("{} step {index} of {total}", self.kind)
        } else {
            format!("'{}' ({}, step {index} of {total})", self.name, self.kind)
        }
    }
}

/// The template's customization steps, in order.
pub(super) fn steps_of(template: &Value) -> Vec<Step> {
    template["properties"]["customize"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Step {
            name: c["name"].as_str().unwrap_or_default().to_owned(),
            kind: c["type"].as_str().unwrap_or("Shell").to_owned(),
        })
        .collect()
}

/// Where the log is, once found.
struct Found {
    staging: Staging,
    name: String,
    offset: u64,
    /// Bytes of a line not finished yet.
    partial: Vec<u8>,
}

enum State {
    /// Not looked for yet, or not there yet.
    Searching(Option<Staging>),
    /// Being read.
    Found(Found),
    /// Reading is not possible (no data role, no staging group): the user was told once.
    Given,
}

/// Follows one build's `customization.log`.
pub(super) struct LogFollower {
    state: State,
    steps: Vec<Step>,
    /// The last lines read, for the failure tail.
    tail: VecDeque<String>,
    tail_lines: usize,
    /// Provisioners started so far, and whether the last one ended.
    started: usize,
    running: bool,
    group_open: bool,
    failures: u32,
    warned: bool,
    /// The log's URL once known (no SAS: reads use a bearer token).
    url: Option<String>,
}

impl LogFollower {
    /// A follower for a template with these steps, keeping the last `tail_lines` lines.
    pub fn new(steps: Vec<Step>, tail_lines: usize) -> LogFollower {
        LogFollower {
            state: State::Searching(None),
            steps,
            tail: VecDeque::new(),
            tail_lines,
            started: 0,
            running: false,
            group_open: false,
            failures: 0,
            warned: false,
            url: None,
        }
    }

    /// The log's URL, once it was found (or named by the service's failure message).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The customizer that was running last, as `'name' (Shell, step 2 of 3)`.
    pub fn current_step(&self) -> Option<String> {
        (self.running && self.started > 0).then(|| self.step_label(self.started))
    }

    /// `(started, total)` customizers, for the progress estimate.
    pub fn step_counts(&self) -> (usize, usize) {
        (self.started.min(self.steps.len()), self.steps.len())
    }

    /// The lines kept for the tail, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    fn step_label(&self, index: usize) -> String {
        match self.steps.get(index.wrapping_sub(1)) {
            Some(step) => step.label(index, self.steps.len()),
            None => format!("step {index}"),
        }
    }

    /// Closes the group of log lines, so that a line of the wait itself is not hidden in it.
    pub fn close_group(&mut self, reporter: &dyn Reporter) {
        if self.group_open {
            reporter.group_end();
            self.group_open = false;
        }
    }

    /// Reads what was added to the log since the last call and prints its whole lines
    /// (`print`), or only keeps them for the tail (`!print`). Never fails.
    pub async fn poll(
        &mut self,
        azure: &Azure,
        template: &ImageTemplate,
        hint: Option<&str>,
        reporter: &Arc<dyn Reporter>,
        print: bool,
    ) {
        if matches!(self.state, State::Given) {
            return;
        }
        if let State::Searching(_) = self.state
            && let Err(problem) = self.search(azure, template, hint).await
        {
            self.trouble(problem, reporter);
            return;
        }
        let State::Found(found) = &mut self.state else {
            return;
        };
        let chunk = match found
            .staging
            .container
            .read_from(&found.name, found.offset)
            .await
        {
            Ok(chunk) => chunk,
            Err(e) => {
                let problem = Problem::from_blob(e, &found.staging);
                self.trouble(problem, reporter);
                return;
            }
        };
        self.failures = 0;
        if chunk.total.is_some_and(|total| total < found.offset) {
            // The blob was replaced by a shorter one (not something Image Builder does):
            // start again from its beginning at the next poll.
            found.offset = 0;
            found.partial.clear();
            return;
        }
        found.offset += chunk.bytes.len() as u64;
        found.partial.extend_from_slice(&chunk.bytes);
        // Whole lines only while the build writes; the last read (`!print`, the build ended)
        // takes an unfinished last line too.
        let end = if print {
            match found.partial.iter().rposition(|b| *b == b'\n') {
                Some(newline) => newline + 1,
                None => return,
            }
        } else {
            found.partial.len()
        };
        if end == 0 {
            return;
        }
        let rest = found.partial.split_off(end);
        let whole = std::mem::replace(&mut found.partial, rest);
        let text = String::from_utf8_lossy(&whole).into_owned();
        for line in text.lines() {
            self.line(line.trim_end_matches('\r'), reporter.as_ref(), print);
        }
    }

    /// One whole line of the log: kept for the tail, grouped by customizer when printed.
    fn line(&mut self, line: &str, reporter: &dyn Reporter, print: bool) {
        if self.tail.len() == self.tail_lines.max(1) {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        let starting = line.contains("(telemetry) Starting provisioner");
        let ending = line.contains("(telemetry) ending ");
        if starting {
            self.started += 1;
            self.running = true;
        }
        if print {
            if starting {
                self.close_group(reporter);
                let provisioner = line
                    .rsplit("Starting provisioner")
                    .next()
                    .unwrap_or_default()
                    .trim();
                reporter.group_start(&format!(
                    "customization.log: {} [{provisioner}]",
                    self.step_label(self.started)
                ));
                self.group_open = true;
            } else if !self.group_open {
                // Lines of a customizer whose group was closed by a line of the wait itself.
                if self.running {
                    reporter.group_start(&format!(
                        "customization.log: {} (continued)",
                        self.step_label(self.started)
                    ));
                } else {
                    reporter.group_start("customization.log");
                }
                self.group_open = true;
            }
            reporter.info(line);
        }
        if ending {
            self.running = false;
            if print {
                self.close_group(reporter);
            }
        }
    }

    /// Finds the staging account and the newest log of this run.
    async fn search(
        &mut self,
        azure: &Azure,
        template: &ImageTemplate,
        hint: Option<&str>,
    ) -> Result<(), Problem> {
        let staging = match &self.state {
            State::Searching(Some(s)) => s.clone(),
            _ => {
                let s = staging_container(azure, template).await?;
                self.state = State::Searching(Some(s.clone()));
                s
            }
        };
        let container = &staging.container;
        let name = match hint {
            Some(name) => Some(name.to_owned()),
            None => {
                let since = template
                    .properties
                    .last_run_status
                    .as_ref()
                    .and_then(|s| s.start_time.as_deref())
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .map(|t| t - START_SLACK);
                container
                    .list_with_times(None)
                    .await
                    .map_err(|e| Problem::from_blob(e, &staging))?
                    .into_iter()
                    .filter(|b| b.name.ends_with(&format!("/{FILE}")))
                    .filter(|b| match (since, b.last_modified) {
                        (Some(since), Some(modified)) => modified >= since,
                        _ => true,
                    })
                    .max_by_key(|b| b.last_modified)
                    .map(|b| b.name)
            }
        };
        if let Some(name) = name {
            self.url = Some(container.blob_url(&name).to_string());
            self.state = State::Found(Found {
                staging: staging.clone(),
                name,
                offset: 0,
                partial: Vec::new(),
            });
        }
        Ok(())
    }

    /// Makes sure the log is being read from `name` (the path the service's failure message
    /// gives), reading it from its start when it was another or none.
    pub async fn use_log(&mut self, azure: &Azure, template: &ImageTemplate, name: &str) {
        match &self.state {
            State::Found(found) if found.name == name => {}
            State::Found(found) => {
                self.state = State::Searching(Some(found.staging.clone()));
                self.tail.clear();
            }
            State::Given => {
                // The URL is still worth giving, when the account can be read through ARM.
                if self.url.is_none()
                    && let Ok(s) = staging_container(azure, template).await
                {
                    self.url = Some(s.container.blob_url(name).to_string());
                }
                return;
            }
            State::Searching(_) => {}
        }
        if let State::Searching(_) = self.state {
            // A failure here is reported by the poll that follows.
            let _ = self.search(azure, template, Some(name)).await;
        }
    }

    /// Says once why the log cannot be followed; a missing permission stops the follower.
    fn trouble(&mut self, problem: Problem, reporter: &Arc<dyn Reporter>) {
        match problem {
            Problem::Denied(message) => {
                self.close_group(reporter.as_ref());
                reporter.annotate(&Annotation::warning(message));
                self.state = State::Given;
            }
            Problem::Absent => {}
            Problem::Other(message) => {
                self.failures += 1;
                if self.failures >= QUIET_FAILURES && !self.warned {
                    self.warned = true;
                    self.close_group(reporter.as_ref());
                    reporter.annotate(&Annotation::warning(format!(
                        "cannot read customization.log (the build is still being followed): {message}"
                    )));
                }
            }
        }
    }
}

/// Why the log could not be read this time.
enum Problem {
    /// A permission is missing: the message says which role to grant.
    Denied(String),
    /// Not there yet (no staging group, account or container yet).
    Absent,
    /// Anything else (retried at the next poll).
    Other(String),
}

impl Problem {
    fn from_blob(error: BlobError, staging: &Staging) -> Problem {
        match &error {
            BlobError::NoDataRole { .. } | BlobError::Service { status: 403, .. } => {
                Problem::Denied(format!(
                    "cannot show customization.log: the caller has no data role on the staging storage account '{}' ({error}); grant it '{DATA_READER_ROLE}' (role id {DATA_READER_ROLE_ID}) there, e.g. `az role assignment create --role \"{DATA_READER_ROLE}\" --assignee <client-id> --scope {}` (or on the staging resource group or the subscription). The build is still being followed.",
                    staging.account, staging.account_id
                ))
            }
            BlobError::Service { status: 404, .. } => Problem::Absent,
            _ => Problem::Other(error.to_string()),
        }
    }
}

/// The staging account's `packerlogs` container, and which account it is.
#[derive(Clone)]
struct Staging {
    container: Container,
    account: String,
    account_id: String,
}

/// The `packerlogs` container of the template's staging storage account.
async fn staging_container(azure: &Azure, template: &ImageTemplate) -> Result<Staging, Problem> {
    #[derive(Deserialize)]
    struct Resource {
        #[serde(default)]
        id: String,
        #[serde(default, rename = "type")]
        kind: String,
    }
    let Some(group) = template.staging_group_id() else {
        return Err(Problem::Absent);
    };
    let arm_problem = |what: &str, e: crate::azure::arm::ArmError| match e.status() {
        Some(403) => Problem::Denied(format!(
            "cannot show customization.log: the caller may not {what} in the staging resource group {group} ({e}); grant it Reader and '{DATA_READER_ROLE}' there. The build is still being followed."
        )),
        Some(404) => Problem::Absent,
        _ => Problem::Other(format!("{what}: {e}")),
    };
    let resources: Vec<Resource> = azure
        .arm
        .list(&format!("{group}/resources"))
        .await
        .map_err(|e| arm_problem("list the resources", e))?;
    let Some(account_id) = resources
        .into_iter()
        .find(|r| {
            r.kind
                .eq_ignore_ascii_case("Microsoft.Storage/storageAccounts")
        })
        .map(|r| r.id)
    else {
        return Err(Problem::Absent);
    };
    let account: StorageAccount = azure
        .arm
        .get(&account_id)
        .await
        .map_err(|e| arm_problem("read the storage account", e))?;
    let name = account
        .name
        .clone()
        .unwrap_or_else(|| account_id.rsplit('/').next().unwrap_or_default().to_owned());
    let Some(endpoint) = account.blob_endpoint() else {
        return Err(Problem::Absent);
    };
    let container = Container::new(
        &endpoint,
        &name,
        CONTAINER,
        BlobAuth::Bearer(azure.tokens.as_token_credential()),
        &azure.http,
        azure_core::http::RetryOptions::default(),
    )
    .map_err(|e| Problem::Other(e.to_string()))?;
    Ok(Staging {
        container,
        account: name,
        account_id,
    })
}

/// The blob name (`<guid>/customization.log`) a failure message points at, if it does.
pub(super) fn log_name_in(message: &str) -> Option<String> {
    let start = message.find("packerlogs/")? + "packerlogs/".len();
    let rest = &message[start..];
    let end = rest.find(FILE)? + FILE.len();
    let name = &rest[..end];
    (!name.contains(char::is_whitespace)).then(|| name.to_owned())
}

/// The failing step as the service's message names it (`Failed step: …`), if it does.
pub(super) fn failed_step_in(message: &str) -> Option<String> {
    let start = message.find("Failed step: ")? + "Failed step: ".len();
    let rest = &message[start..];
    let end = rest.find(". ").unwrap_or(rest.len());
    let step = rest[..end].trim().trim_end_matches('.');
    (!step.is_empty()).then(|| step.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log path is read out of the service's failure message, in both the ARM-id and the
    /// URL form; text without one gives none.
    #[test]
    fn log_name_is_found_in_the_failure_message() {
        let arm = "… Image Build log location: /subscriptions/s/resourceGroups/IT_x/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers/packerlogs/0b1c/customization.log. OperationId: X.";
        assert_eq!(log_name_in(arm).as_deref(), Some("0b1c/customization.log"));
        let url = "see https://a.blob.core.windows.net/packerlogs/9f/customization.log for details";
        assert_eq!(log_name_in(url).as_deref(), Some("9f/customization.log"));
        assert_eq!(log_name_in("context deadline exceeded"), None);
    }

    /// The failing step is taken from `Failed step: …` up to the sentence's end.
    #[test]
    fn failed_step_is_read_from_the_message() {
        let m = "exit status 1. Failed step: 'fail' (Shell customizer 2 of 2). For more troubleshooting steps go to https://aka.ms/x.";
        assert_eq!(
            failed_step_in(m).as_deref(),
            Some("'fail' (Shell customizer 2 of 2)")
        );
        assert_eq!(failed_step_in("Image build failed in Building"), None);
    }

    /// Lines are grouped per provisioner with the step's name, the running step is known until
    /// its `ending` line, and the tail keeps only the last lines.
    #[test]
    fn lines_are_grouped_per_customizer_and_the_tail_is_bounded() {
        let capture = crate::report::Capture::new();
        let reporter: Arc<dyn Reporter> = Arc::new(crate::report::GitHub::new(
            capture.writer(),
            crate::report::GitHubFiles::default(),
        ));
        let steps = vec![
            Step {
                name: "hello".into(),
                kind: "Shell".into(),
            },
            Step {
                name: String::new(),
                kind: "File".into(),
            },
        ];
        let mut f = LogFollower::new(steps, 3);
        for line in [
            "PACKER OUT Build 'azure-arm' started",
            "(telemetry) Starting provisioner shell",
            "PACKER OUT + echo hi",
            "(telemetry) ending shell",
            "(telemetry) Starting provisioner file",
            "PACKER ERR boom",
        ] {
            f.line(line, reporter.as_ref(), true);
        }
        assert_eq!(f.current_step().as_deref(), Some("File step 2 of 2"));
        assert_eq!(f.step_counts(), (2, 2));
        // A line of the wait closes the group; the customizer's next lines reopen it.
        f.close_group(reporter.as_ref());
        f.line("PACKER ERR more", reporter.as_ref(), true);
        f.close_group(reporter.as_ref());
        assert_eq!(
            f.tail(),
            [
                "(telemetry) Starting provisioner file",
                "PACKER ERR boom",
                "PACKER ERR more"
            ]
        );
        let text = capture.text();
        assert!(
            text.contains("::group::customization.log: 'hello' (Shell, step 1 of 2) [shell]\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "::group::customization.log: File step 2 of 2 [file]\n(telemetry) Starting provisioner file\nPACKER ERR boom\n::endgroup::\n::group::customization.log: File step 2 of 2 (continued)\nPACKER ERR more\n::endgroup::"
            ),
            "{text}"
        );
        assert!(
            text.starts_with("::group::customization.log\nPACKER OUT Build"),
            "{text}"
        );
    }
}
