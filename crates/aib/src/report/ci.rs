//! What the GitHub Actions and Azure Pipelines backends write alike: masked free text, step
//! lines, one level of collapsible group, and quarter-step progress lines.
//!
//! Both CIs read a log line by line, cannot nest groups, and show progress the same way, so the
//! bookkeeping (group depth, step clocks, the progress [`Tracker`]) lives here once. What differs
//! is the dialect: how a plain line is guarded against reading as a command, and how a group is
//! opened and closed. Each backend keeps its own commands, outputs and summary.

use std::io::Write;

use time::OffsetDateTime;

use super::progress::{Tracker, Update};
use super::text::{Steps, lines, one_line};
use super::{Masker, Output, ProgressId, StepStatus, Unit};

/// The few things a CI spells its own way in lines every backend writes.
pub(super) struct Dialect {
    /// Guards one plain line so the CI does not take it for a command.
    pub line: fn(&str) -> String,
    /// The command opening a group with this (masked, one-line) title.
    pub group: fn(&str) -> String,
    /// The command closing the open group.
    pub endgroup: &'static str,
}

/// A CI log: the writer, the secrets masked in it, and the state of its groups, steps and
/// progress indicators.
pub(super) struct CiLog {
    out: Output,
    /// Every registered secret; the backends mask their own commands with it too.
    pub masker: Masker,
    depth: usize,
    steps: Steps,
    progress: Tracker,
    dialect: Dialect,
}

impl CiLog {
    /// A log written to `out` in `dialect`, with no secret, group or indicator yet.
    pub fn new(out: Output, dialect: Dialect) -> Self {
        CiLog {
            out,
            masker: Masker::new(),
            depth: 0,
            steps: Steps::default(),
            progress: Tracker::default(),
            dialect,
        }
    }

    /// Writes one command line as it is (already masked and escaped).
    pub fn command(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }

    /// Writes free text: masked, split into lines, each guarded against reading as a command.
    pub fn text(&mut self, text: &str) {
        let masked = self.masker.mask(text).into_owned();
        for line in lines(&masked) {
            let _ = writeln!(self.out, "{}", (self.dialect.line)(line));
        }
    }

    /// The line a step starts with; `now` starts its clock.
    pub fn step_start(&mut self, name: &str, now: OffsetDateTime) {
        let line = self.steps.start(name, now);
        self.text(&line);
    }

    /// The line a step ends with, with how long it took until `now`.
    pub fn step_end(&mut self, name: &str, status: StepStatus, now: OffsetDateTime) {
        let line = self.steps.end(name, status, now);
        self.text(&line);
    }

    /// Opens the CI's group at the top level; inside one, a heading line (groups do not nest).
    pub fn group_start(&mut self, title: &str) {
        let title = one_line(&self.masker.mask(title));
        if self.depth == 0 {
            let open = (self.dialect.group)(&title);
            self.command(&open);
        } else {
            self.text(&format!("▸ {title}"));
        }
        self.depth += 1;
    }

    /// Closes the innermost group; only the top-level one has a command to close.
    pub fn group_end(&mut self) {
        if self.depth == 1 {
            self.command(self.dialect.endgroup);
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// Closes every group still open, so a log ended early does not swallow what follows.
    pub fn close_groups(&mut self) {
        while self.depth > 0 {
            self.depth -= 1;
            if self.depth == 0 {
                self.command(self.dialect.endgroup);
            }
        }
    }

    /// Opens an indicator and writes the line announcing it.
    pub fn progress_start(&mut self, title: &str, unit: Unit) -> ProgressId {
        let (id, line) = self.progress.start(title, unit);
        self.text(&line);
        id
    }

    /// Records progress; the caller writes the update's line (and may show its percentage).
    pub fn progress(&mut self, id: ProgressId, done: u64, total: u64, message: &str) -> Update {
        self.progress.progress(id, done, total, message)
    }

    /// Writes the line for a changed wait status, if the status changed.
    pub fn status(&mut self, id: ProgressId, text: &str) {
        if let Some(line) = self.progress.status(id, text) {
            self.text(&line);
        }
    }

    /// Writes the indicator's last line, if it was open.
    pub fn progress_finish(&mut self, id: ProgressId, message: &str) {
        if let Some(line) = self.progress.finish(id, message) {
            self.text(&line);
        }
    }

    /// Flushes what was written.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
