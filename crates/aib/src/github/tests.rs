//! GitHub deployments against a local fake of the GitHub REST API (axum on 127.0.0.1; the
//! client's API root pointed at it through `GITHUB_API_URL`), driven by the reporter events
//! `aib run` sends.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::deployments::portal_link;
use super::deployments::{self, DeploymentConfig, DeploymentId, Deployments, RetryPolicy};
use super::{ApiError, GitHubError};
use crate::azure::env::Env;
use crate::report::{Annotation, Level, ProgressId, ReportError, Reporter, StepStatus, Unit};
use crate::secret::Secret;

/// One request the fake received: path, Authorization header, the other headers GitHub
/// requires, JSON body.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    auth: String,
    accept: String,
    api_version: String,
    user_agent: String,
    body: Value,
}

/// An error answer the fake gives before a success: status and `Retry-After` seconds.
type Refusal = (StatusCode, Option<&'static str>);

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Answer every request with this status instead (a GitHub outage).
    fail_with: Option<StatusCode>,
    /// Answer the next deployment creations with these (status, Retry-After) first, one each.
    fail_first: Arc<Mutex<VecDeque<Refusal>>>,
}

impl Fake {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

fn record(fake: &Fake, path: String, headers: &HeaderMap, body: Value) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if let Ok(mut calls) = fake.calls.lock() {
        calls.push(Call {
            path,
            auth: header("authorization"),
            accept: header("accept"),
            api_version: header("x-github-api-version"),
            user_agent: header("user-agent"),
            body,
        });
    }
}

const API: &str = "http://api.invalid";

async fn create_deployment(
    State(fake): State<Fake>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, HeaderMap, Json<Value>) {
    let path = format!("/repos/{owner}/{repo}/deployments");
    record(&fake, path, &headers, body.clone());
    let first = fake.fail_first.lock().ok().and_then(|mut f| f.pop_front());
    if let Some((status, retry_after)) = first {
        let mut answer = HeaderMap::new();
        if let Some(seconds) = retry_after {
            answer.insert("retry-after", HeaderValue::from_static(seconds));
        }
        return (status, answer, Json(json!({ "message": "Server Error" })));
    }
    if let Some(status) = fake.fail_with {
        return (
            status,
            HeaderMap::new(),
            Json(json!({
                "message": "Validation Failed",
                "errors": [{
                    "resource": "Deployment",
                    "code": "custom",
                    "message": "No ref found for: ghs_t0ken",
                }],
                "documentation_url": "https://docs.github.com/rest/deployments/deployments#create-a-deployment",
            })),
        );
    }
    let id = fake.calls().len() as u64;
    let repo_url = format!("{API}/repos/{owner}/{repo}");
    (
        StatusCode::CREATED,
        HeaderMap::new(),
        Json(json!({
            "url": format!("{repo_url}/deployments/{id}"),
            "id": id,
            "node_id": format!("DE_{id}"),
            "sha": body["ref"],
            "ref": body["ref"],
            "task": body["task"],
            "payload": body["payload"],
            "environment": body["environment"],
            "description": body["description"],
            "created_at": "2026-11-28T12:00:00Z",
            "updated_at": "2026-11-28T12:00:00Z",
            "statuses_url": format!("{repo_url}/deployments/{id}/statuses"),
            "repository_url": repo_url,
        })),
    )
}

async fn create_status(
    State(fake): State<Fake>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let path = format!("/repos/{owner}/{repo}/deployments/{id}/statuses");
    record(&fake, path, &headers, body.clone());
    let repo_url = format!("{API}/repos/{owner}/{repo}");
    (
        StatusCode::CREATED,
        Json(json!({
            "url": format!("{repo_url}/deployments/{id}/statuses/1"),
            "id": 1,
            "node_id": "DES_1",
            "state": body["state"],
            "description": body["description"],
            "environment": body["environment"],
            "environment_url": body["environment_url"],
            "log_url": body["log_url"],
            "created_at": "2026-11-28T12:00:00Z",
            "updated_at": "2026-11-28T12:00:00Z",
            "deployment_url": format!("{repo_url}/deployments/{id}"),
            "repository_url": repo_url,
        })),
    )
}

