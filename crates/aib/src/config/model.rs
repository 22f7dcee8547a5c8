//! The typed model of one parameter file's values, as the rest of aib consumes them.
//!
//! These types are the single description of the format: the decoder in `decode.rs` fills them,
//! the JSON Schema in `schema.rs` is generated from their `JsonSchema` derive, and their
//! `Serialize` derive must give back exactly what the file said (a test round-trips every
//! bundled file), so the schema, the decoder and the documentation cannot drift apart.
//!
//! Optional fields stay `Option` here (nothing is filled in while decoding); the accessors
//! return the Azure default, so a summary can say "default" and a template can leave a field out.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

/// Every value of a parameter file (the `parameters.<name>.value` entries, without the envelope).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageParameters {
    /// Azure region of every resource aib creates (resource group, identity, storage, gallery,
    /// template), e.g. `westeurope`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9 ]{1,64}$"))]
    pub location: String,
    /// Resource group that holds the identity, storage account, gallery and image templates.
    #[schemars(regex(pattern = r"^[-\w.()]{0,89}[-\w()]$"))]
    pub resource_group_name: String,
    /// User-assigned managed identity that Image Builder runs as (it reads the scripts and
    /// writes the image version).
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$"))]
    pub identity_name: String,
    /// Storage account that holds the uploaded customization scripts (3–24 lowercase letters
    /// and digits, globally unique).
    #[schemars(regex(pattern = r"^[a-z0-9]{3,24}$"))]
    pub storage_account_name: String,
    /// Blob container for the uploaded scripts.
    #[schemars(regex(pattern = r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$"))]
    pub container_name: String,
    /// Azure Compute Gallery that receives the image versions.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]([A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?$"))]
    pub gallery_name: String,
    /// The gallery image definition the builds publish versions of.
    pub image_definition: ImageDefinition,
    /// What each build starts from, what it runs and where the result goes.
    pub image_template: ImageTemplate,
    /// Folder (relative to the repository root) whose files are uploaded and can be named by
    /// `script` / `file` in customization steps. Default: `scripts/uploads/<linux|windows>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scripts_folder: Option<String>,
    /// Tags put on every resource aib creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl ImageParameters {
    /// Every file of the scripts folder the steps name (`script` / `file`), in step order,
    /// each once: what trigger-build must find uploaded, with its SHA-256.
    pub fn uploaded_files(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self
            .image_template
            .customization_steps
            .iter()
            .filter_map(CustomizationStep::uploaded_file)
        {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The scripts folder relative to the repository root, with the per-OS default applied.
    pub fn scripts_folder(&self) -> String {
        self.scripts_folder
            .clone()
            .unwrap_or_else(|| default_scripts_folder(self.image_definition.os_type))
    }
}

/// `scripts/uploads/linux` or `scripts/uploads/windows`: where the bundled scripts live.
pub fn default_scripts_folder(os: OsType) -> String {
    format!("scripts/uploads/{}", os.folder_name())
}

/// The gallery image definition (Microsoft.Compute/galleries/images); its identity fields cannot
/// change after creation, so they are checked before anything is deployed.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageDefinition {
    /// Name of the image definition inside the gallery.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,80}$"))]
    pub name: String,
    /// `Linux` or `Windows`; also decides which customization steps are allowed.
    pub os_type: OsType,
    /// `Generalized` (default; Image Builder only produces generalized images) or `Specialized`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_state: Option<OsState>,
    /// `V1` or `V2` (default); must match the generation of the source image.
    #[serde(rename = "hyperVGeneration", skip_serializing_if = "Option::is_none")]
    pub hyper_v_generation: Option<HyperVGeneration>,
    /// Identifier publisher (your organisation, not the Marketplace publisher).
    pub publisher: String,
    /// Identifier offer.
    pub offer: String,
    /// Identifier SKU.
    pub sku: String,
    /// Security type feature of the definition; Image Builder needs a `…Supported` value or
    /// `Standard` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_type: Option<SecurityType>,
    /// Free text shown in the portal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ImageDefinition {
    /// The OS state with Azure's default (`Generalized`).
    pub fn os_state(&self) -> OsState {
        self.os_state.unwrap_or(OsState::Generalized)
    }

    /// The Hyper-V generation with aib's default (`V2`, what current Marketplace images are).
    pub fn hyper_v_generation(&self) -> HyperVGeneration {
        self.hyper_v_generation.unwrap_or(HyperVGeneration::V2)
    }

    /// The security type with its default (`Standard`, i.e. no feature on the definition).
    pub fn security_type(&self) -> SecurityType {
        self.security_type.unwrap_or(SecurityType::Standard)
    }
}

/// Operating system family of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum OsType {
    /// Linux: Shell and File steps.
    Linux,
    /// Windows: PowerShell, File, WindowsRestart and WindowsUpdate steps.
    Windows,
}

