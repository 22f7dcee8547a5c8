//! The `upload-scripts` step: put the environment's scripts folder into its blob container,
//! uploading only what changed.
//!
//! Plan, then apply. Planning reads the folder (every problem with it — missing, empty, a
//! symlink out of it, an unreadable file, a name that cannot be a blob name — is bad input,
//! found before any request), hashes the small files (MD5 for change detection, SHA-256 for
//! the template's `sha256Checksum`), finds the blob endpoint (ARM's `primaryEndpoints.blob`
//! unless given) and lists the container once. A file whose MD5 equals its blob's
//! `Content-MD5` is skipped; the others are uploaded with their MD5 and content type set,
//! `concurrency` at a time. `--prune` deletes blobs with no local file, after saying which;
//! `--what-if` stops after the plan.
//!
//! Large files (over `block_threshold`) are not hashed before the listing: one whose blob is
//! missing or has another size must be uploaded whatever its hash, and reading it twice (hash,
//! then send) cost as much as the upload itself (256 MiB: 0.9 s of hashing before 2.8 s of
//! upload). Those are hashed while they are sent: up to `single_shot_max` in one streamed Put
//! Blob followed by Set Blob Properties for the MD5, above it as parallel blocks with a second
//! reader hashing alongside, the MD5 set at the commit. Only a large file whose blob has the
//! same size (and an MD5) is hashed first, since only its hash can say whether it changed.
//!
//! Everything the user sees goes through the [`Reporter`]: one progress bar (bytes) for the
//! set, a warning per `.sh` file with CRLF line endings (the bytes are never changed), outputs
//! (counts, the base URL and each blob's URL and SHA-256), a job summary, and the [`Outcome`].

use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt as _;
use md5::{Digest as _, Md5};
use serde::Serialize;
use sha2::Sha256;
use url::Url;

use crate::azure::Azure;
use crate::azure::arm::ArmError;
use crate::azure::blob::shared_key::ConnectionString;
use crate::azure::blob::{
    BlobAuth, BlobError, BlockPlan, Container, FileHashes, FileStamp, MemoryBudget, RemoteBlob,
    hash_path,
};
use crate::azure::storage::{self, StorageAccountId};
use crate::config::ParameterFile;
use crate::exit::ExitStatus;
use crate::report::{Annotation, Reporter, Unit};

/// How the step runs; [`Default`] is what the binary uses without flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files uploaded at the same time (and blocks of one large file staged at once).
    pub concurrency: usize,
    /// Delete blobs that have no local file.
    pub prune: bool,
    /// Plan only: list what would be uploaded, skipped and pruned; send no write.
    pub what_if: bool,
    /// The blob endpoint to use instead of the one ARM reports.
    pub blob_endpoint: Option<Url>,
    /// Files up to this size are read whole into memory, hashed before the listing and sent in
    /// one request with their MD5; larger ones stream from disk.
    pub block_threshold: u64,
    /// Large files up to this size that must be uploaded anyway go up in one streamed Put Blob
    /// (hashed on the way, then their MD5 set); above it as parallel blocks. The default is
    /// Azure's JS SDK `maxSingleShotSize` (256 MiB); Azure accepts a single Put Blob of up to
    /// 5,000 MiB.
    pub single_shot_max: u64,
    /// Bytes per block.
    pub block_size: u64,
    /// Bytes all uploads together may hold in memory.
    pub memory_budget: u64,
    /// A line per uploaded file (logs that cannot show a bar: CI, pipes).
    pub line_per_file: bool,
    /// azure_core's retry settings for blob requests.
    pub retry: azure_core::http::RetryOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 8,
            prune: false,
            what_if: false,
            blob_endpoint: None,
            block_threshold: 4 * MIB,
            single_shot_max: DEFAULT_SINGLE_SHOT_MAX,
            block_size: 4 * MIB,
            memory_budget: 32 * MIB,
            line_per_file: false,
            retry: azure_core::http::RetryOptions::default(),
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// [`Options::single_shot_max`]'s default: 256 MiB, as `maxSingleShotSize` in Azure's JS SDK.
pub const DEFAULT_SINGLE_SHOT_MAX: u64 = 256 * MIB;

/// Where the blobs go and how requests are authorized.
#[derive(Debug, Clone)]
pub enum Target {
    /// The parameter file's account through ARM and Entra ID (production).
    Azure(Box<Azure>),
    /// A storage connection string (local development): no ARM, an account key or a SAS.
    ConnectionString(ConnectionString),
}

