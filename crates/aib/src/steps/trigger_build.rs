//! The `trigger-build` step: turn the parameter file into a new Image Builder template, create
//! it, and start its build without waiting (wait-for-build follows it).
//!
//! Plan, then apply. Planning is local first: every file a `script` / `file` step names is read
//! from the scripts folder and hashed (SHA-256, so Image Builder refuses a script that differs
//! from the reviewed one, and so the step also works without upload-scripts' outcome); a missing
//! or unreadable file is bad input before any request. Then it reads the storage account's blob
//! endpoint from ARM (the only way to know a sovereign cloud's or the emulator's host) and builds
//! the template body with [`template_body`], a pure function. `--what-if` stops there and shows
//! the body.
//!
//! Applying: a build of the same image (templates named `<prefix>-<timestamp>` in the resource
//! group) that is still `Running` or `Canceling` refuses the trigger unless `allow_concurrent`,
//! because two builds would fight over one staging group; then PUT (followed to its end, a
//! creation failure reported with the service's message), then `POST …/run`, whose operation is
//! left for wait-for-build. Every request goes through `azure::arm`; nothing here prints.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::azure::arm::{ArmError, LroOptions};
use crate::azure::image_template::{self, RunState};
use crate::azure::storage::{self, StorageAccountId};
use crate::azure::{Azure, AzureError, gallery, identity};
use crate::config::{CustomizationStep, ImageParameters, ImageSource, ParameterFile};
use crate::exit::ExitStatus;
use crate::report::Reporter;

/// The artifact tag that carries the hash of the build's inputs (source, customization body
/// with checksums): what change detection compares.
pub const INPUTS_HASH_TAG: &str = "aibInputsHash";
/// The artifact tag with the commit the build came from.
pub const COMMIT_TAG: &str = "aibCommit";
/// The artifact tag with the pipeline run that built it.
pub const RUN_URL_TAG: &str = "aibRunUrl";

/// How the step runs; [`Default`] is what the binary uses without flags.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Use this template name instead of `<prefix>-<yyyy-MM-dd-HH-mm-ss>`.
    pub template_name: Option<String>,
    /// Build the body and show it; send no write.
    pub what_if: bool,
    /// Start even when a build of the same image is running.
    pub allow_concurrent: bool,
    /// Create nothing when the newest version of the image definition already carries this
    /// build's inputs hash.
    pub skip_if_unchanged: bool,
    /// The blob endpoint to use instead of the account's `primaryEndpoints.blob`.
    pub blob_endpoint: Option<Url>,
    /// The commit being built (artifact tag).
    pub commit: Option<String>,
    /// The pipeline run's URL (artifact tag).
    pub run_url: Option<String>,
    /// "Now" for the template name (tests fix it); `None` is the clock.
    pub now: Option<time::OffsetDateTime>,
}

/// Why the step could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// A file a customization step names cannot be read.
    #[error(
        "customization step {step} names '{name}', but {} cannot be read (run from the repository root or set --root; is it in the scripts folder?)",
        path.display()
    )]
    ScriptUnreadable {
        /// 1-based step number.
        step: usize,
        /// The name in the parameter file.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--template-name` breaks Image Builder's naming rule.
    #[error(
        "template name '{0}' is not valid: 1-64 letters, digits, '-', '_' or '.' (Image Builder's rule)"
    )]
    BadTemplateName(String),
    /// No subscription is known.
    #[error(transparent)]
    Azure(#[from] AzureError),
    /// The storage account does not exist.
    #[error(
        "storage account '{account}' not found in resource group '{resource_group}'; run deploy-infra and upload-scripts first"
    )]
    AccountNotFound {
        /// Account name.
        account: String,
        /// Resource group.
        resource_group: String,
    },
    /// ARM reported no blob endpoint for the account.
    #[error(
        "storage account '{0}' has no blob endpoint (primaryEndpoints.blob); give --blob-endpoint"
    )]
    NoBlobEndpoint(String),
    /// A build of the same image is still running.
    #[error(
        "the build of template '{name}' (same image, resource group '{resource_group}') is still {state}; a second build would fight over its staging resource group. Wait for it (wait-for-build --template {name}), cancel it, or pass --allow-concurrent"
    )]
    BuildRunning {
        /// The running template.
        name: String,
        /// Its resource group.
        resource_group: String,
        /// `Running` or `Canceling`.
        state: String,
    },
    /// Creating the template failed (validation, permissions, a script that cannot be read).
    #[error("creating image template '{name}' failed")]
    Create {
        /// Template name.
        name: String,
        /// The failure.
        #[source]
        source: ArmError,
    },
    /// Another ARM call failed.
    #[error("{what}")]
    Arm {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: ArmError,
    },
}