/// Starts the fake GitHub API; returns its URL. The server lives as long as the test runtime.
async fn start_fake(fake: Fake) -> String {
    start_fake_at(fake, "").await
}

/// The fake GitHub API under `root` (GHES serves its API under `/api/v3`); returns its URL.
async fn start_fake_at(fake: Fake, root: &str) -> String {
    let api = Router::new()
        .route("/repos/{owner}/{repo}/deployments", post(create_deployment))
        .route(
            "/repos/{owner}/{repo}/deployments/{id}/statuses",
            post(create_status),
        )
        .with_state(fake);
    let app = if root.is_empty() {
        api
    } else {
        Router::new().nest(root, api)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The runner's variables for repository octo/images, run 42, pointing at `api`.
fn runner_env(api: &str) -> Env {
    Env::from_pairs([
        ("GITHUB_TOKEN", "ghs_t0ken"),
        ("GITHUB_API_URL", api),
        ("GITHUB_SERVER_URL", "https://github.example"),
        ("GITHUB_REPOSITORY", "octo/images"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_RUN_ID", "42"),
    ])
}

/// A reporter that remembers every event it is given, to show the wrapper forwards them all.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl Recorder {
    fn push(&self, e: String) {
        if let Ok(mut events) = self.events.lock() {
            events.push(e);
        }
    }
    fn events(&self) -> Vec<String> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Reporter for Recorder {
    fn step_start(&self, name: &str) {
        self.push(format!("start {name}"));
    }
    fn step_end(&self, name: &str, status: StepStatus) {
        self.push(format!("end {name} {status:?}"));
    }
    fn group_start(&self, title: &str) {
        self.push(format!("group {title}"));
    }
    fn group_end(&self) {
        self.push("endgroup".into());
    }
    fn progress_start(&self, title: &str, _unit: Unit) -> ProgressId {
        self.push(format!("progress {title}"));
        ProgressId(7)
    }
    fn progress(&self, _id: ProgressId, done: u64, total: u64, _message: &str) {
        self.push(format!("progress {done}/{total}"));
    }
    fn status(&self, _id: ProgressId, text: &str) {
        self.push(format!("status {text}"));
    }
    fn progress_finish(&self, _id: ProgressId, message: &str) {
        self.push(format!("finish-progress {message}"));
    }
    fn percent(&self, _id: ProgressId, percent: u8, text: &str) {
        self.push(format!("percent {percent} {text}"));
    }
    fn annotate(&self, annotation: &Annotation) {
        self.push(format!("{:?} {}", annotation.level, annotation.message));
    }
    fn info(&self, line: &str) {
        self.push(format!("info {line}"));
    }
    fn output(&self, name: &str, value: &str) -> Result<(), ReportError> {
        self.push(format!("output {name}={value}"));
        Ok(())
    }
    fn secret(&self, value: &Secret) {
        self.push(format!("secret {}", value.expose()));
    }
    fn summary(&self, markdown: &str) -> Result<(), ReportError> {
        self.push(format!("summary {markdown}"));
        Ok(())
    }
    fn outcome(&self, _outcome: Value) {
        self.push("outcome".into());
    }
    fn finish(&self) -> Result<(), ReportError> {
        self.push("finished".into());
        Ok(())
    }
}

const VERSION: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/img/versions/1.0.3";

/// What `aib run --scope All --wait` reports for one environment, as far as deployments care.
fn successful_build(r: &dyn Reporter, env: &str) {
    r.step_start(&format!("upload-scripts ({env})"));
    r.output("skipped", "4").ok();
    r.step_end(&format!("upload-scripts ({env})"), StepStatus::Succeeded);
    r.step_start(&format!("trigger-build ({env})"));
    r.output("templateName", "img-2026-11-28-12-00-00").ok();
    r.output("whatIf", "false").ok();
    r.output("skipped", "false").ok();
    r.step_end(&format!("trigger-build ({env})"), StepStatus::Succeeded);
    r.step_start(&format!("wait-for-build ({env})"));
    r.output("runState", "Succeeded").ok();
    r.output("imageVersionId", VERSION).ok();
    r.step_end(&format!("wait-for-build ({env})"), StepStatus::Succeeded);
}

/// (path, state or environment) of each call, for compact assertions.
fn story(calls: &[Call]) -> Vec<(String, String)> {
    calls
        .iter()
        .map(|c| {
            let what = c.body["state"]
                .as_str()
                .or(c.body["environment"].as_str())
                .unwrap_or_default();
            (c.path.clone(), what.to_owned())
        })
        .collect()
}

/// A fake GitHub API and the deployments reporter `aib run` wraps around `inner`, pointed at it.
async fn deployments_reporter(fake: &Fake, inner: Arc<dyn Reporter>) -> Arc<dyn Reporter> {
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    deployments::wrap(inner, config, None)
}

/// Ends the run as `aib run` does, off the async runtime (the reporter's worker blocks).
async fn finish(reporter: Arc<dyn Reporter>) -> Result<(), ReportError> {
    tokio::task::spawn_blocking(move || reporter.finish())
        .await
        .expect("join")
}

/// The story of one deployment: created for `environment`, then its statuses `states` in turn.
fn deployment(id: u64, environment: &str, states: &[&str]) -> Vec<(String, String)> {
    let created = (
        "/repos/octo/images/deployments".to_owned(),
        environment.to_owned(),
    );
    let statuses = states.iter().map(|state| {
        (
            format!("/repos/octo/images/deployments/{id}/statuses"),
            (*state).to_owned(),
        )
    });
    std::iter::once(created).chain(statuses).collect()
}

/// A build the run follows to success is one deployment of the commit: in_progress when
/// trigger-build starts, then success with the image version id and its portal page.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployment_goes_in_progress_then_success_with_version_and_portal_link() {
    // Arrange
    let fake = Fake::default();
    let inner = Arc::new(Recorder::default());
    let reporter = deployments_reporter(&fake, inner.clone()).await;

    // Act
    successful_build(reporter.as_ref(), "sbx");
    finish(reporter).await.expect("finish");

    // Assert
    let calls = fake.calls();
    assert_eq!(
        story(&calls),
        deployment(1, "sbx", &["in_progress", "success"])
    );
    let created = &calls[0].body;
    assert_eq!(created["ref"], "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(created["auto_merge"], false);
    assert_eq!(created["required_contexts"], json!([]));
    assert!(
        calls.iter().all(|c| c.auth == "Bearer ghs_t0ken"),
        "{calls:?}"
    );
    let success = &calls[2].body;
    assert_eq!(success["description"], VERSION);
    assert_eq!(
        success["environment_url"],
        format!("https://portal.azure.com/#resource{VERSION}")
    );
    assert_eq!(
        success["log_url"],
        "https://github.example/octo/images/actions/runs/42"
    );
    let events = inner.events();
    assert_eq!(events[0], "secret ghs_t0ken");
    assert!(events.contains(&format!("output imageVersionId={VERSION}")));
    assert!(events.contains(&"end wait-for-build (sbx) Succeeded".to_owned()));
    assert_eq!(events.last().map(String::as_str), Some("finished"));
    assert!(
        !events.iter().any(|e| e.starts_with("Warning")),
        "{events:?}"
    );
}

/// A failed build marks the environment's deployment `failure` with the error the step reported.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployment_failure_carries_the_step_error_message() {
    let fake = Fake::default();
    let reporter = deployments_reporter(&fake, Arc::new(Recorder::default())).await;

    reporter.step_start("trigger-build (dev)");
    reporter.step_end("trigger-build (dev)", StepStatus::Succeeded);
    reporter.step_start("wait-for-build (dev)");
    reporter.annotate(&Annotation::error(
        "build of img-1 Failed in 12m: Customizing: script install.sh exited 1",
    ));
    reporter.step_end("wait-for-build (dev)", StepStatus::Failed);
    finish(reporter).await.expect("finish");

    let calls = fake.calls();
    assert_eq!(
        story(&calls),
        deployment(1, "dev", &["in_progress", "failure"])
    );
    assert_eq!(
        calls[2].body["description"],
        "build of img-1 Failed in 12m: Customizing: script install.sh exited 1"
    );
    assert_eq!(calls[2].body.get("environment_url"), None);
}

/// A run over sbx then dev records one deployment per environment, each closed on its own.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployments_one_per_environment_of_the_run() {
    let fake = Fake::default();
    let reporter = deployments_reporter(&fake, Arc::new(Recorder::default())).await;

    successful_build(reporter.as_ref(), "sbx");
    successful_build(reporter.as_ref(), "dev");
    finish(reporter).await.expect("finish");

    let states: Vec<(String, String)> = story(&fake.calls());
    assert_eq!(
        states,
        [
            deployment(1, "sbx", &["in_progress", "success"]),
            deployment(4, "dev", &["in_progress", "success"]),
        ]
        .concat()
    );
}

/// Runs without an image build (scope Only infrastructure) record no deployment; a what-if
/// trigger ends its deployment `inactive`; an unchanged image ends `success` with the old version.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployment_only_for_builds_inactive_on_what_if_success_when_unchanged() {
    let fake = Fake::default();
    let reporter = deployments_reporter(&fake, Arc::new(Recorder::default())).await;

    reporter.step_start("deploy-infra (sbx)");
    reporter.step_end("deploy-infra (sbx)", StepStatus::Succeeded);
    reporter.step_start("trigger-build (dev)");
    reporter.output("whatIf", "true").ok();
    reporter.step_end("trigger-build (dev)", StepStatus::Succeeded);
    reporter.step_start("trigger-build (prd)");
    reporter.output("skipped", "true").ok();
    reporter.output("existingVersionId", VERSION).ok();
    reporter.step_end("trigger-build (prd)", StepStatus::Succeeded);
    finish(reporter).await.expect("finish");

    let calls = fake.calls();
    assert_eq!(
        story(&calls),
        [
            deployment(1, "dev", &["in_progress", "inactive"]),
            deployment(4, "prd", &["in_progress", "success"]),
        ]
        .concat()
    );
    assert_eq!(calls[2].body["description"], "what-if: nothing was built");
}