/// Why the step could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The scripts folder does not exist.
    #[error("the scripts folder {} does not exist (set scriptsFolder in the parameter file or create it)", .0.display())]
    FolderMissing(PathBuf),
    /// The scripts folder has no file.
    #[error("the scripts folder {} has no file to upload", .0.display())]
    FolderEmpty(PathBuf),
    /// A symlink points outside the folder.
    #[error("{} is a symlink to {}, outside the scripts folder; copy the file in instead", path.display(), target.display())]
    SymlinkOutside {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A file or folder cannot be read.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A relative path cannot be a blob name.
    #[error("{} cannot be uploaded: the blob name '{name}' {why}", path.display())]
    BadBlobName {
        /// The file.
        path: PathBuf,
        /// The name it would get.
        name: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// The account's endpoint is needed from ARM but no subscription is known.
    #[error(
        "no subscription: set AZURE_SUBSCRIPTION_ID or --subscription-id (or give --blob-endpoint)"
    )]
    NoSubscription,
    /// The storage account does not exist.
    #[error(
        "storage account '{account}' not found in resource group '{resource_group}'; run deploy-infra first"
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
    /// An ARM call failed.
    #[error("reading storage account '{account}'")]
    Arm {
        /// Account name.
        account: String,
        /// The failure.
        #[source]
        source: ArmError,
    },
    /// The container client could not be set up.
    #[error(transparent)]
    Blob(Box<BlobError>),
    /// The listing, the first data-plane call, failed (a missing data role shows here).
    #[error("{error}")]
    List {
        /// The failure.
        error: Box<BlobError>,
        /// The account's ARM id, for the `az role assignment` hint.
        scope: Option<String>,
    },
    /// Some files could not be uploaded or pruned (the others were).
    #[error(
        "{failed} of {attempted} operations failed ({uploaded} files uploaded, {pruned} blobs pruned)"
    )]
    Incomplete {
        /// Failed uploads and deletes.
        failed: usize,
        /// Uploads and deletes attempted.
        attempted: usize,
        /// Files uploaded.
        uploaded: u64,
        /// Blobs deleted.
        pruned: u64,
        /// The first failure (already reported with the others, so not a `source`: the
        /// final line does not repeat it).
        first: Box<BlobError>,
    },
}

impl UploadError {
    /// Local problems are bad input (2); ARM and storage failures keep their own status.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            UploadError::FolderMissing(_)
            | UploadError::FolderEmpty(_)
            | UploadError::SymlinkOutside { .. }
            | UploadError::Unreadable { .. }
            | UploadError::BadBlobName { .. }
            | UploadError::NoSubscription => ExitStatus::BadInput,
            UploadError::Arm { source, .. } => source.exit_status(),
            UploadError::Blob(e) => e.exit_status(),
            UploadError::List { error, .. } => error.exit_status(),
            UploadError::AccountNotFound { .. }
            | UploadError::NoBlobEndpoint(_)
            | UploadError::Incomplete { .. } => ExitStatus::AzureFailure,
        }
    }

    /// What to do about it, when we know (the data role to grant and where); the binary
    /// prints it under the error, once.
    pub fn hint(&self) -> Option<String> {
        match self {
            UploadError::List { error, scope } => error.hint(scope.as_deref()),
            UploadError::Blob(e) => e.hint(None),
            _ => None,
        }
    }
}

/// What happened to one file or blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Uploaded (new or changed).
    Uploaded,
    /// Its blob already had the same MD5.
    Unchanged,
    /// `--what-if`: would be uploaded.
    WouldUpload,
    /// The upload failed.
    Failed,
}

/// One local file and its blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileOutcome {
    /// Blob name (the path relative to the scripts folder, with `/`).
    pub name: String,
    /// The blob's URL.
    pub url: String,
    /// SHA-256 of the content, lower-case hex (the template's `sha256Checksum`).
    pub sha256: String,
    /// MD5 of the content, base64 (the blob's `Content-MD5`).
    pub md5: String,
    /// Size in bytes.
    pub size: u64,
    /// The content type set on the blob.
    pub content_type: String,
    /// What happened.
    pub action: Action,
}

/// The step's result, as `--output json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The container URL; every blob URL starts with it.
    pub blob_base_url: String,
    /// The local folder.
    pub folder: String,
    /// Only planned (`--what-if`).
    pub what_if: bool,
    /// Files uploaded (or, with `--what-if`, that would be).
    pub uploaded: u64,
    /// Files skipped because their blob had the same MD5.
    pub skipped: u64,
    /// Blobs deleted by `--prune` (or, with `--what-if`, that would be).
    pub pruned: u64,
    /// Failed uploads and deletes.
    pub failed: u64,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Requests sent again after a transient failure.
    pub retries: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Every local file, in name order.
    pub files: Vec<FileOutcome>,
    /// Blobs with no local file: deleted with `--prune`, else only listed.
    pub extra_blobs: Vec<String>,
}

/// A file of the scripts folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Blob name.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Size and modification time when it was planned (to see it change during an upload).
    pub stamp: FileStamp,
    /// Its MD5 and SHA-256; `None` for a large file not hashed yet (hashed while it uploads).
    pub hashes: Option<FileHashes>,
    /// A `.sh` file with CRLF line endings.
    pub crlf_shell: bool,
}

