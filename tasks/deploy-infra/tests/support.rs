//! One emulator per test, a parameter file derived from `parameters/local.image.parameters.json`
//! in a temp dir, the `deploy-infra` binary run with exactly a CI job's environment (nothing
//! inherited), and an ARM client of our own to look at the emulator's state afterwards. What
//! every step's tests share (the run's output, the ARM client) is `aib_testkit`'s.

use std::path::PathBuf;
use std::process::Command;

use aib::azure::Azure;
use aib_emulator::{Emulator, EmulatorConfig, KnobValues, RequestRecord};

pub use aib_testkit::{Run, repo_root};

/// An ARM/Entra emulator without Azurite (deploy-infra needs no blob data plane).
pub async fn emulator() -> Emulator {
    emulator_with(KnobValues::default()).await
}

/// The same, with starting knobs.
pub async fn emulator_with(knobs: KnobValues) -> Emulator {
    Emulator::start(EmulatorConfig {
        azurite: false,
        knobs,
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts")
}

/// A parameter file: the bundled local one with `edits` (text replacements) applied.
pub struct Params {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Params {
    pub fn local(edits: &[(&str, &str)]) -> Params {
        let mut text =
            std::fs::read_to_string(repo_root().join("parameters/local.image.parameters.json"))
                .expect("the local parameter file exists");
        for (from, to) in edits {
            assert!(text.contains(from), "the local file contains {from:?}");
            text = text.replace(from, to);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.image.parameters.json");
        std::fs::write(&path, text).expect("parameter file written");
        Params { _dir: dir, path }
    }
}

/// The environment a CI job signed in as the emulator's Owner principal would have.
pub fn ci_env(emu: &Emulator) -> Vec<(String, String)> {
    client_env(emu, emu.client_id(), emu.client_secret())
}

/// The same for another principal.
pub fn client_env(emu: &Emulator, client_id: &str, secret: &str) -> Vec<(String, String)> {
    [
        ("PATH", "/usr/bin:/bin".to_owned()),
        ("NO_COLOR", "1".to_owned()),
        ("SSL_CERT_FILE", emu.ca_file().display().to_string()),
        ("AIB_ARM_ENDPOINT", emu.url().to_string()),
        ("AIB_AUTHORITY_HOST", emu.url().to_string()),
        ("AZURE_CLIENT_ID", client_id.to_owned()),
        ("AZURE_TENANT_ID", emu.tenant_id().to_owned()),
        ("AZURE_SUBSCRIPTION_ID", emu.subscription_id().to_owned()),
        ("AZURE_CLIENT_SECRET", secret.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs `deploy-infra --parameters FILE --root REPO <args>` with exactly `env`.
pub async fn deploy_infra(params: &Params, args: &[&str], env: Vec<(String, String)>) -> Run {
    let mut all: Vec<String> = vec![
        "--parameters".into(),
        params.path.display().to_string(),
        "--root".into(),
        repo_root().display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_deploy-infra"))
            .args(&all)
            .env_clear()
            .envs(env)
            .output()
            .expect("deploy-infra runs")
    })
    .await
    .expect("the run finishes");
    Run::from(output)
}

/// An ARM client signed in as the emulator's Owner, to read (or prepare) state.
pub fn azure(emu: &Emulator) -> Azure {
    aib_testkit::connect(emu)
}

/// `GET path` as JSON.
pub async fn get(emu: &Emulator, path: &str) -> serde_json::Value {
    azure(emu)
        .arm
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `/subscriptions/{sub}/resourceGroups/rg-aib-local` and friends.
pub fn rg_id(emu: &Emulator) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/rg-aib-local",
        emu.subscription_id()
    )
}

/// Requests that write (PUT, PATCH, DELETE), as `METHOD path`.
pub fn writes(requests: &[RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| matches!(r.method.as_str(), "PUT" | "PATCH" | "DELETE"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// POSTs other than token requests and read-only actions.
pub fn write_posts(requests: &[RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method == "POST")
        .filter(|r| !r.path.contains("/oauth2/") && !r.path.ends_with("/checkNameAvailability"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Statuses of the `resources` of a JSON outcome, as `kind name: action/status`.
pub fn statuses(outcome: &serde_json::Value) -> Vec<String> {
    outcome["resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    format!(
                        "{} {}: {}/{}",
                        r["kind"].as_str().unwrap_or(""),
                        r["name"].as_str().unwrap_or(""),
                        r["action"].as_str().unwrap_or(""),
                        r["status"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `deploy-infra` without waiting (for tests that signal it).
pub fn spawn_deploy_infra(
    params: &Params,
    args: &[&str],
    env: Vec<(String, String)>,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_deploy-infra"))
        .arg("--parameters")
        .arg(&params.path)
        .arg("--root")
        .arg(repo_root())
        .args(args)
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("deploy-infra starts")
}

/// Waits for a spawned run.
pub async fn finish(child: std::process::Child) -> Run {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the run finishes")
        .expect("output read");
    Run::from(output)
}

/// Asserts the run ended with `code` and that its stderr says each of `said`, showing the
/// streams when not: every test checks what a person reading the log is told.
pub fn assert_run(run: &Run, code: i32, said: &[&str]) {
    assert_eq!(run.code, Some(code), "{}", run.all());
    for text in said {
        assert!(run.stderr.contains(text), "no {text:?} in:\n{}", run.stderr);
    }
}

/// Asserts the emulator saw no request that writes: the run stopped before changing anything.
pub fn assert_nothing_written(emu: &Emulator) {
    assert_eq!(writes(&emu.requests()), Vec::<String>::new());
}

/// Adds the client `client` holding Contributor on the whole subscription (it may create
/// resources but not assign roles) and returns a CI job's environment signed in as it.
pub fn contributor_env(emu: &Emulator, client: &str, secret: &str) -> Vec<(String, String)> {
    let oid = emu.add_client(client, secret);
    let sub = format!("/subscriptions/{}", emu.subscription_id());
    emu.grant(&oid, "b24988ac-6180-42a0-ab88-20f7382dd24c", &sub);
    client_env(emu, client, secret)
}
