//! GitHub's own API, for what the workflow-command reporter cannot do: recording each
//! environment's image build as a GitHub deployment (`github-deployment: true` in the action).
//!
//! Everything here goes through octocrab (auth, base URI, retries); the base URI comes from
//! `GITHUB_API_URL`, so GitHub Enterprise Server and the tests' local fake are just other
//! servers. Nothing here decides when a build starts or ends: [`deployments::DeploymentReporter`]
//! reads that from the reporter events the pipeline already emits.

pub mod deployments;

#[cfg(test)]
mod tests;

/// Why a GitHub deployment could not be set up or recorded.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// A variable the runner always sets is missing (not running in GitHub Actions?).
    #[error("{name} is not set: GitHub deployments need the GitHub Actions runner's environment")]
    MissingVariable {
        /// The variable.
        name: &'static str,
    },
    /// `GITHUB_REPOSITORY` is not `owner/repo`.
    #[error("GITHUB_REPOSITORY '{0}' is not owner/repo")]
    BadRepository(String),
    /// `GITHUB_API_URL` is not a URL.
    #[error("GITHUB_API_URL '{url}' is not a URL: {source}")]
    BadApiUrl {
        /// The value.
        url: String,
        /// octocrab's parse error.
        #[source]
        source: Box<octocrab::Error>,
    },
    /// The GitHub API refused or failed a call.
    #[error("GitHub API: {action} failed: {source}")]
    Api {
        /// What was being done (e.g. `create deployment for sbx`).
        action: String,
        /// octocrab's error (status and GitHub's message).
        #[source]
        source: Box<octocrab::Error>,
    },
}