/// A GitHub API outage is a warning on the run's reporter, never a failure of the image build.
#[tokio::test(flavor = "multi_thread")]
async fn github_api_failure_is_a_warning_not_a_failed_run() {
    let fake = Fake {
        fail_with: Some(StatusCode::UNPROCESSABLE_ENTITY),
        ..Fake::default()
    };
    let inner = Arc::new(Recorder::default());
    let reporter = deployments_reporter(&fake, inner.clone()).await;

    successful_build(reporter.as_ref(), "sbx");
    let finished = finish(reporter).await;

    assert!(finished.is_ok());
    assert_eq!(
        fake.calls().len(),
        1,
        "no status for a deployment that was not created"
    );
    let warnings: Vec<String> = inner
        .events()
        .into_iter()
        .filter(|e| e.starts_with(&format!("{:?}", Level::Warning)))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(
            "GitHub deployment not recorded: GitHub API: create the deployment to sbx failed"
        ),
        "{warnings:?}"
    );
    assert!(!warnings[0].contains("ghs_t0ken"));
}

/// The configuration needs the runner's token, repository and commit, and says which is missing.
#[test]
fn github_deployment_config_names_the_missing_variable() {
    let mut env = runner_env("https://api.github.com");
    env.set("GITHUB_TOKEN", "");
    let err = DeploymentConfig::from_env(&env).expect_err("no token");
    assert!(matches!(
        err,
        GitHubError::MissingVariable {
            name: "GITHUB_TOKEN"
        }
    ));

    let mut env = runner_env("https://api.github.com");
    env.set("GITHUB_REPOSITORY", "just-a-name");
    let err = DeploymentConfig::from_env(&env).expect_err("bad repository");
    assert_eq!(
        err.to_string(),
        "GITHUB_REPOSITORY 'just-a-name' is not owner/repo"
    );

    let ok = DeploymentConfig::from_env(&runner_env("https://ghes.example/api/v3")).expect("ok");
    assert_eq!((ok.owner.as_str(), ok.repo.as_str()), ("octo", "images"));
    assert_eq!(format!("{:?}", ok.token), format!("{:?}", Secret::new("x")));
}

