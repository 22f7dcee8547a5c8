//! A file as a streamed request body that hashes (SHA-256) the bytes as they go out, so a
//! large file that must be uploaded anyway is read once, not hashed first and read again; and
//! [`hash_path`], which hashes a file (MD5 and SHA-256, side by side on two threads).
//!
//! The body computes the SHA-256 (the template's `sha256Checksum`) but not the MD5: the
//! service computes the MD5 of a Put Blob's body anyway and returns it, and the caller sets
//! that as the blob's `Content-MD5`. Measured on the benchmark's 2-core machine, where Azurite
//! shares the CPU with us, hashing MD5 while sending (three quarters of our CPU time by
//! `perf`) slowed Azurite's intake of a 256 MiB body from ~0.8 s to ~1.9 s; SHA-256 alone
//! (SHA-NI) costs a fifth of that.
//!
//! azure_core sends a [`SeekableStream`] body by cloning it for each try and resetting the
//! original before a retry; every clone here is a fresh reader from byte 0: its first read
//! starts a producer on a blocking thread that reopens the file, reads it in order and hashes
//! it, handing chunks over through a bounded channel (at most [`IN_FLIGHT`] of [`CHUNK`]
//! bytes wait). So a retried request re-reads the file from the start, and only the try that
//! read every byte publishes its SHA-256. What the tries share is [`Shared`]: the file's size
//! and modification time when it was planned, that SHA-256, the bytes sent so far (for
//! progress) and whether the file was found changed.
//!
//! A file that changed is caught before its last bytes leave: when the producer has read the
//! planned size, the file's size and modification time are compared with the planned ones,
//! and on a difference an error goes instead of the final chunk. The request body is then
//! shorter than its `Content-Length`, the service never completes the Put Blob, and the blob
//! under the final name keeps what it had. A reset after that fails too, so azure_core's retry
//! policy stops at once instead of re-sending a file that is known to be changing.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use azure_core::Bytes;
use azure_core::stream::SeekableStream;
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// The two digests of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHashes {
    /// MD5, the blob's `Content-MD5` (change detection).
    pub md5: [u8; 16],
    /// SHA-256, the template's `sha256Checksum`.
    pub sha256: [u8; 32],
}

/// What a file looked like when it was planned: a different size or modification time later
/// means it changed underneath the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, where the platform has one.
    pub modified: Option<SystemTime>,
}

