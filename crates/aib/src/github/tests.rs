//! GitHub deployments against a local fake of the GitHub REST API (axum on 127.0.0.1; octocrab's
//! base URI pointed at it through `GITHUB_API_URL`), driven by the reporter events `aib run`
//! sends.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::GitHubError;
use super::deployments::{self, DeploymentConfig, portal_link};
use crate::azure::env::Env;
use crate::report::{Annotation, Level, ProgressId, ReportError, Reporter, StepStatus, Unit};
use crate::secret::Secret;

/// One request the fake received: path, Authorization header, JSON body.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    auth: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Answer every request with this status instead (a GitHub outage).
    fail_with: Option<StatusCode>,
}

impl Fake {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

fn record(fake: &Fake, path: String, headers: &HeaderMap, body: Value) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut calls) = fake.calls.lock() {
        calls.push(Call { path, auth, body });
    }
}

const API: &str = "http://api.invalid";

async fn create_deployment(
    State(fake): State<Fake>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let path = format!("/repos/{owner}/{repo}/deployments");
    record(&fake, path, &headers, body.clone());
    if let Some(status) = fake.fail_with {
        return (status, Json(json!({ "message": "Server Error" })));
    }
    let id = fake.calls().len() as u64;
    let repo_url = format!("{API}/repos/{owner}/{repo}");
    (
        StatusCode::CREATED,
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
    let app = Router::new()
        .route("/repos/{owner}/{repo}/deployments", post(create_deployment))
        .route(
            "/repos/{owner}/{repo}/deployments/{id}/statuses",
            post(create_status),
        )
        .with_state(fake);
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

/// A build the run follows to success is one deployment of the commit: in_progress when
/// trigger-build starts, then success with the image version id and its portal page.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployment_goes_in_progress_then_success_with_version_and_portal_link() {
    // Arrange
    let fake = Fake::default();
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let inner = Arc::new(Recorder::default());
    let reporter = deployments::wrap(inner.clone(), config, None);

    // Act
    successful_build(reporter.as_ref(), "sbx");
    tokio::task::spawn_blocking(move || reporter.finish())
        .await
        .expect("join")
        .expect("finish");

    // Assert
    let calls = fake.calls();
    assert_eq!(
        story(&calls),
        [
            ("/repos/octo/images/deployments".into(), "sbx".into()),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "in_progress".into()
            ),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "success".into()
            ),
        ]
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
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let reporter = deployments::wrap(Arc::new(Recorder::default()), config, None);

    reporter.step_start("trigger-build (dev)");
    reporter.step_end("trigger-build (dev)", StepStatus::Succeeded);
    reporter.step_start("wait-for-build (dev)");
    reporter.annotate(&Annotation::error(
        "build of img-1 Failed in 12m: Customizing: script install.sh exited 1",
    ));
    reporter.step_end("wait-for-build (dev)", StepStatus::Failed);
    tokio::task::spawn_blocking(move || reporter.finish())
        .await
        .expect("join")
        .expect("finish");

    let calls = fake.calls();
    assert_eq!(
        story(&calls),
        [
            ("/repos/octo/images/deployments".into(), "dev".into()),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "in_progress".into()
            ),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "failure".into()
            ),
        ]
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
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let reporter = deployments::wrap(Arc::new(Recorder::default()), config, None);

    successful_build(reporter.as_ref(), "sbx");
    successful_build(reporter.as_ref(), "dev");
    tokio::task::spawn_blocking(move || reporter.finish())
        .await
        .expect("join")
        .expect("finish");

    let states: Vec<(String, String)> = story(&fake.calls());
    assert_eq!(
        states,
        [
            ("/repos/octo/images/deployments".into(), "sbx".into()),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "in_progress".into()
            ),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "success".into()
            ),
            ("/repos/octo/images/deployments".into(), "dev".into()),
            (
                "/repos/octo/images/deployments/4/statuses".into(),
                "in_progress".into()
            ),
            (
                "/repos/octo/images/deployments/4/statuses".into(),
                "success".into()
            ),
        ]
    );
}

