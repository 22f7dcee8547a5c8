//! The blob data plane for one container: listing with `Content-MD5`, single-shot uploads,
//! staged-block uploads streamed from disk, and deletes — on `azure_storage_blob` 1.1 over our
//! credential and our reqwest transport.
//!
//! What lives here and nowhere else: how a blob URL is built from a container URL (names keep
//! their `/`), how a request is authorized (an Entra ID bearer token for the storage scope, or,
//! for local development, a connection string's key or SAS — see [`shared_key`]), retries
//! (azure_core's retry policy, once per request, so a failed block is re-sent alone), and how a
//! storage error becomes a [`BlobError`] that says what to do (a 403
//! `AuthorizationPermissionMismatch` names the data role and the account).
//!
//! A staged upload commits its block list only after every block is in and the bytes read
//! hash to the MD5 that was planned, so a failure or a file that changed underneath never
//! leaves a partial blob under the final name. Memory is bounded by a shared [`MemoryBudget`]:
//! a block is read from disk only once budget is free for it.

pub mod download;
pub mod file_stream;
pub mod shared_key;

pub use file_stream::{FileHashes, FileStamp, hash_path};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use azure_core::Bytes;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{ClientOptions, Context, Request, RetryOptions};
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobClientSetPropertiesOptions, BlobContainerClientListBlobsOptions,
    BlobProperties, BlockBlobClientCommitBlockListOptions, BlockBlobClientStageBlockOptions,
    BlockBlobClientUploadOptions, BlockLookupList,
};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
    BlockBlobClient, BlockBlobClientOptions,
};
use futures::{StreamExt as _, TryStreamExt as _};
use md5::{Digest as _, Md5};
use tokio::io::AsyncReadExt as _;
use tokio::sync::Semaphore;
use url::Url;

use crate::exit::ExitStatus;

/// The built-in role that lets a principal write and delete blobs.
pub const DATA_CONTRIBUTOR_ROLE: &str = "Storage Blob Data Contributor";
/// Its role definition GUID (the same in every cloud).
pub const DATA_CONTRIBUTOR_ROLE_ID: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";

/// How requests to the container are authorized.
#[derive(Clone)]
pub enum BlobAuth {
    /// Entra ID bearer tokens for `https://storage.azure.com/.default` (production).
    Bearer(Arc<dyn TokenCredential>),
    /// A connection string's account key or SAS (local development only).
    Key(shared_key::ConnectionString),
}

impl std::fmt::Debug for BlobAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobAuth::Bearer(_) => f.write_str("Bearer"),
            BlobAuth::Key(cs) => write!(f, "Key({})", cs.account),
        }
    }
}

/// A blob as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBlob {
    /// Its name (with `/` for folders).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its `Content-MD5`, when one was set.
    pub md5: Option<[u8; 16]>,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
}

/// Bytes that may be held in memory at once by all uploads together (1 KiB units), and the
/// block buffers themselves, reused.
///
/// Reuse matters as much as the limit: with glibc, freeing a multi-MiB buffer on one thread
/// and allocating the next on another grows a heap per thread, and a 256 MiB upload measured
/// 270 MiB resident with fresh buffers per block against 52 MiB with one heap.
#[derive(Debug, Clone)]
pub struct MemoryBudget(Arc<Semaphore>, Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl MemoryBudget {
    /// A budget of `bytes` (rounded down to KiB, at least one block's worth must fit).
    pub fn new(bytes: u64) -> MemoryBudget {
        let kib = usize::try_from(bytes / 1024).unwrap_or(usize::MAX).max(1);
        MemoryBudget(
            Arc::new(Semaphore::new(kib.min(Semaphore::MAX_PERMITS))),
            Arc::default(),
        )
    }

    /// A zeroed buffer of `len` bytes, reusing a returned one when it is large enough.
    fn buffer(&self, len: usize) -> Vec<u8> {
        let reused = self.1.lock().ok().and_then(|mut pool| {
            let i = pool.iter().position(|b| b.capacity() >= len)?;
            Some(pool.swap_remove(i))
        });
        let mut buf = reused.unwrap_or_default();
        buf.clear();
        buf.resize(len, 0);
        buf
    }

    /// Takes a block's bytes back for reuse when nothing else holds them any more.
    fn recycle(&self, bytes: Bytes) {
        if let Ok(buf) = bytes.try_into_mut()
            && let Ok(mut pool) = self.1.lock()
            && pool.len() < 64
        {
            pool.push(buf.into());
        }
    }

    /// Waits until `bytes` fit in the budget; the permit gives them back when dropped.
    pub async fn reserve(&self, bytes: u64) -> tokio::sync::OwnedSemaphorePermit {
        let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        // The semaphore is never closed, so acquiring cannot fail.
        match self.0.clone().acquire_many_owned(kib).await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the memory budget's semaphore is never closed"),
        }
    }
}