/// The environment URL of a version is its Azure portal page, for any portal root.
#[test]
fn github_portal_link_is_the_resource_page() {
    assert_eq!(
        portal_link("https://portal.azure.us/", "/subscriptions/s/x"),
        "https://portal.azure.us/#resource/subscriptions/s/x"
    );
}

/// Descriptions fit GitHub's 140 characters: messages keep their start, long version ids their end.
#[test]
fn github_descriptions_fit_140_characters() {
    let long = format!(
        "/subscriptions/{}/images/img/versions/2026.11.28",
        "x".repeat(200)
    );
    let id = deployments::id_description(&long);
    assert_eq!(id.chars().count(), 140);
    assert!(
        id.starts_with('…') && id.ends_with("/versions/2026.11.28"),
        "{id}"
    );

    let message = deployments::description(&format!("failed:\n{}", "é".repeat(300)));
    assert_eq!(message.chars().count(), 140);
    assert!(message.starts_with("failed: é") && message.ends_with('…'));
    assert_eq!(deployments::description("short\nline"), "short line");
}

/// Deployments are off unless enabled (`--github-deployment`, AIB_GITHUB_DEPLOYMENT=true); on
/// without a token they are a warning.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployments_only_when_enabled_and_configured() {
    let fake = Fake::default();
    let api = start_fake(fake.clone()).await;
    let inner: Arc<dyn Reporter> = Arc::new(Recorder::default());

    let off = deployments::wrap_when(false, inner.clone(), &runner_env(&api), None);
    assert!(Arc::ptr_eq(&off, &inner));

    let recorder = Arc::new(Recorder::default());
    let mut env = runner_env(&api);
    env.set("GITHUB_TOKEN", "");
    let no_token = deployments::wrap_when(true, recorder.clone(), &env, None);
    assert_eq!(
        recorder.events(),
        [
            "Warning GitHub deployments are not recorded: GITHUB_TOKEN is not set: GitHub deployments need the GitHub Actions runner's environment"
        ]
    );
    drop(no_token);

    let env = runner_env(&api);
    let on = deployments::wrap_when(
        true,
        Arc::new(Recorder::default()),
        &env,
        Some("sbx".into()),
    );
    on.step_start("trigger-build");
    on.step_end("trigger-build", StepStatus::Failed);
    finish(on).await.expect("finish");
    assert_eq!(
        story(&fake.calls()),
        deployment(1, "sbx", &["in_progress", "failure"])
    );
}