/// Runs the step: plan (local checks first), then, unless `what_if`, upload and prune.
pub async fn upload_scripts(
    parameters: &ParameterFile,
    root: &Path,
    options: &Options,
    target: &Target,
    reporter: &Arc<dyn Reporter>,
) -> Result<Outcome, UploadError> {
    let started = Instant::now();
    let folder = parameters.scripts_dir(root);
    let p = &parameters.parameters;

    // 1. Local: the folder, names and hashes. Bad input ends here, before any request.
    let entries = scan(&folder)?;
    let mut files = prepare_all(entries, options).await?;
    for f in files.iter().filter(|f| f.crlf_shell) {
        reporter.annotate(
            &Annotation::warning(format!(
                "{} has CRLF line endings and will fail on Linux (bash: $'\\r': command not found); it is uploaded as it is — convert it with `dos2unix` or set `*.sh text eol=lf` in .gitattributes",
                f.name
            ))
            .at(f.path.display().to_string(), None, None),
        );
    }
    let account_id = |sub: &str| StorageAccountId {
        subscription_id: sub.to_owned(),
        resource_group: p.resource_group_name.clone(),
        name: p.storage_account_name.clone(),
    };

    // 2. Where the container is and how to reach it.
    let (endpoint, account, auth, http, scope) = match target {
        Target::ConnectionString(cs) => {
            reporter.secret(cs.credential.secret());
            (
                options
                    .blob_endpoint
                    .clone()
                    .unwrap_or_else(|| cs.blob_endpoint.clone()),
                cs.account.clone(),
                BlobAuth::Key(cs.clone()),
                crate::azure::http::default_client(),
                None,
            )
        }
        Target::Azure(azure) => {
            let scope = azure
                .identity
                .subscription_id
                .as_deref()
                .map(|s| account_id(s).path());
            let endpoint = match &options.blob_endpoint {
                Some(e) => e.clone(),
                None => {
                    let sub = azure
                        .identity
                        .subscription_id
                        .as_deref()
                        .ok_or(UploadError::NoSubscription)?;
                    let account = storage::get_account(&azure.arm, &account_id(sub))
                        .await
                        .map_err(|source| UploadError::Arm {
                            account: p.storage_account_name.clone(),
                            source,
                        })?
                        .ok_or_else(|| UploadError::AccountNotFound {
                            account: p.storage_account_name.clone(),
                            resource_group: p.resource_group_name.clone(),
                        })?;
                    account.blob_endpoint().ok_or_else(|| {
                        UploadError::NoBlobEndpoint(p.storage_account_name.clone())
                    })?
                }
            };
            (
                endpoint,
                p.storage_account_name.clone(),
                BlobAuth::Bearer(azure.tokens.as_token_credential()),
                azure.http.clone(),
                scope,
            )
        }
    };
    let container = Container::new(
        &endpoint,
        &account,
        &p.container_name,
        auth,
        &http,
        options.retry.clone(),
    )
    .map_err(|e| UploadError::Blob(Box::new(e)))?;

    // 3. One listing, then the plan.
    let remote = container.list().await.map_err(|e| UploadError::List {
        error: Box::new(e),
        scope: scope.clone(),
    })?;
    // A large file not hashed yet is hashed now only if its hash decides (its blob has the same
    // size and an MD5) or if nothing will be sent (--what-if still reports every SHA-256).
    let sizes: BTreeMap<&str, &RemoteBlob> = remote.iter().map(|b| (b.name.as_str(), b)).collect();
    let decide: Vec<usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.hashes.is_none()
                && (options.what_if
                    || sizes
                        .get(f.name.as_str())
                        .is_some_and(|b| b.size == f.size && b.md5.is_some()))
        })
        .map(|(i, _)| i)
        .collect();
    for (i, result) in hash_some(&files, &decide, options.concurrency).await {
        files[i].hashes = Some(result?);
    }
    let plan = Plan::new(&files, &remote);
    let base = container.url().to_string();
    let mut outcome = Outcome {
        blob_base_url: base.clone(),
        folder: folder.display().to_string(),
        what_if: options.what_if,
        uploaded: 0,
        skipped: plan.unchanged.len() as u64,
        pruned: 0,
        failed: 0,
        bytes: 0,
        retries: 0,
        elapsed_ms: 0,
        files: Vec::new(),
        extra_blobs: plan.extra.clone(),
    };
    let upload_bytes: u64 = plan.upload.iter().map(|&i| files[i].size).sum();
    reporter.info(&format!(
        "{} files in {}: {} to upload ({}), {} unchanged{}",
        files.len(),
        outcome.folder,
        plan.upload.len(),
        indicatif::HumanBytes(upload_bytes),
        plan.unchanged.len(),
        match (plan.extra.len(), options.prune) {
            (0, _) => String::new(),
            (n, true) => format!(", {n} to prune"),
            (n, false) => format!(", {n} blobs with no local file (kept; --prune deletes them)"),
        }
    ));
    if options.what_if || options.prune {
        for name in &plan.extra {
            let verb = if options.prune { "prune" } else { "keep" };
            reporter.info(&format!("  {verb}: {name}"));
        }
    }
    let mut actions: BTreeMap<usize, Action> = plan
        .unchanged
        .iter()
        .map(|&i| (i, Action::Unchanged))
        .collect();
    let mut failures: Vec<BlobError> = Vec::new();
    let mut hints: HashSet<String> = HashSet::new();

    if options.what_if {
        for &i in &plan.upload {
            reporter.info(&format!("  upload: {}", files[i].name));
            actions.insert(i, Action::WouldUpload);
        }
        outcome.uploaded = plan.upload.len() as u64;
        if options.prune {
            outcome.pruned = plan.extra.len() as u64;
        }
    } else {
        // 4. Uploads, then prunes.
        let progress = reporter.progress_start(
            &format!("Uploading {} files", plan.upload.len()),
            Unit::Bytes,
        );
        let done = AtomicU64::new(0);
        let budget = MemoryBudget::new(options.memory_budget.max(options.block_size));
        let results: Vec<(usize, Result<FileHashes, BlobError>)> =
            futures::stream::iter(plan.upload.iter().copied())
                .map(|i| {
                    let file = &files[i];
                    let container = &container;
                    let budget = &budget;
                    let done = &done;
                    async move {
                        let tick = |n: u64| {
                            let now = done.fetch_add(n, Ordering::Relaxed) + n;
                            reporter.progress(progress, now, upload_bytes, &file.name);
                        };
                        let result = upload_one(container, file, options, budget, &tick).await;
                        if result.is_ok() && options.line_per_file {
                            reporter.info(&format!(
                                "  uploaded {} ({})",
                                file.name,
                                indicatif::HumanBytes(file.size)
                            ));
                        }
                        (i, result)
                    }
                })
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
        for (i, result) in results {
            match result {
                Ok(hashes) => {
                    outcome.uploaded += 1;
                    outcome.bytes += files[i].size;
                    files[i].hashes = Some(hashes);
                    actions.insert(i, Action::Uploaded);
                }
                Err(e) => {
                    report_blob_error(reporter.as_ref(), &e, scope.as_deref(), &mut hints);
                    actions.insert(i, Action::Failed);
                    failures.push(e);
                }
            }
        }
        reporter.progress_finish(
            progress,
            &format!(
                "{} uploaded, {} unchanged",
                outcome.uploaded, outcome.skipped
            ),
        );
        if options.prune && !plan.extra.is_empty() {
            let deletes: Vec<Result<(), BlobError>> = futures::stream::iter(&plan.extra)
                .map(|name| container.delete(name))
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
            for result in deletes {
                match result {
                    Ok(()) => outcome.pruned += 1,
                    Err(e) => {
                        report_blob_error(reporter.as_ref(), &e, scope.as_deref(), &mut hints);
                        failures.push(e);
                    }
                }
            }
        }
    }

    // A large file whose upload failed before it was hashed still gets its hashes reported.
    let unhashed: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].hashes.is_none())
        .collect();
    for (i, result) in hash_some(&files, &unhashed, options.concurrency).await {
        files[i].hashes = result.ok();
    }
    outcome.files = files
        .iter()
        .enumerate()
        .map(|(i, f)| FileOutcome {
            name: f.name.clone(),
            url: container.blob_url(&f.name).to_string(),
            sha256: f.hashes.map(|h| hex(&h.sha256)).unwrap_or_default(),
            md5: f
                .hashes
                .map(|h| base64::engine::general_purpose::STANDARD.encode(h.md5))
                .unwrap_or_default(),
            size: f.size,
            content_type: content_type(&f.name).to_owned(),
            action: actions.get(&i).copied().unwrap_or(Action::Failed),
        })
        .collect();
    outcome.failed = failures.len() as u64;
    outcome.retries = container.retries();
    outcome.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    render(reporter.as_ref(), &outcome, started.elapsed());

    if let Some(first) = failures.into_iter().next() {
        return Err(UploadError::Incomplete {
            failed: outcome.failed as usize,
            attempted: plan.upload.len() + if options.prune { plan.extra.len() } else { 0 },
            uploaded: outcome.uploaded,
            pruned: outcome.pruned,
            first: Box::new(first),
        });
    }
    Ok(outcome)
}