/// The service's own words for an ARM failure.
fn service_message(error: &ArmError) -> String {
    match error {
        ArmError::OperationFailed(f) => f.error.message.clone(),
        other => match other.service() {
            Some(s) => s.error.message.clone(),
            None => other.to_string(),
        },
    }
}

impl TriggerError {
    /// Local problems are bad input (2); a refused or failed Azure operation is 1.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            TriggerError::ScriptUnreadable { .. } | TriggerError::BadTemplateName(_) => {
                ExitStatus::BadInput
            }
            TriggerError::Azure(e) => e.exit_status(),
            TriggerError::Create { source, .. } | TriggerError::Arm { source, .. } => {
                source.exit_status()
            }
            TriggerError::AccountNotFound { .. }
            | TriggerError::NoBlobEndpoint(_)
            | TriggerError::BuildRunning { .. } => ExitStatus::AzureFailure,
        }
    }

    /// What to do about it, when there is something specific.
    pub fn hint(&self) -> Option<String> {
        match self {
            TriggerError::Create { name, source } => {
                let text = service_message(source);
                let mut hint = format!(
                    "a template whose creation failed stays in the resource group; delete it (remove-templates, or az image builder delete -n {name}) before you retry"
                );
                if source.code() == Some("NoCustomizerScript") {
                    hint.push_str(
                        "; a script it names is not in the container: run upload-scripts first",
                    );
                }
                if text.contains("Not authorized") || text.contains("Unauthorized") {
                    hint.push_str(
                        "; the template's identity needs Storage Blob Data Reader on the scripts account (deploy-infra grants it)",
                    );
                }
                Some(hint)
            }
            _ => None,
        }
    }
}

/// One uploaded file a step names, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedFile {
    /// The name in the parameter file (relative to the scripts folder).
    pub name: String,
    /// The blob URL Image Builder downloads it from.
    pub url: String,
    /// SHA-256 of the local file, lower-case hex.
    pub sha256: String,
}

/// What [`template_body`] needs besides the parameter file: facts learnt from Azure and the
/// scripts folder.
#[derive(Debug, Clone)]
pub struct BodyInputs {
    /// The subscription every id is in.
    pub subscription_id: String,
    /// The template's name (also the run output's name).
    pub template_name: String,
    /// Each uploaded file by its name in the parameter file.
    pub files: BTreeMap<String, ResolvedFile>,
    /// The commit being built.
    pub commit: Option<String>,
    /// The pipeline run's URL.
    pub run_url: Option<String>,
}

/// The step's result, as `--output json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The template's name.
    pub template_name: String,
    /// The template's ARM id.
    pub template_id: String,
    /// The staging resource group id (Image Builder's `exactStagingResourceGroup` once created).
    pub staging_resource_group: Option<String>,
    /// When the build started (RFC 3339), from `lastRunStatus.startTime` when reported.
    pub started_at: Option<String>,
    /// The run's operation URL (`Azure-AsyncOperation` of `POST …/run`), for wait-for-build's
    /// `--run-operation`: the run's own status carries the error code of a failed build.
    pub run_operation: Option<String>,
    /// Only planned (`--what-if`): nothing was created or started.
    pub what_if: bool,
    /// The hash of the build's inputs (artifact tag `aibInputsHash`).
    pub inputs_hash: String,
    /// Every uploaded file the steps use, with its URL and SHA-256.
    pub files: Vec<ResolvedFile>,
    /// `--skip-if-unchanged` found the same inputs in the newest image version: nothing was
    /// created or started.
    pub skipped: bool,
    /// The image version that already holds this content (when skipped).
    pub existing_version_id: Option<String>,
    /// The body submitted (or, with `--what-if`, that would be).
    pub template: Value,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Reads and hashes every file the customization steps name; errors name the step.
