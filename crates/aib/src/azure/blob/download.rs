//! Reading blobs back: a listing with last-modified times, and ranged reads from an offset.
//!
//! What this is for: following a log that grows while a build runs (Image Builder's
//! `packerlogs/<guid>/customization.log` in the staging account) by asking only for the bytes
//! after the ones already read (`Range: bytes=N-`), instead of downloading the whole log at every
//! poll. It rides on the same [`Container`] as the uploads (same credential, transport, retries
//! and error decoding) and on `azure_storage_blob` 1.1, whose `download` takes an `HttpRange`;
//! a range that starts at the end of the blob is answered 416 by the service, which here means
//! "nothing new", not a failure.

use azure_storage_blob::models::{BlobClientDownloadOptions, HttpRange};
use azure_storage_blob::{BlobClient, BlobClientOptions};

use super::{BlobError, Container};

/// The built-in role that lets a principal read blobs (what following a build's log needs).
pub const DATA_READER_ROLE: &str = "Storage Blob Data Reader";
/// Its role definition GUID (the same in every cloud).
pub const DATA_READER_ROLE_ID: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

/// Partition of one ranged read; a build log grows by far less between two polls.
const PARTITION: usize = 8 * 1024 * 1024;

/// A blob in a listing, with when it last changed (to pick the newest of several builds' logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBlob {
    /// Its name (with `/` for folders).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, as the service reports it.
    pub last_modified: Option<time::OffsetDateTime>,
}

/// The bytes after an offset, and how long the blob is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// The new bytes (empty when nothing was added since `offset`).
    pub bytes: Vec<u8>,
    /// The blob's whole length when the service said it (`Content-Range`), else `None`.
    pub total: Option<u64>,
}

impl Container {
    /// Every blob whose name starts with `prefix` (all pages), with its last-modified time.
    pub async fn list_with_times(
        &self,
        prefix: Option<&str>,
    ) -> Result<Vec<ListedBlob>, BlobError> {
        Ok(self
            .list_properties(prefix)
            .await?
            .into_iter()
            .map(|(name, props)| ListedBlob {
                name,
                size: props.content_length.unwrap_or(0),
                last_modified: props.last_modified,
            })
            .collect())
    }

    /// The bytes of blob `name` from `offset` to its current end. Nothing new (the offset is at
    /// or past the end) is an empty chunk, not an error.
    pub async fn read_from(&self, name: &str, offset: u64) -> Result<Chunk, BlobError> {
        let client = BlobClient::new(
            self.blob_url(name),
            self.credential(),
            Some(BlobClientOptions {
                client_options: self.options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|e| self.error("read", name, &e))?;
        let options = BlobClientDownloadOptions {
            range: (offset > 0).then(|| HttpRange::from(offset..)),
            parallel: std::num::NonZero::new(1),
            partition_size: std::num::NonZero::new(PARTITION),
            ..Default::default()
        };
        let result = match client.download(Some(options)).await {
            Ok(r) => r,
            Err(e) if e.http_status().map(u16::from) == Some(416) => {
                return Ok(Chunk::default());
            }
            Err(e) => return Err(self.error("read", name, &e)),
        };
        let total = result
            .headers
            .get_optional_str(&"content-range".into())
            .and_then(|range| range.rsplit('/').next())
            .and_then(|len| len.trim().parse::<u64>().ok())
            .or(result.properties.content_length.map(|len| offset + len));
        let bytes = result
            .body
            .collect()
            .await
            .map_err(|e| self.error("read", name, &e))?;
        Ok(Chunk {
            bytes: bytes.to_vec(),
            total,
        })
    }
}
