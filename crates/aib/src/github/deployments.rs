//! Each environment's image build as a GitHub deployment: `in_progress` when the build starts,
//! `success` with the image version id and its Azure portal link, or `failure` with the message.
//!
//! Two layers. [`Deployments`] is the octocrab client: one call per state change, nothing else.
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

use octocrab::Octocrab;
use octocrab::models::DeploymentId;
use octocrab::models::repos::DeploymentStatusState;

use super::GitHubError;
use crate::azure::env::Env;
use crate::pipeline::Step;
use crate::report::{Annotation, Level, ProgressId, ReportError, Reporter, StepStatus, Unit};
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

/// The octocrab client for one repository's deployments.
pub struct Deployments {
    client: Octocrab,
    config: DeploymentConfig,
}

impl Deployments {
    /// A client for `config`; must be called inside a tokio runtime (octocrab spawns its worker).
    pub fn new(config: DeploymentConfig) -> Result<Self, GitHubError> {
        let client = Octocrab::builder()
            .personal_token(config.token.expose().to_owned())
            .base_uri(config.api_url.as_str())
            .map_err(|e| GitHubError::BadApiUrl {
                url: config.api_url.clone(),
                source: Box::new(e),
            })?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| api_error("set up the GitHub client".into(), e))?;
        Ok(Deployments { client, config })
    }

    /// Creates the deployment of this commit to `environment` and marks it `in_progress`.
    pub async fn start(&self, environment: &str, what: &str) -> Result<DeploymentId, GitHubError> {
        let c = &self.config;
        let deployment = self
            .client
            .repos(&c.owner, &c.repo)
            .deployments()
            .create(&c.sha)
            .environment(environment)
            .task("deploy:image")
            .auto_merge(false)
            .required_contexts(Vec::<String>::new())
            .description(description(what))
            .payload(serde_json::json!({ "tool": "aib" }))
            .send()
            .await
            .map_err(|e| api_error(format!("create the deployment to {environment}"), e))?;
        self.status(
            deployment.id,
            environment,
            DeploymentStatusState::InProgress,
            what,
            None,
        )
        .await?;
        Ok(deployment.id)
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
            DeploymentStatusState::Success,
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
        self.status(
            id,
            environment,
            DeploymentStatusState::Failure,
            message,
            None,
        )
        .await
    }

    /// Marks the deployment `inactive`: the run built nothing after all (what-if, skipped).
    pub async fn inactive(
        &self,
        id: DeploymentId,
        environment: &str,
        message: &str,
    ) -> Result<(), GitHubError> {
        self.status(
            id,
            environment,
            DeploymentStatusState::Inactive,
            message,
            None,
        )
        .await
    }

    async fn status(
        &self,
        id: DeploymentId,
        environment: &str,
        state: DeploymentStatusState,
        text: &str,
        environment_url: Option<String>,
    ) -> Result<(), GitHubError> {
        let c = &self.config;
        let repos = self.client.repos(&c.owner, &c.repo);
        let deployments = repos.deployments();
        let statuses = deployments.statuses(id);
        let mut request = statuses
            .create(state)
            .environment(environment)
            .description(description(text));
        if let Some(url) = &c.log_url {
            request = request.log_url(url.clone());
        }
        if let Some(url) = environment_url {
            request = request.environment_url(url);
        }
        request
            .send()
            .await
            .map_err(|e| api_error(format!("set deployment {id} to {state:?}"), e))?;
        Ok(())
    }
}

fn api_error(action: String, e: octocrab::Error) -> GitHubError {
    GitHubError::Api {
        action,
        source: Box::new(e),
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

/// `inner` wrapped with [`wrap`] when `AIB_GITHUB_DEPLOYMENT=true`, else `inner` itself: the one
/// line a binary needs. A configuration problem (no token…) is a warning and records nothing.
pub fn wrap_if_enabled(
    inner: Arc<dyn Reporter>,
    env: &Env,
    default_environment: Option<String>,
) -> Arc<dyn Reporter> {
    let enabled = env
        .get(AIB_GITHUB_DEPLOYMENT)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    wrap_when(enabled, inner, env, default_environment)
}

/// `inner` wrapped with [`wrap`] when `enabled` (e.g. `aib run --github-deployment`, whose
/// flag also reads `AIB_GITHUB_DEPLOYMENT`), with its settings from `env`.
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
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
