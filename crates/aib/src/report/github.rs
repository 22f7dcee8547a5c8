//! The GitHub Actions backend: workflow commands on stdout, outputs and the summary in files.
//!
//! Follows `actions/toolkit` `packages/core`: `::group::`, `::error file=…,line=…,col=…::`,
//! `::add-mask::`; outputs appended to `$GITHUB_OUTPUT` in heredoc form with a random
//! `ghadelimiter_<uuid>` (refused if the value contains it); Markdown appended to
//! `$GITHUB_STEP_SUMMARY`. The file paths are given at construction; this file never reads the
//! environment.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::ci::{CiLog, Dialect};
use super::escape::{github_data, github_line, github_property};
use super::{
    Annotation, Clock, Output, ProgressId, ReportError, Reporter, StepStatus, SystemClock, Unit,
    lock,
};
use crate::secret::Secret;

/// The files the runner reads back after the step (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitHubFiles {
    /// Where outputs go; without it they fall back to the deprecated `::set-output` command.
    pub output: Option<PathBuf>,
    /// Where the job summary goes; without it the summary is dropped.
    pub step_summary: Option<PathBuf>,
}

/// Makes a heredoc delimiter; random in production, fixed in tests.
type Delimiter = Box<dyn Fn() -> String + Send + Sync>;

/// Reports to a GitHub Actions log.
pub struct GitHub {
    state: Mutex<CiLog>,
    files: GitHubFiles,
    clock: Arc<dyn Clock>,
    delimiter: Delimiter,
}

impl GitHub {
    /// Writes commands to `out` (stdout in a workflow) and outputs/summary to `files`.
    pub fn new(out: Output, files: GitHubFiles) -> Self {
        GitHub {
            state: Mutex::new(CiLog::new(
                out,
                Dialect {
                    line: github_line,
                    group: |title| command("group", &[], title),
                    endgroup: "::endgroup::",
                },
            )),
            files,
            clock: Arc::new(SystemClock),
            delimiter: Box::new(|| format!("ghadelimiter_{}", uuid::Uuid::new_v4())),
        }
    }

    /// Uses `clock` for step durations.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `delimiter` to make heredoc delimiters (tests fix it to compare files exactly).
    pub fn with_delimiter(
        mut self,
        delimiter: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        self.delimiter = Box::new(delimiter);
        self
    }
}

/// Renders `::name key=value,…::message`, leaving out properties without a value.
fn command(name: &str, properties: &[(&str, Option<String>)], message: &str) -> String {
    let props: Vec<String> = properties
        .iter()
        .filter_map(|(k, v)| v.as_ref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .map(|(k, v)| format!("{k}={}", github_property(v)))
        .collect();
    if props.is_empty() {
        format!("::{name}::{}", github_data(message))
    } else {
        format!("::{name} {}::{}", props.join(","), github_data(message))
    }
}

/// Appends `text` to `path`, creating it if needed.
fn append(path: &Path, text: &str) -> Result<(), ReportError> {
    let file = OpenOptions::new().create(true).append(true).open(path);
    file.and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| ReportError::File {
            path: path.to_owned(),
            source,
        })
}

/// Output names both CIs accept: letters, digits and `_`, not starting with a digit.
pub(crate) fn check_output_name(name: &str) -> Result<(), ReportError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ReportError::OutputName {
            name: name.to_owned(),
        })
    }
}

impl Reporter for GitHub {
    fn step_start(&self, name: &str) {
        lock(&self.state).step_start(name, self.clock.now());
    }

    fn step_end(&self, name: &str, status: StepStatus) {
        lock(&self.state).step_end(name, status, self.clock.now());
    }

    fn group_start(&self, title: &str) {
        lock(&self.state).group_start(title);
    }

    fn group_end(&self) {
        lock(&self.state).group_end();
    }

    fn progress_start(&self, title: &str, unit: Unit) -> ProgressId {
        lock(&self.state).progress_start(title, unit)
    }

    fn progress(&self, id: ProgressId, done: u64, total: u64, message: &str) {
        let mut st = lock(&self.state);
        if let Some(line) = st.progress(id, done, total, message).line {
            st.text(&line);
        }
    }

    fn status(&self, id: ProgressId, text: &str) {
        lock(&self.state).status(id, text);
    }

    fn progress_finish(&self, id: ProgressId, message: &str) {
        lock(&self.state).progress_finish(id, message);
    }

    /// GitHub Actions has no progress indicator for a step; the status lines carry the wait.
    fn percent(&self, _id: ProgressId, _percent: u8, _text: &str) {}

    fn annotate(&self, a: &Annotation) {
        let mut st = lock(&self.state);
        let file = a.file.as_deref().map(|f| st.masker.mask(f).into_owned());
        let message = st.masker.mask(&a.message).into_owned();
        let line = command(
            &a.level.to_string(),
            &[
                ("file", file),
                ("line", a.line.map(|n| n.to_string())),
                ("col", a.col.map(|n| n.to_string())),
            ],
            &message,
        );
        st.command(&line);
    }

    fn info(&self, line: &str) {
        lock(&self.state).text(line);
    }

    fn output(&self, name: &str, value: &str) -> Result<(), ReportError> {
        check_output_name(name)?;
        let mut st = lock(&self.state);
        let value = st.masker.mask(value).into_owned();
        let Some(path) = &self.files.output else {
            st.command(&command(
                "set-output",
                &[("name", Some(name.to_owned()))],
                &value,
            ));
            return Ok(());
        };
        let delimiter = (self.delimiter)();
        if value.contains(&delimiter) || name.contains(&delimiter) {
            return Err(ReportError::DelimiterInValue {
                name: name.to_owned(),
            });
        }
        append(
            path,
            &format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"),
        )
    }

    fn secret(&self, value: &Secret) {
        let mut st = lock(&self.state);
        for piece in st.masker.add(value.expose()) {
            st.command(&format!("::add-mask::{}", github_data(&piece)));
        }
    }

    fn summary(&self, markdown: &str) -> Result<(), ReportError> {
        let st = lock(&self.state);
        if markdown.is_empty() {
            return Ok(());
        }
        let Some(path) = &self.files.step_summary else {
            return Ok(());
        };
        let mut text = st.masker.mask(markdown).into_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        append(path, &text)
    }

    fn outcome(&self, _outcome: serde_json::Value) {}

    fn finish(&self) -> Result<(), ReportError> {
        let mut st = lock(&self.state);
        st.close_groups();
        st.flush().map_err(ReportError::Write)
    }
}
