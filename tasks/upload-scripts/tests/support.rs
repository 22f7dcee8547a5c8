//! One emulator with Azurite per test, a storage account and container made through ARM, a
//! temp repository root with a parameter file, and the real binary run against them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aib::azure::blob::{BlobAuth, Container, DATA_CONTRIBUTOR_ROLE_ID, RemoteBlob};
use aib::azure::env::{self, Env};
use aib::azure::storage::{self, BlobContainer, Sku, StorageAccount, StorageAccountId};
use aib::azure::{Azure, AzureSettings, NoObserver};
use aib_emulator::{Emulator, EmulatorConfig};

/// The account the tests use (Azurite hosts it under its own name).
pub const ACCOUNT: &str = "aibscripts";
/// The container of the test parameter file.
pub const CONTAINER: &str = "scripts-linux";
/// The resource group of the test parameter file.
pub const GROUP: &str = "rg-aib-test";

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
        let emu = Emulator::start(EmulatorConfig::default())
            .await
            .expect("the emulator starts");
        let settings = AzureSettings::from_args(&Default::default(), &secret_env(&emu))
            .expect("settings resolve");
        let azure = aib::azure::connect(&settings, std::sync::Arc::new(NoObserver)).unwrap();
        let sub = emu.subscription_id().to_owned();
        let _: serde_json::Value = azure
            .arm
            .put(
                &format!("/subscriptions/{sub}/resourcegroups/{GROUP}"),
                &serde_json::json!({"location": "westeurope"}),
            )
            .await
            .expect("resource group");
        let account = StorageAccountId {
            subscription_id: sub,
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
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("parameters")).unwrap();
        std::fs::create_dir_all(root.path().join("up")).unwrap();
        std::fs::write(
            root.path().join("parameters/test.image.parameters.json"),
            parameter_file("up"),
        )
        .unwrap();
        World {
            emu,
            azure,
            root,
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_upload-scripts"));
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

    /// The container's data plane as the emulator's principal.
    pub fn container(&self) -> Container {
        let endpoint = url::Url::parse(&format!("{}{ACCOUNT}/", self.emu.blob_url())).unwrap();
        Container::new(
            &endpoint,
            ACCOUNT,
            CONTAINER,
            BlobAuth::Bearer(self.azure.tokens.as_token_credential()),
            &self.azure.http,
            Default::default(),
        )
        .unwrap()
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
        self.emu
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(&format!("/{ACCOUNT}/")))
            .count()
    }
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
    pub fn outcome(&self) -> serde_json::Value {
        let doc: serde_json::Value = serde_json::from_str(&self.stdout()).unwrap_or_else(|e| {
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
}

/// The emulator's service principal with a secret, its CA and endpoints.
pub fn secret_env(emu: &Emulator) -> Env {
    let mut pairs = emu.ci_env();
    pairs.push((env::PATH, "/nonexistent".to_owned()));
    Env::from_pairs(pairs)
}

/// A valid parameter file for the test account whose scripts folder is `folder`.
pub fn parameter_file(folder: &str) -> String {
    serde_json::json!({
        "$schema": "https://aib.dev/image.parameters.schema.json",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": {"value": "westeurope"},
            "resourceGroupName": {"value": GROUP},
            "identityName": {"value": "id-aib-test"},
            "storageAccountName": {"value": ACCOUNT},
            "containerName": {"value": CONTAINER},
            "galleryName": {"value": "gal_aib_test"},
            "scriptsFolder": {"value": folder},
            "imageDefinition": {"value": {
                "name": "ubuntu", "osType": "Linux", "osState": "Generalized",
                "hyperVGeneration": "V2", "publisher": "aib", "offer": "agent", "sku": "u2204"
            }},
            "imageTemplate": {"value": {
                "namePrefix": "it-test",
                "imageSource": {"type": "PlatformImage", "publisher": "Canonical",
                    "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
                "customizationSteps": [{"type": "Shell", "name": "hello", "inline": ["echo hi"]}],
                "vmSize": "Standard_D2ds_v5",
                "replicationRegions": ["westeurope"]
            }}
        }
    })
    .to_string()
}

/// MD5 of bytes, as the blob listing reports it.
pub fn md5(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(bytes).into()
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
