//! GitHub's own API, for what the workflow-command reporter cannot do: recording each
//! environment's image build as a GitHub deployment (`github-deployment: true` in the action).
//!
//! A few REST calls over reqwest (bearer token, `X-GitHub-Api-Version`, retries with backon):
//! two endpoints do not warrant a GitHub SDK, whose compile time and binary size every shipped
//! program would pay. The API root comes from `GITHUB_API_URL`, so GitHub Enterprise Server and
//! the tests' local fake are just other servers. Nothing here decides when a build starts or ends: [`deployments::DeploymentReporter`]
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
        /// Why not.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The GitHub API refused or failed a call.
    #[error("GitHub API: {action} failed: {source}")]
    Api {
        /// What was being done (e.g. `create deployment for sbx`).
        action: String,
        /// The status and GitHub's message, or why there was no answer.
        #[source]
        source: ApiError,
    },
}

/// How one GitHub API call failed. Never carries the token: it travels only in a header
/// marked sensitive, and an answer that echoes it has it replaced by `***`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// GitHub answered with an error status (after `attempts` tries, for a retried one).
    #[error("HTTP {status}: {message}{}", tries(*attempts))]
    Status {
        /// The status of the last answer.
        status: reqwest::StatusCode,
        /// GitHub's `message` (and its `errors`), or the start of a body that is not its JSON.
        message: String,
        /// Attempts made, the first included.
        attempts: u32,
    },
    /// No answer: connection refused or reset, timeout.
    #[error("no answer{}", tries(*attempts))]
    Transport {
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
        /// Attempts made, the first included.
        attempts: u32,
    },
    /// A success answer without what the call creates (a deployment's `id`).
    #[error("unexpected answer")]
    BadAnswer(#[source] serde_json::Error),
    /// The client could not be built (an unreadable `SSL_CERT_FILE`, a refused configuration).
    #[error("cannot build the HTTP client")]
    Client(#[source] crate::azure::http::HttpError),
    /// The token has characters an HTTP header cannot carry.
    #[error("the token is not a valid HTTP header value")]
    BadToken,
}

/// ` after N attempts` when a call was retried.
fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}
