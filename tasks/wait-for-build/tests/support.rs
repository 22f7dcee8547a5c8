//! One emulator per test with the image's infrastructure (group, identity with Contributor,
//! gallery and definition), a temp repository root with a parameter file, a template built
//! from it by `steps::trigger_build::template_body` and started, and the real binary.

use std::process::{Command, Output};
use std::time::Duration;

use aib::azure::env::{self, Env};
use aib::azure::{Azure, AzureSettings, NoObserver, image_template};
use aib::steps::trigger_build::{BodyInputs, template_body};
use aib_emulator::{Emulator, EmulatorConfig, KnobValues};
use serde_json::{Value, json};

pub const GROUP: &str = "rg-aib-test";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
/// Storage Blob Data Reader: what reading customization.log needs.
pub const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

/// A running emulator with the infrastructure, and a repository root.
pub struct World {
    pub emu: Emulator,
    pub azure: Azure,
    pub root: tempfile::TempDir,
    pub sub: String,
    /// The parameter file's text.
    pub params: String,
}

impl World {
    /// Starts the emulator (600x clock; builds spend `build` emulated in `Building`; a run
    /// fails in `fail_in` when given).
    pub async fn start(build: Duration, fail_in: Option<&str>) -> World {
        World::start_with(build, fail_in, default_steps(), |_| {}).await
    }

    /// [`World::start`] with these customization steps and knobs changed by `tune`.
    pub async fn start_with(
        build: Duration,
        fail_in: Option<&str>,
        steps: Value,
        tune: impl FnOnce(&mut KnobValues),
    ) -> World {
        let mut k = KnobValues::fast();
        k.aib.create = Duration::from_secs(60);
        k.aib.build = build;
        k.aib.fail_in = fail_in.map(str::to_owned);
        k.token_lifetime = Duration::from_secs(3_600_000);
        tune(&mut k);
        let emu = Emulator::start(EmulatorConfig {
            azurite: true,
            time_scale: k.time_scale,
            token_lifetime: k.token_lifetime,
            knobs: k,
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
                &aib::azure::identity::identity_id(&sub, GROUP, "id-aib-test"),
                &json!({"location": "westeurope"}),
            )
            .await
            .expect("identity");
        let principal = identity["properties"]["principalId"]
            .as_str()
            .expect("principalId")
            .to_owned();
        emu.grant(&principal, CONTRIBUTOR, &rg);
        let gallery = aib::azure::gallery::gallery_id(&sub, GROUP, "gal_aib_test");
        let _: Value = azure
            .arm
            .put(&gallery, &json!({"location": "westeurope"}))
            .await
            .expect("gallery");
        let _: Value = azure
            .arm
            .put(
                &aib::azure::gallery::image_definition_id(&gallery, "ubuntu"),
                &json!({"location": "westeurope", "properties": {
                    "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                    "identifier": {"publisher": "aib", "offer": "agent", "sku": "u2204"}}}),
            )
            .await
            .expect("image definition");
        let params = parameter_file_with(steps);
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("parameters")).unwrap();
        std::fs::write(
            root.path().join("parameters/test.image.parameters.json"),
            &params,
        )
        .unwrap();
        World {
            emu,
            azure,
            root,
            sub,
            params,
        }
    }

    /// Creates template `name` from the parameter file and starts its build.
    pub async fn trigger(&self, name: &str) {
        self.trigger_with_operation(name).await;
    }

    /// Lets the test principal read blobs in the whole subscription (staging accounts included).
    pub fn grant_blob_reader(&self) {
        self.emu.grant(
            self.emu.object_id(),
            BLOB_READER,
            &format!("/subscriptions/{}", self.sub),
        );
    }

    /// [`World::trigger`], returning the run's `Azure-AsyncOperation` URL.
    pub async fn trigger_with_operation(&self, name: &str) -> String {
        let file = aib::config::parse_str("test", &self.params).expect("valid");
        let body = template_body(
            &file.parameters,
            &BodyInputs {
                subscription_id: self.sub.clone(),
                template_name: name.to_owned(),
                files: Default::default(),
                commit: None,
                run_url: None,
            },
        );
        let id = image_template::template_id(&self.sub, GROUP, name);
        image_template::create_template(&self.azure.arm, &id, &body, &Default::default())
            .await
            .expect("template created");
        let started = self
            .azure
            .arm
            .send(
                reqwest::Method::POST,
                &format!("{id}/run"),
                None::<&()>,
                aib::azure::arm::Idempotency::NotIdempotent,
            )
            .await
            .expect("build started");
        started
            .headers
            .get("azure-asyncoperation")
            .and_then(|v| v.to_str().ok())
            .expect("an Azure-AsyncOperation header")
            .to_owned()
    }

    /// The template as the emulator has it.
    pub async fn template(&self, name: &str) -> Value {
        self.azure
            .arm
            .get(&image_template::template_id(&self.sub, GROUP, name))
            .await
            .expect("template exists")
    }

    /// The binary with the environment a CI job would give it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wait-for-build"));
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

/// One inline step that succeeds.
pub fn default_steps() -> Value {
    json!([{"type": "Shell", "name": "hello", "inline": ["echo hi"]}])
}

/// A valid parameter file with inline steps only (no scripts to upload).
pub fn parameter_file() -> String {
    parameter_file_with(default_steps())
}

/// [`parameter_file`] with these customization steps.
pub fn parameter_file_with(steps: Value) -> String {
    json!({
        "$schema": "https://aib.dev/image.parameters.schema.json",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": {"value": "westeurope"},
            "resourceGroupName": {"value": GROUP},
            "identityName": {"value": "id-aib-test"},
            "storageAccountName": {"value": "aibscripts"},
            "containerName": {"value": "scripts-linux"},
            "galleryName": {"value": "gal_aib_test"},
            "imageDefinition": {"value": {
                "name": "ubuntu", "osType": "Linux", "osState": "Generalized",
                "hyperVGeneration": "V2", "publisher": "aib", "offer": "agent", "sku": "u2204"
            }},
            "imageTemplate": {"value": {
                "namePrefix": "it-test",
                "imageSource": {"type": "PlatformImage", "publisher": "Canonical",
                    "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"},
                "customizationSteps": steps,
                "replicationRegions": ["westeurope"]
            }}
        }
    })
    .to_string()
}

/// A child's stderr read on a thread, so a test can wait for a line and still see it all.
pub struct Lines(
    std::sync::Arc<std::sync::Mutex<String>>,
    Option<std::thread::JoinHandle<()>>,
);

impl Lines {
    /// Starts reading `pipe` to its end.
    pub fn follow(pipe: std::process::ChildStderr) -> Lines {
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        let handle = std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut t = sink.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
            }
        });
        Lines(text, Some(handle))
    }

    /// Waits until the text contains `needle`; panics with the text after `limit`.
    pub fn wait_for(&self, needle: &str, limit: Duration) {
        let start = std::time::Instant::now();
        while !self.0.lock().unwrap().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "no '{needle}' after {limit:?}:\n{}",
                self.0.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything read, once the pipe closed.
    pub fn all(mut self) -> String {
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
        self.0.lock().unwrap().clone()
    }
}