/// Retries as fast as the tests allow: the backoff shrunk, a server's Retry-After still obeyed.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_server_wait: Duration::from_secs(60),
    }
}

/// An error answer surfaces GitHub's status and message (and its listed errors), never the
/// token, and a 4xx is not retried.
#[tokio::test(flavor = "multi_thread")]
async fn github_error_answer_names_status_and_message_without_the_token() {
    let fake = Fake {
        fail_with: Some(StatusCode::UNPROCESSABLE_ENTITY),
        ..Fake::default()
    };
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let client = Deployments::new(config)
        .expect("client")
        .with_retry(fast_retry());

    let err = client.start("sbx", "build").await.expect_err("422");

    let GitHubError::Api { action, source } = &err else {
        panic!("not an API error: {err:?}");
    };
    assert_eq!(action, "create the deployment to sbx");
    let ApiError::Status {
        status,
        message,
        attempts,
    } = source
    else {
        panic!("not a status error: {source:?}");
    };
    assert_eq!(status.as_u16(), 422);
    assert_eq!(message, "Validation Failed (No ref found for: ***)");
    assert_eq!(*attempts, 1);
    let text = format!("{err}: {source} {err:?}");
    assert!(
        text.contains("HTTP 422 Unprocessable Entity: Validation Failed"),
        "{text}"
    );
    assert!(!text.contains("ghs_t0ken"), "{text}");
    assert_eq!(fake.calls().len(), 1, "a 422 is not retried");
}