/// Reports a storage error of one file, with its hint (the role to grant for a 403) the first
/// time that hint comes up: fifty files refused for one missing role give fifty short lines
/// and one hint.
fn report_blob_error(
    reporter: &dyn Reporter,
    error: &BlobError,
    scope: Option<&str>,
    hints: &mut HashSet<String>,
) {
    let hint = error.hint(scope).filter(|h| hints.insert(h.clone()));
    crate::report::report_error(reporter, error, hint.as_deref());
}

/// Outputs, the summary line and table, and the outcome document.
fn render(reporter: &dyn Reporter, outcome: &Outcome, elapsed: Duration) {
    let line = if outcome.what_if {
        format!(
            "what-if: {} would be uploaded, {} unchanged, {} would be pruned",
            outcome.uploaded, outcome.skipped, outcome.pruned
        )
    } else {
        format!(
            "{} uploaded, {} unchanged, {} pruned{} ({} in {:.1}s, {} retries)",
            outcome.uploaded,
            outcome.skipped,
            outcome.pruned,
            if outcome.failed > 0 {
                format!(", {} failed", outcome.failed)
            } else {
                String::new()
            },
            indicatif::HumanBytes(outcome.bytes),
            elapsed.as_secs_f64(),
            outcome.retries
        )
    };
    reporter.info(&line);
    let blobs: serde_json::Map<String, serde_json::Value> = outcome
        .files
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                serde_json::json!({"url": f.url, "sha256": f.sha256}),
            )
        })
        .collect();
    let outputs = [
        ("uploaded", outcome.uploaded.to_string()),
        ("skipped", outcome.skipped.to_string()),
        ("pruned", outcome.pruned.to_string()),
        ("bytes", outcome.bytes.to_string()),
        ("blobBaseUrl", outcome.blob_base_url.clone()),
        ("blobs", serde_json::Value::Object(blobs).to_string()),
    ];
    for (name, value) in outputs {
        if let Err(e) = reporter.output(name, &value) {
            crate::report::report_error(reporter, &e, None);
        }
    }
    let mut md = format!(
        "### upload-scripts\n\n{line}\n\n| Blob | Size | SHA-256 | |\n|---|---:|---|---|\n"
    );
    const ROWS: usize = 50;
    for f in outcome.files.iter().take(ROWS) {
        md.push_str(&format!(
            "| `{}` | {} | `{}` | {:?} |\n",
            f.name,
            indicatif::HumanBytes(f.size),
            f.sha256,
            f.action
        ));
    }
    if outcome.files.len() > ROWS {
        md.push_str(&format!(
            "\n… and {} more files.\n",
            outcome.files.len() - ROWS
        ));
    }
    if let Err(e) = reporter.summary(&md) {
        crate::report::report_error(reporter, &e, None);
    }
    if let Ok(value) = serde_json::to_value(outcome) {
        reporter.outcome(value);
    }
}

