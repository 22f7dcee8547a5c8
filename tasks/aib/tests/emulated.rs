//! The end-to-end world of `aib run`: one `aib-emulator` (with Azurite) per test on a fast
//! clock, the real `aib` binary run as a CI job would run it, and readers for what the emulator
//! saw (its request log) and holds (ARM resources, through aib's own ARM client).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aib::azure::Azure;
use aib::azure::blob::DATA_CONTRIBUTOR_ROLE_ID;
use aib_emulator::{Emulator, RequestRecord};
use aib_testkit::Run;
use serde_json::Value;

use crate::support::repo_root;

/// A running emulator, the subscription, and an ARM client for checks.
pub struct World {
    pub emu: Emulator,
    pub azure: Azure,
    pub sub: String,
}

impl World {
    /// Starts an emulator at 600x with instant consistency and short Image Builder phases (a
    /// build takes about a second), and grants the test principal the data role on the
    /// subscription, as an admin would once (uploading needs a data role, which Owner does not
    /// include).
    pub async fn start() -> World {
        let mut k = aib_testkit::fast_knobs();
        k.aib.create = Duration::from_secs(30);
        k.aib.queue = Duration::from_secs(30);
        k.aib.build = Duration::from_secs(120);
        k.aib.customizer = Duration::from_secs(60);
        k.aib.distribute = Duration::from_secs(120);
        k.aib.delete = Duration::from_secs(30);
        let (emu, azure) = aib_testkit::start(aib_testkit::step_config(true, k)).await;
        let sub = emu.subscription_id().to_owned();
        emu.grant(
            emu.object_id(),
            DATA_CONTRIBUTOR_ROLE_ID,
            &format!("/subscriptions/{sub}"),
        );
        World { emu, azure, sub }
    }

    /// Runs `aib <args>` from `cwd` with the credentials a CI job would have, to the end.
    pub async fn aib(&self, cwd: &Path, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_aib"))
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .envs(self.emu.ci_env())
            .env("PATH", "/usr/bin:/bin")
            .env("NO_COLOR", "1")
            .output()
            .await
            .expect("aib runs");
        Run::from(output)
    }

    /// `aib run <args> --output json --poll-interval 0.2` from the repository root.
    pub async fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--output", "json", "--poll-interval", "0.2"]);
        self.aib(&repo_root(), &all).await
    }

    /// Every request the emulator answered since the last [`World::clear`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.emu.requests()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.emu.clear_requests();
    }

    /// GET an ARM resource; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Option<Value> {
        self.azure
            .arm
            .get_optional(path)
            .await
            .expect("the emulator answers")
    }

    /// The `value` list of an ARM list (first page is enough: tests stay under the page size
    /// or follow nothing).
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let page: Value = self.azure.arm.get(path).await.expect("the list answers");
        page["value"].as_array().cloned().unwrap_or_default()
    }

    /// `/subscriptions/{sub}/resourceGroups/{group}`.
    pub fn group(&self, group: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{group}", self.sub)
    }

    /// The names in an ARM list (first page, as [`World::list`]).
    pub async fn names(&self, path: &str) -> BTreeSet<String> {
        self.list(path)
            .await
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The names of the image versions of a gallery image definition.
    pub async fn versions(&self, group: &str, gallery: &str, image: &str) -> BTreeSet<String> {
        self.names(&format!(
            "{}/providers/Microsoft.Compute/galleries/{gallery}/images/{image}/versions",
            self.group(group)
        ))
        .await
    }

    /// The names of the image templates in a resource group.
    pub async fn templates(&self, group: &str) -> BTreeSet<String> {
        self.names(&format!(
            "{}/providers/Microsoft.VirtualMachineImages/imageTemplates",
            self.group(group)
        ))
        .await
    }
}