impl FileStamp {
    /// The stamp of the file at `path` now (symlinks followed).
    pub fn of(path: &Path) -> io::Result<FileStamp> {
        let meta = std::fs::metadata(path)?;
        Ok(FileStamp {
            size: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Reads the whole file at `path` once, in chunks; its hashes and size.
pub fn hash_path(path: &Path) -> io::Result<(FileHashes, u64)> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::new();
    let mut size = 0u64;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        hasher.update(buf.into());
        size += n as u64;
    }
    Ok((hasher.finish(), size))
}

/// MD5 and SHA-256 of a sequence of chunks, the two at the same time: MD5 (no CPU support,
/// about three quarters of the hashing time of a large file as measured with `perf`) on a
/// helper thread, SHA-256 (SHA-NI where the CPU has it) on the caller's. A file is then hashed
/// in the time of its MD5 instead of the sum of both.
struct Hasher {
    sha: Sha256,
    /// MD5 on this thread when the helper thread could not be started.
    fallback: Md5,
    md5: Option<std::sync::mpsc::SyncSender<Bytes>>,
    md5_thread: Option<std::thread::JoinHandle<[u8; 16]>>,
}

impl Hasher {
    fn new() -> Hasher {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("aib-md5".into())
            .spawn(move || {
                let mut md5 = Md5::new();
                for chunk in rx {
                    md5.update(&chunk);
                }
                md5.finalize().into()
            })
            .ok();
        Hasher {
            sha: Sha256::new(),
            fallback: Md5::new(),
            md5: thread.as_ref().map(|_| tx),
            md5_thread: thread,
        }
    }

    /// Adds the next chunk (shared with the helper thread, not copied).
    fn update(&mut self, chunk: Bytes) {
        self.sha.update(&chunk);
        match &self.md5 {
            // The helper only ends when the sender is dropped, so a send cannot fail.
            Some(tx) => {
                let _ = tx.send(chunk);
            }
            None => self.fallback.update(&chunk),
        }
    }

    /// Both digests, once the helper thread has hashed every chunk.
    fn finish(mut self) -> FileHashes {
        drop(self.md5.take());
        let md5 = self.md5_thread.take().and_then(|t| t.join().ok());
        FileHashes {
            md5: md5.unwrap_or_else(|| std::mem::take(&mut self.fallback).finalize().into()),
            sha256: std::mem::take(&mut self.sha).finalize().into(),
        }
    }
}

/// Bytes handed to the HTTP client per read: large enough that per-chunk costs vanish,
/// small enough that the few chunks the client holds stay far below the memory bound.
const CHUNK: usize = 512 * 1024;

/// What every try of one upload shares.
#[derive(Debug)]
pub(crate) struct Shared {
    path: PathBuf,
    stamp: FileStamp,
    /// The most bytes any try has passed on (progress).
    sent: AtomicU64,
    /// The file's size or modification time differed from `stamp`, or it ended early.
    changed: AtomicBool,
    /// A read failed (the file could not be opened or read).
    read_error: Mutex<Option<io::Error>>,
    /// The SHA-256 of the last try that read every byte and found the file unchanged.
    sha256: Mutex<Option<[u8; 32]>>,
}

impl Shared {
    /// Bytes sent so far (the furthest any try got).
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether a try found the file changed.
    pub(crate) fn changed(&self) -> bool {
        self.changed.load(Ordering::Relaxed)
    }

    /// The read error a try hit, if any (taken once).
    pub(crate) fn take_read_error(&self) -> Option<io::Error> {
        self.read_error.lock().ok().and_then(|mut e| e.take())
    }

    /// The SHA-256 of the bytes the complete try sent.
    pub(crate) fn sha256(&self) -> Option<[u8; 32]> {
        self.sha256.lock().ok().and_then(|h| *h)
    }

    fn fail(&self, error: io::Error) -> io::Error {
        let copy = io::Error::new(error.kind(), error.to_string());
        if let Ok(mut slot) = self.read_error.lock() {
            *slot = Some(error);
        }
        copy
    }

    fn changed_error(&self) -> io::Error {
        self.changed.store(true, Ordering::Relaxed);
        io::Error::other(format!("{} changed during the upload", self.path.display()))
    }
}

/// One try's reader of the file. Its first read starts a producer on a blocking thread that
/// reads the file in order, hashes each chunk and hands it over through a bounded channel, so
/// reading and hashing overlap with the HTTP client writing earlier chunks. At most
/// [`IN_FLIGHT`] chunks wait in the channel.
pub(crate) struct HashingFileStream {
    shared: Arc<Shared>,
    chunks: Option<tokio::sync::mpsc::Receiver<io::Result<Bytes>>>,
    current: Bytes,
    done: bool,
    /// Bytes this try has passed on.
    pos: u64,
}

/// Chunks read ahead of the HTTP client at most (each [`CHUNK`] bytes).
const IN_FLIGHT: usize = 4;

impl HashingFileStream {
    /// A stream of the file at `path` as it was when `stamp` was taken.
    pub(crate) fn new(path: &Path, stamp: FileStamp) -> HashingFileStream {
        HashingFileStream::fresh(Arc::new(Shared {
            path: path.to_owned(),
            stamp,
            sent: AtomicU64::new(0),
            changed: AtomicBool::new(false),
            read_error: Mutex::new(None),
            sha256: Mutex::new(None),
        }))
    }

    fn fresh(shared: Arc<Shared>) -> HashingFileStream {
        HashingFileStream {
            shared,
            chunks: None,
            current: Bytes::new(),
            done: false,
            pos: 0,
        }
    }

    /// What the tries share, to read the outcome after the request.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn start(&mut self) -> &mut tokio::sync::mpsc::Receiver<io::Result<Bytes>> {
        let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || produce(&shared, &tx));
        self.chunks.insert(rx)
    }
}

