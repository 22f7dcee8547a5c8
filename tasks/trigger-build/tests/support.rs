//! One emulator with Azurite per test, on a fast clock with long builds; the infrastructure
//! deploy-infra and upload-scripts would leave (group, identity with its roles, gallery and
//! definition, account, container, uploaded scripts); a temp repository root with a parameter
//! file; and the real binary run against them.

use std::process::{Command, Output};
use std::time::Duration;

use aib::azure::blob::{BlobAuth, Container, DATA_CONTRIBUTOR_ROLE_ID};
use aib::azure::env::{self, Env};
use aib::azure::storage::{self, BlobContainer, Sku, StorageAccount, StorageAccountId};
use aib::azure::{Azure, AzureSettings, NoObserver};
use aib_emulator::{Emulator, EmulatorConfig, KnobValues};
use serde_json::{Value, json};

pub const ACCOUNT: &str = "aibscripts";
pub const CONTAINER: &str = "scripts-linux";
pub const GROUP: &str = "rg-aib-test";
pub const IDENTITY: &str = "id-aib-test";
pub const GALLERY: &str = "gal_aib_test";
pub const DEFINITION: &str = "ubuntu";
pub const PREFIX: &str = "it-test";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

/// A running emulator with the image's infrastructure, and a repository root.
pub struct World {
    pub emu: Emulator,
    pub azure: Azure,
    pub root: tempfile::TempDir,
    pub sub: String,
}

fn knobs(build: Duration) -> KnobValues {
    let mut k = KnobValues::fast();
    k.aib.build = build;
    k
}

impl World {
    /// Starts the emulator and creates what deploy-infra and upload-scripts would: uploads
    /// `scripts` (name, content) to the container and writes them to `up/`.
    pub async fn start(scripts: &[(&str, &str)]) -> World {
        // Ten emulated hours (a minute of real time): builds are still running when a test looks.
        World::start_with(scripts, Duration::from_secs(36_000)).await
    }