impl World {
    /// Waits until no template in `group` has a build running (a run without --wait leaves one
    /// going), so the next case starts from finished builds.
    pub async fn settle(&self, group: &str) {
        let path = format!(
            "{}/providers/Microsoft.VirtualMachineImages/imageTemplates",
            self.group(group)
        );
        for _ in 0..300 {
            let running = self.list(&path).await.iter().any(|t| {
                matches!(
                    t["properties"]["lastRunStatus"]["runState"].as_str(),
                    Some("Running" | "Canceling")
                )
            });
            if !running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("builds in {group} still running after 30 s");
    }
}

/// The fixtures root of the stage tests: `parameters/{sbx,dev}` and a scripts folder.
pub fn e2e_root() -> PathBuf {
    repo_root().join("tests/fixtures/e2e")
}

/// What a finished `aib run --output json` says per environment and step.
pub trait Pipeline {
    /// The steps of environment `i`: (name, result, correlation id).
    fn steps(&self, i: usize) -> Vec<(String, String, Option<String>)>;
    /// The own outcome of step `name` in environment `i`.
    fn step_outcome(&self, i: usize, name: &str) -> Value;
}

impl Pipeline for Run {
    fn steps(&self, i: usize) -> Vec<(String, String, Option<String>)> {
        self.outcome()["environments"][i]["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|s| {
                (
                    s["step"].as_str().unwrap_or_default().to_owned(),
                    s["result"].as_str().unwrap_or_default().to_owned(),
                    s["correlationId"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }
    fn step_outcome(&self, i: usize, name: &str) -> Value {
        self.outcome()["environments"][i]["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|s| s["step"] == name)
            .map(|s| s["outcome"].clone())
            .unwrap_or(Value::Null)
    }
}

/// Where a request went: ARM, the token endpoint, or the blob front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Arm,
    Token,
    Blob,
    Emulator,
}

pub fn kind(r: &RequestRecord) -> Kind {
    let p = r.path.to_ascii_lowercase();
    if p.starts_with("/subscriptions") || p.starts_with("/providers") {
        Kind::Arm
    } else if p.contains("/oauth2/") {
        Kind::Token
    } else if p.starts_with("/_emulator") {
        Kind::Emulator
    } else {
        Kind::Blob
    }
}

/// The steps (by name) that sent requests: ARM requests by the correlation id they carry (one
/// that carries none of the run's ids fails the test, so nothing goes unattributed); blob
/// requests of ours by where they go: the scripts account is upload-scripts', a `packerlogs`
/// container wait-for-build's (it reads `customization.log`).
pub fn steps_seen(
    world: &World,
    run: &Run,
    requests: &[RequestRecord],
    scripts_account: &str,
) -> BTreeSet<String> {
    let mut ids = std::collections::HashMap::new();
    for env in run.outcome()["environments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for s in env["steps"].as_array().cloned().unwrap_or_default() {
            if let Some(id) = s["correlationId"].as_str() {
                ids.insert(
                    id.to_owned(),
                    s["step"].as_str().unwrap_or_default().to_owned(),
                );
            }
        }
    }
    let mut seen: BTreeSet<String> = requests
        .iter()
        .filter(|r| kind(r) == Kind::Arm)
        .map(|r| {
            let id = r.correlation_request_id.clone().unwrap_or_default();
            ids.get(&id).cloned().unwrap_or_else(|| {
                panic!(
                    "{} {} carries no step's correlation id ({id})",
                    r.method, r.path
                )
            })
        })
        .collect();
    for r in our_blob_requests(world, requests) {
        if r.path.starts_with(&format!("/{scripts_account}/")) {
            seen.insert("upload-scripts".into());
        } else if r.path.contains("/packerlogs") {
            seen.insert("wait-for-build".into());
        } else {
            panic!(
                "a blob request of ours no step explains: {} {}",
                r.method, r.path
            );
        }
    }
    seen
}

/// Blob requests our principal sent (the emulated Image Builder reads blobs as its own identity).
pub fn our_blob_requests<'a>(
    world: &World,
    requests: &'a [RequestRecord],
) -> Vec<&'a RequestRecord> {
    requests
        .iter()
        .filter(|r| kind(r) == Kind::Blob && r.principal.as_deref() == Some(world.emu.object_id()))
        .collect()
}

/// Blob requests of ours to one storage account.
pub fn blob_requests_to<'a>(
    world: &World,
    requests: &'a [RequestRecord],
    account: &str,
) -> Vec<&'a RequestRecord> {
    our_blob_requests(world, requests)
        .into_iter()
        .filter(|r| r.path.starts_with(&format!("/{account}/")))
        .collect()
}

/// Writes: every method but GET and HEAD, except the POSTs that only read.
pub fn is_write(r: &RequestRecord) -> bool {
    let p = r.path.to_ascii_lowercase();
    match r.method.as_str() {
        "GET" | "HEAD" => false,
        "POST" => {
            !(p.ends_with("/listkeys")
                || p.ends_with("/checknameavailability")
                || p.contains("/oauth2/"))
        }
        _ => true,
    }
}