/// What staging a file's blocks found: the block ids in order, the MD5 of the bytes read
/// (when asked for) and whether the file had more bytes than planned.
struct Staged {
    ids: Vec<Vec<u8>>,
    read_md5: Option<[u8; 16]>,
    grown: bool,
}

/// How a large file is split.
#[derive(Debug, Clone, Copy)]
pub struct BlockPlan {
    /// Bytes per block (the last one may be shorter).
    pub block_size: u64,
    /// Blocks of one file staged at the same time.
    pub parallel: usize,
}

/// A failed blob operation; says which blob and, for a missing role, what to grant.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The principal has no data role on the account (403 `AuthorizationPermissionMismatch`).
    #[error(
        "{op} {target}: the caller has no data role on storage account '{account}' (403 AuthorizationPermissionMismatch); ARM roles such as Owner or Contributor do not grant access to blobs"
    )]
    NoDataRole {
        /// What was attempted (`list`, `upload`, `delete`).
        op: &'static str,
        /// The blob or container.
        target: String,
        /// The account name.
        account: String,
    },
    /// The service refused or failed the request (after retries for transient statuses).
    #[error("{op} {target}: HTTP {status}{}{}", code_text(.code), message_text(.message))]
    Service {
        /// What was attempted.
        op: &'static str,
        /// The blob or container.
        target: String,
        /// HTTP status.
        status: u16,
        /// Storage error code (`x-ms-error-code`).
        code: Option<String>,
        /// The service's message.
        message: Option<String>,
    },
    /// No answer after retries (connection, TLS, timeout).
    #[error("{op} {target}: no answer from storage: {message}")]
    Transport {
        /// What was attempted.
        op: &'static str,
        /// The blob or container.
        target: String,
        /// azure_core's error chain.
        message: String,
    },
    /// A local file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's bytes changed between planning and upload; nothing was committed.
    #[error(
        "{} changed while it was being uploaded; the blob '{blob}' was left as it was (run again to upload the new content)",
        path.display()
    )]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// The blob.
        blob: String,
    },
    /// The client could not be set up (a URL that is not a base, http with a bearer token).
    #[error("cannot use the blob endpoint {url}: {message}")]
    Setup {
        /// The container URL.
        url: String,
        /// Why.
        message: String,
    },
}

fn code_text(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
}

fn message_text(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {}", m.lines().next().unwrap_or_default()))
        .unwrap_or_default()
}

impl BlobError {
    /// A local file problem is bad input (2); everything else is an Azure failure (1).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            BlobError::Read { .. } | BlobError::Setup { .. } => ExitStatus::BadInput,
            _ => ExitStatus::AzureFailure,
        }
    }

    /// What to do about it, when we know.
    pub fn hint(&self, account_scope: Option<&str>) -> Option<String> {
        match self {
            BlobError::NoDataRole { account, .. } => {
                let scope = account_scope.map_or_else(
                    || format!("<id of storage account {account}>"),
                    str::to_owned,
                );
                Some(format!(
                    "grant the principal the '{DATA_CONTRIBUTOR_ROLE}' role on the storage account (or the container), e.g. `az role assignment create --role \"{DATA_CONTRIBUTOR_ROLE}\" --assignee <client-id> --scope {scope}`; new role assignments can take a few minutes to apply"
                ))
            }
            BlobError::Service { status: 403, code: Some(c), .. }
                if c == "KeyBasedAuthenticationNotPermitted" =>
            {
                Some("the account has shared keys turned off: drop --connection-string and use an Entra ID credential".to_owned())
            }
            _ => None,
        }
    }
}