impl OsType {
    /// The spelling Azure uses (`Linux`, `Windows`).
    pub fn as_str(self) -> &'static str {
        match self {
            OsType::Linux => "Linux",
            OsType::Windows => "Windows",
        }
    }

    /// The lowercase folder name under `scripts/uploads/`.
    pub fn folder_name(self) -> &'static str {
        match self {
            OsType::Linux => "linux",
            OsType::Windows => "windows",
        }
    }
}

/// Whether the image is generalized (sysprep / waagent deprovision) or specialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum OsState {
    /// Generalized: what Image Builder produces.
    Generalized,
    /// Specialized: machine-specific state kept.
    Specialized,
}

impl OsState {
    /// The spelling Azure uses.
    pub fn as_str(self) -> &'static str {
        match self {
            OsState::Generalized => "Generalized",
            OsState::Specialized => "Specialized",
        }
    }
}

/// Hyper-V generation of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum HyperVGeneration {
    /// Generation 1 (BIOS).
    V1,
    /// Generation 2 (UEFI), needed for Trusted Launch.
    V2,
}

impl HyperVGeneration {
    /// The spelling Azure uses.
    pub fn as_str(self) -> &'static str {
        match self {
            HyperVGeneration::V1 => "V1",
            HyperVGeneration::V2 => "V2",
        }
    }
}

/// The `SecurityType` feature of the image definition. Only the values Image Builder can build
/// into are accepted (`TrustedLaunch` and `ConfidentialVM` definitions are refused by AIB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum SecurityType {
    /// No security feature on the definition.
    Standard,
    /// VMs from this image may use Trusted Launch.
    TrustedLaunchSupported,
    /// VMs from this image may be confidential VMs.
    #[serde(rename = "ConfidentialVMSupported")]
    ConfidentialVmSupported,
    /// Both of the above.
    TrustedLaunchAndConfidentialVmSupported,
}

impl SecurityType {
    /// The spelling Azure uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityType::Standard => "Standard",
            SecurityType::TrustedLaunchSupported => "TrustedLaunchSupported",
            SecurityType::ConfidentialVmSupported => "ConfidentialVMSupported",
            SecurityType::TrustedLaunchAndConfidentialVmSupported => {
                "TrustedLaunchAndConfidentialVmSupported"
            }
        }
    }
}

/// What trigger-build puts into an image template (each build gets a new template named
/// `<namePrefix>-yyyy-MM-dd-HH-mm-ss`, because templates are immutable).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageTemplate {
    /// Template name prefix; the timestamp suffix is added per build, and remove-templates
    /// finds earlier templates of this image by it.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,44}$"))]
    pub name_prefix: String,
    /// The image the build starts from.
    pub image_source: ImageSource,
    /// Steps run in order on the build VM.
    pub customization_steps: Vec<CustomizationStep>,
    /// Build VM size (default: Image Builder's, `Standard_D2ds_v4` for Gen2).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]{1,64}$"))]
    pub vm_size: Option<String>,
    /// OS disk size in GB; 0 or absent keeps the source image's size.
    #[serde(rename = "osDiskSizeGB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 4095))]
    pub os_disk_size_gb: Option<u32>,
    /// Build timeout in minutes, 0–960 (0 or absent: Image Builder's default of 240).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 960))]
    pub build_timeout_in_minutes: Option<u32>,
    /// Resource group name (or id) Image Builder stages the build in; absent: it creates
    /// `IT_<resourceGroup>_<template>_<guid>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging_resource_group: Option<String>,
    /// Regions the image version is replicated to (one replica each). Use this or
    /// `targetRegions`; absent both: the `location` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), inner(regex(pattern = r"^[A-Za-z0-9 ]{1,64}$")))]
    pub replication_regions: Option<Vec<String>>,
    /// Regions with replica count and storage type. Use this or `replicationRegions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub target_regions: Option<Vec<TargetRegion>>,
    /// Storage type of the replicas when `replicationRegions` is used (default `Standard_LRS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_account_type: Option<StorageAccountType>,
    /// How the image version number is chosen (absent: Image Builder picks one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versioning: Option<Versioning>,
    /// Keep the new version out of `latest` (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_from_latest: Option<bool>,
}

/// The timestamp format of template names: `yyyy-MM-dd-HH-mm-ss` (UTC), so names sort by time.
const TEMPLATE_TIMESTAMP: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");

impl ImageTemplate {
    /// The name of the template a build started at `at` gets: `<namePrefix>-yyyy-MM-dd-HH-mm-ss`
    /// (UTC). The prefix rule guarantees it fits Image Builder's 64 characters.
    pub fn template_name(&self, at: time::OffsetDateTime) -> String {
        let stamp = at
            .to_offset(time::UtcOffset::UTC)
            .format(TEMPLATE_TIMESTAMP)
            .unwrap_or_default();
        format!("{}-{stamp}", self.name_prefix)
    }