/// Uploads one file; returns its hashes (of the bytes sent). Small files were hashed first and
/// go up from memory in one request; a large one already hashed (its blob had the same size)
/// goes up as blocks checked against that MD5; a large one not hashed yet is hashed on the
/// way, in one streamed request up to `single_shot_max`, else as blocks.
async fn upload_one(
    container: &Container,
    file: &LocalFile,
    options: &Options,
    budget: &MemoryBudget,
    tick: &(dyn Fn(u64) + Send + Sync),
) -> Result<FileHashes, BlobError> {
    let kind = content_type(&file.name);
    let blocks = BlockPlan {
        block_size: options.block_size,
        parallel: options.concurrency,
    };
    match file.hashes {
        Some(hashes) if file.size <= options.block_threshold => {
            let permit = budget.reserve(file.size).await;
            let bytes = tokio::fs::read(&file.path)
                .await
                .map_err(|source| BlobError::Read {
                    path: file.path.clone(),
                    source,
                })?;
            let md5: [u8; 16] = Md5::digest(&bytes).into();
            if md5 != hashes.md5 {
                return Err(BlobError::FileChanged {
                    path: file.path.clone(),
                    blob: file.name.clone(),
                });
            }
            container.put(&file.name, bytes.into(), md5, kind).await?;
            drop(permit);
            tick(file.size);
            Ok(hashes)
        }
        Some(hashes) => {
            container
                .put_file_in_blocks(
                    &file.name, &file.path, file.size, hashes.md5, kind, blocks, budget, tick,
                )
                .await?;
            Ok(hashes)
        }
        None if file.size <= options.single_shot_max => {
            container
                .put_file_streamed(&file.name, &file.path, file.stamp, kind, tick)
                .await
        }
        None => {
            container
                .put_file_in_blocks_hashing(
                    &file.name, &file.path, file.stamp, kind, blocks, budget, tick,
                )
                .await
        }
    }
}

/// The plan: indexes into the local files, and blob names with no file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    upload: Vec<usize>,
    unchanged: Vec<usize>,
    extra: Vec<String>,
}