/// Runs without an image build (scope Only infrastructure) record no deployment; a what-if
/// trigger ends its deployment `inactive`; an unchanged image ends `success` with the old version.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployment_only_for_builds_inactive_on_what_if_success_when_unchanged() {
    let fake = Fake::default();
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let reporter = deployments::wrap(Arc::new(Recorder::default()), config, None);

    reporter.step_start("deploy-infra (sbx)");
    reporter.step_end("deploy-infra (sbx)", StepStatus::Succeeded);
    reporter.step_start("trigger-build (dev)");
    reporter.output("whatIf", "true").ok();
    reporter.step_end("trigger-build (dev)", StepStatus::Succeeded);
    reporter.step_start("trigger-build (prd)");
    reporter.output("skipped", "true").ok();
    reporter.output("existingVersionId", VERSION).ok();
    reporter.step_end("trigger-build (prd)", StepStatus::Succeeded);
    tokio::task::spawn_blocking(move || reporter.finish())
        .await
        .expect("join")
        .expect("finish");

    let calls = fake.calls();
    assert_eq!(
        story(&calls),
        [
            ("/repos/octo/images/deployments".into(), "dev".into()),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "in_progress".into()
            ),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "inactive".into()
            ),
            ("/repos/octo/images/deployments".into(), "prd".into()),
            (
                "/repos/octo/images/deployments/4/statuses".into(),
                "in_progress".into()
            ),
            (
                "/repos/octo/images/deployments/4/statuses".into(),
                "success".into()
            ),
        ]
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
    let api = start_fake(fake.clone()).await;
    let config = DeploymentConfig::from_env(&runner_env(&api)).expect("config");
    let inner = Arc::new(Recorder::default());
    let reporter = deployments::wrap(inner.clone(), config, None);

    successful_build(reporter.as_ref(), "sbx");
    let finished = tokio::task::spawn_blocking(move || reporter.finish())
        .await
        .expect("join");

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

/// Deployments are off unless AIB_GITHUB_DEPLOYMENT=true; on without a token they are a warning.
#[tokio::test(flavor = "multi_thread")]
async fn github_deployments_only_when_enabled_and_configured() {
    let fake = Fake::default();
    let api = start_fake(fake.clone()).await;
    let inner: Arc<dyn Reporter> = Arc::new(Recorder::default());

    let off = deployments::wrap_if_enabled(inner.clone(), &runner_env(&api), None);
    assert!(Arc::ptr_eq(&off, &inner));

    let recorder = Arc::new(Recorder::default());
    let mut env = runner_env(&api);
    env.set("AIB_GITHUB_DEPLOYMENT", "true");
    env.set("GITHUB_TOKEN", "");
    let no_token = deployments::wrap_if_enabled(recorder.clone(), &env, None);
    assert_eq!(
        recorder.events(),
        [
            "Warning GitHub deployments are not recorded: GITHUB_TOKEN is not set: GitHub deployments need the GitHub Actions runner's environment"
        ]
    );
    drop(no_token);

    let mut env = runner_env(&api);
    env.set("AIB_GITHUB_DEPLOYMENT", "true");
    let on = deployments::wrap_if_enabled(Arc::new(Recorder::default()), &env, Some("sbx".into()));
    on.step_start("trigger-build");
    on.step_end("trigger-build", StepStatus::Failed);
    tokio::task::spawn_blocking(move || on.finish())
        .await
        .expect("join")
        .expect("finish");
    assert_eq!(
        story(&fake.calls()),
        [
            ("/repos/octo/images/deployments".into(), "sbx".into()),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "in_progress".into()
            ),
            (
                "/repos/octo/images/deployments/1/statuses".into(),
                "failure".into()
            ),
        ]
    );
}
