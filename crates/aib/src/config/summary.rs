//! What a parameter file would deploy where, as one value with a text rendering.
//!
//! `aib validate` shows this for every file; the JSON output is the same value serialized, so
//! a person and a script read the same facts (resources, source image, steps, distribution).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::model::*;
use crate::report::error_chain;

/// The readable facts of one valid parameter file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The file as named.
    pub file: String,
    /// Region of every resource.
    pub location: String,
    /// Resource group of the identity, storage, gallery and templates.
    pub resource_group: String,
    /// User-assigned identity Image Builder runs as.
    pub identity: String,
    /// Storage account for the scripts.
    pub storage_account: String,
    /// Container for the scripts.
    pub container: String,
    /// Local folder uploaded to the container.
    pub scripts_folder: String,
    /// Compute Gallery.
    pub gallery: String,
    /// The image definition.
    pub image_definition: ImageDefinitionSummary,
    /// Template name pattern (`<prefix>-yyyy-MM-dd-HH-mm-ss`).
    pub template_name: String,
    /// Build VM size, or `default`.
    pub vm_size: String,
    /// OS disk size in GB (absent: the source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_disk_size_gb: Option<u32>,
    /// Build timeout in minutes (0 is Image Builder's default, 240).
    pub build_timeout_in_minutes: u32,
    /// Staging resource group, or absent when Image Builder makes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging_resource_group: Option<String>,
    /// The source image in one line.
    pub source: String,
    /// Each customization step in one line.
    pub steps: Vec<StepSummary>,
    /// Where the image version goes.
    pub distribution: DistributionSummary,
    /// Tags on every resource.
    pub tags: BTreeMap<String, String>,
}

/// The image definition's identity fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDefinitionSummary {
    /// Definition name.
    pub name: String,
    /// `Linux` / `Windows`.
    pub os_type: String,
    /// `Generalized` / `Specialized`.
    pub os_state: String,
    /// `V1` / `V2`.
    pub hyper_v_generation: String,
    /// Security type.
    pub security_type: String,
    /// `publisher/offer/sku` of the definition's identifier.
    pub identifier: String,
}

/// One customization step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    /// Step type (`Shell`, `PowerShell`, …).
    #[serde(rename = "type")]
    pub step_type: String,
    /// Step name, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it does, in one line.
    pub action: String,
}

/// Distribution to the gallery.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributionSummary {
    /// `gallery/imageDefinition`.
    pub image: String,
    /// `region (n replicas, storage type)` per region.
    pub regions: Vec<String>,
    /// Versioning rule in words.
    pub versioning: String,
    /// Whether the new version stays out of `latest`.
    pub exclude_from_latest: bool,
}

impl Summary {
    /// Builds the summary of `params` read from `file`.
    pub fn of(file: &str, params: &ImageParameters) -> Summary {
        let def = &params.image_definition;
        let tpl = &params.image_template;
        let regions = tpl
            .distribution_regions(&params.location)
            .iter()
            .map(|r| {
                let count = r.replica_count.unwrap_or(1);
                format!(
                    "{} ({} replica{}, {})",
                    r.name,
                    count,
                    if count == 1 { "" } else { "s" },
                    r.storage_account_type
                        .unwrap_or(StorageAccountType::StandardLrs)
                        .as_str()
                )
            })
            .collect();
        let versioning = match &tpl.versioning {
            None => "chosen by Image Builder".to_string(),
            Some(Versioning::Latest {
                major: None | Some(-1),
            }) => "next patch after the latest version".to_string(),
            Some(Versioning::Latest { major: Some(m) }) => {
                format!("next patch within major version {m}")
            }
            Some(Versioning::Source) => "the source image's version".to_string(),
        };
        Summary {
            file: file.to_string(),
            location: params.location.clone(),
            resource_group: params.resource_group_name.clone(),
            identity: params.identity_name.clone(),
            storage_account: params.storage_account_name.clone(),
            container: params.container_name.clone(),
            scripts_folder: params.scripts_folder(),
            gallery: params.gallery_name.clone(),
            image_definition: ImageDefinitionSummary {
                name: def.name.clone(),
                os_type: def.os_type.as_str().into(),
                os_state: def.os_state().as_str().into(),
                hyper_v_generation: def.hyper_v_generation().as_str().into(),
                security_type: def.security_type().as_str().into(),
                identifier: format!("{}/{}/{}", def.publisher, def.offer, def.sku),
            },
            template_name: format!("{}-yyyy-MM-dd-HH-mm-ss", tpl.name_prefix),
            vm_size: tpl.vm_size.clone().unwrap_or_else(|| "default".into()),
            os_disk_size_gb: tpl.os_disk_size_gb.filter(|s| *s > 0),
            build_timeout_in_minutes: tpl.build_timeout_in_minutes.unwrap_or(0),
            staging_resource_group: tpl.staging_resource_group.clone(),
            source: describe_source(&tpl.image_source),
            steps: tpl.customization_steps.iter().map(describe_step).collect(),
            distribution: DistributionSummary {
                image: format!("{}/{}", params.gallery_name, def.name),
                regions,
                versioning,
                exclude_from_latest: tpl.exclude_from_latest.unwrap_or(false),
            },
            tags: params.tags.clone().unwrap_or_default(),
        }
    }
}

