//! Storage failures: transient ones are retried, a missing data role is explained, and a staged
//! upload whose file changed commits nothing.

use std::sync::Arc;

use aib::azure::blob::{BlobError, BlockPlan, MemoryBudget};

use crate::support::{ACCOUNT, World, md5};

/// With a fifth of blob requests failing (500 and 503 ServerBusy), every file still arrives
/// with the right MD5, and the retries are counted.
#[tokio::test(flavor = "multi_thread")]
async fn injected_storage_failures_are_retried_and_the_result_is_correct() {
    // Arrange: 40 small files and one that goes up in blocks
    let w = World::start().await;
    for i in 0..40 {
        w.write(&format!("s/{i:02}.sh"), format!("echo {i}\n").as_bytes());
    }
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    w.write("big.bin", &big);
    let knobs = w.emu.knobs();
    knobs.set_server_error_rate(0.1);
    knobs.set_throttle_rate(0.1, 0);

    // Act
    let run = w.run(&["--output", "json"]);

    // Assert
    knobs.set_server_error_rate(0.0);
    knobs.set_throttle_rate(0.0, 0);
    let outcome = run.expect(0).outcome();
    assert_eq!(outcome["uploaded"], 41, "{outcome:#}");
    assert!(outcome["retries"].as_u64().unwrap() > 0, "{outcome:#}");
    let failed = w
        .emu
        .requests()
        .iter()
        .filter(|r| r.path.starts_with(&format!("/{ACCOUNT}/")) && r.status >= 500)
        .count();
    assert!(failed > 0, "faults were injected");
    let blobs = w.blobs().await;
    assert_eq!(blobs.len(), 41);
    assert_eq!(blobs["big.bin"].md5, Some(md5(&big)));
    assert_eq!(blobs["s/07.sh"].md5, Some(md5(b"echo 7\n")));
}

/// A principal without a data role gets an error that names Storage Blob Data Contributor,
/// the account and how to grant it; exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_principal_without_a_data_role_is_told_which_role_to_grant() {
    // Arrange: a second principal that may read the account through ARM but has no data role
    let w = World::start().await;
    w.write("a.sh", b"echo a\n");
    let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

    // Act
    let run = w.run_as(
        "11111111-2222-3333-4444-555555555555",
        "emu~other-secret",
        &[reader],
    );

    // Assert
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("AuthorizationPermissionMismatch"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("storage account '{ACCOUNT}'")),
        "{stderr}"
    );
    assert!(stderr.contains("Storage Blob Data Contributor"), "{stderr}");
    assert!(
        stderr.contains(&format!("--scope {}", w.account.path())),
        "{stderr}"
    );
    // Said once: the error and its hint are not repeated by the final line.
    assert_eq!(stderr.matches("has no data role").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("hint:").count(), 1, "{stderr}");
}

/// A principal that may read blobs but not write them gets one line per refused file and the
/// hint once, then one closing line; exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_data_role_gets_one_line_per_file_and_the_hint_once() {
    // Arrange: three files; a principal with Storage Blob Data Reader only
    let w = World::start().await;
    for name in ["a.sh", "b.sh", "c.sh"] {
        w.write(name, b"echo x\n");
    }
    let data_reader = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
    let arm_reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

    // Act
    let run = w.run_as(
        "22222222-3333-4444-5555-666666666666",
        "emu~reader-secret",
        &[data_reader, arm_reader],
    );

    // Assert
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    for name in ["a.sh", "b.sh", "c.sh"] {
        assert_eq!(
            stderr
                .matches(&format!("{name}: the caller has no data role"))
                .count(),
            1,
            "{stderr}"
        );
    }
    assert_eq!(stderr.matches("hint:").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("3 of 3 operations failed").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("emu~reader-secret"));
}

/// When the bytes read differ from the planned MD5 (the file changed), the staged blocks are
/// never committed: the blob under the final name keeps its old content.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_changed_during_a_staged_upload_commits_nothing() {
    // Arrange: an existing blob, and a local file whose planned MD5 no longer matches
    let w = World::start().await;
    let content = vec![7u8; 3 * 1024 * 1024];
    let (container, path) = w.old_blob_and_new_file("data.bin", &content).await;
    let planned = md5(b"what the file held when it was planned");

    // Act
    let err = container
        .put_file_in_blocks(
            "data.bin",
            &path,
            content.len() as u64,
            planned,
            "application/octet-stream",
            BlockPlan {
                block_size: 1024 * 1024,
                parallel: 2,
            },
            &MemoryBudget::new(4 * 1024 * 1024),
            &|_| {},
        )
        .await
        .unwrap_err();

    // Assert
    assert!(matches!(err, BlobError::FileChanged { .. }), "{err}");
    let blobs = w.blobs().await;
    assert_eq!(blobs["data.bin"].md5, Some(md5(b"old")));
    assert_eq!(blobs["data.bin"].size, 3);

    // And the same file with the right MD5 is committed whole.
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let p = progress.clone();
    container
        .put_file_in_blocks(
            "data.bin",
            &path,
            content.len() as u64,
            md5(&content),
            "application/octet-stream",
            BlockPlan {
                block_size: 1024 * 1024,
                parallel: 2,
            },
            &MemoryBudget::new(4 * 1024 * 1024),
            &move |n| {
                p.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .await
        .unwrap();
    assert_eq!(
        progress.load(std::sync::atomic::Ordering::Relaxed),
        content.len() as u64
    );
    assert_eq!(w.blobs().await["data.bin"].md5, Some(md5(&content)));
}