impl Plan {
    fn new(files: &[LocalFile], remote: &[RemoteBlob]) -> Plan {
        let by_name: BTreeMap<&str, &RemoteBlob> =
            remote.iter().map(|b| (b.name.as_str(), b)).collect();
        let mut plan = Plan::default();
        for (i, f) in files.iter().enumerate() {
            match by_name.get(f.name.as_str()) {
                Some(b) if f.hashes.is_some_and(|h| b.md5 == Some(h.md5)) && b.size == f.size => {
                    plan.unchanged.push(i)
                }
                _ => plan.upload.push(i),
            }
        }
        let local: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
        plan.extra = remote
            .iter()
            .filter(|b| !local.contains(b.name.as_str()))
            .map(|b| b.name.clone())
            .collect();
        plan
    }
}

/// Every file under `folder` (recursively, symlinks inside it followed) with its blob name,
/// in name order.
pub fn scan(folder: &Path) -> Result<Vec<(String, PathBuf)>, UploadError> {
    let root = match std::fs::canonicalize(folder) {
        Ok(r) if r.is_dir() => r,
        Ok(_) => return Err(UploadError::FolderMissing(folder.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UploadError::FolderMissing(folder.to_owned()));
        }
        Err(source) => {
            return Err(UploadError::Unreadable {
                path: folder.to_owned(),
                source,
            });
        }
    };
    let mut found = Vec::new();
    let mut visited = HashSet::new();
    walk(folder, &root, "", &mut visited, &mut found)?;
    if found.is_empty() {
        return Err(UploadError::FolderEmpty(folder.to_owned()));
    }
    found.sort();
    Ok(found)
}

fn walk(
    dir: &Path,
    root: &Path,
    prefix: &str,
    visited: &mut HashSet<PathBuf>,
    found: &mut Vec<(String, PathBuf)>,
) -> Result<(), UploadError> {
    let unreadable = |path: &Path| {
        let path = path.to_owned();
        move |source| UploadError::Unreadable { path, source }
    };
    let real = std::fs::canonicalize(dir).map_err(unreadable(dir))?;
    if !visited.insert(real) {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(unreadable(dir))?
        .collect::<Result<_, _>>()
        .map_err(unreadable(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(segment) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(UploadError::BadBlobName {
                path: path.clone(),
                name: entry.file_name().to_string_lossy().into_owned(),
                why: "is not valid UTF-8",
            });
        };
        let name = format!("{prefix}{segment}");
        let link = std::fs::symlink_metadata(&path).map_err(unreadable(&path))?;
        let meta = if link.file_type().is_symlink() {
            let target = std::fs::canonicalize(&path).map_err(unreadable(&path))?;
            if !target.starts_with(root) {
                return Err(UploadError::SymlinkOutside { path, target });
            }
            std::fs::metadata(&target).map_err(unreadable(&path))?
        } else {
            link
        };
        if meta.is_dir() {
            walk(&path, root, &format!("{name}/"), visited, found)?;
        } else if meta.is_file() {
            if let Some(why) = blob_name_problem(&name) {
                return Err(UploadError::BadBlobName { path, name, why });
            }
            found.push((name, path));
        }
    }
    Ok(())
}

/// Why `name` cannot be a blob name, if it cannot (Azure's naming rules).
fn blob_name_problem(name: &str) -> Option<&'static str> {
    if name.len() > 1024 {
        return Some("is longer than 1,024 characters");
    }
    if name.split('/').count() > 254 {
        return Some("has more than 254 path segments");
    }
    if name.contains('\\') {
        return Some("contains a backslash, which Azure turns into a folder separator");
    }
    if name.chars().any(char::is_control) {
        return Some("contains a control character");
    }
    if name.split('/').any(|s| s.ends_with('.')) {
        return Some("has a part that ends with a dot, which Azure strips");
    }
    None
}

