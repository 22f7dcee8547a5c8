//! One emulator per test with a group, an identity, a gallery image, and image templates made
//! through ARM; a temp repository root with a parameter file; the real binary run against them.
//! What every step's tests share (the emulator, the seeding, the run) is `aib_testkit`'s; this
//! file keeps the templates and the template names this step is about.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use aib::azure::Azure;
use aib::azure::image_template::{self, ImageTemplate};
use aib::azure::rbac::builtin::CONTRIBUTOR;
use aib_emulator::Emulator;
use aib_testkit::{Names, ParameterFile, Run, Seed, TEST};
use serde_json::{Value, json};

/// The templates' resource group.
pub const GROUP: &str = "rg-aib-remove";

/// This step's infrastructure: a group (and identity and gallery) of its own.
const NAMES: Names = Names {
    group: GROUP,
    identity: "id-aib",
    gallery: "gal_aib",
    ..TEST
};

/// A running emulator, an ARM client as its Owner, what templates need, and a repository root.
pub struct World {
    pub emu: Emulator,
    pub azure: Azure,
    pub root: tempfile::TempDir,
    pub identity: String,
    pub definition: String,
}

impl World {
    /// Starts the emulator, creates the group, the template identity (Contributor on the
    /// group), a gallery and image definition, and writes a parameter file with `prefix`.
    pub async fn start(prefix: &str, staging: Option<&str>) -> World {
        let config = aib_testkit::step_config(false, aib_testkit::fast_knobs());
        let (emu, azure) = aib_testkit::start(config).await;
        let seed = Seed::group(&emu, &azure, GROUP).await;
        let identity = seed.identity(NAMES.identity, &[CONTRIBUTOR]).await.id;
        let definition = seed.gallery_image(NAMES.gallery, NAMES.definition).await;
        let root = aib_testkit::repository(Some(&parameter_file(prefix, staging)));
        World {
            emu,
            azure,
            root,
            identity,
            definition,
        }
    }

    pub fn sub(&self) -> String {
        self.emu.subscription_id().to_owned()
    }

    pub fn group_id(&self, name: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{name}", self.sub())
    }

    pub fn template_id(&self, name: &str) -> String {
        image_template::template_id(&self.sub(), GROUP, name)
    }

    /// Creates a template and waits until it is provisioned.
    pub async fn template(&self, name: &str, staging: Option<&str>) {
        let mut body = json!({
            "location": "westeurope",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {self.identity.clone(): {}}},
            "properties": {
                "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
                "customize": [{"type": "Shell", "name": "long", "inline": ["sleep 36000"]}],
                "buildTimeoutInMinutes": 960,
                "distribute": [{
                    "type": "SharedImage", "runOutputName": "ubuntu",
                    "galleryImageId": self.definition,
                    "targetRegions": [{"name": "westeurope", "replicaCount": 1}]
                }]
            }
        });
        if let Some(group) = staging {
            body["properties"]["stagingResourceGroup"] = json!(self.group_id(group));
        }
        let t: Value = self
            .azure
            .arm
            .put(&self.template_id(name), &body)
            .await
            .unwrap_or_else(|e| {
                let log: Vec<String> = self
                    .emu
                    .requests()
                    .iter()
                    .filter(|r| r.path.contains(name))
                    .map(|r| format!("{} {} {}", r.method, r.status, r.path))
                    .collect();
                panic!("template {name}: {e}\n{log:#?}")
            });
        assert_eq!(t["properties"]["provisioningState"], "Succeeded", "{t}");
    }

    /// Starts a build that runs for emulated hours (its customizer sleeps).
    pub async fn start_build(&self, name: &str) {
        let mut k = self.emu.knobs().get();
        k.aib.customizer = Duration::from_secs(36_000);
        self.emu.knobs().set(k);
        let r = self
            .azure
            .arm
            .send(
                reqwest::Method::POST,
                &format!("{}/run", self.template_id(name)),
                None::<&()>,
                aib::azure::arm::Idempotency::NotIdempotent,
            )
            .await
            .expect("run");
        assert_eq!(r.status, 202);
        for _ in 0..100 {
            let t = self.get(name).await.expect("template");
            if t.run_state().is_some_and(|s| s.in_progress()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{name} never started running");
    }

    pub async fn get(&self, name: &str) -> Option<ImageTemplate> {
        image_template::get_template(&self.azure.arm, &self.template_id(name))
            .await
            .expect("get template")
    }

    /// Template names left in the group, sorted.
    pub async fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            image_template::list_templates(&self.azure.arm, &self.sub(), GROUP)
                .await
                .expect("list")
                .into_iter()
                .map(|t| t.name)
                .collect();
        names.sort();
        names
    }

    /// The binary with the environment a CI job would give it for the emulator's principal.
    pub fn command(&self, args: &[&str]) -> Command {
        aib_testkit::step_command(
            env!("CARGO_BIN_EXE_remove-templates"),
            &self.emu,
            self.root.path(),
            args,
        )
    }

    /// Runs the binary to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    /// Requests with `method` the emulator saw on ARM (token requests excluded).
    pub fn writes(&self) -> Vec<String> {
        self.emu
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && r.path.starts_with("/subscriptions/"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The template identity's principal id.
    pub async fn identity_principal(&self) -> String {
        let id: Value = self.azure.arm.get(&self.identity).await.expect("identity");
        id["properties"]["principalId"]
            .as_str()
            .expect("principalId")
            .to_owned()
    }
}

/// A template name: `prefix` and the UTC time `ago` before now.
pub fn name(prefix: &str, ago: Duration) -> String {
    name_at(prefix, time::OffsetDateTime::now_utc() - ago)
}

/// A template name: `prefix` and the UTC time `at`.
pub fn name_at(prefix: &str, at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
    format!("{prefix}-{}", at.format(&format).unwrap())
}

/// What this step's `--output json` outcome says per template.
pub trait Actions {
    /// Template names in the outcome with `action`, sorted.
    fn with_action(&self, action: &str) -> Vec<String>;
}

impl Actions for Run {
    fn with_action(&self, action: &str) -> Vec<String> {
        let mut names: Vec<String> = self.outcome()["templates"]
            .as_array()
            .expect("templates")
            .iter()
            .filter(|t| t["action"] == action)
            .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    }
}

/// A valid parameter file whose templates are named `prefix-<timestamp>`.
pub fn parameter_file(prefix: &str, staging: Option<&str>) -> String {
    let file = ParameterFile::new(&NAMES, prefix)
        .scripts_folder("up")
        .source_version("latest")
        .template("vmSize", json!("Standard_D2ds_v5"));
    match staging {
        Some(group) => file.template("stagingResourceGroup", json!(group)),
        None => file,
    }
    .to_string()
}
