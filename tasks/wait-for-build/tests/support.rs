//! One emulator per test with the image's infrastructure (group, identity with Contributor,
//! gallery and definition), a temp repository root with a parameter file, a template built
//! from it by `steps::trigger_build::template_body` and started, and the real binary. What
//! every step's tests share is `aib_testkit`'s; this file keeps the builds this step follows.

use std::process::Command;
use std::time::Duration;

use aib::azure::rbac::builtin::{CONTRIBUTOR, STORAGE_BLOB_DATA_READER};
use aib::azure::{Azure, image_template};
use aib::steps::trigger_build::{BodyInputs, template_body};
use aib_emulator::{Emulator, KnobValues};
use aib_testkit::{ParameterFile, Seed, TEST};
use serde_json::Value;

pub use aib_testkit::Run;
pub use aib_testkit::params::hello_step as default_steps;

pub const GROUP: &str = TEST.group;

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
        let mut k = aib_testkit::fast_knobs();
        k.aib.create = Duration::from_secs(60);
        k.aib.build = build;
        k.aib.fail_in = fail_in.map(str::to_owned);
        tune(&mut k);
        let (emu, azure) = aib_testkit::start(aib_testkit::step_config(true, k)).await;
        let seed = Seed::group(&emu, &azure, GROUP).await;
        seed.identity(TEST.identity, &[CONTRIBUTOR]).await;
        seed.gallery_image(TEST.gallery, TEST.definition).await;
        let sub = seed.sub;
        let params = parameter_file_with(steps);
        let root = aib_testkit::repository(Some(&params));
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
            STORAGE_BLOB_DATA_READER,
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
        aib_testkit::step_command(
            env!("CARGO_BIN_EXE_wait-for-build"),
            &self.emu,
            self.root.path(),
            args,
        )
    }

    /// Runs the binary to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    /// Starts the binary, sends it SIGTERM once it reports the build `Running:` (within a
    /// minute), and waits for it: its exit code and all of its stderr.
    pub fn interrupt_when_running(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut child = self
            .command(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = Lines::follow(child.stderr.take().expect("stderr"));
        stderr.wait_for("Running:", Duration::from_secs(60));
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
        // SAFETY: sending a signal to our own child process by its pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = child.wait().expect("the binary ends");
        (status.code(), stderr.all())
    }
}

/// A valid parameter file with inline steps only (no scripts to upload).
pub fn parameter_file() -> String {
    parameter_file_with(default_steps())
}

/// [`parameter_file`] with these customization steps.
pub fn parameter_file_with(steps: Value) -> String {
    ParameterFile::new(&TEST, aib_testkit::params::PREFIX)
        .steps(steps)
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