/// Reads the file in order, hashing and sending each chunk. When the planned size has been
/// read, the file must still be what was planned (a grown file shows as a larger size) before
/// the last chunk is sent; else an error goes instead. Stops when the receiver is gone.
fn produce(shared: &Shared, tx: &tokio::sync::mpsc::Sender<io::Result<Bytes>>) {
    use std::io::Read as _;
    let send = |item| tx.blocking_send(item).is_ok();
    let mut file = match std::fs::File::open(&shared.path) {
        Ok(f) => f,
        Err(e) => {
            send(Err(shared.fail(e)));
            return;
        }
    };
    let size = shared.stamp.size;
    let mut hasher = Some(Sha256::new());
    let mut pos = 0u64;
    let last = |hasher: &mut Option<Sha256>| -> Result<(), io::Error> {
        match FileStamp::of(&shared.path) {
            Ok(now) if now == shared.stamp => {}
            Ok(_) => return Err(shared.changed_error()),
            Err(e) => return Err(shared.fail(e)),
        }
        if let (Some(h), Ok(mut slot)) = (hasher.take(), shared.sha256.lock()) {
            *slot = Some(h.finalize().into());
        }
        Ok(())
    };
    if size == 0
        && let Err(e) = last(&mut hasher)
    {
        send(Err(e));
    }
    while pos < size {
        let want = CHUNK.min(usize::try_from(size - pos).unwrap_or(usize::MAX));
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match file.read(&mut buf[filled..]) {
                // Shorter than planned: the file was truncated.
                Ok(0) => {
                    send(Err(shared.changed_error()));
                    return;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    send(Err(shared.fail(e)));
                    return;
                }
            }
        }
        let chunk = Bytes::from(buf);
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        pos += want as u64;
        if pos == size
            && let Err(e) = last(&mut hasher)
        {
            send(Err(e));
            return;
        }
        if !send(Ok(chunk)) {
            return;
        }
    }
}

/// A clone is a new try: it reads from the start with its own producer and hashers.
impl Clone for HashingFileStream {
    fn clone(&self) -> Self {
        HashingFileStream::fresh(self.shared.clone())
    }
}

impl std::fmt::Debug for HashingFileStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingFileStream")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl futures::io::AsyncRead for HashingFileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.current.is_empty() {
            if this.done {
                return Poll::Ready(Ok(0));
            }
            let chunks = match this.chunks.as_mut() {
                Some(rx) => rx,
                None => this.start(),
            };
            match chunks.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Ok(0));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Some(Ok(chunk))) => this.current = chunk,
            }
        }
        let n = buf.len().min(this.current.len());
        buf[..n].copy_from_slice(&this.current.split_to(n));
        this.pos += n as u64;
        this.shared.sent.fetch_max(this.pos, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
}

#[async_trait::async_trait]
impl SeekableStream for HashingFileStream {
    async fn reset(&mut self) -> azure_core::Result<()> {
        // A file seen changing, or one that cannot be read, is not sent again.
        if self.shared.changed() {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Io,
                "the file changed during the upload",
            ));
        }
        if self
            .shared
            .read_error
            .lock()
            .map(|e| e.is_some())
            .unwrap_or(true)
        {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Io,
                "the file could not be read",
            ));
        }
        *self = HashingFileStream::fresh(self.shared.clone());
        Ok(())
    }

    fn len(&self) -> Option<u64> {
        Some(self.shared.stamp.size)
    }

    fn buffer_size(&self) -> usize {
        CHUNK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::AsyncReadExt as _;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn read_all(stream: &mut HashingFileStream) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1000];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Each clone reads the whole file from the start, and the hashes are those of its bytes.
    #[tokio::test]
    async fn every_try_reads_and_hashes_the_whole_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f.bin");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content)?;
        let original = HashingFileStream::new(&path, FileStamp::of(&path)?);
        let mut first = original.clone();
        assert_eq!(read_all(&mut first).await?, content);
        let mut second = original.clone();
        assert_eq!(read_all(&mut second).await?, content);
        let (expected, size) = hash_path(&path)?;
        assert_eq!(size, 10_000);
        assert_eq!(original.shared().sha256(), Some(expected.sha256));
        assert_eq!(original.shared().sent(), 10_000);
        Ok(())
    }

    /// A file that grew or was rewritten since it was planned fails on its last read, before
    /// the final bytes are returned, and no further try is allowed.
    #[tokio::test]
    async fn a_changed_file_fails_before_its_last_chunk() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f.bin");
        std::fs::write(&path, vec![1u8; 5000])?;
        let stamp = FileStamp::of(&path)?;
        std::fs::write(&path, vec![2u8; 5001])?;
        let mut original = HashingFileStream::new(&path, stamp);
        let mut attempt = original.clone();
        let mut returned = 0;
        let mut buf = vec![0u8; 1000];
        let err = loop {
            match attempt.read(&mut buf).await {
                Ok(n) => returned += n,
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("changed"), "{err}");
        assert!(returned < 5000, "the last chunk was held back");
        assert!(original.shared().changed());
        assert!(original.shared().sha256().is_none());
        assert!(original.reset().await.is_err());
        Ok(())
    }
}