/// Counts every try (first attempts and retries) that goes out.
#[derive(Debug, Default)]
struct TryCounter(AtomicU64);

#[async_trait::async_trait]
impl Policy for TryCounter {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.0.fetch_add(1, Ordering::Relaxed);
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// One container's data plane. Cheap to clone.
#[derive(Clone)]
pub struct Container {
    url: Url,
    account: String,
    auth: BlobAuth,
    options: ClientOptions,
    tries: Arc<TryCounter>,
    requests: Arc<AtomicU64>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("url", &self.url.as_str())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Container {
    /// A client for `container` under the account's blob endpoint (`https://acct.blob…/`, or the
    /// emulator's path-style `https://host:port/acct/`); `http` is the shared client, `retry`
    /// azure_core's retry settings (default: exponential from 200 ms, 8 retries).
    pub fn new(
        blob_endpoint: &Url,
        account: &str,
        container: &str,
        auth: BlobAuth,
        http: &reqwest::Client,
        retry: RetryOptions,
    ) -> Result<Container, BlobError> {
        let mut url = blob_endpoint.clone();
        let setup = |message: &str| BlobError::Setup {
            url: blob_endpoint.to_string(),
            message: message.to_owned(),
        };
        url.path_segments_mut()
            .map_err(|_| setup("not a base URL"))?
            .pop_if_empty()
            .push(container);
        if matches!(auth, BlobAuth::Bearer(_)) && url.scheme() != "https" {
            return Err(setup("bearer tokens are only sent over https"));
        }
        let tries = Arc::new(TryCounter::default());
        let mut per_try: Vec<Arc<dyn Policy>> = vec![tries.clone()];
        if let BlobAuth::Key(cs) = &auth {
            per_try.push(cs.policy());
        }
        let options = ClientOptions {
            per_try_policies: per_try,
            retry,
            transport: Some(super::http::transport(http)),
            ..ClientOptions::default()
        };
        Ok(Container {
            url,
            account: account.to_owned(),
            auth,
            options,
            tries,
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The container URL (`…/{container}`), the base of every blob URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of blob `name`; each `/`-separated part is one path segment, so folders stay
    /// folders.
    pub fn blob_url(&self, name: &str) -> Url {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(name.split('/'));
        }
        url
    }

    /// Tries sent beyond the first attempt of each request (retries), so far.
    pub fn retries(&self) -> u64 {
        self.tries
            .0
            .load(Ordering::Relaxed)
            .saturating_sub(self.requests.load(Ordering::Relaxed))
    }

    fn credential(&self) -> Option<Arc<dyn TokenCredential>> {
        match &self.auth {
            BlobAuth::Bearer(c) => Some(c.clone()),
            BlobAuth::Key(_) => None,
        }
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, op: &'static str, target: &str, error: &azure_core::Error) -> BlobError {
        decode_error(op, target, &self.account, error)
    }

    fn block_client(&self, name: &str) -> Result<BlockBlobClient, BlobError> {
        BlockBlobClient::new(
            self.blob_url(name),
            self.credential(),
            Some(BlockBlobClientOptions {
                client_options: self.options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|e| self.error("upload", name, &e))
    }

    /// Every blob in the container with its size and `Content-MD5` (all pages).
    pub async fn list(&self) -> Result<Vec<RemoteBlob>, BlobError> {
        Ok(self
            .list_properties(None)
            .await?
            .into_iter()
            .map(|(name, props)| RemoteBlob {
                name,
                size: props.content_length.unwrap_or(0),
                md5: props.content_md5.and_then(|m| <[u8; 16]>::try_from(m).ok()),
                content_type: props.content_type,
            })
            .collect())
    }

    /// The name and properties of every blob whose name starts with `prefix` (all pages): the
    /// one listing loop behind [`Container::list`] and [`Container::list_with_times`], each
    /// page counted as a request.
    pub(super) async fn list_properties(
        &self,
        prefix: Option<&str>,
    ) -> Result<Vec<(String, BlobProperties)>, BlobError> {
        let target = self.url.path().trim_start_matches('/').to_owned();
        let client = BlobContainerClient::new(
            self.url.clone(),
            self.credential(),
            Some(BlobContainerClientOptions {
                client_options: self.options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|e| self.error("list", &target, &e))?;
        let options = prefix.map(|p| BlobContainerClientListBlobsOptions {
            prefix: Some(p.to_owned()),
            ..Default::default()
        });
        let mut pages = client
            .list_blobs(options)
            .map_err(|e| self.error("list", &target, &e))?
            .into_pages();
        let mut blobs = Vec::new();
        loop {
            self.count();
            let Some(page) = pages
                .try_next()
                .await
                .map_err(|e| self.error("list", &target, &e))?
            else {
                break;
            };
            let page = page
                .into_model()
                .map_err(|e| self.error("list", &target, &e))?;
            for item in page.blob_items {
                let Some(name) = item.name else { continue };
                blobs.push((name, item.properties.unwrap_or_default()));
            }
        }
        // The pager asks once more after the last page only when there is a marker; the
        // extra count above is for the request that returned `None`, which was not sent.
        self.requests.fetch_sub(1, Ordering::Relaxed);
        Ok(blobs)
    }

    /// Uploads `content` as blob `name` in one request, with its MD5 and content type set.
    pub async fn put(
        &self,
        name: &str,
        content: Bytes,
        md5: [u8; 16],
        content_type: &str,
    ) -> Result<(), BlobError> {
        let client = self.block_client(name)?;
        let len = content.len() as u64;
        self.count();
        client
            .upload(
                content.into(),
                Some(BlockBlobClientUploadOptions {
                    blob_content_md5: Some(md5.to_vec()),
                    blob_content_type: Some(content_type.to_owned()),
                    parallel: std::num::NonZero::new(1),
                    // One request whatever the size: callers split large files themselves.
                    partition_size: std::num::NonZero::new(len.max(1)),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| self.error("upload", name, &e))?;
        Ok(())
    }

    /// Uploads the file at `path` as blob `name` in blocks read from disk one at a time (each
    /// within `budget`), staged `plan.parallel` at once, each with its own MD5. The block list
    /// is committed (with the blob's MD5 and content type) only when the bytes read hash to
    /// `md5` and the size is unchanged; `progress` gets the bytes of each staged block.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_file_in_blocks(
        &self,
        name: &str,
        path: &Path,
        size: u64,
        md5: [u8; 16],
        content_type: &str,
        plan: BlockPlan,
        budget: &MemoryBudget,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), BlobError> {
        let client = self.block_client(name)?;
        let staged = self
            .stage_blocks(&client, name, path, size, plan, budget, progress, true)
            .await?;
        if staged.read_md5 != Some(md5) || staged.grown {
            return Err(BlobError::FileChanged {
                path: path.to_owned(),
                blob: name.to_owned(),
            });
        }
        self.commit(&client, name, staged.ids, md5, content_type)
            .await
    }

    /// Uploads the file at `path`, not hashed yet, as blob `name` in parallel blocks (as
    /// [`put_file_in_blocks`](Self::put_file_in_blocks)) while a second, sequential reader
    /// hashes it on a blocking thread at the same time; the block list is committed with the
    /// MD5 found, and only when the file's size and modification time are still `stamp` after
    /// both reads (else nothing is committed). Returns the hashes.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_file_in_blocks_hashing(
        &self,
        name: &str,
        path: &Path,
        stamp: FileStamp,
        content_type: &str,
        plan: BlockPlan,
        budget: &MemoryBudget,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FileHashes, BlobError> {
        let client = self.block_client(name)?;
        let read_error = |source| BlobError::Read {
            path: path.to_owned(),
            source,
        };
        let changed = || BlobError::FileChanged {
            path: path.to_owned(),
            blob: name.to_owned(),
        };
        let owned = path.to_owned();
        let hashing = async {
            match tokio::task::spawn_blocking(move || hash_path(&owned)).await {
                Ok(r) => r,
                Err(e) => Err(std::io::Error::other(e.to_string())),
            }
        };
        let staging = self.stage_blocks(
            &client, name, path, stamp.size, plan, budget, progress, false,
        );
        let (hashed, staged) = futures::join!(hashing, staging);
        let staged = staged?;
        let (hashes, hashed_size) = hashed.map_err(read_error)?;
        let now = FileStamp::of(path).map_err(read_error)?;
        if staged.grown || hashed_size != stamp.size || now != stamp {
            return Err(changed());
        }
        self.commit(&client, name, staged.ids, hashes.md5, content_type)
            .await?;
        Ok(hashes)
    }

    /// Uploads the file at `path`, not hashed yet, as blob `name` in one Put Blob whose body
    /// streams from disk (a few chunks in memory, never the file), computing its SHA-256 as the
    /// bytes go; then sets the blob's `Content-MD5` with Set Blob Properties (conditional on the
    /// ETag the Put returned, and re-sending the content type, since that call replaces all
    /// content headers) to the MD5 the service returned for the bytes it stored — or, if it
    /// returned none, to the MD5 of a second read whose SHA-256 and stamp prove the same bytes.
    /// A retry re-opens and re-reads the file. A file whose size or modification time is no
    /// longer `stamp` when its last bytes would go fails the body, so the Put never completes
    /// and the blob keeps what it had. Returns the hashes.
    ///
    /// If the process dies between the Put and the Set Blob Properties, the blob is left with
    /// the new content and no `Content-MD5` (or, where the service stores the MD5 it computed,
    /// the true MD5 of that content): either way the next run compares the file with what the
    /// blob really holds, so nothing stale is ever taken for unchanged, and a differing file
    /// is uploaded again.
    pub async fn put_file_streamed(
        &self,
        name: &str,
        path: &Path,
        stamp: FileStamp,
        content_type: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FileHashes, BlobError> {
        let client = self.block_client(name)?;
        let stream = file_stream::HashingFileStream::new(path, stamp);
        let shared = stream.shared();
        self.count();
        let upload = client.upload(
            azure_core::http::Body::SeekableStream(Box::new(stream)).into(),
            Some(BlockBlobClientUploadOptions {
                blob_content_type: Some(content_type.to_owned()),
                parallel: std::num::NonZero::new(1),
                // One request for the whole file: the caller chose this path by size.
                partition_size: std::num::NonZero::new(stamp.size.max(1)),
                ..Default::default()
            }),
        );
        tokio::pin!(upload);
        let mut reported = 0u64;
        let result = loop {
            tokio::select! {
                r = &mut upload => break r,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                    let now = shared.sent();
                    if now > reported {
                        progress(now - reported);
                        reported = now;
                    }
                }
            }
        };
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                if shared.changed() {
                    return Err(BlobError::FileChanged {
                        path: path.to_owned(),
                        blob: name.to_owned(),
                    });
                }
                if let Some(source) = shared.take_read_error() {
                    return Err(BlobError::Read {
                        path: path.to_owned(),
                        source,
                    });
                }
                return Err(self.error("upload", name, &e));
            }
        };
        let Some(sha256) = shared.sha256() else {
            // The service answered before every byte was read: it cannot have stored the file.
            return Err(BlobError::Transport {
                op: "upload",
                target: name.to_owned(),
                message: "the service answered before the whole file was sent".to_owned(),
            });
        };
        // The MD5 is the one the service computed over the bytes it stored (Put Blob returns
        // it), so the Content-MD5 set below describes the blob exactly, and this process does
        // not spend the CPU on it while sending (see the module docs of `file_stream`).
        let theirs = response
            .content_md5
            .as_deref()
            .and_then(|m| <[u8; 16]>::try_from(m).ok());
        let md5 = match theirs {
            Some(md5) => md5,
            None => {
                // No MD5 from the service: read the file once more; the same SHA-256 and stamp
                // prove it is the bytes that were sent.
                let owned = path.to_owned();
                let (again, _) = tokio::task::spawn_blocking(move || hash_path(&owned))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|r| r)
                    .map_err(|source| BlobError::Read {
                        path: path.to_owned(),
                        source,
                    })?;
                if again.sha256 != sha256 || FileStamp::of(path).ok() != Some(stamp) {
                    return Err(BlobError::FileChanged {
                        path: path.to_owned(),
                        blob: name.to_owned(),
                    });
                }
                again.md5
            }
        };
        let hashes = FileHashes { md5, sha256 };
        let blob = BlobClient::new(
            self.blob_url(name),
            self.credential(),
            Some(BlobClientOptions {
                client_options: self.options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|e| self.error("upload", name, &e))?;
        self.count();
        blob.set_properties(Some(BlobClientSetPropertiesOptions {
            blob_content_md5: Some(hashes.md5.to_vec()),
            blob_content_type: Some(content_type.to_owned()),
            if_match: response.etag.clone(),
            ..Default::default()
        }))
        .await
        .map_err(|e| self.error("upload", name, &e))?;
        progress(stamp.size.saturating_sub(reported));
        Ok(hashes)
    }

    /// Reads the file in order, block by block within `budget` (with a running MD5 when
    /// `hash`), and stages the blocks `plan.parallel` at a time; commits nothing.
    #[allow(clippy::too_many_arguments)]
    async fn stage_blocks(
        &self,
        client: &BlockBlobClient,
        name: &str,
        path: &Path,
        size: u64,
        plan: BlockPlan,
        budget: &MemoryBudget,
        progress: &(dyn Fn(u64) + Send + Sync),
        hash: bool,
    ) -> Result<Staged, BlobError> {
        let read_error = |source| BlobError::Read {
            path: path.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(read_error)?;
        // `then` runs one read at a time, so this lock is never contended; it only lets the
        // read futures borrow the file one after the other.
        let file = tokio::sync::Mutex::new(file);
        let block_size = plan.block_size.max(1);
        let count = size.div_ceil(block_size);
        let hasher = std::sync::Mutex::new(Md5::new());
        let ids: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("aib-block-{i:08}").into_bytes())
            .collect();

        // Blocks are read in order (the running MD5 needs that) and staged in parallel.
        let reads = futures::stream::iter(0..count).then(|i| {
            let len = block_size.min(size - i * block_size);
            let hasher = &hasher;
            let file = &file;
            async move {
                let permit = budget.reserve(len).await;
                let mut buf = budget.buffer(len as usize);
                file.lock()
                    .await
                    .read_exact(&mut buf)
                    .await
                    .map_err(read_error)?;
                if hash && let Ok(mut h) = hasher.lock() {
                    h.update(&buf);
                }
                Ok::<_, BlobError>((i, Bytes::from(buf), permit))
            }
        });
        reads
            .map_ok(|(i, bytes, permit)| {
                let id = &ids[i as usize];
                async move {
                    let len = bytes.len() as u64;
                    let block_md5: [u8; 16] = Md5::digest(&bytes).into();
                    self.count();
                    client
                        .stage_block(
                            id,
                            len,
                            bytes.clone().into(),
                            Some(BlockBlobClientStageBlockOptions {
                                transactional_content_md5: Some(block_md5.to_vec()),
                                ..Default::default()
                            }),
                        )
                        .await
                        .map_err(|e| self.error("upload", name, &e))?;
                    budget.recycle(bytes);
                    drop(permit);
                    progress(len);
                    Ok::<_, BlobError>(())
                }
            })
            .try_buffer_unordered(plan.parallel.max(1))
            .try_collect::<()>()
            .await?;

        let read_md5 = hash.then(|| {
            hasher
                .into_inner()
                .map(|h| h.finalize().into())
                .unwrap_or_default()
        });
        let mut rest = [0u8; 1];
        let grown = file
            .into_inner()
            .read(&mut rest)
            .await
            .map_err(read_error)?
            > 0;
        Ok(Staged {
            ids,
            read_md5,
            grown,
        })
    }

    /// Commits staged blocks as blob `name` with its MD5 and content type.
    async fn commit(
        &self,
        client: &BlockBlobClient,
        name: &str,
        ids: Vec<Vec<u8>>,
        md5: [u8; 16],
        content_type: &str,
    ) -> Result<(), BlobError> {
        let list = BlockLookupList {
            latest: Some(ids),
            ..Default::default()
        };
        let content = list
            .try_into()
            .map_err(|e: azure_core::Error| self.error("upload", name, &e))?;
        self.count();
        client
            .commit_block_list(
                content,
                Some(BlockBlobClientCommitBlockListOptions {
                    blob_content_md5: Some(md5.to_vec()),
                    blob_content_type: Some(content_type.to_owned()),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| self.error("upload", name, &e))?;
        Ok(())
    }

    /// Deletes blob `name` (with its snapshots); one that is already gone is fine.
    pub async fn delete(&self, name: &str) -> Result<(), BlobError> {
        let client = BlobClient::new(
            self.blob_url(name),
            self.credential(),
            Some(BlobClientOptions {
                client_options: self.options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|e| self.error("delete", name, &e))?;
        self.count();
        match client
            .delete(Some(BlobClientDeleteOptions {
                delete_snapshots: Some(
                    azure_storage_blob::models::DeleteSnapshotsOptionType::Include,
                ),
                ..Default::default()
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(()),
            Err(e) => Err(self.error("delete", name, &e)),
        }
    }
}

/// Turns azure_core's error into ours: the status, `x-ms-error-code` and the XML message.
fn decode_error(
    op: &'static str,
    target: &str,
    account: &str,
    error: &azure_core::Error,
) -> BlobError {
    match error.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let status = u16::from(*status);
            let code = error_code.clone();
            if status == 403 && code.as_deref() == Some("AuthorizationPermissionMismatch") {
                return BlobError::NoDataRole {
                    op,
                    target: target.to_owned(),
                    account: account.to_owned(),
                };
            }
            let message = raw_response
                .as_ref()
                .and_then(|r| xml_element(&String::from_utf8_lossy(r.body()), "Message"));
            BlobError::Service {
                op,
                target: target.to_owned(),
                status,
                code,
                message,
            }
        }
        _ => BlobError::Transport {
            op,
            target: target.to_owned(),
            message: super::auth::chain_text(error),
        },
    }
}

/// The text of the first `<name>…</name>` in a small XML error body.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(endpoint: &str) -> Container {
        let cs = shared_key::ConnectionString::parse(&format!(
            "AccountName=acct;AccountKey=a2V5;BlobEndpoint={endpoint}"
        ))
        .unwrap();
        Container::new(
            &cs.blob_endpoint.clone(),
            "acct",
            "scripts",
            BlobAuth::Key(cs),
            &crate::azure::http::default_client(),
            RetryOptions::default(),
        )
        .unwrap()
    }

    /// Blob names keep their folders as path segments, under a host- or path-style endpoint.
    #[test]
    fn blob_urls_keep_folders_as_segments() {
        let c = container("https://acct.blob.core.windows.net/");
        assert_eq!(
            c.blob_url("lib/a b.sh").as_str(),
            "https://acct.blob.core.windows.net/scripts/lib/a%20b.sh"
        );
        let c = container("https://127.0.0.1:9/acct/");
        assert_eq!(c.url().as_str(), "https://127.0.0.1:9/acct/scripts");
        let c = container("https://127.0.0.1:9/acct");
        assert_eq!(
            c.blob_url("x.sh").as_str(),
            "https://127.0.0.1:9/acct/scripts/x.sh"
        );
    }

    /// A bearer token is never sent over plain http.
    #[test]
    fn bearer_auth_refuses_http() {
        #[derive(Debug)]
        struct NoToken;
        #[async_trait::async_trait]
        impl TokenCredential for NoToken {
            async fn get_token(
                &self,
                _: &[&str],
                _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
            ) -> azure_core::Result<azure_core::credentials::AccessToken> {
                Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "none",
                ))
            }
        }
        let err = Container::new(
            &Url::parse("http://127.0.0.1:9/acct/").unwrap(),
            "acct",
            "c",
            BlobAuth::Bearer(Arc::new(NoToken)),
            &crate::azure::http::default_client(),
            RetryOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }

    /// The missing-role error names the account and the hint names the role and the scope.
    #[test]
    fn no_data_role_names_role_and_account() {
        let err = BlobError::NoDataRole {
            op: "list",
            target: "acct/scripts".into(),
            account: "acct".into(),
        };
        assert!(err.to_string().contains("'acct'"), "{err}");
        let hint = err.hint(Some("/subscriptions/s/x")).unwrap();
        assert!(hint.contains("Storage Blob Data Contributor"), "{hint}");
        assert!(hint.contains("--scope /subscriptions/s/x"), "{hint}");
        assert_eq!(
            xml_element(
                "<Error><Code>X</Code><Message>Busy\nnow</Message></Error>",
                "Message"
            )
            .as_deref(),
            Some("Busy\nnow")
        );
    }
}
