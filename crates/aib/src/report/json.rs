//! The `--output json` backend: one JSON document on stdout at the end, for scripts.
//!
//! Outputs, annotations, step results, the summary and the step's typed outcome are collected
//! and printed by [`Reporter::finish`] as one document, so a script parses exactly one value.
//! Progress is hidden; info, step and annotation lines go to a separate log writer (stderr) so
//! a person watching still sees what happens. Secrets are masked in both.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Map, Value};

use super::github::check_output_name;
use super::text::{Steps, lines};
use super::{
    Annotation, Clock, Masker, Output, ProgressId, ReportError, Reporter, StepStatus, SystemClock,
    Unit, lock,
};
use crate::secret::Secret;

/// Reports as one JSON document.
pub struct Json {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

struct State {
    out: Output,
    log: Output,
    masker: Masker,
    steps: Steps,
    next_progress: u64,
    document: Document,
    printed: bool,
}

/// The document `--output json` prints; field order is the order scripts read it in.
#[derive(Debug, Default, Serialize)]
struct Document {
    /// The step's typed outcome (`null` when the step reported none, e.g. it failed early).
    outcome: Value,
    /// Named outputs, as a CI would receive them.
    outputs: Map<String, Value>,
    /// Errors, warnings and notices, with positions when known.
    annotations: Vec<Annotation>,
    /// Each step that ended, in order.
    steps: Vec<StepResult>,
    /// The Markdown summary (empty when none).
    summary: String,
}

#[derive(Debug, Serialize)]
struct StepResult {
    name: String,
    status: StepStatus,
}

impl State {
    fn log(&mut self, text: &str) {
        let masked = self.masker.mask(text).into_owned();
        for line in lines(&masked) {
            let _ = writeln!(self.log, "{line}");
        }
    }
}

impl Json {
    /// Prints the document to `out` (stdout) and human lines to `log` (stderr).
    pub fn new(out: Output, log: Output) -> Self {
        Json {
            state: Mutex::new(State {
                out,
                log,
                masker: Masker::new(),
                steps: Steps::default(),
                next_progress: 0,
                document: Document::default(),
                printed: false,
            }),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for step durations in the log.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl Reporter for Json {
    fn step_start(&self, name: &str) {
        let mut st = lock(&self.state);
        let line = st.steps.start(name, self.clock.now());
        st.log(&line);
    }

    fn step_end(&self, name: &str, status: StepStatus) {
        let mut st = lock(&self.state);
        let line = st.steps.end(name, status, self.clock.now());
        st.log(&line);
        let name = name.to_owned();
        st.document.steps.push(StepResult { name, status });
    }

    fn group_start(&self, _title: &str) {}

    fn group_end(&self) {}

    fn progress_start(&self, _title: &str, _unit: Unit) -> ProgressId {
        let mut st = lock(&self.state);
        st.next_progress += 1;
        ProgressId(st.next_progress)
    }

    fn progress(&self, _id: ProgressId, _done: u64, _total: u64, _message: &str) {}

    fn status(&self, _id: ProgressId, _text: &str) {}

    fn percent(&self, _id: ProgressId, _percent: u8, _text: &str) {}

    fn progress_finish(&self, _id: ProgressId, _message: &str) {}

    fn annotate(&self, a: &Annotation) {
        let mut st = lock(&self.state);
        st.log(&format!("{}: {}", a.level, a.message));
        st.document.annotations.push(a.clone());
    }

    fn info(&self, line: &str) {
        lock(&self.state).log(line);
    }

    fn output(&self, name: &str, value: &str) -> Result<(), ReportError> {
        check_output_name(name)?;
        let mut st = lock(&self.state);
        st.document
            .outputs
            .insert(name.to_owned(), Value::String(value.to_owned()));
        Ok(())
    }

    fn secret(&self, value: &Secret) {
        lock(&self.state).masker.add(value.expose());
    }

    fn summary(&self, markdown: &str) -> Result<(), ReportError> {
        let mut st = lock(&self.state);
        if markdown.is_empty() {
            return Ok(());
        }
        st.document.summary.push_str(markdown);
        if !st.document.summary.ends_with('\n') {
            st.document.summary.push('\n');
        }
        Ok(())
    }

    fn outcome(&self, outcome: Value) {
        lock(&self.state).document.outcome = outcome;
    }

    /// Prints the document once; later calls do nothing. Masking happens here, so a secret
    /// registered after a value was collected is still masked in it.
    fn finish(&self) -> Result<(), ReportError> {
        let mut st = lock(&self.state);
        if st.printed {
            return Ok(());
        }
        let document = serde_json::to_value(&st.document).map_err(ReportError::Json)?;
        let document = st.masker.mask_json(&document);
        let mut text = serde_json::to_string_pretty(&document).map_err(ReportError::Json)?;
        text.push('\n');
        st.out
            .write_all(text.as_bytes())
            .and_then(|()| st.out.flush())
            .map_err(ReportError::Write)?;
        st.printed = true;
        Ok(())
    }
}
