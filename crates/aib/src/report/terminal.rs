//! The terminal backend: progress bars and spinners for a person, plain lines for a log.
//!
//! Interactive (stderr is a TTY): indicatif bars and spinners redraw in place, and lines are
//! printed above them. Plain (a pipe, a file, a CI we do not know): every event is one line
//! with a UTC timestamp, and progress goes through the same quarter-step [`Tracker`] as the CI
//! backends. Colour only when asked for (a TTY without `NO_COLOR`; [`super::detect`] decides).
//! The job summary is CI-only: steps say the same thing with info lines.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use time::macros::format_description;

use super::progress::Tracker;
use super::text::{Steps, lines};
use super::{
    Annotation, Clock, Level, Masker, Output, ProgressId, ReportError, Reporter, StepStatus,
    SystemClock, Unit, lock,
};
use crate::secret::Secret;

/// How the terminal is driven.
pub enum TerminalMode {
    /// One timestamped line per event; nothing redraws.
    Plain,
    /// Bars and spinners drawn to `target`; lines printed above them.
    Interactive {
        /// Where bars are drawn (stderr in production, hidden in tests).
        target: ProgressDrawTarget,
        /// Colour the bars and the `error:`/`warning:` prefixes.
        color: bool,
    },
}

/// Reports to a person at a terminal, or to a plain log.
pub struct Terminal {
    state: Mutex<State>,
    /// Present in interactive mode.
    multi: Option<MultiProgress>,
    color: bool,
    clock: Arc<dyn Clock>,
}

struct State {
    out: Output,
    masker: Masker,
    depth: usize,
    steps: Steps,
    progress: Tracker,
    bars: HashMap<ProgressId, Bar>,
}

struct Bar {
    bar: ProgressBar,
    unit: Unit,
    has_total: bool,
}

impl Terminal {
    /// Writes lines to `out` (stderr in production), driven as `mode` says.
    pub fn new(out: Output, mode: TerminalMode) -> Self {
        let (multi, color) = match mode {
            TerminalMode::Plain => (None, false),
            TerminalMode::Interactive { target, color } => {
                (Some(MultiProgress::with_draw_target(target)), color)
            }
        };
        Terminal {
            state: Mutex::new(State {
                out,
                masker: Masker::new(),
                depth: 0,
                steps: Steps::default(),
                progress: Tracker::default(),
                bars: HashMap::new(),
            }),
            multi,
            color,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for timestamps and step durations.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Writes `text` (masked) line by line: timestamped and indented by the group depth in plain
    /// mode, above the bars in interactive mode.
    fn write(&self, st: &mut State, text: &str) {
        let masked = st.masker.mask(text).into_owned();
        let indent = "  ".repeat(st.depth);
        let stamp = match self.multi {
            Some(_) => String::new(),
            None => {
                let fmt = format_description!("[[[hour]:[minute]:[second]] ");
                self.clock.now().format(&fmt).unwrap_or_default()
            }
        };
        let mut block = String::new();
        for line in lines(&masked) {
            block.push_str(&format!("{stamp}{indent}{line}\n"));
        }
        let out = &mut st.out;
        let mut print = || {
            let _ = out.write_all(block.as_bytes());
            let _ = out.flush();
        };
        match &self.multi {
            Some(multi) => multi.suspend(print),
            None => print(),
        }
    }

    /// `text` in `style` when colour is on.
    fn paint(&self, text: &str, style: &console::Style) -> String {
        if self.color {
            style.apply_to(text).force_styling(true).to_string()
        } else {
            text.to_owned()
        }
    }

    fn style(&self, unit: Unit, has_total: bool) -> ProgressStyle {
        let template = match (has_total, unit, self.color) {
            (false, _, true) => "{spinner:.cyan} {prefix} {msg} [{elapsed}]",
            (false, _, false) => "{spinner} {prefix} {msg} [{elapsed}]",
            (true, Unit::Items, true) => "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg}",
            (true, Unit::Items, false) => "{prefix} [{bar:30}] {pos}/{len} {msg}",
            (true, Unit::Bytes, true) => {
                "{prefix} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {msg}"
            }
            (true, Unit::Bytes, false) => {
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}"
            }
        };
        let fallback = || {
            if has_total {
                ProgressStyle::default_bar()
            } else {
                ProgressStyle::default_spinner()
            }
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| fallback())
            .progress_chars("=> ")
    }
}

impl Reporter for Terminal {
    fn step_start(&self, name: &str) {
        let mut st = lock(&self.state);
        let line = st.steps.start(name, self.clock.now());
        let line = self.paint(&line, &console::Style::new().bold());
        self.write(&mut st, &line);
    }