    /// [`World::start`] with builds spending `build` (emulated) in `Building`.
    pub async fn start_with(scripts: &[(&str, &str)], build: Duration) -> World {
        let emu = Emulator::start(EmulatorConfig {
            azurite: true,
            time_scale: 600.0,
            token_lifetime: Duration::from_secs(3_600_000),
            knobs: knobs(build),
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
        let identity: Value = azure
            .arm
            .put(
                &aib::azure::identity::identity_id(&sub, GROUP, IDENTITY),
                &json!({"location": "westeurope"}),
            )
            .await
            .expect("identity");
        let principal = identity["properties"]["principalId"]
            .as_str()
            .expect("principalId")
            .to_owned();
        let gallery = aib::azure::gallery::gallery_id(&sub, GROUP, GALLERY);
        let _: Value = azure
            .arm
            .put(&gallery, &json!({"location": "westeurope"}))
            .await
            .expect("gallery");
        let _: Value = azure
            .arm
            .put(
                &aib::azure::gallery::image_definition_id(&gallery, DEFINITION),
                &json!({"location": "westeurope", "properties": {
                    "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                    "identifier": {"publisher": "aib", "offer": "agent", "sku": "u2204"}}}),
            )
            .await
            .expect("image definition");
        let account = StorageAccountId {
            subscription_id: sub.clone(),
            resource_group: GROUP.into(),
            name: ACCOUNT.into(),
        };
        storage::put_account(
            &azure.arm,
            &account,
            &StorageAccount {
                location: "westeurope".into(),
                sku: Some(Sku {
                    name: "Standard_LRS".into(),
                    tier: None,
                }),
                kind: Some("StorageV2".into()),
                ..Default::default()
            },
        )
        .await
        .expect("storage account");
        storage::put_container(&azure.arm, &account, CONTAINER, &BlobContainer::default())
            .await
            .expect("container");
        emu.grant(emu.object_id(), DATA_CONTRIBUTOR_ROLE_ID, &account.path());
        emu.grant(&principal, CONTRIBUTOR, &rg);
        emu.grant(&principal, BLOB_READER, &account.path());

        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("parameters")).unwrap();
        std::fs::create_dir_all(root.path().join("up")).unwrap();
        let w = World {
            emu,
            azure,
            root,
            sub,
        };
        for (name, content) in scripts {
            w.upload(name, content).await;
        }
        w
    }

    /// Writes `up/<name>` and uploads it, as upload-scripts would.
    pub async fn upload(&self, name: &str, content: &str) {
        std::fs::write(self.root.path().join("up").join(name), content).unwrap();
        self.container()
            .put_simple(name, content.as_bytes().to_vec())
            .await;
    }

    /// Waits (up to a minute) until the template's build is no longer running; its state.
    pub async fn wait_for_build(&self, name: &str) -> String {
        for _ in 0..600 {
            let t = self.template(name).await;
            let state = t["properties"]["lastRunStatus"]["runState"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !state.is_empty() && state != "Running" {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the build of {name} still runs after a minute");
    }

    /// Writes the parameter file with these customization steps.
    pub fn parameters(&self, steps: Value) {
        std::fs::write(
            self.root
                .path()
                .join("parameters/test.image.parameters.json"),
            parameter_file(steps),
        )
        .unwrap();
    }

    /// The container's data plane as the emulator's principal.
    pub fn container(&self) -> Uploader {
        let endpoint = url::Url::parse(&format!("{}{ACCOUNT}/", self.emu.blob_url())).unwrap();
        Uploader(
            Container::new(
                &endpoint,
                ACCOUNT,
                CONTAINER,
                BlobAuth::Bearer(self.azure.tokens.as_token_credential()),
                &self.azure.http,
                Default::default(),
            )
            .unwrap(),
        )
    }

    /// The binary with the environment a CI job would give it for the emulator's principal.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trigger-build"));
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

    /// The template as the emulator has it.
    pub async fn template(&self, name: &str) -> Value {
        self.azure
            .arm
            .get(&aib::azure::image_template::template_id(
                &self.sub, GROUP, name,
            ))
            .await
            .expect("template exists")
    }

    /// Requests of `method` to an image template path.
    pub fn template_requests(&self, method: &str) -> usize {
        self.emu
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains("/imageTemplates"))
            .count()
    }
}

/// Uploads through the blob client upload-scripts uses.
pub struct Uploader(Container);

impl Uploader {
    async fn put_simple(&self, name: &str, bytes: Vec<u8>) {
        use md5::Digest as _;
        let md5: [u8; 16] = md5::Md5::digest(&bytes).into();
        self.0
            .put(name, bytes.into(), md5, "text/x-shellscript")
            .await
            .expect("upload");
    }
}

/// A finished run of the binary.
pub struct Run(pub Output);

impl Run {
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
            self.0.status.code().unwrap_or(-1),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// The emulator's service principal with a secret, its CA and endpoints.
pub fn secret_env(emu: &Emulator) -> Env {
    let mut pairs = emu.ci_env();
    pairs.push((env::PATH, "/nonexistent".to_owned()));
    Env::from_pairs(pairs)
}

/// A valid parameter file for the test infrastructure with these customization steps.
pub fn parameter_file(steps: Value) -> String {
    json!({
        "$schema": "https://aib.dev/image.parameters.schema.json",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": {"value": "westeurope"},
            "resourceGroupName": {"value": GROUP},
            "identityName": {"value": IDENTITY},
            "storageAccountName": {"value": ACCOUNT},
            "containerName": {"value": CONTAINER},
            "galleryName": {"value": GALLERY},
            "scriptsFolder": {"value": "up"},
            "tags": {"value": {"team": "platform"}},
            "imageDefinition": {"value": {
                "name": DEFINITION, "osType": "Linux", "osState": "Generalized",
                "hyperVGeneration": "V2", "publisher": "aib", "offer": "agent", "sku": "u2204"
            }},
            "imageTemplate": {"value": {
                "namePrefix": PREFIX,
                "imageSource": {"type": "PlatformImage", "publisher": "Canonical",
                    "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
                "customizationSteps": steps,
                "vmSize": "Standard_D2ds_v5",
                "buildTimeoutInMinutes": 120,
                "replicationRegions": ["westeurope"],
                "versioning": {"scheme": "Latest", "major": 1}
            }}
        }
    })
    .to_string()
}

/// SHA-256 hex of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