    /// Whether `name` is a template this file's builds created (the prefix, then a timestamp),
    /// so that removing earlier templates never touches another image's templates that merely
    /// share the start of the prefix.
    pub fn is_own_template(&self, name: &str) -> bool {
        name.strip_prefix(&self.name_prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|stamp| time::PrimitiveDateTime::parse(stamp, TEMPLATE_TIMESTAMP).is_ok())
    }

    /// The regions the image version goes to, with replica counts: `targetRegions`, else
    /// `replicationRegions` (one replica), else `location` alone.
    pub fn distribution_regions(&self, location: &str) -> Vec<TargetRegion> {
        if let Some(targets) = &self.target_regions {
            return targets.clone();
        }
        let names = match &self.replication_regions {
            Some(names) => names.clone(),
            None => vec![location.to_string()],
        };
        names
            .into_iter()
            .map(|name| TargetRegion {
                name,
                replica_count: None,
                storage_account_type: self.storage_account_type,
            })
            .collect()
    }
}

/// The image a build starts from (`properties.source` of the template).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type")]
pub enum ImageSource {
    /// An Azure Marketplace image.
    #[serde(rename_all = "camelCase")]
    PlatformImage {
        /// Marketplace publisher, e.g. `Canonical`.
        publisher: String,
        /// Marketplace offer, e.g. `0001-com-ubuntu-server-jammy`.
        offer: String,
        /// Marketplace SKU, e.g. `22_04-lts-gen2`.
        sku: String,
        /// Image version or `latest` (default), resolved when the build runs.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^(latest|[0-9]+(\.[0-9]+)*)$"))]
        version: Option<String>,
        /// Purchase plan, for Marketplace images that have one.
        #[serde(skip_serializing_if = "Option::is_none")]
        plan_info: Option<PlanInfo>,
    },
    /// A version of a gallery image (possibly `…/versions/latest`).
    #[serde(rename_all = "camelCase")]
    SharedImageVersion {
        /// Resource id of the gallery image version.
        image_version_id: String,
    },
    /// A managed image (same subscription and region as the template).
    #[serde(rename_all = "camelCase")]
    ManagedImage {
        /// Resource id of the managed image.
        image_id: String,
    },
}

/// Marketplace purchase plan (all three fields required when present).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanInfo {
    /// Plan name.
    pub plan_name: String,
    /// Plan product.
    pub plan_product: String,
    /// Plan publisher.
    pub plan_publisher: String,
}

/// One customization step (`properties.customize[]` of the template).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type")]
pub enum CustomizationStep {
    /// Runs a shell script on a Linux build VM.
    Shell {
        /// Step name shown in the build log.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// What to run: exactly one of `scriptUri`, `inline`, `script`.
        #[serde(flatten)]
        run: ScriptSource,
        /// SHA-256 of the script at `scriptUri` (lowercase hex); computed by aib for `script`.
        #[serde(rename = "sha256Checksum", skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
        sha256_checksum: Option<String>,
    },
    /// Runs PowerShell on a Windows build VM.
    #[serde(rename_all = "camelCase")]
    PowerShell {
        /// Step name shown in the build log.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// What to run: exactly one of `scriptUri`, `inline`, `script`.
        #[serde(flatten)]
        run: ScriptSource,
        /// SHA-256 of the script at `scriptUri` (lowercase hex); computed by aib for `script`.
        #[serde(rename = "sha256Checksum", skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
        sha256_checksum: Option<String>,
        /// Run as administrator (default false).
        #[serde(skip_serializing_if = "Option::is_none")]
        run_elevated: Option<bool>,
        /// Run as LocalSystem; only together with `runElevated` (default false).
        #[serde(skip_serializing_if = "Option::is_none")]
        run_as_system: Option<bool>,
        /// Exit codes that count as success (default `[0]`).
        #[serde(skip_serializing_if = "Option::is_none")]
        valid_exit_codes: Option<Vec<i64>>,
    },
    /// Copies one file onto the build VM (under 20 MB).
    File {
        /// Step name shown in the build log.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Where the file comes from: exactly one of `sourceUri`, `file`.
        #[serde(flatten)]
        source: FileSource,
        /// Absolute path on the VM; on Linux only `/tmp` is writable.
        destination: String,
        /// SHA-256 of the file at `sourceUri` (lowercase hex); computed by aib for `file`.
        #[serde(rename = "sha256Checksum", skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
        sha256_checksum: Option<String>,
    },
    /// Restarts a Windows build VM and waits for it.
    #[serde(rename_all = "camelCase")]
    WindowsRestart {
        /// Step name shown in the build log.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Command that restarts (default `shutdown /r /f /t 0 /c "packer restart"`).
        #[serde(skip_serializing_if = "Option::is_none")]
        restart_command: Option<String>,
        /// Command that tells whether the restart finished.
        #[serde(skip_serializing_if = "Option::is_none")]
        restart_check_command: Option<String>,
        /// How long to wait, a number and a unit: `5m` (default), `90s`, `1h`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^([0-9]+[hms])+$"))]
        restart_timeout: Option<String>,
    },
    /// Installs Windows updates.
    #[serde(rename_all = "camelCase")]
    WindowsUpdate {
        /// Step name shown in the build log.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Windows Update search criteria ("" = all).
        #[serde(skip_serializing_if = "Option::is_none")]
        search_criteria: Option<String>,
        /// Update filters, e.g. `exclude:$_.Title -like '*Preview*'`.
        #[serde(skip_serializing_if = "Option::is_none")]
        filters: Option<Vec<String>>,
        /// Maximum number of updates (0 or absent: 1000).
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(range(max = 1000))]
        update_limit: Option<u32>,
    },
}

