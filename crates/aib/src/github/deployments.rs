//! Each environment's image build as a GitHub deployment: `in_progress` when the build starts,
//! `success` with the image version id and its Azure portal link, or `failure` with the message.
//!
//! Two layers. [`Deployments`] is the REST client (reqwest, retries with backon): one call per
//! state change, nothing else.
//! [`DeploymentReporter`] decides *when*, without touching the pipeline: it wraps the run's
//! reporter and reads the events the pipeline already sends — `step_start` of trigger-build
//! (the build starts), the `imageVersionId` output, error annotations, `step_end` of
//! wait-for-build or of a failed step — and forwards every event unchanged. A binary turns it
//! on with one line ([`wrap`]). Recording is best effort: a GitHub API failure is a warning,
//! never a failed image build. Calls run in order on one worker thread, so the reporter's
//! synchronous methods never block on the network; [`Reporter::finish`] waits for them.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use backon::Retryable as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use url::Url;

use super::{ApiError, GitHubError};
use crate::azure::arm::retry::{next_wait, retry_after};
use crate::azure::env::Env;
use crate::azure::http::{HttpError, HttpOptions, client_builder};
use crate::pipeline::Step;
use crate::report::{
    Annotation, Level, ProgressId, ReportError, Reporter, StepStatus, Unit, error_chain,
};
use crate::secret::Secret;

/// Token the deployments are written with: the job's `GITHUB_TOKEN` (needs `deployments: write`).
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// REST API root of the GitHub instance (`https://api.github.com`, or GHES' `…/api/v3`).
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// Web root of the GitHub instance, for the run's log link.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
/// `owner/repo` the deployments belong to.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// The commit being deployed.
pub const GITHUB_SHA: &str = "GITHUB_SHA";
/// The workflow run, for the log link of each status.
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
/// Azure portal root for the environment link (default `https://portal.azure.com`; sovereign
/// clouds have their own).
pub const AIB_PORTAL_URL: &str = "AIB_PORTAL_URL";

/// `true` turns deployments on (the action sets it from its `github-deployment` input).
pub const AIB_GITHUB_DEPLOYMENT: &str = "AIB_GITHUB_DEPLOYMENT";

/// GitHub cuts deployment status descriptions at 140 characters.
const DESCRIPTION_MAX: usize = 140;

/// Where and as what the deployments are recorded; read from the runner's variables.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// The job's token.
    pub token: Secret,
    /// REST API root.
    pub api_url: String,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Commit deployed (the deployment's `ref`).
    pub sha: String,
    /// Link to the workflow run's log, when known.
    pub log_url: Option<String>,
    /// Azure portal root.
    pub portal_url: String,
    /// TLS settings (`SSL_CERT_FILE`'s bundle), the same as the Azure calls': a GitHub
    /// Enterprise Server behind a corporate CA is trusted the way ARM behind it is.
    pub http: HttpOptions,
}

impl DeploymentConfig {
    /// The configuration the GitHub runner's variables describe.
    pub fn from_env(env: &Env) -> Result<Self, GitHubError> {
        let need = |name: &'static str| {
            env.get(name)
                .map(str::to_owned)
                .ok_or(GitHubError::MissingVariable { name })
        };
        let repository = need(GITHUB_REPOSITORY)?;
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| GitHubError::BadRepository(repository.clone()))?;
        let server = env.get(GITHUB_SERVER_URL).unwrap_or("https://github.com");
        let log_url = env.get(GITHUB_RUN_ID).map(|run| {
            format!(
                "{}/{repository}/actions/runs/{run}",
                server.trim_end_matches('/')
            )
        });
        Ok(DeploymentConfig {
            token: Secret::new(need(GITHUB_TOKEN)?),
            api_url: env
                .get(GITHUB_API_URL)
                .unwrap_or("https://api.github.com")
                .to_owned(),
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            sha: need(GITHUB_SHA)?,
            log_url,
            portal_url: env
                .get(AIB_PORTAL_URL)
                .unwrap_or("https://portal.azure.com")
                .to_owned(),
            http: HttpOptions::from_env(env),
        })
    }
}