pub fn hash_step_files(
    parameters: &ImageParameters,
    scripts_dir: &Path,
) -> Result<BTreeMap<String, String>, TriggerError> {
    let mut hashes = BTreeMap::new();
    for (i, step) in parameters
        .image_template
        .customization_steps
        .iter()
        .enumerate()
    {
        let Some(name) = step.uploaded_file() else {
            continue;
        };
        if hashes.contains_key(name) {
            continue;
        }
        let path = scripts_dir.join(name);
        let sha = sha256_file(&path).map_err(|source| TriggerError::ScriptUnreadable {
            step: i + 1,
            name: name.to_owned(),
            path: path.clone(),
            source,
        })?;
        hashes.insert(name.to_owned(), sha);
    }
    Ok(hashes)
}

/// SHA-256 of a file, streamed, lower-case hex.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL of blob `name` in `container` under the account's blob endpoint, with folders as
/// path segments (the same rule upload-scripts uploads by).
pub fn blob_url(blob_endpoint: &Url, container: &str, name: &str) -> Url {
    let mut url = blob_endpoint.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .push(container)
            .extend(name.split('/'));
    }
    url
}

/// Whether `name` fits Image Builder's template and run output names.
pub fn valid_template_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The staging resource group as an id: a name becomes an id in the subscription.
fn staging_group_id(subscription: &str, value: &str) -> String {
    if value.starts_with('/') {
        value.to_owned()
    } else {
        format!("/subscriptions/{subscription}/resourceGroups/{value}")
    }
}

/// `properties.source`: the model's own serialization (Azure's field names), with `version`
/// defaulting to `latest`.
fn source_body(source: &ImageSource) -> Value {
    let mut value = serde_json::to_value(source).unwrap_or(Value::Null);
    if let (ImageSource::PlatformImage { version: None, .. }, Value::Object(o)) =
        (source, &mut value)
    {
        o.insert("version".into(), json!("latest"));
    }
    value
}

/// One `properties.customize[]` entry: uploaded names become blob URLs with their checksum.
fn customizer_body(step: &CustomizationStep, files: &BTreeMap<String, ResolvedFile>) -> Value {
    let mut value = serde_json::to_value(step).unwrap_or(Value::Null);
    let Value::Object(o) = &mut value else {
        return value;
    };
    for (key, uri_key) in [("script", "scriptUri"), ("file", "sourceUri")] {
        if let Some(Value::String(name)) = o.remove(key) {
            if let Some(f) = files.get(&name) {
                o.insert(uri_key.into(), json!(f.url));
                o.insert("sha256Checksum".into(), json!(f.sha256));
            } else {
                // Unreachable through `trigger_build` (every name is resolved first); keep the
                // name so the service's validation names the problem rather than us hiding it.
                o.insert(uri_key.into(), json!(name));
            }
        }
    }
    value
}

/// The hash of what decides the image's content: the source reference, the customization
/// steps with their checksums (so every referenced script's bytes) and the VM profile (disk
/// size) — not the template name, time or run metadata.
pub fn inputs_hash(source: &Value, customize: &Value, vm_profile: &Value) -> String {
    let canonical =
        json!({"source": source, "customize": customize, "vmProfile": vm_profile}).to_string();
    hex(&Sha256::digest(canonical.as_bytes()))
}

