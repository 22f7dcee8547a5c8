//! One emulator with Azurite per test, a storage account and container made through ARM, a
//! temp repository root with a parameter file, and the real binary run against them. What
//! every step's tests share is `aib_testkit`'s; this file keeps the scripts folder, the blobs
//! and the arrange steps this step's tests repeat.

use std::path::{Path, PathBuf};
use std::process::Command;

use aib::azure::Azure;
use aib::azure::blob::{Container, RemoteBlob};
use aib::azure::storage::StorageAccountId;
use aib_emulator::{Emulator, EmulatorConfig};
use aib_testkit::{ParameterFile, Run, Seed, TEST};
use serde_json::json;

pub use aib_testkit::md5;

/// The account the tests use (Azurite hosts it under its own name).
pub const ACCOUNT: &str = TEST.account;
/// The container of the test parameter file.
pub const CONTAINER: &str = TEST.container;
/// The resource group of the test parameter file.
pub const GROUP: &str = TEST.group;

/// A running emulator, the account and container, and a repository root.
pub struct World {
    pub emu: Emulator,
    pub azure: Azure,
    pub root: tempfile::TempDir,
    pub account: StorageAccountId,
}

impl World {
    /// Starts the emulator (with Azurite), creates group, account and container, grants the
    /// emulator's principal Storage Blob Data Contributor on the account, and writes a
    /// parameter file whose scripts folder is `up/`.
    pub async fn start() -> World {
        let (emu, azure) = aib_testkit::start(EmulatorConfig::default()).await;
        let account = Seed::group(&emu, &azure, GROUP)
            .await
            .storage(ACCOUNT, CONTAINER)
            .await;
        World {
            emu,
            azure,
            root: aib_testkit::repository(Some(&parameter_file("up"))),
            account,
        }
    }

    /// The scripts folder.
    pub fn up(&self) -> PathBuf {
        self.root.path().join("up")
    }

    /// Writes `content` to `up/<name>`, creating folders.
    pub fn write(&self, name: &str, content: &[u8]) {
        let path = self.up().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// The binary with the environment a CI job would give it for the emulator's principal.
    pub fn command(&self, args: &[&str]) -> Command {
        aib_testkit::step_command(
            env!("CARGO_BIN_EXE_upload-scripts"),
            &self.emu,
            self.root.path(),
            args,
        )
    }

    /// Runs the binary to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    /// Registers principal `client` with `secret`, grants it `roles` on the account (and no
    /// other), and runs the binary signed in as it.
    pub fn run_as(&self, client: &str, secret: &str, roles: &[&str]) -> Run {
        let principal = self.emu.add_client(client, secret);
        for role in roles {
            self.emu.grant(&principal, role, &self.account.path());
        }
        Run::of(
            self.command(&[])
                .env("AZURE_CLIENT_ID", client)
                .env("AZURE_CLIENT_SECRET", secret),
        )
    }

    /// The container's data plane as the emulator's principal.
    pub fn container(&self) -> Container {
        aib_testkit::container(&self.emu, &self.azure, ACCOUNT, CONTAINER)
    }

    /// Blob `name` holding `old` (3 bytes, with its MD5), and `data` written to `up/<name>`:
    /// a file whose upload must replace the blob whole or leave it as it was. Returns the
    /// container and the file's path.
    pub async fn old_blob_and_new_file(&self, name: &str, data: &[u8]) -> (Container, PathBuf) {
        let container = self.container();
        container
            .put(
                name,
                b"old".to_vec().into(),
                md5(b"old"),
                "application/octet-stream",
            )
            .await
            .unwrap();
        let path = self.up().join(name);
        std::fs::write(&path, data).unwrap();
        (container, path)
    }

    /// The blobs in the container, by name.
    pub async fn blobs(&self) -> std::collections::BTreeMap<String, RemoteBlob> {
        self.container()
            .list()
            .await
            .expect("listing")
            .into_iter()
            .map(|b| (b.name.clone(), b))
            .collect()
    }

    /// Requests the blob front saw with `method` (path starts with the account).
    pub fn blob_requests(&self, method: &str) -> usize {
        let prefix = format!("/{ACCOUNT}/");
        aib_testkit::count_requests(&self.emu, method, |path| path.starts_with(&prefix))
    }
}

/// A valid parameter file for the test account whose scripts folder is `folder`.
fn parameter_file(folder: &str) -> String {
    ParameterFile::new(&TEST, aib_testkit::params::PREFIX)
        .scripts_folder(folder)
        .source_version("latest")
        .template("vmSize", json!("Standard_D2ds_v5"))
        .to_string()
}

/// Runs `cmd` with stdout/stderr to files in `dir` and returns (exit code, peak RSS in KiB)
/// from the kernel's own accounting of that child (wait4).
pub fn run_measured(mut cmd: Command, dir: &Path) -> (i32, i64, String, String) {
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own child, waited once here
    // (the std `Child` is never waited after this).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        code,
        usage.ru_maxrss,
        std::fs::read_to_string(out).unwrap_or_default(),
        std::fs::read_to_string(err).unwrap_or_default(),
    )
}