/// A 502 from GitHub is retried: the second answer (201) creates the deployment, which then
/// goes in_progress; every request carries the headers GitHub requires.
#[tokio::test(flavor = "multi_thread")]
async fn github_502_then_201_is_retried_to_success() {
    let fake = Fake::default();
    if let Ok(mut first) = fake.fail_first.lock() {
        first.push_back((StatusCode::BAD_GATEWAY, None));
    }
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let client = Deployments::new(config)
        .expect("client")
        .with_retry(fast_retry());

    let id = client
        .start("sbx", "build")
        .await
        .expect("retried to success");

    assert_eq!(id, DeploymentId(2));
    let calls = fake.calls();
    assert_eq!(
        story(&calls),
        [
            ("/repos/octo/images/deployments".into(), "sbx".into()),
            ("/repos/octo/images/deployments".into(), "sbx".into()),
            (
                "/repos/octo/images/deployments/2/statuses".into(),
                "in_progress".into()
            ),
        ]
    );
    assert_eq!(calls[0].body, calls[1].body, "the same request re-sent");
    for call in &calls {
        assert_eq!(call.auth, "Bearer ghs_t0ken");
        assert_eq!(call.accept, "application/vnd.github+json");
        assert_eq!(call.api_version, "2022-11-28");
        assert_eq!(call.user_agent, crate::azure::http::USER_AGENT);
    }
}

/// A 429's Retry-After is waited out even when the backoff is shorter; a 5xx that lasts ends
/// after the attempt limit, saying how many were made.
#[tokio::test(flavor = "multi_thread")]
async fn github_retry_honours_retry_after_and_stops_at_the_attempt_limit() {
    let fake = Fake::default();
    if let Ok(mut first) = fake.fail_first.lock() {
        first.push_back((StatusCode::TOO_MANY_REQUESTS, Some("1")));
    }
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let client = Deployments::new(config.clone())
        .expect("client")
        .with_retry(fast_retry());

    let started = Instant::now();
    client
        .start("sbx", "build")
        .await
        .expect("after Retry-After");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.calls().len(), 3);

    let outage = Fake {
        fail_with: Some(StatusCode::SERVICE_UNAVAILABLE),
        ..Fake::default()
    };
    let api = start_fake(outage.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let client = Deployments::new(config)
        .expect("client")
        .with_retry(fast_retry());
    let err = client.start("sbx", "build").await.expect_err("outage");
    assert!(
        matches!(
            &err,
            GitHubError::Api {
                source: ApiError::Status { attempts: 4, .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(outage.calls().len(), 4);
}

/// The GitHub client trusts `SSL_CERT_FILE`'s bundle as the Azure calls do: an unreadable
/// bundle is an error that names it, not a quiet fall-back to the platform's roots.
#[test]
fn github_client_takes_the_ca_bundle_of_ssl_cert_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("corporate-ca.pem");
    let mut env = runner_env("https://ghes.example/api/v3/");
    env.set("SSL_CERT_FILE", missing.to_string_lossy());
    let config = DeploymentConfig::from_env(&env).expect("config");
    assert_eq!(config.http.ca_file.as_deref(), Some(missing.as_path()));
    let err = Deployments::new(config)
        .err()
        .expect("an unreadable bundle is refused");
    let chain = crate::report::error_chain(&err);
    assert!(
        chain.contains("corporate-ca.pem") && chain.contains("SSL_CERT_FILE"),
        "{chain}"
    );
}

/// `GITHUB_API_URL` must be an http(s) URL; GHES' `/api/v3` root keeps its path.
#[tokio::test(flavor = "multi_thread")]
async fn github_api_url_must_be_http_and_keeps_its_path() {
    let fake = Fake::default();
    let root = start_fake_at(fake.clone(), "/api/v3").await;
    let config =
        DeploymentConfig::from_env(&runner_env(&format!("{root}/api/v3/"))).expect("config");
    let client = Deployments::new(config).expect("client");
    let id = client.start("sbx", "build").await.expect("under /api/v3");
    assert_eq!(id, DeploymentId(1));
    assert_eq!(fake.calls().len(), 2);

    let config = DeploymentConfig::from_env(&runner_env("ftp://ghes.example")).expect("config");
    let err = Deployments::new(config).err().expect("ftp refused");
    assert!(matches!(err, GitHubError::BadApiUrl { .. }), "{err:?}");

    let config = DeploymentConfig::from_env(&runner_env("not a url")).expect("config");
    let err = Deployments::new(config).err().expect("not a URL");
    assert!(
        err.to_string()
            .starts_with("GITHUB_API_URL 'not a url' is not a URL"),
        "{err}"
    );
}