impl CustomizationStep {
    /// The discriminator as written in the file (`Shell`, `PowerShell`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            CustomizationStep::Shell { .. } => "Shell",
            CustomizationStep::PowerShell { .. } => "PowerShell",
            CustomizationStep::File { .. } => "File",
            CustomizationStep::WindowsRestart { .. } => "WindowsRestart",
            CustomizationStep::WindowsUpdate { .. } => "WindowsUpdate",
        }
    }

    /// The optional step name.
    pub fn name(&self) -> Option<&str> {
        match self {
            CustomizationStep::Shell { name, .. }
            | CustomizationStep::PowerShell { name, .. }
            | CustomizationStep::File { name, .. }
            | CustomizationStep::WindowsRestart { name, .. }
            | CustomizationStep::WindowsUpdate { name, .. } => name.as_deref(),
        }
    }

    /// The uploaded file this step needs from the scripts folder, if it names one.
    pub fn uploaded_file(&self) -> Option<&str> {
        match self {
            CustomizationStep::Shell { run, .. } | CustomizationStep::PowerShell { run, .. } => {
                match run {
                    ScriptSource::Uploaded { script } => Some(script),
                    _ => None,
                }
            }
            CustomizationStep::File { source, .. } => match source {
                FileSource::Uploaded { file } => Some(file),
                FileSource::Uri { .. } => None,
            },
            _ => None,
        }
    }
}

/// Where a Shell or PowerShell step's commands come from.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ScriptSource {
    /// A script at a URL (https), downloaded by Image Builder.
    Uri {
        /// The script's URL.
        #[serde(rename = "scriptUri")]
        script_uri: String,
    },
    /// Commands written in the file, one per line.
    Inline {
        /// The commands.
        #[schemars(length(min = 1))]
        inline: Vec<String>,
    },
    /// A file of the scripts folder, uploaded by aib; trigger-build turns it into the blob URL
    /// with its SHA-256.
    Uploaded {
        /// File name inside the scripts folder.
        script: String,
    },
}

/// Where a File step's file comes from.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FileSource {
    /// A file at a URL (https).
    Uri {
        /// The file's URL.
        #[serde(rename = "sourceUri")]
        source_uri: String,
    },
    /// A file of the scripts folder, uploaded by aib.
    Uploaded {
        /// File name inside the scripts folder.
        file: String,
    },
}

/// One replication region of the image version.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRegion {
    /// Region name, e.g. `westeurope`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9 ]{1,64}$"))]
    pub name: String,
    /// Replicas in that region (1–100, default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub replica_count: Option<u32>,
    /// Replica storage type (default `Standard_LRS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_account_type: Option<StorageAccountType>,
}

/// Storage type of image replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum StorageAccountType {
    /// Locally redundant HDD (default).
    #[serde(rename = "Standard_LRS")]
    StandardLrs,
    /// Zone-redundant.
    #[serde(rename = "Standard_ZRS")]
    StandardZrs,
    /// Premium SSD.
    #[serde(rename = "Premium_LRS")]
    PremiumLrs,
}

impl StorageAccountType {
    /// The spelling Azure uses.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageAccountType::StandardLrs => "Standard_LRS",
            StorageAccountType::StandardZrs => "Standard_ZRS",
            StorageAccountType::PremiumLrs => "Premium_LRS",
        }
    }
}

/// How Image Builder numbers the new image version.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "scheme")]
pub enum Versioning {
    /// Next patch after the highest existing version (within `major` when given).
    Latest {
        /// Major version to stay in; absent or -1: the overall latest.
        #[serde(skip_serializing_if = "Option::is_none")]
        major: Option<i64>,
    },
    /// The version of the source image.
    Source,
}