fn describe_source(source: &ImageSource) -> String {
    match source {
        ImageSource::PlatformImage {
            publisher,
            offer,
            sku,
            version,
            plan_info,
        } => {
            let mut s = format!(
                "Marketplace image {publisher}:{offer}:{sku}:{}",
                version.as_deref().unwrap_or("latest")
            );
            if let Some(plan) = plan_info {
                s.push_str(&format!(" (plan {})", plan.plan_name));
            }
            s
        }
        ImageSource::SharedImageVersion { image_version_id } => {
            format!("gallery image version {image_version_id}")
        }
        ImageSource::ManagedImage { image_id } => format!("managed image {image_id}"),
    }
}

fn describe_step(step: &CustomizationStep) -> StepSummary {
    let run = |run: &ScriptSource| match run {
        ScriptSource::Uri { script_uri } => format!("runs {script_uri}"),
        ScriptSource::Inline { inline } => format!("runs inline: {}", inline.join("; ")),
        ScriptSource::Uploaded { script } => format!("runs uploaded script {script}"),
    };
    let action = match step {
        CustomizationStep::Shell { run: r, .. } => run(r),
        CustomizationStep::PowerShell {
            run: r,
            run_elevated,
            run_as_system,
            ..
        } => {
            let mut s = run(r);
            if *run_as_system == Some(true) {
                s.push_str(" (elevated, as SYSTEM)");
            } else if *run_elevated == Some(true) {
                s.push_str(" (elevated)");
            }
            s
        }
        CustomizationStep::File {
            source,
            destination,
            ..
        } => match source {
            FileSource::Uri { source_uri } => format!("copies {source_uri} to {destination}"),
            FileSource::Uploaded { file } => {
                format!("copies uploaded file {file} to {destination}")
            }
        },
        CustomizationStep::WindowsRestart {
            restart_timeout, ..
        } => format!(
            "restarts Windows (timeout {})",
            restart_timeout.as_deref().unwrap_or("5m")
        ),
        CustomizationStep::WindowsUpdate {
            search_criteria,
            update_limit,
            ..
        } => {
            let criteria = search_criteria
                .as_deref()
                .filter(|c| !c.is_empty())
                .unwrap_or("all updates");
            format!(
                "installs Windows updates ({criteria}, at most {})",
                update_limit.filter(|l| *l > 0).unwrap_or(1000)
            )
        }
    };
    StepSummary {
        step_type: step.type_name().to_string(),
        name: step.name().map(str::to_string),
        action,
    }
}

impl Summary {
    /// The summary's lines after the file name, for a reporter that shows the file as a group
    /// title.
    pub fn details(&self) -> Vec<String> {
        self.to_string()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.image_definition;
        writeln!(f, "{}", self.file)?;
        writeln!(f, "  location          {}", self.location)?;
        writeln!(f, "  resource group    {}", self.resource_group)?;
        writeln!(f, "  identity          {}", self.identity)?;
        writeln!(
            f,
            "  storage           account {}, container {} (uploads {})",
            self.storage_account, self.container, self.scripts_folder
        )?;
        writeln!(f, "  gallery           {}", self.gallery)?;
        writeln!(
            f,
            "  image definition  {} ({}, {}, {}, {}; identifier {})",
            d.name, d.os_type, d.os_state, d.hyper_v_generation, d.security_type, d.identifier
        )?;
        writeln!(f, "  source            {}", self.source)?;
        let mut build = format!(
            "template {} on VM size {}",
            self.template_name, self.vm_size
        );
        if let Some(disk) = self.os_disk_size_gb {
            build.push_str(&format!(", OS disk {disk} GB"));
        }
        if self.build_timeout_in_minutes == 0 {
            build.push_str(", timeout 240 min (default)");
        } else {
            build.push_str(&format!(", timeout {} min", self.build_timeout_in_minutes));
        }
        if let Some(staging) = &self.staging_resource_group {
            build.push_str(&format!(", staging in {staging}"));
        }
        writeln!(f, "  build             {build}")?;
        if self.steps.is_empty() {
            writeln!(f, "  steps             (none)")?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            let label = if i == 0 { "steps" } else { "" };
            let name = step
                .name
                .as_deref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default();
            writeln!(
                f,
                "  {label:<16}  {}. {}{}: {}",
                i + 1,
                step.step_type,
                name,
                step.action
            )?;
        }
        let dist = &self.distribution;
        writeln!(
            f,
            "  distribution      {} to {}; version: {}{}",
            dist.image,
            dist.regions.join(", "),
            dist.versioning,
            if dist.exclude_from_latest {
                "; excluded from latest"
            } else {
                ""
            }
        )?;
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(f, "  tags              {}", tags.join(", "))?;
        }
        Ok(())
    }
}

