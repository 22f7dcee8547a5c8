//! What can be wrong with a parameter file, in a form a person can fix without guessing.
//!
//! A [`Problem`] carries the place (`file:line:column`), the parameter path
//! (`imageTemplate.imageSource.publisher`), what was expected and a hint. A file's problems are
//! all collected before giving up, so one run shows everything to fix. Every [`ConfigError`]
//! is bad input: it maps to [`ExitStatus::BadInput`] (2) and nothing has been sent to Azure.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::exit::ExitStatus;

/// A 1-based line and column (columns count characters, as editors show them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// One thing wrong in a parameter file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file as the user named it.
    pub file: String,
    /// Where in the file (the start of the offending value, key or token).
    #[serde(flatten)]
    pub position: Position,
    /// Parameter path, e.g. `imageTemplate.customizationSteps[1].script`; empty for a
    /// problem with the whole file (syntax).
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.file, self.position.line, self.position.column
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Why a parameter file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read parameter file {path}")]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No file matched the lookup rules.
    #[error("no parameter file found; looked for {}", list_paths(.tried))]
    NotFound {
        /// Every path tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The environment or OS name cannot be part of a file name.
    #[error("{what} '{value}' is not a valid name (use lowercase letters, digits and '-')")]
    BadSelector {
        /// `environment` or `os`.
        what: &'static str,
        /// What the user typed.
        value: String,
    },
    /// The file was read but has problems; all of them are listed.
    #[error("{file}: {} problem{}\n{}", .problems.len(), if .problems.len() == 1 { "" } else { "s" }, list_problems(.problems))]
    Invalid {
        /// The file as the user named it.
        file: String,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every parameter-file error is bad input: exit code 2, before any Azure call.
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::BadInput
    }

    /// The individual problems (empty for errors that are not about the file's content).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A problem prints as `file:line:column: path: message` with the hint on its own line.
    #[test]
    fn problem_display_names_place_path_message_and_hint() {
        let problem = Problem {
            file: "p.json".into(),
            position: Position { line: 3, column: 7 },
            path: "imageTemplate.imageSource.publisher".into(),
            message: "expected a string, found a number".into(),
            hint: Some("e.g. \"Canonical\"".into()),
        };
        assert_eq!(
            problem.to_string(),
            "p.json:3:7: imageTemplate.imageSource.publisher: expected a string, found a number\n  hint: e.g. \"Canonical\""
        );
    }

    /// Every configuration error is classified as bad input (exit 2).
    #[test]
    fn config_errors_are_bad_input() {
        let err = ConfigError::NotFound { tried: vec![] };
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }
}
