//! One emulator with Azurite per test, on a fast clock with long builds; the infrastructure
//! deploy-infra and upload-scripts would leave (group, identity with its roles, gallery and
//! definition, account, container, uploaded scripts); a temp repository root with a parameter
//! file; and the real binary run against them. What every step's tests share is
//! `aib_testkit`'s; this file keeps the scripts and the templates this step is about.

use std::process::Command;
use std::time::Duration;

use aib::azure::Azure;
use aib::azure::rbac::builtin::{CONTRIBUTOR, STORAGE_BLOB_DATA_READER};
use aib_emulator::Emulator;
use aib_testkit::{ParameterFile, Run, Seed, TEST};
use serde_json::{Value, json};

pub use aib_testkit::params::PREFIX;

pub const ACCOUNT: &str = TEST.account;
pub const CONTAINER: &str = TEST.container;
pub const GROUP: &str = TEST.group;
pub const DEFINITION: &str = TEST.definition;

/// A running emulator with the image's infrastructure, and a repository root.
pub struct World {
    pub emu: Emulator,
    pub azure: Azure,
    pub root: tempfile::TempDir,
    pub sub: String,
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
        let mut knobs = aib_testkit::fast_knobs();
        knobs.aib.build = build;
        let (emu, azure) = aib_testkit::start(aib_testkit::step_config(true, knobs)).await;
        let seed = Seed::group(&emu, &azure, GROUP).await;
        let identity = seed.identity(TEST.identity, &[CONTRIBUTOR]).await;
        seed.gallery_image(TEST.gallery, DEFINITION).await;
        let account = seed.storage(ACCOUNT, CONTAINER).await;
        emu.grant(
            &identity.principal,
            STORAGE_BLOB_DATA_READER,
            &account.path(),
        );
        let sub = seed.sub;

        let w = World {
            emu,
            azure,
            root: aib_testkit::repository(None),
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
        aib_testkit::container(&self.emu, &self.azure, ACCOUNT, CONTAINER)
            .put(
                name,
                content.as_bytes().to_vec().into(),
                aib_testkit::md5(content.as_bytes()),
                "text/x-shellscript",
            )
            .await
            .expect("upload");
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
        aib_testkit::params::write_parameter_file(self.root.path(), &parameter_file(steps));
    }

    /// The binary with the environment a CI job would give it for the emulator's principal.
    pub fn command(&self, args: &[&str]) -> Command {
        aib_testkit::step_command(
            env!("CARGO_BIN_EXE_trigger-build"),
            &self.emu,
            self.root.path(),
            args,
        )
    }

    /// Runs the binary to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
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
        aib_testkit::count_requests(&self.emu, method, |path| path.contains("/imageTemplates"))
    }
}

/// A valid parameter file for the test infrastructure with these customization steps (and a
/// field of each kind trigger-build maps: tags, VM size, timeout, versioning).
pub fn parameter_file(steps: Value) -> String {
    ParameterFile::new(&TEST, PREFIX)
        .scripts_folder("up")
        .parameter("tags", json!({"team": "platform"}))
        .source_version("latest")
        .steps(steps)
        .template("vmSize", json!("Standard_D2ds_v5"))
        .template("buildTimeoutInMinutes", json!(120))
        .template("versioning", json!({"scheme": "Latest", "major": 1}))
        .to_string()
}