/// Every file's size and modification time, and the hashes of those hashed before the
/// listing (up to `block_threshold`, and `.sh` files of any size for the CRLF check), read
/// `concurrency` at a time on blocking threads. A large file is opened, not read, so one that
/// cannot be opened is still bad input found before any request.
async fn prepare_all(
    entries: Vec<(String, PathBuf)>,
    options: &Options,
) -> Result<Vec<LocalFile>, UploadError> {
    let threshold = options.block_threshold;
    let results: Vec<Result<LocalFile, UploadError>> = futures::stream::iter(entries)
        .map(|(name, path)| async move {
            let p = path.clone();
            match tokio::task::spawn_blocking(move || prepare(name, p, threshold)).await {
                Ok(r) => r,
                Err(e) => Err(UploadError::Unreadable {
                    path,
                    source: std::io::Error::other(e.to_string()),
                }),
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// One file's stamp, and its hashes when it is small or a shell script.
fn prepare(name: String, path: PathBuf, hash_up_to: u64) -> Result<LocalFile, UploadError> {
    let unreadable = |source| UploadError::Unreadable {
        path: path.clone(),
        source,
    };
    let stamp = FileStamp::of(&path).map_err(unreadable)?;
    if stamp.size <= hash_up_to || name.to_ascii_lowercase().ends_with(".sh") {
        let mut file = hash_file(name, path)?;
        file.stamp = stamp;
        return Ok(file);
    }
    std::fs::File::open(&path).map_err(unreadable)?;
    Ok(LocalFile {
        name,
        size: stamp.size,
        stamp,
        hashes: None,
        crlf_shell: false,
        path,
    })
}

/// Hashes the files at `indexes`, `concurrency` at a time, on blocking threads.
async fn hash_some(
    files: &[LocalFile],
    indexes: &[usize],
    concurrency: usize,
) -> Vec<(usize, Result<FileHashes, UploadError>)> {
    futures::stream::iter(indexes.iter().copied())
        .map(|i| {
            let path = files[i].path.clone();
            async move {
                let p = path.clone();
                let result = match tokio::task::spawn_blocking(move || hash_path(&p)).await {
                    Ok(r) => r.map(|(h, _)| h),
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                };
                (
                    i,
                    result.map_err(|source| UploadError::Unreadable { path, source }),
                )
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// MD5, SHA-256 and (for `.sh`) whether a CRLF occurs, in one pass with a small buffer.
pub fn hash_file(name: String, path: PathBuf) -> Result<LocalFile, UploadError> {
    let unreadable = |source| UploadError::Unreadable {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::open(&path).map_err(unreadable)?;
    let shell = name.to_ascii_lowercase().ends_with(".sh");
    let mut md5 = Md5::new();
    let mut sha = Sha256::new();
    // Most scripts are a few KiB: a buffer of the file's size (plus one byte to see the end)
    // instead of 256 KiB zeroed per file.
    let len = file.metadata().map_or(0, |m| m.len());
    let mut buf = vec![
        0u8;
        usize::try_from(len + 1)
            .unwrap_or(usize::MAX)
            .clamp(4096, 256 * 1024)
    ];
    let (mut size, mut crlf, mut last_cr) = (0u64, false, false);
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        md5.update(chunk);
        sha.update(chunk);
        size += n as u64;
        if shell && !crlf {
            crlf = (last_cr && chunk[0] == b'\n') || chunk.windows(2).any(|w| w == b"\r\n");
            last_cr = chunk[n - 1] == b'\r';
        }
    }
    Ok(LocalFile {
        name,
        size,
        stamp: FileStamp {
            size,
            modified: None,
        },
        hashes: Some(FileHashes {
            md5: md5.finalize().into(),
            sha256: sha.finalize().into(),
        }),
        crlf_shell: crlf,
        path,
    })
}

/// The content type a blob gets from its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "sh" | "bash" => "text/x-shellscript",
        "ps1" | "psm1" | "psd1" | "cmd" | "bat" | "txt" | "md" | "conf" | "cfg" | "ini" => {
            "text/plain; charset=utf-8"
        }
        "py" => "text/x-python",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "msi" => "application/x-msi",
        "exe" | "dll" => "application/vnd.microsoft.portable-executable",
        "deb" => "application/vnd.debian.binary-package",
        "rpm" => "application/x-rpm",
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn local(name: &str, md5: u8, size: u64) -> LocalFile {
        LocalFile {
            name: name.into(),
            path: PathBuf::from(name),
            size,
            stamp: FileStamp {
                size,
                modified: None,
            },
            hashes: Some(FileHashes {
                md5: [md5; 16],
                sha256: [0; 32],
            }),
            crlf_shell: false,
        }
    }

    /// Equal MD5 and size skip; a changed, new or MD5-less blob uploads; extra blobs are listed.
    #[test]
    fn plan_skips_blobs_whose_md5_matches() {
        let files = [
            local("a.sh", 1, 10),
            local("b.sh", 2, 10),
            local("c.sh", 3, 10),
            local("d.sh", 4, 10),
        ];
        let remote = [
            RemoteBlob {
                name: "a.sh".into(),
                size: 10,
                md5: Some([1; 16]),
                content_type: None,
            },
            RemoteBlob {
                name: "b.sh".into(),
                size: 10,
                md5: Some([9; 16]),
                content_type: None,
            },
            RemoteBlob {
                name: "c.sh".into(),
                size: 10,
                md5: None,
                content_type: None,
            },
            RemoteBlob {
                name: "old/x.sh".into(),
                size: 1,
                md5: None,
                content_type: None,
            },
        ];
        let plan = Plan::new(&files, &remote);
        assert_eq!(plan.unchanged, [0]);
        assert_eq!(plan.upload, [1, 2, 3]);
        assert_eq!(plan.extra, ["old/x.sh"]);
    }

    /// A large file not hashed yet is uploaded, never taken for unchanged, even when a blob of
    /// its name exists.
    #[test]
    fn plan_uploads_a_file_not_hashed_yet() {
        let mut big = local("big.bin", 1, 10);
        big.hashes = None;
        let remote = [RemoteBlob {
            name: "big.bin".into(),
            size: 10,
            md5: Some([1; 16]),
            content_type: None,
        }];
        let plan = Plan::new(&[big], &remote);
        assert_eq!(plan.upload, [0]);
        assert!(plan.unchanged.is_empty());
    }

    /// Small files and shell scripts are hashed while planning; a large one only stamped (and
    /// opened, so an unreadable one is still found before any request).
    #[test]
    fn planning_hashes_small_files_and_defers_large_ones() -> TestResult {
        let dir = tempfile::tempdir()?;
        let small = dir.path().join("s.bin");
        std::fs::write(&small, vec![1u8; 100])?;
        let big = dir.path().join("b.bin");
        std::fs::write(&big, vec![2u8; 1000])?;
        let big_sh = dir.path().join("b.sh");
        std::fs::write(&big_sh, vec![b'x'; 1000])?;
        assert!(prepare("s.bin".into(), small, 500)?.hashes.is_some());
        let deferred = prepare("b.bin".into(), big.clone(), 500)?;
        assert!(deferred.hashes.is_none());
        assert_eq!(deferred.stamp, FileStamp::of(&big)?);
        assert!(prepare("b.sh".into(), big_sh, 500)?.hashes.is_some());
        let missing = prepare("m.bin".into(), dir.path().join("m.bin"), 500)
            .err()
            .ok_or("a missing file is an error")?;
        assert_eq!(missing.exit_status(), ExitStatus::BadInput);
        Ok(())
    }

    /// Names that Azure would change or refuse are found before any upload.
    #[test]
    fn bad_blob_names_are_refused() {
        assert_eq!(blob_name_problem("lib/a.sh"), None);
        assert!(blob_name_problem("a\\b.sh").is_some());
        assert!(blob_name_problem("dir./a.sh").is_some());
        assert!(blob_name_problem("a.").is_some());
        assert!(blob_name_problem("a\tb").is_some());
        assert!(blob_name_problem(&"x".repeat(1025)).is_some());
    }

    /// CRLF is found in `.sh` files, also across buffer boundaries, and hashes are standard.
    #[test]
    fn hashing_finds_crlf_in_shell_scripts_only() -> TestResult {
        let dir = tempfile::tempdir()?;
        let sh = dir.path().join("a.sh");
        let mut content = vec![b'x'; 256 * 1024 - 1];
        content.extend_from_slice(b"\r\nend");
        std::fs::write(&sh, &content)?;
        let f = hash_file("a.sh".into(), sh)?;
        assert!(f.crlf_shell);
        assert_eq!(f.size, content.len() as u64);
        let ps1 = dir.path().join("a.ps1");
        std::fs::write(&ps1, b"abc\r\n")?;
        assert!(!hash_file("a.ps1".into(), ps1)?.crlf_shell);
        let lf = dir.path().join("b.sh");
        std::fs::write(&lf, b"abc")?;
        let f = hash_file("b.sh".into(), lf)?;
        assert!(!f.crlf_shell);
        let h = f.hashes.ok_or("a small file is hashed")?;
        assert_eq!(hex(&h.md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&h.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        Ok(())
    }

    /// The folder scan keeps relative paths with `/`, refuses symlinks out of the folder, and
    /// a missing or empty folder is an error.
    #[test]
    fn scan_keeps_relative_names_and_refuses_escaping_symlinks() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("up");
        std::fs::create_dir_all(root.join("lib/deep"))?;
        std::fs::write(root.join("b.sh"), "b")?;
        std::fs::write(root.join("lib/deep/c.ps1"), "c")?;
        std::os::unix::fs::symlink(root.join("b.sh"), root.join("lib/link.sh"))?;
        let names: Vec<String> = scan(&root)?.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b.sh", "lib/deep/c.ps1", "lib/link.sh"]);

        std::fs::write(dir.path().join("secret.txt"), "s")?;
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("out.txt"))?;
        assert!(matches!(
            scan(&root),
            Err(UploadError::SymlinkOutside { .. })
        ));

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty)?;
        assert!(matches!(scan(&empty), Err(UploadError::FolderEmpty(_))));
        let missing = scan(&dir.path().join("nope"))
            .err()
            .ok_or("a missing folder is an error")?;
        assert!(matches!(missing, UploadError::FolderMissing(_)));
        assert_eq!(missing.exit_status(), ExitStatus::BadInput);
        Ok(())
    }

    /// Content types follow the extension, case-insensitively.
    #[test]
    fn content_type_follows_the_extension() {
        assert_eq!(content_type("x/Install.SH"), "text/x-shellscript");
        assert_eq!(content_type("a.ps1"), "text/plain; charset=utf-8");
        assert_eq!(content_type("a.json"), "application/json");
        assert_eq!(content_type("README"), "application/octet-stream");
    }
}