/// The Azure portal page of a resource (the deployment's environment URL).
pub fn portal_link(portal_url: &str, resource_id: &str) -> String {
    format!(
        "{}/#resource{resource_id}",
        portal_url.trim_end_matches('/')
    )
}

/// `text` on one line, cut to what GitHub keeps (140 characters) with an ellipsis.
pub(crate) fn description(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= DESCRIPTION_MAX {
        return line;
    }
    let mut cut: String = line.chars().take(DESCRIPTION_MAX - 1).collect();
    cut.push('…');
    cut
}

/// A resource id for a description: whole when it fits, else its end (which names the version).
pub(crate) fn id_description(id: &str) -> String {
    let count = id.chars().count();
    if count <= DESCRIPTION_MAX {
        return id.to_owned();
    }
    let tail: String = id.chars().skip(count - (DESCRIPTION_MAX - 1)).collect();
    format!("…{tail}")
}

/// GitHub's id of a deployment (the `{id}` in its statuses URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(pub u64);

impl std::fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The deployment states this module sets (GitHub has more: `queued`, `pending`, `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InProgress,
    Success,
    Failure,
    Inactive,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::InProgress => "in_progress",
            State::Success => "success",
            State::Failure => "failure",
            State::Inactive => "inactive",
        }
    }
}

/// Connecting to GitHub takes at most this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One request (connect, send, answer) takes at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The REST API version the bodies here are written for.
const API_VERSION: &str = "2022-11-28";

/// How a call is retried: GitHub's 5xx, 429 and secondary rate limits are usually gone in
/// seconds. Recording is best effort and the run waits for it at the end, so the budget is small.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included.
    pub(crate) attempts: u32,
    /// First backoff delay (before jitter).
    pub(crate) min_backoff: Duration,
    /// Largest backoff delay (before jitter).
    pub(crate) max_backoff: Duration,
    /// Longest `Retry-After` obeyed; a longer one (a primary rate limit's hour) ends the retries
    /// rather than holding the run's end that long.
    pub(crate) max_server_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_server_wait: Duration::from_secs(60),
        }
    }
}

/// One failed attempt, as the retry loop sees it.
enum Failure {
    /// GitHub answered with an error status.
    Status {
        status: reqwest::StatusCode,
        /// How long GitHub asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// GitHub's `message` (and `errors`), or the start of a body that is not GitHub's JSON.
        message: String,
    },
    /// No answer: connection refused or reset, timeout.
    Transport(reqwest::Error),
}

impl Failure {
    /// 5xx, 429, a 403 that carries `Retry-After` (GitHub's secondary rate limit), or no answer.
    fn retryable(&self) -> bool {
        match self {
            Failure::Status {
                status,
                retry_after,
                ..
            } => {
                status.is_server_error()
                    || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || (*status == reqwest::StatusCode::FORBIDDEN && retry_after.is_some())
            }
            Failure::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            Failure::Transport(_) => None,
        }
    }

    fn into_error(self, attempts: u32) -> ApiError {
        match self {
            Failure::Status {
                status, message, ..
            } => ApiError::Status {
                status,
                message,
                attempts,
            },
            Failure::Transport(source) => ApiError::Transport { source, attempts },
        }
    }
}

/// The REST client for one repository's deployments: `POST …/deployments` and
/// `POST …/deployments/{id}/statuses`, nothing else.
pub struct Deployments {
    http: reqwest::Client,
    /// `{api}/repos/{owner}/{repo}/deployments`.
    deployments_url: Url,
    config: DeploymentConfig,
    retry: RetryPolicy,
}

impl Deployments {
    /// A client for `config`; fails only on a bad `GITHUB_API_URL` or an unusable token.
    pub fn new(config: DeploymentConfig) -> Result<Self, GitHubError> {
        let deployments_url = deployments_url(&config)?;
        let setup = |source| GitHubError::Api {
            action: "set up the GitHub client".into(),
            source,
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
            .map_err(|_| setup(ApiError::BadToken))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        headers.insert(AUTHORIZATION, auth);
        let http = client_builder(&config.http)
            .map_err(|e| setup(ApiError::Client(e)))?
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| setup(ApiError::Client(HttpError::Build(e))))?;
        Ok(Deployments {
            http,
            deployments_url,
            config,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with other retry limits (tests shrink the backoff, never Retry-After).
    #[cfg(test)]
    pub(crate) fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Creates the deployment of this commit to `environment` and marks it `in_progress`.
    pub async fn start(&self, environment: &str, what: &str) -> Result<DeploymentId, GitHubError> {
        let c = &self.config;
        let body = serde_json::json!({
            "ref": c.sha,
            "environment": environment,
            "task": "deploy:image",
            "auto_merge": false,
            "required_contexts": [],
            "description": description(what),
            "payload": { "tool": "aib" },
        });
        let action = || format!("create the deployment to {environment}");
        let answer = self
            .post(self.deployments_url.clone(), &body)
            .await
            .map_err(|source| GitHubError::Api {
                action: action(),
                source,
            })?;
        let created: Created = serde_json::from_slice(&answer).map_err(|e| GitHubError::Api {
            action: action(),
            source: ApiError::BadAnswer(e),
        })?;
        self.status(created.id, environment, State::InProgress, what, None)
            .await?;
        Ok(created.id)
    }

    /// Marks the deployment `success`: the image version id as description, its portal page
    /// as the environment URL.
    pub async fn succeed(
        &self,
        id: DeploymentId,
        environment: &str,
        image_version_id: &str,
    ) -> Result<(), GitHubError> {
        let url = portal_link(&self.config.portal_url, image_version_id);
        self.status(
            id,
            environment,
            State::Success,
            &id_description(image_version_id),
            Some(url),
        )
        .await
    }

    /// Marks the deployment `failure` with the message.
    pub async fn fail(
        &self,
        id: DeploymentId,
        environment: &str,
        message: &str,
    ) -> Result<(), GitHubError> {
        self.status(id, environment, State::Failure, message, None)
            .await
    }

    /// Marks the deployment `inactive`: the run built nothing after all (what-if, skipped).
    pub async fn inactive(
        &self,
        id: DeploymentId,
        environment: &str,
        message: &str,
    ) -> Result<(), GitHubError> {
        self.status(id, environment, State::Inactive, message, None)
            .await
    }

    async fn status(
        &self,
        id: DeploymentId,
        environment: &str,
        state: State,
        text: &str,
        environment_url: Option<String>,
    ) -> Result<(), GitHubError> {
        let mut body = serde_json::json!({
            "state": state.as_str(),
            "environment": environment,
            "description": description(text),
        });
        if let Some(url) = &self.config.log_url {
            body["log_url"] = url.as_str().into();
        }
        if let Some(url) = environment_url {
            body["environment_url"] = url.into();
        }
        let mut url = self.deployments_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend([id.to_string().as_str(), "statuses"]);
        }
        self.post(url, &body)
            .await
            .map_err(|source| GitHubError::Api {
                action: format!("set deployment {id} to {}", state.as_str()),
                source,
            })?;
        Ok(())
    }

    /// POSTs `body` to `url` with retries (see [`Failure::retryable`]); the answer's body.
    async fn post(&self, url: Url, body: &serde_json::Value) -> Result<Vec<u8>, ApiError> {
        let attempts = AtomicU32::new(0);
        let policy = &self.retry;
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(policy.min_backoff)
            .with_max_delay(policy.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(policy.attempts.saturating_sub(1) as usize);
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(url.clone(), body)
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(Failure::retryable)
        .adjust(|failure: &Failure, backoff: Option<Duration>| {
            let server = failure.retry_after();
            if server.is_some_and(|wait| wait > policy.max_server_wait) {
                return None;
            }
            Some(next_wait(server, backoff?))
        })
        .await;
        result.map_err(|failure| failure.into_error(attempts.load(Ordering::Relaxed)))
    }

    async fn attempt(&self, url: Url, body: &serde_json::Value) -> Result<Vec<u8>, Failure> {
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(Failure::Transport)?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let answer = response.bytes().await.map_err(Failure::Transport)?;
        if status.is_success() {
            return Ok(answer.to_vec());
        }
        Err(Failure::Status {
            status,
            retry_after,
            message: redact(&github_message(&answer), &self.config.token),
        })
    }
}

/// The part of a created deployment this module reads.
#[derive(serde::Deserialize)]
struct Created {
    id: DeploymentId,
}

/// `{api}/repos/{owner}/{repo}/deployments`, the owner and repo escaped as path segments; the
/// API root may have a path of its own (GHES' `/api/v3`).
fn deployments_url(config: &DeploymentConfig) -> Result<Url, GitHubError> {
    let bad = |source: Box<dyn std::error::Error + Send + Sync>| GitHubError::BadApiUrl {
        url: config.api_url.clone(),
        source,
    };
    let mut url = Url::parse(&config.api_url).map_err(|e| bad(Box::new(e)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(
            format!("scheme {} is not http or https", url.scheme()).into()
        ));
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| bad("it cannot have a path".into()))?
        .pop_if_empty()
        .extend(["repos", &config.owner, &config.repo, "deployments"]);
    Ok(url)
}

/// `text` with the token replaced by `***`, should an answer ever echo it.
fn redact(text: &str, token: &Secret) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    text.replace(token.expose(), "***")
}

/// What GitHub said in an error answer: its `message`, then the `errors` it lists (strings,
/// or objects with a `message` or a `code`); a body that is not GitHub's JSON, cut short.
fn github_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        message: String,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = description(&text);
        return if text.is_empty() {
            "(no message)".to_owned()
        } else {
            text
        };
    };
    let details: Vec<&str> = answer
        .errors
        .iter()
        .filter_map(|e| {
            e.as_str()
                .or_else(|| e["message"].as_str())
                .or_else(|| e["code"].as_str())
        })
        .collect();
    if details.is_empty() {
        answer.message
    } else {
        format!("{} ({})", answer.message, details.join("; "))
    }
}

/// One state change for the worker.
#[derive(Debug)]
enum Event {
    Start {
        environment: String,
        what: String,
    },
    Succeed {
        environment: String,
        version: String,
    },
    Fail {
        environment: String,
        message: String,
    },
    Inactive {
        environment: String,
        message: String,
    },
}

/// What the reporter has seen of the run so far.
#[derive(Default)]
struct Seen {
    /// The environment of the step running now.
    environment: Option<String>,
    /// Environments with an open deployment (started, not yet ended).
    open: BTreeMap<String, ()>,
    /// The image version reported for an environment (built, or found unchanged).
    version: BTreeMap<String, String>,
    /// trigger-build said `skipped=true`: nothing to build, the existing version stands.
    unchanged: BTreeMap<String, bool>,
    /// trigger-build said `whatIf=true`: nothing was created.
    what_if: BTreeMap<String, bool>,
    /// The last error annotation, for the failure description.
    last_error: Option<String>,
}

/// A reporter that forwards everything to `inner` and records GitHub deployments from the
/// pipeline's events (see the module doc).
pub struct DeploymentReporter {
    inner: Arc<dyn Reporter>,
    default_environment: Option<String>,
    seen: Mutex<Seen>,
    events: Mutex<Option<Sender<Event>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// Wraps `inner` so that the run's image builds are recorded as GitHub deployments.
/// `default_environment` names the environment when step labels do not (`--env`).
pub fn wrap(
    inner: Arc<dyn Reporter>,
    config: DeploymentConfig,
    default_environment: Option<String>,
) -> Arc<dyn Reporter> {
    inner.secret(&config.token);
    let (tx, rx) = mpsc::channel();
    let for_worker = inner.clone();
    let worker = std::thread::Builder::new()
        .name("github-deployments".into())
        .spawn(move || work(config, rx, for_worker.as_ref()));
    let (events, worker) = match worker {
        Ok(handle) => (Some(tx), Some(handle)),
        Err(e) => {
            inner.annotate(&Annotation::warning(format!(
                "GitHub deployments are not recorded: no worker thread: {e}"
            )));
            (None, None)
        }
    };
    Arc::new(DeploymentReporter {
        inner,
        default_environment,
        seen: Mutex::new(Seen::default()),
        events: Mutex::new(events),
        worker: Mutex::new(worker),
    })
}

/// `inner` wrapped with [`wrap`] when `enabled` (`aib run --github-deployment`, whose flag
/// also reads [`AIB_GITHUB_DEPLOYMENT`]), else `inner` itself: the one line a binary needs. The
/// settings come from `env`; a configuration problem (no token…) is a warning and records nothing.
pub fn wrap_when(
    enabled: bool,
    inner: Arc<dyn Reporter>,
    env: &Env,
    default_environment: Option<String>,
) -> Arc<dyn Reporter> {
    if !enabled {
        return inner;
    }
    match DeploymentConfig::from_env(env) {
        Ok(config) => wrap(inner, config, default_environment),
        Err(e) => {
            inner.annotate(&Annotation::warning(format!(
                "GitHub deployments are not recorded: {}",
                error_chain(&e)
            )));
            inner
        }
    }
}

/// The worker: one runtime, one client, the events in order; failures become warnings.
fn work(config: DeploymentConfig, rx: Receiver<Event>, reporter: &dyn Reporter) {
    let warn = |text: String| {
        reporter.annotate(&Annotation::warning(format!(
            "GitHub deployment not recorded: {text}"
        )))
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return warn(format!("no runtime: {e}")),
    };
    runtime.block_on(async {
        let client = match Deployments::new(config) {
            Ok(c) => c,
            Err(e) => return warn(error_chain(&e)),
        };
        let mut ids: BTreeMap<String, DeploymentId> = BTreeMap::new();
        while let Ok(event) = rx.recv() {
            let result = match event {
                Event::Start { environment, what } => {
                    match client.start(&environment, &what).await {
                        Ok(id) => {
                            reporter.info(&format!(
                                "GitHub deployment {id} to {environment}: in progress"
                            ));
                            ids.insert(environment, id);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Event::Succeed {
                    environment,
                    version,
                } => match ids.remove(&environment) {
                    Some(id) => client.succeed(id, &environment, &version).await,
                    None => Ok(()),
                },
                Event::Fail {
                    environment,
                    message,
                } => match ids.remove(&environment) {
                    Some(id) => client.fail(id, &environment, &message).await,
                    None => Ok(()),
                },
                Event::Inactive {
                    environment,
                    message,
                } => match ids.remove(&environment) {
                    Some(id) => client.inactive(id, &environment, &message).await,
                    None => Ok(()),
                },
            };
            if let Err(e) = result {
                warn(error_chain(&e));
            }
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DeploymentReporter {
    /// `trigger-build (sbx)` → (`trigger-build`, `sbx`); a bare name uses the default environment.
    fn parse<'a>(&'a self, label: &'a str) -> (&'a str, Option<&'a str>) {
        match label.strip_suffix(')').and_then(|l| l.split_once(" (")) {
            Some((step, env)) => (step, Some(env)),
            None => (label, self.default_environment.as_deref()),
        }
    }

    fn send(&self, event: Event) {
        if let Some(tx) = lock(&self.events).as_ref() {
            // The worker only stops after finish(): a send error cannot happen before.
            let _ = tx.send(event);
        }
    }
}

impl Reporter for DeploymentReporter {
    fn step_start(&self, name: &str) {
        let (step, environment) = self.parse(name);
        if let Some(environment) = environment {
            let mut seen = lock(&self.seen);
            seen.environment = Some(environment.to_owned());
            seen.last_error = None;
            if step == Step::TriggerBuild.name()
                && seen.open.insert(environment.to_owned(), ()).is_none()
            {
                self.send(Event::Start {
                    environment: environment.to_owned(),
                    what: format!("aib: image build in {environment}"),
                });
            }
        }
        self.inner.step_start(name);
    }

    fn step_end(&self, name: &str, status: StepStatus) {
        self.inner.step_end(name, status);
        let (step, environment) = self.parse(name);
        let Some(environment) = environment else {
            return;
        };
        let mut seen = lock(&self.seen);
        if !seen.open.contains_key(environment) {
            return;
        }
        let version = seen.version.get(environment).cloned();
        let unchanged = seen.unchanged.get(environment).copied().unwrap_or(false);
        let what_if = seen.what_if.get(environment).copied().unwrap_or(false);
        let trigger = step == Step::TriggerBuild.name();
        let wait = step == Step::WaitForBuild.name();
        let event = match (status, version) {
            (StepStatus::Failed, _) => Some(Event::Fail {
                environment: environment.to_owned(),
                message: seen
                    .last_error
                    .clone()
                    .unwrap_or_else(|| format!("{step} failed")),
            }),
            (StepStatus::Succeeded, Some(version)) if wait || (trigger && unchanged) => {
                Some(Event::Succeed {
                    environment: environment.to_owned(),
                    version,
                })
            }
            (StepStatus::Succeeded, _) if trigger && what_if => Some(Event::Inactive {
                environment: environment.to_owned(),
                message: "what-if: nothing was built".to_owned(),
            }),
            (StepStatus::Skipped, _) if trigger => Some(Event::Inactive {
                environment: environment.to_owned(),
                message: "trigger-build was skipped: nothing was built".to_owned(),
            }),
            _ => None,
        };
        if let Some(event) = event {
            seen.open.remove(environment);
            self.send(event);
        }
    }

    fn group_start(&self, title: &str) {
        self.inner.group_start(title);
    }

    fn group_end(&self) {
        self.inner.group_end();
    }

    fn progress_start(&self, title: &str, unit: Unit) -> ProgressId {
        self.inner.progress_start(title, unit)
    }

    fn progress(&self, id: ProgressId, done: u64, total: u64, message: &str) {
        self.inner.progress(id, done, total, message);
    }

    fn status(&self, id: ProgressId, text: &str) {
        self.inner.status(id, text);
    }

    fn progress_finish(&self, id: ProgressId, message: &str) {
        self.inner.progress_finish(id, message);
    }

    fn percent(&self, id: ProgressId, percent: u8, text: &str) {
        self.inner.percent(id, percent, text);
    }

    fn annotate(&self, annotation: &Annotation) {
        if annotation.level == Level::Error {
            lock(&self.seen).last_error = Some(annotation.message.clone());
        }
        self.inner.annotate(annotation);
    }

    fn info(&self, line: &str) {
        self.inner.info(line);
    }

    fn output(&self, name: &str, value: &str) -> Result<(), ReportError> {
        {
            let mut seen = lock(&self.seen);
            if let Some(environment) = seen.environment.clone() {
                match name {
                    "imageVersionId" | "existingVersionId" if !value.is_empty() => {
                        seen.version.insert(environment, value.to_owned());
                    }
                    "skipped" => {
                        seen.unchanged.insert(environment, value == "true");
                    }
                    "whatIf" => {
                        seen.what_if.insert(environment, value == "true");
                    }
                    _ => {}
                }
            }
        }
        self.inner.output(name, value)
    }

    fn secret(&self, value: &Secret) {
        self.inner.secret(value);
    }

    fn summary(&self, markdown: &str) -> Result<(), ReportError> {
        self.inner.summary(markdown)
    }

    fn outcome(&self, outcome: serde_json::Value) {
        self.inner.outcome(outcome);
    }

    fn finish(&self) -> Result<(), ReportError> {
        // Closing the channel lets the worker drain what is queued and stop.
        lock(&self.events).take();
        if let Some(worker) = lock(&self.worker).take() {
            let _ = worker.join();
        }
        self.inner.finish()
    }
}
