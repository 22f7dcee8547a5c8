//! Every environment variable aib reads, declared once as a documented constant.
//!
//! Code says `EnvVars::GITHUB_OUTPUT`, never the string, so a misspelt name cannot compile and one
//! list tells a reader (and the docs) everything the environment can change. Add a variable here
//! before reading it anywhere.

/// The names of the environment variables aib reads.
pub struct EnvVars;

impl EnvVars {
    /// `true` when running in GitHub Actions; selects the GitHub reporter.
    pub const GITHUB_ACTIONS: &'static str = "GITHUB_ACTIONS";

    /// File that step outputs are appended to, in heredoc form (GitHub Actions).
    pub const GITHUB_OUTPUT: &'static str = "GITHUB_OUTPUT";

    /// File that the Markdown job summary is appended to (GitHub Actions).
    pub const GITHUB_STEP_SUMMARY: &'static str = "GITHUB_STEP_SUMMARY";

    /// `True` when running in Azure Pipelines; selects the Azure Pipelines reporter.
    pub const TF_BUILD: &'static str = "TF_BUILD";

    /// The agent's per-job temporary directory, where the summary file for
    /// `##vso[task.uploadsummary]` is written (Azure Pipelines).
    pub const AGENT_TEMPDIRECTORY: &'static str = "AGENT_TEMPDIRECTORY";

    /// Set to any non-empty value to turn colours off (<https://no-color.org>).
    pub const NO_COLOR: &'static str = "NO_COLOR";
}
