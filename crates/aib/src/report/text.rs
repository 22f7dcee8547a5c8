//! The wording shared by every backend: step lines and durations.
//!
//! Kept in one place so a terminal, a GitHub log and an Azure Pipelines log say the same thing
//! in the same words; only the framing (timestamps, workflow commands) differs per backend.

use std::collections::HashMap;

use time::{Duration, OffsetDateTime};

use super::StepStatus;

/// When each running step started, to print its duration at the end.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    started: HashMap<String, OffsetDateTime>,
}

impl Steps {
    /// Remembers the start and returns the start line.
    pub fn start(&mut self, name: &str, now: OffsetDateTime) -> String {
        self.started.insert(name.to_owned(), now);
        format!("▶ {name}")
    }

    /// The end line, with the duration when the start was seen.
    pub fn end(&mut self, name: &str, status: StepStatus, now: OffsetDateTime) -> String {
        let took = self.started.remove(name).map(|start| duration(now - start));
        match (status, took) {
            (StepStatus::Succeeded, Some(t)) => format!("✔ {name} succeeded in {t}"),
            (StepStatus::Succeeded, None) => format!("✔ {name} succeeded"),
            (StepStatus::Failed, Some(t)) => format!("✘ {name} failed after {t}"),
            (StepStatus::Failed, None) => format!("✘ {name} failed"),
            (StepStatus::Skipped, _) => format!("- {name} skipped"),
        }
    }
}

/// A duration as people read it: `0.4s`, `12.3s`, `4m 05s`, `1h 02m`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.whole_milliseconds().max(0);
    // Rounded to the tenth, as the steps' own summaries (`{:.1}s`) are: a step that reports
    // "in 0.1s" must not end with "succeeded in 0.0s".
    let tenths = (ms + 50) / 100;
    let secs = (ms + 500) / 1000;
    if tenths < 600 {
        format!("{}.{}s", tenths / 10, tenths % 10)
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        let minutes = (ms + 30_000) / 60_000;
        format!("{}h {:02}m", minutes / 60, minutes % 60)
    }
}

/// The lines of `text`; an empty text is one empty line (an intended blank line in a log).
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let empty = text.is_empty();
    text.lines().chain(empty.then_some(""))
}

/// A group title on one line (titles go where a line break would end the command).
pub(crate) fn one_line(text: &str) -> String {
    text.replace("\r\n", " ").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations are short and stable at every scale.
    #[test]
    fn durations_read_naturally() {
        let cases = [
            (Duration::milliseconds(0), "0.0s"),
            (Duration::milliseconds(432), "0.4s"),
            (Duration::milliseconds(60), "0.1s"),
            (Duration::milliseconds(59_970), "1m 00s"),
            (Duration::milliseconds(12_345), "12.3s"),
            (Duration::seconds(245), "4m 05s"),
            (Duration::seconds(3720), "1h 02m"),
            (Duration::seconds(-5), "0.0s"),
        ];
        for (d, text) in cases {
            assert_eq!(duration(d), text, "{d:?}");
        }
    }
}
