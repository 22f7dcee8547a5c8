//! Large files that must be uploaded anyway are hashed while they are sent: up to the
//! single-shot size in one streamed Put Blob (then their MD5 set), above it as blocks with a
//! second reader hashing alongside. Both leave the old blob untouched when the file changed.

use std::time::Duration;

use aib::azure::blob::{BlobError, BlockPlan, FileStamp, MemoryBudget, hash_path};

use crate::support::{World, md5};

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

/// The stamp of `path` as if planned before its last change (ten seconds older).
fn stale_stamp(path: &std::path::Path) -> FileStamp {
    let mut stamp = FileStamp::of(path).unwrap();
    stamp.modified = stamp.modified.map(|t| t - Duration::from_secs(10));
    stamp
}

fn sha256_hex(path: &std::path::Path) -> String {
    let (hashes, _) = hash_path(path).unwrap();
    hashes.sha256.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new 6 MiB file goes up in one Put Blob and one Set Blob Properties (no blocks), with its
/// MD5 and content type on the blob and its SHA-256 in the outcome; a re-run skips it after
/// hashing it (its blob has the same size), and a changed byte uploads it again.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_new_file_streams_in_one_put_then_gets_its_md5() {
    // Arrange
    let w = World::start().await;
    let data = content(6 * 1024 * 1024 + 17, 1);
    w.write("data/config.json", &data);

    // Act
    let run = w.run(&["--output", "json"]);

    // Assert
    let outcome = run.expect(0).outcome();
    assert_eq!(outcome["uploaded"], 1, "{outcome:#}");
    let blobs = w.blobs().await;
    assert_eq!(blobs["data/config.json"].md5, Some(md5(&data)));
    assert_eq!(blobs["data/config.json"].size, data.len() as u64);
    assert_eq!(
        blobs["data/config.json"].content_type.as_deref(),
        Some("application/json"),
        "Set Blob Properties re-sent the content type"
    );
    assert_eq!(
        outcome["files"][0]["sha256"].as_str(),
        Some(sha256_hex(&w.up().join("data/config.json")).as_str())
    );
    let requests = w.emu.requests();
    let puts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/data/config.json"))
        .collect();
    assert_eq!(puts.len(), 2, "one Put Blob and one Set Blob Properties");
    assert!(puts.iter().all(|r| !r.query.contains("comp=block")));
    assert!(puts.iter().any(|r| r.query.contains("comp=properties")));

    // Act + Assert: unchanged (same size, so hashed first): nothing sent
    w.emu.clear_requests();
    let again = w.run(&[]);
    again.expect(0);
    assert!(
        again.stderr.contains("0 uploaded, 1 unchanged"),
        "{}",
        again.stderr
    );
    assert_eq!(w.blob_requests("PUT"), 0);

    // Act + Assert: one byte changed, same size: uploaded again with the new MD5
    let mut changed = data.clone();
    changed[1000] ^= 0xff;
    w.write("data/config.json", &changed);
    w.run(&[]).expect(0);
    assert_eq!(w.blobs().await["data/config.json"].md5, Some(md5(&changed)));
}

/// When the file no longer matches its planned stamp as the last bytes would go, the streamed
/// Put never completes: the blob keeps its old content and MD5, and the file is not sent again.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_changed_during_a_streamed_upload_leaves_the_old_blob() {
    // Arrange: an old blob; a file whose planned stamp is older than the file now
    let w = World::start().await;
    let data = content(3 * 1024 * 1024, 2);
    let (container, path) = w.old_blob_and_new_file("data.bin", &data).await;
    let planned = stale_stamp(&path);

    // Act
    let err = container
        .put_file_streamed(
            "data.bin",
            &path,
            planned,
            "application/octet-stream",
            &|_| {},
        )
        .await
        .unwrap_err();

    // Assert
    assert!(matches!(err, BlobError::FileChanged { .. }), "{err}");
    assert_eq!(container.retries(), 0, "a changing file is not sent again");
    let blobs = w.blobs().await;
    assert_eq!(blobs["data.bin"].md5, Some(md5(b"old")));
    assert_eq!(blobs["data.bin"].size, 3);

    // And with the stamp it has now, it goes up whole with its hashes.
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let p = progress.clone();
    let hashes = container
        .put_file_streamed(
            "data.bin",
            &path,
            FileStamp::of(&path).unwrap(),
            "application/octet-stream",
            &move |n| {
                p.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .await
        .unwrap();
    assert_eq!(hashes, hash_path(&path).unwrap().0);
    assert_eq!(
        progress.load(std::sync::atomic::Ordering::Relaxed),
        data.len() as u64
    );
    assert_eq!(w.blobs().await["data.bin"].md5, Some(md5(&data)));
}

/// Above the single-shot size a file goes up as blocks while a second reader hashes it: with
/// 30 % of the requests failing it still arrives whole with its MD5 (retried per block),
/// and a file changed since it was planned commits nothing.
#[tokio::test(flavor = "multi_thread")]
async fn blocks_hashed_alongside_are_retried_and_commit_only_an_unchanged_file() {
    // Arrange
    let w = World::start().await;
    let data = content(5 * 1024 * 1024 + 3, 3);
    let (container, path) = w.old_blob_and_new_file("big.bin", &data).await;
    // 256 KiB blocks: 21 blocks and a commit, so faults at 30 % surely hit some.
    let plan = BlockPlan {
        block_size: 256 * 1024,
        parallel: 3,
    };
    let budget = MemoryBudget::new(4 * 1024 * 1024);
    let stale = stale_stamp(&path);

    // Act + Assert: changed since planned: nothing committed
    let err = container
        .put_file_in_blocks_hashing(
            "big.bin",
            &path,
            stale,
            "application/octet-stream",
            plan,
            &budget,
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::FileChanged { .. }), "{err}");
    assert_eq!(w.blobs().await["big.bin"].md5, Some(md5(b"old")));

    // Act: with faults injected
    let knobs = w.emu.knobs();
    knobs.set_server_error_rate(0.3);
    let hashes = container
        .put_file_in_blocks_hashing(
            "big.bin",
            &path,
            FileStamp::of(&path).unwrap(),
            "application/octet-stream",
            plan,
            &budget,
            &|_| {},
        )
        .await;
    knobs.set_server_error_rate(0.0);

    // Assert
    let hashes = hashes.unwrap();
    assert_eq!(hashes, hash_path(&path).unwrap().0);
    assert!(container.retries() > 0, "faults were retried");
    let blobs = w.blobs().await;
    assert_eq!(blobs["big.bin"].md5, Some(md5(&data)));
    assert_eq!(blobs["big.bin"].size, data.len() as u64);
}
