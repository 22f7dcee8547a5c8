//! The Azure Pipelines backend: `##[group]` and `##vso[…]` logging commands on stdout.
//!
//! Issues are `##vso[task.logissue]`, secrets `##vso[task.setsecret]`, outputs
//! `##vso[task.setvariable …;isOutput=true]`, progress `##vso[task.setprogress]`. The job summary
//! is collected and, at [`Reporter::finish`], written to the file given at construction and
//! attached with `##vso[task.uploadsummary]` (one attachment per run rather than one per call,
//! since each attachment becomes its own section). This file never reads the environment.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::ci::{CiLog, Dialect};
use super::escape::{azure_data, azure_line, azure_property};
use super::github::check_output_name;
use super::{
    Annotation, Clock, Level, Output, ProgressId, ReportError, Reporter, StepStatus, SystemClock,
    Unit, lock,
};
use crate::secret::Secret;

/// Reports to an Azure Pipelines log.
pub struct AzurePipelines {
    state: Mutex<State>,
    summary_file: Option<PathBuf>,
    clock: Arc<dyn Clock>,
}

struct State {
    log: CiLog,
    summary: String,
    summary_sent: bool,
    /// The last `task.setprogress` value sent by [`Reporter::percent`], so a wait that polls
    /// every few seconds does not repeat it.
    last_percent: Option<u8>,
}

impl AzurePipelines {
    /// Writes commands to `out` (stdout on an agent); the summary goes to `summary_file`, a path
    /// in the agent's temporary directory whose file name is the summary's title (without it,
    /// the summary is dropped).
    pub fn new(out: Output, summary_file: Option<PathBuf>) -> Self {
        AzurePipelines {
            state: Mutex::new(State {
                log: CiLog::new(
                    out,
                    Dialect {
                        line: azure_line,
                        group: |title| format!("##[group]{}", azure_line(title)),
                        endgroup: "##[endgroup]",
                    },
                ),
                summary: String::new(),
                summary_sent: false,
                last_percent: None,
            }),
            summary_file,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for step durations.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Renders `##vso[area.action key=value;…]message`, leaving out properties without a value.
fn command(action: &str, properties: &[(&str, Option<String>)], message: &str) -> String {
    let props: String = properties
        .iter()
        .filter_map(|(k, v)| v.as_ref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .map(|(k, v)| format!("{k}={};", azure_property(v)))
        .collect();
    let sep = if props.is_empty() { "" } else { " " };
    format!("##vso[{action}{sep}{props}]{}", azure_data(message))
}

impl Reporter for AzurePipelines {
    fn step_start(&self, name: &str) {
        lock(&self.state).log.step_start(name, self.clock.now());
    }

    fn step_end(&self, name: &str, status: StepStatus) {
        lock(&self.state)
            .log
            .step_end(name, status, self.clock.now());
    }

    fn group_start(&self, title: &str) {
        lock(&self.state).log.group_start(title);
    }

    fn group_end(&self) {
        lock(&self.state).log.group_end();
    }

    fn progress_start(&self, title: &str, unit: Unit) -> ProgressId {
        lock(&self.state).log.progress_start(title, unit)
    }

    fn progress(&self, id: ProgressId, done: u64, total: u64, message: &str) {
        let mut st = lock(&self.state);
        let log = &mut st.log;
        let update = log.progress(id, done, total, message);
        if let Some(percent) = update.percent {
            let title = log.masker.mask(&update.title).into_owned();
            log.command(&command(
                "task.setprogress",
                &[("value", Some(percent.to_string()))],
                &title,
            ));
        }
        if let Some(line) = update.line {
            log.text(&line);
        }
    }

    fn status(&self, id: ProgressId, text: &str) {
        lock(&self.state).log.status(id, text);
    }

    fn percent(&self, _id: ProgressId, percent: u8, text: &str) {
        let mut st = lock(&self.state);
        if st.last_percent == Some(percent) {
            return;
        }
        st.last_percent = Some(percent);
        let text = st.log.masker.mask(text).into_owned();
        st.log.command(&command(
            "task.setprogress",
            &[("value", Some(percent.min(100).to_string()))],
            &text,
        ));
    }

    fn progress_finish(&self, id: ProgressId, message: &str) {
        lock(&self.state).log.progress_finish(id, message);
    }

    fn annotate(&self, a: &Annotation) {
        let mut st = lock(&self.state);
        let file = a
            .file
            .as_deref()
            .map(|f| st.log.masker.mask(f).into_owned());
        let message = st.log.masker.mask(&a.message).into_owned();
        let kind = match a.level {
            Level::Error => "error",
            Level::Warning => "warning",
            // Azure Pipelines has no notice issue: a plain line, with the position in front.
            Level::Notice => {
                let at = match (&file, a.line, a.col) {
                    (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}: "),
                    (Some(f), Some(l), None) => format!("{f}:{l}: "),
                    (Some(f), None, _) => format!("{f}: "),
                    (None, ..) => String::new(),
                };
                st.log.text(&format!("notice: {at}{message}"));
                return;
            }
        };
        let line = command(
            "task.logissue",
            &[
                ("type", Some(kind.to_owned())),
                ("sourcepath", file),
                ("linenumber", a.line.map(|n| n.to_string())),
                ("columnnumber", a.col.map(|n| n.to_string())),
            ],
            &message,
        );
        st.log.command(&line);
    }

    fn info(&self, line: &str) {
        lock(&self.state).log.text(line);
    }

    fn output(&self, name: &str, value: &str) -> Result<(), ReportError> {
        check_output_name(name)?;
        let mut st = lock(&self.state);
        let value = st.log.masker.mask(value).into_owned();
        let props = [
            ("variable", Some(name.to_owned())),
            ("isOutput", Some("true".to_owned())),
        ];
        st.log.command(&command("task.setvariable", &props, &value));
        Ok(())
    }

    fn secret(&self, value: &Secret) {
        let mut st = lock(&self.state);
        for piece in st.log.masker.add(value.expose()) {
            st.log.command(&command("task.setsecret", &[], &piece));
        }
    }

    fn summary(&self, markdown: &str) -> Result<(), ReportError> {
        let mut st = lock(&self.state);
        if markdown.is_empty() {
            return Ok(());
        }
        st.summary.push_str(markdown);
        if !st.summary.ends_with('\n') {
            st.summary.push('\n');
        }
        Ok(())
    }

    fn outcome(&self, _outcome: serde_json::Value) {}

    fn finish(&self) -> Result<(), ReportError> {
        let mut st = lock(&self.state);
        st.log.close_groups();
        if let Some(path) = self.summary_file.as_ref()
            && !st.summary.is_empty()
            && !st.summary_sent
        {
            let text = st.log.masker.mask(&st.summary).into_owned();
            let written = match path.parent() {
                Some(dir) => std::fs::create_dir_all(dir),
                None => Ok(()),
            }
            .and_then(|()| std::fs::write(path, text));
            written.map_err(|source| ReportError::File {
                path: path.clone(),
                source,
            })?;
            let path = st.log.masker.mask(&path.to_string_lossy()).into_owned();
            st.log.command(&command("task.uploadsummary", &[], &path));
            st.summary_sent = true;
        }
        st.log.flush().map_err(ReportError::Write)
    }
}
