//! The reporter a step sees inside a pipeline run: the run's own reporter, except that the
//! step's start/end lines, its JSON outcome and `finish` belong to the pipeline.
//!
//! A step binary owns its whole report; inside `aib run` the pipeline does: it prints one
//! start/end line per step (with the environment), collects each step's outcome into the
//! pipeline's one outcome document, and finishes the report once at the very end.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::report::{Annotation, ProgressId, ReportError, Reporter, StepStatus, Unit, lock};
use crate::secret::Secret;

/// Forwards everything to the run's reporter but the step lines, the outcome and `finish`.
pub(crate) struct StepReporter {
    inner: Arc<dyn Reporter>,
    outcome: Mutex<Option<Value>>,
}

impl StepReporter {
    pub(crate) fn new(inner: Arc<dyn Reporter>) -> StepReporter {
        StepReporter {
            inner,
            outcome: Mutex::new(None),
        }
    }

    /// The outcome the step reported, if it reported one.
    pub(crate) fn take_outcome(&self) -> Option<Value> {
        lock(&self.outcome).take()
    }
}

impl Reporter for StepReporter {
    fn step_start(&self, _name: &str) {}

    fn step_end(&self, _name: &str, _status: StepStatus) {}

    fn group_start(&self, title: &str) {
        self.inner.group_start(title);
    }

    fn group_end(&self) {
        self.inner.group_end();
    }

    fn progress_start(&self, title: &str, unit: Unit) -> ProgressId {
        self.inner.progress_start(title, unit)
    }

    fn progress(&self, id: ProgressId, done: u64, total: u64, message: &str) {
        self.inner.progress(id, done, total, message);
    }

    fn status(&self, id: ProgressId, text: &str) {
        self.inner.status(id, text);
    }

    fn progress_finish(&self, id: ProgressId, message: &str) {
        self.inner.progress_finish(id, message);
    }

    fn percent(&self, id: ProgressId, percent: u8, text: &str) {
        self.inner.percent(id, percent, text);
    }

    fn annotate(&self, annotation: &Annotation) {
        self.inner.annotate(annotation);
    }

    fn info(&self, line: &str) {
        self.inner.info(line);
    }

    fn output(&self, name: &str, value: &str) -> Result<(), ReportError> {
        self.inner.output(name, value)
    }

    fn secret(&self, value: &Secret) {
        self.inner.secret(value);
    }

    fn summary(&self, markdown: &str) -> Result<(), ReportError> {
        self.inner.summary(markdown)
    }

    fn outcome(&self, outcome: Value) {
        *lock(&self.outcome) = Some(outcome);
    }

    fn finish(&self) -> Result<(), ReportError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AzurePipelines, Capture};

    /// Inside `aib run`, a build wait's percentage still reaches Azure Pipelines' task progress,
    /// while the step's own start/end lines are the pipeline's to print.
    #[test]
    fn percent_reaches_the_run_reporter_and_step_lines_do_not() {
        let out = Capture::new();
        let inner: Arc<dyn Reporter> = Arc::new(AzurePipelines::new(out.writer(), None));
        let step = StepReporter::new(inner);
        step.step_start("wait-for-build");
        let id = step.progress_start("Waiting for the build", Unit::Items);
        step.percent(id, 40, "Customizing");
        step.step_end("wait-for-build", StepStatus::Succeeded);
        let text = out.text();
        assert!(
            text.contains("##vso[task.setprogress value=40;]Customizing"),
            "{text}"
        );
        assert!(!text.contains("wait-for-build"), "{text}");
    }
}