    fn step_end(&self, name: &str, status: StepStatus) {
        let mut st = lock(&self.state);
        let line = st.steps.end(name, status, self.clock.now());
        let style = match status {
            StepStatus::Succeeded => console::Style::new().green(),
            StepStatus::Failed => console::Style::new().red().bold(),
            StepStatus::Skipped => console::Style::new().dim(),
        };
        let line = self.paint(&line, &style);
        self.write(&mut st, &line);
    }

    fn group_start(&self, title: &str) {
        let mut st = lock(&self.state);
        let line = self.paint(&format!("▸ {title}"), &console::Style::new().bold());
        self.write(&mut st, &line);
        st.depth += 1;
    }

    fn group_end(&self) {
        let mut st = lock(&self.state);
        st.depth = st.depth.saturating_sub(1);
    }

    fn progress_start(&self, title: &str, unit: Unit) -> ProgressId {
        let mut st = lock(&self.state);
        let (id, line) = st.progress.start(title, unit);
        match &self.multi {
            None => self.write(&mut st, &line),
            Some(multi) => {
                let prefix = st.masker.mask(title).into_owned();
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(self.style(unit, false));
                bar.set_prefix(prefix);
                bar.enable_steady_tick(Duration::from_millis(120));
                st.bars.insert(
                    id,
                    Bar {
                        bar,
                        unit,
                        has_total: false,
                    },
                );
            }
        }
        id
    }

    fn progress(&self, id: ProgressId, done: u64, total: u64, message: &str) {
        let mut st = lock(&self.state);
        let update = st.progress.progress(id, done, total, message);
        if self.multi.is_none() {
            if let Some(line) = update.line {
                self.write(&mut st, &line);
            }
            return;
        }
        let message = st.masker.mask(message).into_owned();
        let Some(entry) = st.bars.get_mut(&id) else {
            return;
        };
        if !entry.has_total {
            entry.has_total = true;
            entry.bar.set_style(self.style(entry.unit, true));
        }
        entry.bar.set_length(total);
        entry.bar.set_position(done.min(total));
        entry.bar.set_message(message);
    }

    fn status(&self, id: ProgressId, text: &str) {
        let mut st = lock(&self.state);
        let line = st.progress.status(id, text);
        match &self.multi {
            None => {
                if let Some(line) = line {
                    self.write(&mut st, &line);
                }
            }
            Some(_) => {
                let text = st.masker.mask(text).into_owned();
                if let Some(entry) = st.bars.get(&id) {
                    entry.bar.set_message(text);
                }
            }
        }
    }

    /// A terminal shows a wait through its status line; the percentage is Azure Pipelines'.
    fn percent(&self, _id: ProgressId, _percent: u8, _text: &str) {}

    fn progress_finish(&self, id: ProgressId, message: &str) {
        let mut st = lock(&self.state);
        if let (Some(multi), Some(entry)) = (&self.multi, st.bars.remove(&id)) {
            entry.bar.finish_and_clear();
            multi.remove(&entry.bar);
        }
        if let Some(line) = st.progress.finish(id, message) {
            self.write(&mut st, &line);
        }
    }

    fn annotate(&self, a: &Annotation) {
        let mut st = lock(&self.state);
        let style = match a.level {
            Level::Error => console::Style::new().red().bold(),
            Level::Warning => console::Style::new().yellow().bold(),
            Level::Notice => console::Style::new().cyan().bold(),
        };
        let level = self.paint(&format!("{}:", a.level), &style);
        let at = match (&a.file, a.line, a.col) {
            (Some(f), Some(l), Some(c)) => format!(" {f}:{l}:{c}:"),
            (Some(f), Some(l), None) => format!(" {f}:{l}:"),
            (Some(f), None, _) => format!(" {f}:"),
            (None, ..) => String::new(),
        };
        self.write(&mut st, &format!("{level}{at} {}", a.message));
    }

    fn info(&self, line: &str) {
        let mut st = lock(&self.state);
        self.write(&mut st, line);
    }

    fn output(&self, name: &str, value: &str) -> Result<(), ReportError> {
        super::github::check_output_name(name)?;
        let mut st = lock(&self.state);
        self.write(&mut st, &format!("output {name}={value}"));
        Ok(())
    }

    fn secret(&self, value: &Secret) {
        lock(&self.state).masker.add(value.expose());
    }

    fn summary(&self, _markdown: &str) -> Result<(), ReportError> {
        Ok(())
    }

    fn outcome(&self, _outcome: serde_json::Value) {}

    fn finish(&self) -> Result<(), ReportError> {
        let mut st = lock(&self.state);
        for (_, entry) in st.bars.drain() {
            entry.bar.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
        st.out.flush().map_err(ReportError::Write)
    }
}