/// The newest succeeded version of a definition by version number (`major.minor.patch`).
pub fn newest_version(versions: &[Value]) -> Option<&Value> {
    let number = |v: &Value| -> Option<(u64, u64, u64)> {
        let name = v["name"].as_str()?;
        let mut parts = name.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    versions
        .iter()
        .filter(|v| {
            v["properties"]["provisioningState"]
                .as_str()
                .is_none_or(|s| s.eq_ignore_ascii_case("Succeeded"))
        })
        .filter_map(|v| number(v).map(|n| (n, v)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, v)| v)
}

/// The whole PUT body for the template (api-version 2024-02-01 fields only). Pure: the same
/// inputs always give the same body.
pub fn template_body(p: &ImageParameters, inputs: &BodyInputs) -> Value {
    let sub = &inputs.subscription_id;
    let t = &p.image_template;
    let identity = identity::identity_id(sub, &p.resource_group_name, &p.identity_name);
    let definition = gallery::image_definition_id(
        &gallery::gallery_id(sub, &p.resource_group_name, &p.gallery_name),
        &p.image_definition.name,
    );
    let source = source_body(&t.image_source);
    let customize = Value::Array(
        t.customization_steps
            .iter()
            .map(|s| customizer_body(s, &inputs.files))
            .collect(),
    );
    let mut vm = Map::new();
    if let Some(size) = &t.vm_size {
        vm.insert("vmSize".into(), json!(size));
    }
    if let Some(gb) = t.os_disk_size_gb.filter(|gb| *gb > 0) {
        vm.insert("osDiskSizeGB".into(), json!(gb));
    }
    let hash = inputs_hash(&source, &customize, &Value::Object(vm.clone()));

    let mut artifact_tags = Map::new();
    artifact_tags.insert(INPUTS_HASH_TAG.into(), json!(hash));
    if let Some(c) = &inputs.commit {
        artifact_tags.insert(COMMIT_TAG.into(), json!(c));
    }
    if let Some(u) = &inputs.run_url {
        artifact_tags.insert(RUN_URL_TAG.into(), json!(u));
    }
    let mut distributor = Map::new();
    distributor.insert("type".into(), json!("SharedImage"));
    distributor.insert("runOutputName".into(), json!(inputs.template_name));
    distributor.insert("galleryImageId".into(), json!(definition));
    distributor.insert(
        "targetRegions".into(),
        serde_json::to_value(t.distribution_regions(&p.location)).unwrap_or(Value::Null),
    );
    if let Some(v) = &t.versioning {
        distributor.insert(
            "versioning".into(),
            serde_json::to_value(v).unwrap_or(Value::Null),
        );
    }
    if let Some(x) = t.exclude_from_latest {
        distributor.insert("excludeFromLatest".into(), json!(x));
    }
    distributor.insert("artifactTags".into(), Value::Object(artifact_tags));

    let mut properties = Map::new();
    properties.insert("source".into(), source);
    properties.insert("customize".into(), customize);
    properties.insert("distribute".into(), json!([distributor]));
    if let Some(m) = t.build_timeout_in_minutes {
        properties.insert("buildTimeoutInMinutes".into(), json!(m));
    }
    if !vm.is_empty() {
        properties.insert("vmProfile".into(), Value::Object(vm));
    }
    if let Some(rg) = &t.staging_resource_group {
        properties.insert(
            "stagingResourceGroup".into(),
            json!(staging_group_id(sub, rg)),
        );
    }

    let mut body = Map::new();
    body.insert("location".into(), json!(p.location));
    if let Some(tags) = &p.tags {
        body.insert(
            "tags".into(),
            serde_json::to_value(tags).unwrap_or(Value::Null),
        );
    }
    body.insert(
        "identity".into(),
        json!({"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}),
    );
    body.insert("properties".into(), Value::Object(properties));
    Value::Object(body)
}

/// Runs the step: local checks and hashes, the blob endpoint, the body; unless `what_if`, the
/// concurrency guard, PUT (followed to its end) and `POST …/run` (not followed).
pub async fn trigger_build(
    parameters: &ParameterFile,
    root: &Path,
    options: &Options,
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
) -> Result<Outcome, TriggerError> {
    let started = Instant::now();
    let p = &parameters.parameters;

    // 1. Local: the name and every named file. Bad input ends here, before any request.
    let now = options.now.unwrap_or_else(time::OffsetDateTime::now_utc);
    let name = match &options.template_name {
        Some(n) => n.clone(),
        None => p.image_template.template_name(now),
    };
    if !valid_template_name(&name) {
        return Err(TriggerError::BadTemplateName(name));
    }
    let hashes = hash_step_files(p, &parameters.scripts_dir(root))?;
    let sub = azure.subscription_id()?.to_owned();

    // 2. Where the scripts are.
    let endpoint = match &options.blob_endpoint {
        Some(e) => Some(e.clone()),
        // Inline-only steps need no storage account.
        None if hashes.is_empty() => None,
        None => {
            let account = storage::get_account(
                &azure.arm,
                &StorageAccountId {
                    subscription_id: sub.clone(),
                    resource_group: p.resource_group_name.clone(),
                    name: p.storage_account_name.clone(),
                },
            )
            .await
            .map_err(|source| TriggerError::Arm {
                what: format!("reading storage account '{}'", p.storage_account_name),
                source,
            })?
            .ok_or_else(|| TriggerError::AccountNotFound {
                account: p.storage_account_name.clone(),
                resource_group: p.resource_group_name.clone(),
            })?;
            Some(
                account
                    .blob_endpoint()
                    .ok_or_else(|| TriggerError::NoBlobEndpoint(p.storage_account_name.clone()))?,
            )
        }
    };
    let files: BTreeMap<String, ResolvedFile> = hashes
        .into_iter()
        .filter_map(|(n, sha256)| {
            let url = blob_url(endpoint.as_ref()?, &p.container_name, &n).to_string();
            Some((
                n.clone(),
                ResolvedFile {
                    name: n,
                    url,
                    sha256,
                },
            ))
        })
        .collect();
    let inputs = BodyInputs {
        subscription_id: sub.clone(),
        template_name: name.clone(),
        files,
        commit: options.commit.clone(),
        run_url: options.run_url.clone(),
    };
    let body = template_body(p, &inputs);
    let hash = body["properties"]["distribute"][0]["artifactTags"][INPUTS_HASH_TAG]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = image_template::template_id(&sub, &p.resource_group_name, &name);
    let mut outcome = Outcome {
        template_name: name.clone(),
        template_id: path.clone(),
        staging_resource_group: body["properties"]["stagingResourceGroup"]
            .as_str()
            .map(str::to_owned),
        started_at: None,
        run_operation: None,
        what_if: options.what_if,
        inputs_hash: hash.clone(),
        files: inputs.files.values().cloned().collect(),
        skipped: false,
        existing_version_id: None,
        template: body.clone(),
        elapsed_ms: 0,
    };

    // 3. Change detection: the newest image version already built from these inputs.
    if options.skip_if_unchanged {
        let definition = gallery::image_definition_id(
            &gallery::gallery_id(&sub, &p.resource_group_name, &p.gallery_name),
            &p.image_definition.name,
        );
        let versions: Vec<Value> = match azure.arm.list(&format!("{definition}/versions")).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(source) => {
                return Err(TriggerError::Arm {
                    what: format!("listing the versions of image definition '{definition}'"),
                    source,
                });
            }
        };
        if let Some(newest) = newest_version(&versions)
            && newest["tags"][INPUTS_HASH_TAG].as_str() == Some(hash.as_str())
        {
            outcome.skipped = true;
            outcome.existing_version_id = newest["id"].as_str().map(str::to_owned);
            finish(reporter.as_ref(), &mut outcome, started);
            return Ok(outcome);
        }
    }

    if options.what_if {
        reporter.info(&format!(
            "what-if: template '{name}' would be created and its build started; the body:"
        ));
        reporter.info(&serde_json::to_string_pretty(&body).unwrap_or_default());
        finish(reporter.as_ref(), &mut outcome, started);
        return Ok(outcome);
    }

    // 4. The concurrency guard.
    if !options.allow_concurrent {
        let templates = image_template::list_templates(&azure.arm, &sub, &p.resource_group_name)
            .await
            .map_err(|source| TriggerError::Arm {
                what: format!(
                    "listing image templates in resource group '{}'",
                    p.resource_group_name
                ),
                source,
            })?;
        for t in &templates {
            if let Some(state @ (RunState::Running | RunState::Canceling)) = t.run_state()
                && p.image_template.is_own_template(&t.name)
            {
                return Err(TriggerError::BuildRunning {
                    name: t.name.clone(),
                    resource_group: p.resource_group_name.clone(),
                    state: format!("{state:?}"),
                });
            }
        }
    }

    // 5. Create, following the operation to its end.
    reporter.info(&format!("Creating image template '{name}'"));
    let created = image_template::create_template(&azure.arm, &path, &body, &LroOptions::default())
        .await
        .map_err(|source| TriggerError::Create {
            name: name.clone(),
            source,
        })?;
    if !created.id.is_empty() {
        outcome.template_id = created.id.clone();
    }

    // 6. Start the build; wait-for-build follows it.
    outcome.run_operation =
        image_template::start_run(&azure.arm, &path)
            .await
            .map_err(|source| TriggerError::Arm {
                what: format!("starting the build of image template '{name}'"),
                source,
            })?;
    // The run's start time and the staging group in use; the build is started either way.
    let after = image_template::get_template(&azure.arm, &path)
        .await
        .ok()
        .flatten()
        .unwrap_or(created);
    outcome.staging_resource_group = after
        .staging_group_id()
        .map(str::to_owned)
        .or(outcome.staging_resource_group);
    outcome.started_at = Some(
        after
            .properties
            .last_run_status
            .and_then(|s| s.start_time)
            .unwrap_or_else(|| {
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            }),
    );
    finish(reporter.as_ref(), &mut outcome, started);
    Ok(outcome)
}

/// Outputs, the summary line and table, and the outcome document.
fn finish(reporter: &dyn Reporter, outcome: &mut Outcome, started: Instant) {
    outcome.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let line = if let (true, Some(v)) = (outcome.skipped, &outcome.existing_version_id) {
        format!(
            "unchanged: image version {v} was built from the same inputs (hash {}); no template created",
            outcome.inputs_hash
        )
    } else if outcome.what_if {
        format!(
            "what-if: would create image template {} ({} uploaded files with SHA-256) and start its build",
            outcome.template_name,
            outcome.files.len()
        )
    } else {
        format!(
            "started the build of image template {} (staging {}) — follow it with: wait-for-build --template {}",
            outcome.template_name,
            outcome.staging_resource_group.as_deref().unwrap_or("auto"),
            outcome.template_name
        )
    };
    reporter.info(&line);
    let outputs = [
        ("templateName", outcome.template_name.clone()),
        ("templateId", outcome.template_id.clone()),
        (
            "stagingResourceGroup",
            outcome.staging_resource_group.clone().unwrap_or_default(),
        ),
        ("startTime", outcome.started_at.clone().unwrap_or_default()),
        (
            "runOperation",
            outcome.run_operation.clone().unwrap_or_default(),
        ),
        ("inputsHash", outcome.inputs_hash.clone()),
        ("whatIf", outcome.what_if.to_string()),
        ("skipped", outcome.skipped.to_string()),
        (
            "existingVersionId",
            outcome.existing_version_id.clone().unwrap_or_default(),
        ),
    ];
    for (name, value) in outputs {
        if let Err(e) = reporter.output(name, &value) {
            crate::report::report_error(reporter, &e, None);
        }
    }
    let mut md = format!(
        "### trigger-build\n\n{line}\n\n| Template | `{}` |\n|---|---|\n| Started | {} |\n| Inputs hash | `{}` |\n",
        outcome.template_name,
        outcome.started_at.as_deref().unwrap_or("-"),
        outcome.inputs_hash
    );
    for f in &outcome.files {
        md.push_str(&format!("| `{}` | `{}` |\n", f.name, f.sha256));
    }
    if let Err(e) = reporter.summary(&md) {
        crate::report::report_error(reporter, &e, None);
    }
    if let Ok(value) = serde_json::to_value(&*outcome) {
        reporter.outcome(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn parameters(template: Value) -> ImageParameters {
        let text = json!({
            "$schema": "https://aib.dev/image.parameters.schema.json",
            "contentVersion": "1.0.0.0",
            "parameters": {
                "location": {"value": "westeurope"},
                "resourceGroupName": {"value": "rg-aib"},
                "identityName": {"value": "id-aib"},
                "storageAccountName": {"value": "staib"},
                "containerName": {"value": "scripts"},
                "galleryName": {"value": "gal_aib"},
                "tags": {"value": {"team": "platform"}},
                "imageDefinition": {"value": {
                    "name": "ubuntu", "osType": "Linux", "publisher": "aib", "offer": "agent", "sku": "u2204"
                }},
                "imageTemplate": {"value": template}
            }
        })
        .to_string();
        parse_str("test.json", &text)
            .expect("valid parameter file")
            .parameters
    }

    fn inputs(files: &[(&str, &str)]) -> BodyInputs {
        let endpoint = Url::parse("https://staib.blob.core.windows.net/").unwrap();
        BodyInputs {
            subscription_id: "sub1".into(),
            template_name: "it-ubuntu-2026-11-28-14-00-00".into(),
            files: files
                .iter()
                .map(|(n, sha)| {
                    (
                        n.to_string(),
                        ResolvedFile {
                            name: n.to_string(),
                            url: blob_url(&endpoint, "scripts", n).to_string(),
                            sha256: sha.to_string(),
                        },
                    )
                })
                .collect(),
            commit: Some("abc123".into()),
            run_url: Some("https://github.com/o/r/actions/runs/1".into()),
        }
    }

    /// A full parameter file becomes identity, source, customize with blob URLs and checksums,
    /// distribute to the definition, vmProfile, timeout, staging group id and tags.
    #[test]
    fn body_resolves_uploaded_scripts_and_distributes_to_the_definition() {
        let p = parameters(json!({
            "namePrefix": "it-ubuntu",
            "imageSource": {"type": "PlatformImage", "publisher": "Canonical",
                "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"},
            "customizationSteps": [
                {"type": "Shell", "name": "install", "script": "lib/install.sh"},
                {"type": "Shell", "inline": ["echo hi"]},
                {"type": "File", "file": "conf.json", "destination": "/tmp/conf.json"}
            ],
            "vmSize": "Standard_D2ds_v5",
            "osDiskSizeGB": 64,
            "buildTimeoutInMinutes": 90,
            "stagingResourceGroup": "rg-stage",
            "targetRegions": [{"name": "westeurope", "replicaCount": 2}],
            "versioning": {"scheme": "Latest", "major": 1},
            "excludeFromLatest": true
        }));
        let sha_a = "a".repeat(64);
        let sha_b = "b".repeat(64);
        let body = template_body(
            &p,
            &inputs(&[("lib/install.sh", &sha_a), ("conf.json", &sha_b)]),
        );
        let id = "/subscriptions/sub1/resourceGroups/rg-aib/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-aib";
        assert_eq!(body["location"], "westeurope");
        assert_eq!(body["tags"], json!({"team": "platform"}));
        assert_eq!(
            body["identity"],
            json!({"type": "UserAssigned", "userAssignedIdentities": {id: {}}})
        );
        let props = &body["properties"];
        assert_eq!(props["source"]["version"], "latest");
        assert_eq!(
            props["customize"][0],
            json!({"type": "Shell", "name": "install",
                   "scriptUri": "https://staib.blob.core.windows.net/scripts/lib/install.sh",
                   "sha256Checksum": sha_a})
        );
        assert_eq!(
            props["customize"][1],
            json!({"type": "Shell", "inline": ["echo hi"]})
        );
        assert_eq!(
            props["customize"][2],
            json!({"type": "File", "destination": "/tmp/conf.json",
                   "sourceUri": "https://staib.blob.core.windows.net/scripts/conf.json",
                   "sha256Checksum": sha_b})
        );
        let d = &props["distribute"][0];
        assert_eq!(d["type"], "SharedImage");
        assert_eq!(d["runOutputName"], "it-ubuntu-2026-11-28-14-00-00");
        assert_eq!(
            d["galleryImageId"],
            "/subscriptions/sub1/resourceGroups/rg-aib/providers/Microsoft.Compute/galleries/gal_aib/images/ubuntu"
        );
        assert_eq!(
            d["targetRegions"],
            json!([{"name": "westeurope", "replicaCount": 2}])
        );
        assert_eq!(d["versioning"], json!({"scheme": "Latest", "major": 1}));
        assert_eq!(d["excludeFromLatest"], true);
        assert_eq!(d["artifactTags"][COMMIT_TAG], "abc123");
        assert_eq!(
            d["artifactTags"][INPUTS_HASH_TAG].as_str().unwrap().len(),
            64
        );
        assert_eq!(
            props["vmProfile"],
            json!({"vmSize": "Standard_D2ds_v5", "osDiskSizeGB": 64})
        );
        assert_eq!(props["buildTimeoutInMinutes"], 90);
        assert_eq!(
            props["stagingResourceGroup"],
            "/subscriptions/sub1/resourceGroups/rg-stage"
        );
    }

    /// Each source type keeps Azure's field names; a managed image or gallery version needs no
    /// `version`.
    #[test]
    fn source_per_type_uses_azure_field_names() {
        for (source, expected) in [
            (
                json!({"type": "SharedImageVersion", "imageVersionId": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/y/versions/latest"}),
                json!({"type": "SharedImageVersion", "imageVersionId": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/y/versions/latest"}),
            ),
            (
                json!({"type": "ManagedImage", "imageId": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/g/providers/Microsoft.Compute/images/i"}),
                json!({"type": "ManagedImage", "imageId": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/g/providers/Microsoft.Compute/images/i"}),
            ),
            (
                json!({"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s", "version": "1.2.3",
                       "planInfo": {"planName": "n", "planProduct": "pp", "planPublisher": "pub"}}),
                json!({"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s", "version": "1.2.3",
                       "planInfo": {"planName": "n", "planProduct": "pp", "planPublisher": "pub"}}),
            ),
        ] {
            let p = parameters(json!({
                "namePrefix": "it", "imageSource": source,
                "customizationSteps": [{"type": "Shell", "inline": ["true"]}]
            }));
            let body = template_body(&p, &inputs(&[]));
            assert_eq!(body["properties"]["source"], expected);
            assert!(body["properties"].get("vmProfile").is_none());
            assert!(body.get("tags").is_some());
        }
    }

    /// Without regions the image goes to the location; replicationRegions become targetRegions.
    #[test]
    fn regions_default_to_the_location() {
        let p = parameters(json!({
            "namePrefix": "it",
            "imageSource": {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s"},
            "customizationSteps": [{"type": "Shell", "inline": ["true"]}]
        }));
        let body = template_body(&p, &inputs(&[]));
        assert_eq!(
            body["properties"]["distribute"][0]["targetRegions"],
            json!([{"name": "westeurope"}])
        );
    }

    /// A changed script checksum changes the inputs hash; the template name does not.
    #[test]
    fn inputs_hash_follows_content_not_name() {
        let p = parameters(json!({
            "namePrefix": "it",
            "imageSource": {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s"},
            "customizationSteps": [{"type": "Shell", "script": "a.sh"}]
        }));
        let tag =
            |b: &Value| b["properties"]["distribute"][0]["artifactTags"][INPUTS_HASH_TAG].clone();
        let one = template_body(&p, &inputs(&[("a.sh", &"1".repeat(64))]));
        let mut renamed = inputs(&[("a.sh", &"1".repeat(64))]);
        renamed.template_name = "it-other".into();
        let same = template_body(&p, &renamed);
        let two = template_body(&p, &inputs(&[("a.sh", &"2".repeat(64))]));
        assert_eq!(tag(&one), tag(&same));
        assert_ne!(tag(&one), tag(&two));
    }

    /// A named file that is missing is bad input naming the step; present files are hashed.
    #[test]
    fn missing_script_is_bad_input_naming_the_step() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.sh"), b"echo a\n").unwrap();
        let p = parameters(json!({
            "namePrefix": "it",
            "imageSource": {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s"},
            "customizationSteps": [{"type": "Shell", "script": "a.sh"}, {"type": "Shell", "script": "b.sh"}]
        }));
        let err = hash_step_files(&p, dir.path()).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(err.to_string().contains("step 2 names 'b.sh'"), "{err}");
        std::fs::write(dir.path().join("b.sh"), b"").unwrap();
        let hashes = hash_step_files(&p, dir.path()).unwrap();
        assert_eq!(
            hashes["b.sh"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The newest succeeded version wins by number, not by listing order or text.
    #[test]
    fn newest_version_compares_numbers() {
        let v = |name: &str, state: &str| json!({"id": format!("/v/{name}"), "name": name, "properties": {"provisioningState": state}});
        let list = [
            v("1.0.10", "Succeeded"),
            v("1.0.9", "Succeeded"),
            v("2.0.0", "Failed"),
            v("latest", "Succeeded"),
        ];
        assert_eq!(newest_version(&list).unwrap()["name"], "1.0.10");
        assert!(newest_version(&[]).is_none());
    }

    /// Template names follow Image Builder's rule.
    #[test]
    fn template_names_are_checked() {
        assert!(valid_template_name("it-ubuntu-2026-11-28-14-00-00"));
        assert!(!valid_template_name(""));
        assert!(!valid_template_name("has space"));
        assert!(!valid_template_name(&"x".repeat(65)));
    }

    /// Blob URLs keep folders as segments and escape what needs it, under a path-style endpoint too.
    #[test]
    fn blob_urls_match_upload_scripts() {
        let e = Url::parse("https://127.0.0.1:9/acct/").unwrap();
        assert_eq!(
            blob_url(&e, "scripts", "lib/a b.sh").as_str(),
            "https://127.0.0.1:9/acct/scripts/lib/a%20b.sh"
        );
    }
}