/// The outcome of checking several parameter files: one entry per file, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    /// True when every file is valid.
    pub valid: bool,
    /// One outcome per file.
    pub files: Vec<FileOutcome>,
}

/// What checking one file found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum FileOutcome {
    /// The file passed every check.
    Valid {
        /// What it would deploy where.
        summary: Box<Summary>,
    },
    /// The file has problems (all of them).
    Invalid {
        /// The file as named.
        file: String,
        /// Every problem, in file order.
        problems: Vec<super::Problem>,
    },
    /// The file could not be read at all.
    Unreadable {
        /// The file as named.
        file: String,
        /// Why.
        error: String,
    },
}

impl Validation {
    /// Loads and checks every file in `paths` (scripts resolved against `root`).
    pub fn of_files(paths: &[std::path::PathBuf], root: &std::path::Path) -> Validation {
        let files: Vec<FileOutcome> = paths
            .iter()
            .map(|path| match super::load(path, root) {
                Ok(file) => FileOutcome::Valid {
                    summary: Box::new(file.summary()),
                },
                Err(super::ConfigError::Invalid { file, problems }) => {
                    FileOutcome::Invalid { file, problems }
                }
                Err(err) => FileOutcome::Unreadable {
                    file: path.display().to_string(),
                    error: error_chain(&err),
                },
            })
            .collect();
        Validation {
            valid: files.iter().all(|f| matches!(f, FileOutcome::Valid { .. })),
            files,
        }
    }

    /// How many files are valid and how many are not.
    pub fn counts(&self) -> (usize, usize) {
        let valid = self
            .files
            .iter()
            .filter(|f| matches!(f, FileOutcome::Valid { .. }))
            .count();
        (valid, self.files.len() - valid)
    }
}

impl Validation {
    /// A Markdown table for a CI job summary: one row per file.
    pub fn markdown(&self) -> String {
        let (valid, invalid) = self.counts();
        let mut md = format!(
            "### Parameter files: {valid} valid, {invalid} invalid\n\n| File | Result | Resource group | Image | Source | Steps | Regions |\n|---|---|---|---|---|---|---|\n"
        );
        for outcome in &self.files {
            match outcome {
                FileOutcome::Valid { summary: s } => md.push_str(&format!(
                    "| `{}` | valid | {} | {} | {} | {} | {} |\n",
                    s.file,
                    cell(&s.resource_group),
                    cell(&s.distribution.image),
                    cell(&s.source),
                    s.steps.len(),
                    cell(&s.distribution.regions.join(", "))
                )),
                FileOutcome::Invalid { file, problems } => md.push_str(&format!(
                    "| `{file}` | {} problem{} | | | | | |\n",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )),
                FileOutcome::Unreadable { file, error } => {
                    md.push_str(&format!("| `{file}` | {} | | | | | |\n", cell(error)));
                }
            }
        }
        md
    }
}

/// Escapes a table cell: a `|` would end it, a newline would end the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileOutcome::Valid { summary } => write!(f, "{summary}"),
            FileOutcome::Invalid { file, problems } => {
                let n = problems.len();
                writeln!(f, "{file}: {n} problem{}", if n == 1 { "" } else { "s" })?;
                for problem in problems {
                    writeln!(f, "{problem}")?;
                }
                Ok(())
            }
            FileOutcome::Unreadable { file, error } => writeln!(f, "{file}: {error}"),
        }
    }
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, outcome) in self.files.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{outcome}")?;
        }
        let (valid, invalid) = self.counts();
        writeln!(f)?;
        write!(f, "{valid} valid, {invalid} invalid")
    }
}
