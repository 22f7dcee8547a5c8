//! A valid parameter file for the test infrastructure, and the repository root a step binary
//! reads it from.
//!
//! Each step's tests need the same file with a few fields of their own (a scripts folder,
//! steps, a staging group), so [`ParameterFile`] starts from what every one of them has and
//! each adds its own; the names match what [`crate::Seed`] creates.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Where a parameter file is for the `test` environment, under a repository root.
pub const TEST_FILE: &str = "parameters/test.image.parameters.json";

/// The template name prefix of the test parameter files.
pub const PREFIX: &str = "it-test";

/// The names of the image's infrastructure: what a parameter file points at and what the
/// test seeds, kept together so the two cannot drift apart.
#[derive(Clone, Copy, Debug)]
pub struct Names {
    /// The resource group of everything.
    pub group: &'static str,
    /// The user-assigned identity Image Builder runs as.
    pub identity: &'static str,
    /// The scripts' storage account (the emulator's Azurite hosts `aibscripts` by this name).
    pub account: &'static str,
    /// The scripts' container.
    pub container: &'static str,
    /// The compute gallery.
    pub gallery: &'static str,
    /// The gallery image definition.
    pub definition: &'static str,
}

/// The test infrastructure most step tests use.
pub const TEST: Names = Names {
    group: "rg-aib-test",
    identity: "id-aib-test",
    account: "aibscripts",
    container: "scripts-linux",
    gallery: "gal_aib_test",
    definition: "ubuntu",
};

/// A parameter file under construction: valid as it starts, changed field by field.
#[derive(Clone, Debug)]
pub struct ParameterFile(Value);

impl ParameterFile {
    /// A valid file for `names` with templates named `prefix-<timestamp>`: a Linux gen2
    /// definition, Ubuntu 22.04 from the marketplace (no version), one inline step that
    /// succeeds, replicated to westeurope; no scripts folder.
    pub fn new(names: &Names, prefix: &str) -> ParameterFile {
        ParameterFile(json!({
            "$schema": "https://aib.dev/image.parameters.schema.json",
            "contentVersion": "1.0.0.0",
            "parameters": {
                "location": {"value": "westeurope"},
                "resourceGroupName": {"value": names.group},
                "identityName": {"value": names.identity},
                "storageAccountName": {"value": names.account},
                "containerName": {"value": names.container},
                "galleryName": {"value": names.gallery},
                "imageDefinition": {"value": {
                    "name": names.definition, "osType": "Linux", "osState": "Generalized",
                    "hyperVGeneration": "V2", "publisher": "aib", "offer": "agent", "sku": "u2204"
                }},
                "imageTemplate": {"value": {
                    "namePrefix": prefix,
                    "imageSource": {"type": "PlatformImage", "publisher": "Canonical",
                        "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"},
                    "customizationSteps": hello_step(),
                    "replicationRegions": ["westeurope"]
                }}
            }
        }))
    }

    /// Sets parameter `name` to `value`.
    pub fn parameter(mut self, name: &str, value: Value) -> ParameterFile {
        self.0["parameters"][name] = json!({ "value": value });
        self
    }

    /// Sets the scripts folder (relative to the repository root).
    pub fn scripts_folder(self, folder: &str) -> ParameterFile {
        self.parameter("scriptsFolder", json!(folder))
    }

    /// Sets field `key` of the image template.
    pub fn template(mut self, key: &str, value: Value) -> ParameterFile {
        self.0["parameters"]["imageTemplate"]["value"][key] = value;
        self
    }

    /// Sets the customization steps.
    pub fn steps(self, steps: Value) -> ParameterFile {
        self.template("customizationSteps", steps)
    }

    /// Pins the marketplace image's version (e.g. `latest`).
    pub fn source_version(mut self, version: &str) -> ParameterFile {
        self.0["parameters"]["imageTemplate"]["value"]["imageSource"]["version"] = json!(version);
        self
    }

    /// The file as JSON, for a test that edits it further.
    pub fn json(self) -> Value {
        self.0
    }
}

impl fmt::Display for ParameterFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One inline Shell step that succeeds: the smallest valid customization.
pub fn hello_step() -> Value {
    json!([{"type": "Shell", "name": "hello", "inline": ["echo hi"]}])
}

/// A temp repository root with `parameters/` and an empty scripts folder `up/`, and the `test`
/// environment's parameter file when `file` is given.
pub fn repository(file: Option<&str>) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(root.path().join("parameters")).expect("parameters/ is created");
    std::fs::create_dir_all(root.path().join("up")).expect("up/ is created");
    if let Some(text) = file {
        write_parameter_file(root.path(), text);
    }
    root
}

/// Writes (or replaces) the `test` environment's parameter file under `root`.
pub fn write_parameter_file(root: &Path, text: &str) {
    std::fs::write(root.join(TEST_FILE), text).expect("the parameter file is written");
}

/// This repository's root (two levels above every member package, this one included): the
/// bundled parameter files, scripts and fixtures are read from there.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file as it starts is one aib accepts, and it names the infrastructure it was given
    /// (a file the step refused would make every step test fail for the wrong reason).
    #[test]
    fn a_new_parameter_file_is_valid_and_names_the_infrastructure() {
        let text = ParameterFile::new(&TEST, PREFIX).to_string();

        let file = aib::config::parse_str("test", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));

        let p = &file.parameters;
        assert_eq!(p.resource_group_name, TEST.group);
        assert_eq!(p.identity_name, TEST.identity);
        assert_eq!(p.storage_account_name, TEST.account);
        assert_eq!(p.container_name, TEST.container);
        assert_eq!(p.gallery_name, TEST.gallery);
        assert_eq!(p.image_definition.name, TEST.definition);
        assert_eq!(p.image_template.name_prefix, PREFIX);
        assert_eq!(p.scripts_folder, None);
        assert_eq!(p.image_template.customization_steps.len(), 1);
    }

    /// Every setter lands where aib reads it, and the file stays valid.
    #[test]
    fn the_setters_keep_the_file_valid_and_land_where_aib_reads_them() {
        let steps = json!([
            {"type": "Shell", "name": "one", "inline": ["true"]},
            {"type": "Shell", "name": "two", "inline": ["true"]}
        ]);
        let text = ParameterFile::new(&TEST, "other")
            .scripts_folder("up")
            .parameter("tags", json!({"team": "platform"}))
            .source_version("latest")
            .steps(steps)
            .template("vmSize", json!("Standard_D2ds_v5"))
            .to_string();

        let file = aib::config::parse_str("test", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));

        let p = &file.parameters;
        assert_eq!(p.scripts_folder.as_deref(), Some("up"));
        assert_eq!(
            p.tags
                .as_ref()
                .and_then(|t| t.get("team"))
                .map(String::as_str),
            Some("platform")
        );
        assert_eq!(p.image_template.name_prefix, "other");
        assert_eq!(p.image_template.customization_steps.len(), 2);
        assert_eq!(
            p.image_template.vm_size.as_deref(),
            Some("Standard_D2ds_v5")
        );
        assert!(text.contains(r#""version":"latest""#), "{text}");
    }
}
