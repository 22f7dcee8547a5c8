//! One emulator per test with a group, an identity, a gallery image, and image templates made
//! through ARM; a temp repository root with a parameter file; the real binary run against them.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::Duration;

use aib::azure::env::{self, Env};
use aib::azure::image_template::{self, ImageTemplate};
use aib::azure::{Azure, AzureSettings, NoObserver};
use aib_emulator::{Emulator, EmulatorConfig, KnobValues};
use serde_json::{Value, json};

/// The templates' resource group.
pub const GROUP: &str = "rg-aib-remove";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

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
        let emu = Emulator::start(EmulatorConfig {
            azurite: false,
            time_scale: 600.0,
            token_lifetime: Duration::from_secs(3_600_000),
            knobs: KnobValues::fast(),
            ..Default::default()
        })
        .await
        .expect("the emulator starts");
        let settings = AzureSettings::from_args(&Default::default(), &secret_env(&emu))
            .expect("settings resolve");
        let azure = aib::azure::connect(&settings, std::sync::Arc::new(NoObserver)).unwrap();
        let sub = emu.subscription_id().to_owned();
        let rg = format!("/subscriptions/{sub}/resourceGroups/{GROUP}");
        let _: Value = azure
            .arm
            .put(&rg, &json!({"location": "westeurope"}))
            .await
            .expect("resource group");
        let identity =
            format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-aib");
        let id: Value = azure
            .arm
            .put(&identity, &json!({"location": "westeurope"}))
            .await
            .expect("identity");
        let principal = id["properties"]["principalId"]
            .as_str()
            .expect("principalId");
        emu.grant(principal, CONTRIBUTOR, &rg);
        let gallery = format!("{rg}/providers/Microsoft.Compute/galleries/gal_aib");
        let _: Value = azure
            .arm
            .put(&gallery, &json!({"location": "westeurope"}))
            .await
            .expect("gallery");
        let definition = format!("{gallery}/images/ubuntu");
        let _: Value = azure
            .arm
            .put(
                &definition,
                &json!({"location": "westeurope", "properties": {
                    "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                    "identifier": {"publisher": "aib", "offer": "agent", "sku": "u2204"}}}),
            )
            .await
            .expect("image definition");
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("parameters")).unwrap();
        std::fs::create_dir_all(root.path().join("up")).unwrap();
        std::fs::write(
            root.path().join("parameters/test.image.parameters.json"),
            parameter_file(prefix, staging),
        )
        .unwrap();
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_remove-templates"));
        cmd.env_clear();
        cmd.envs(self.emu.ci_env()).env("PATH", "/usr/bin:/bin");
        cmd.arg("--env")
            .arg("test")
            .arg("--root")
            .arg(self.root.path())
            .args(args);
        cmd
    }

    /// Runs the binary to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().expect("the binary runs"))
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

/// A finished run of the binary.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// The `outcome` of `--output json`.
    pub fn outcome(&self) -> Value {
        let doc: Value = serde_json::from_str(&self.stdout()).unwrap_or_else(|e| {
            panic!(
                "stdout is JSON ({e}):\n{}\n{}",
                self.stdout(),
                self.stderr()
            )
        });
        doc["outcome"].clone()
    }
    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// Template names in the outcome with `action`, sorted.
    pub fn with_action(&self, action: &str) -> Vec<String> {
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

/// The emulator's service principal with a secret, its CA and endpoints.
pub fn secret_env(emu: &Emulator) -> Env {
    let mut pairs = emu.ci_env();
    pairs.push((env::PATH, "/nonexistent".to_owned()));
    Env::from_pairs(pairs)
}

/// A valid parameter file whose templates are named `prefix-<timestamp>`.
pub fn parameter_file(prefix: &str, staging: Option<&str>) -> String {
    let mut template = json!({
        "namePrefix": prefix,
        "imageSource": {"type": "PlatformImage", "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
        "customizationSteps": [{"type": "Shell", "name": "hello", "inline": ["echo hi"]}],
        "vmSize": "Standard_D2ds_v5",
        "replicationRegions": ["westeurope"]
    });
    if let Some(group) = staging {
        template["stagingResourceGroup"] = json!(group);
    }
    json!({
        "$schema": "https://aib.dev/image.parameters.schema.json",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": {"value": "westeurope"},
            "resourceGroupName": {"value": GROUP},
            "identityName": {"value": "id-aib"},
            "storageAccountName": {"value": "aibscripts"},
            "containerName": {"value": "scripts-linux"},
            "galleryName": {"value": "gal_aib"},
            "scriptsFolder": {"value": "up"},
            "imageDefinition": {"value": {
                "name": "ubuntu", "osType": "Linux", "osState": "Generalized",
                "hyperVGeneration": "V2", "publisher": "aib", "offer": "agent", "sku": "u2204"
            }},
            "imageTemplate": {"value": template}
        }
    })
    .to_string()
}

impl World {
    /// The template identity's principal id.
    pub async fn identity_principal(&self) -> String {
        let id: Value = self.azure.arm.get(&self.identity).await.expect("identity");
        id["properties"]["principalId"]
            .as_str()
            .expect("principalId")
            .to_owned()
    }
}
