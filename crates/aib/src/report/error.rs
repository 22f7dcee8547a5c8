//! An error chain rendered once, for people: the message, each cause, and what to do.
//!
//! Binaries end through [`report_error`], so every failure reads the same everywhere: on a
//! terminal as `error:` lines, in CI as one error annotation carrying the whole chain. It goes
//! through the reporter, so registered secrets are masked in it like in everything else.

use std::error::Error;

use super::{Annotation, Reporter};

/// The error's message, one `Caused by:` line per source, and a `hint:` line when given.
///
/// A cause whose text repeats the line before it (an error that displays its source) is shown
/// once.
pub fn error_text(error: &dyn Error, hint: Option<&str>) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if line != last {
            text.push_str("\n  Caused by: ");
            text.push_str(&line);
        }
        last = line;
        source = cause.source();
    }
    if let Some(hint) = hint.filter(|h| !h.is_empty()) {
        text.push_str("\nhint: ");
        text.push_str(hint);
    }
    text
}

/// The error and its causes on one line, `a: b: c`: for a warning or a table cell, where the
/// `Caused by:` lines of [`error_text`] do not fit.
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reports `error` (with its causes and `hint`) as one error annotation.
pub fn report_error(reporter: &dyn Reporter, error: &dyn Error, hint: Option<&str>) {
    reporter.annotate(&Annotation::error(error_text(error, hint)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("deploying gallery failed")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("HTTP 403")]
    struct Middle(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("HTTP 403")]
    struct Inner;

    /// The chain prints each distinct cause once, then the hint.
    #[test]
    fn error_text_lists_causes_once_and_the_hint() {
        let text = error_text(
            &Outer(Middle(Inner)),
            Some("grant the identity Contributor"),
        );
        assert_eq!(
            text,
            "deploying gallery failed\n  Caused by: HTTP 403\nhint: grant the identity Contributor"
        );
        assert_eq!(error_text(&Inner, None), "HTTP 403");
    }
}
