//! The one place that decides a process's exit code.
//!
//! Every binary (the five steps and the umbrella `aib`) ends through [`ExitStatus`], so a
//! pipeline can tell bad input from an Azure failure from a timeout by the code alone.

use std::process::ExitCode;

/// How a step run ended, as a pipeline sees it through the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the step did what was asked (or, with `--what-if`, showed what it would do).
    Success,
    /// 1: an Azure operation failed (the service refused or a build failed).
    AzureFailure,
    /// 2: the input was wrong (flag, parameter file, missing script); nothing was sent to Azure.
    BadInput,
    /// 3: a deadline passed (a build or an operation did not finish in time).
    Timeout,
    /// 130: interrupted by the user or the CI (SIGINT), as shells report it.
    Interrupted,
}

impl ExitStatus {
    /// The numeric code, stable across releases because pipelines branch on it.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::AzureFailure => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::Timeout => 3,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented codes are the ones a pipeline can branch on.
    #[test]
    fn exit_codes_match_the_documented_table() {
        assert_eq!(ExitStatus::Success.code(), 0);
        assert_eq!(ExitStatus::AzureFailure.code(), 1);
        assert_eq!(ExitStatus::BadInput.code(), 2);
        assert_eq!(ExitStatus::Timeout.code(), 3);
        assert_eq!(ExitStatus::Interrupted.code(), 130);
    }
}
