//! Progress as plain lines, for logs that cannot redraw (CI, a pipe, a file).
//!
//! A log must show that work started, moves and ended, without a line per tick: the [`Tracker`]
//! turns progress events into at most one line per quarter of the total, one per change of a
//! waiting state, and a start and an end line. Every non-interactive backend uses it, so the CI
//! logs and a piped terminal read the same.

use std::collections::BTreeMap;

use super::{ProgressId, Unit};

/// The open progress indicators of one reporter.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    next: u64,
    open: BTreeMap<ProgressId, Entry>,
}

#[derive(Debug)]
struct Entry {
    title: String,
    unit: Unit,
    quarter: u64,
    percent: Option<u64>,
    status: Option<String>,
}

/// What a progress event should print.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Update {
    /// A log line, when a quarter boundary was crossed.
    pub line: Option<String>,
    /// The whole percentage, when it changed (Azure Pipelines shows it on the task).
    pub percent: Option<u64>,
    /// The indicator's title.
    pub title: String,
}

impl Tracker {
    /// Opens an indicator; returns its id and the line announcing it.
    pub fn start(&mut self, title: &str, unit: Unit) -> (ProgressId, String) {
        let id = ProgressId(self.next);
        self.next += 1;
        let entry = Entry {
            title: title.to_owned(),
            unit,
            quarter: 0,
            percent: None,
            status: None,
        };
        self.open.insert(id, entry);
        (id, format!("{title}..."))
    }

    /// Records `done` of `total`; a line only when a new quarter (25, 50, 75 %) is reached.
    pub fn progress(&mut self, id: ProgressId, done: u64, total: u64, message: &str) -> Update {
        let Some(entry) = self.open.get_mut(&id) else {
            return Update::default();
        };
        let done = done.min(total);
        // In u128 so byte counts near u64::MAX cannot overflow; a zero total counts as done.
        let percent = (u128::from(done) * 100)
            .checked_div(u128::from(total))
            .map_or(100, |p| p as u64);
        let quarter = percent / 25;
        let mut update = Update {
            title: entry.title.clone(),
            ..Update::default()
        };
        if entry.percent != Some(percent) {
            entry.percent = Some(percent);
            update.percent = Some(percent);
        }
        if quarter > entry.quarter && quarter < 4 {
            entry.quarter = quarter;
            let amount = match entry.unit {
                Unit::Items => format!("{done}/{total}"),
                Unit::Bytes => {
                    format!(
                        "{}/{}",
                        indicatif::HumanBytes(done),
                        indicatif::HumanBytes(total)
                    )
                }
            };
            let mut line = format!("{}: {percent}% ({amount})", entry.title);
            if !message.is_empty() {
                line.push(' ');
                line.push_str(message);
            }
            update.line = Some(line);
        }
        update
    }

    /// Records a waiting state; a line only when it differs from the last one.
    pub fn status(&mut self, id: ProgressId, text: &str) -> Option<String> {
        let entry = self.open.get_mut(&id)?;
        if entry.status.as_deref() == Some(text) {
            return None;
        }
        entry.status = Some(text.to_owned());
        Some(format!("{}: {text}", entry.title))
    }

    /// Closes an indicator; returns its end line.
    pub fn finish(&mut self, id: ProgressId, message: &str) -> Option<String> {
        let entry = self.open.remove(&id)?;
        let message = if message.is_empty() { "done" } else { message };
        Some(format!("{}: {message}", entry.title))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight steps of progress print three quarter lines, not eight.
    #[test]
    fn progress_prints_one_line_per_quarter() {
        let mut t = Tracker::default();
        let (id, start) = t.start("Uploading", Unit::Items);
        assert_eq!(start, "Uploading...");
        let lines: Vec<_> = (1..=8)
            .filter_map(|done| t.progress(id, done, 8, &format!("f{done}")).line)
            .collect();
        assert_eq!(
            lines,
            [
                "Uploading: 25% (2/8) f2",
                "Uploading: 50% (4/8) f4",
                "Uploading: 75% (6/8) f6"
            ]
        );
        assert_eq!(t.finish(id, "").as_deref(), Some("Uploading: done"));
        assert_eq!(t.finish(id, ""), None, "a closed indicator is forgotten");
    }

    /// A waiting state prints only when it changes.
    #[test]
    fn status_prints_only_changes() {
        let mut t = Tracker::default();
        let (id, _) = t.start("Build", Unit::Items);
        assert_eq!(t.status(id, "Running").as_deref(), Some("Build: Running"));
        assert_eq!(t.status(id, "Running"), None);
        assert_eq!(t.status(id, "Done").as_deref(), Some("Build: Done"));
    }

    /// Bytes print human-sized and a zero total counts as complete.
    #[test]
    fn bytes_are_human_sized() {
        let mut t = Tracker::default();
        let (id, _) = t.start("Blob", Unit::Bytes);
        let u = t.progress(id, 2 * 1024 * 1024, 4 * 1024 * 1024, "");
        assert_eq!(u.line.as_deref(), Some("Blob: 50% (2.00 MiB/4.00 MiB)"));
        assert_eq!(u.percent, Some(50));
        let u = t.progress(id, 2 * 1024 * 1024, 4 * 1024 * 1024, "");
        assert_eq!(
            u,
            Update {
                title: "Blob".into(),
                ..Update::default()
            }
        );
        assert_eq!(t.progress(id, 0, 0, "").percent, Some(100));
    }
}
