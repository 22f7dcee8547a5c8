//! Change detection, content types, outputs, prune, what-if and connection strings.

use aib_testkit::Run;
use base64::Engine as _;

use crate::support::{ACCOUNT, CONTAINER, World, md5};

/// First run uploads every file with its MD5 and content type; the second uploads nothing;
/// changing one byte of one file uploads exactly that file.
#[tokio::test(flavor = "multi_thread")]
async fn upload_skips_blobs_whose_md5_matches() {
    // Arrange
    let w = World::start().await;
    w.write("install.sh", b"#!/bin/bash\necho hi\n");
    w.write("Initialize.ps1", b"Write-Host hi\r\n");
    w.write("lib/config.json", b"{\"a\": 1}");
    w.write("lib/deep/tool.bin", &[0u8, 1, 2, 3]);

    // Act: first run
    let first = w.run(&["--output", "json"]);

    // Assert
    let outcome = first.expect(0).outcome();
    assert_eq!(outcome["uploaded"], 4, "{outcome:#}");
    assert_eq!(outcome["skipped"], 0);
    let blobs = w.blobs().await;
    assert_eq!(
        blobs.keys().cloned().collect::<Vec<_>>(),
        [
            "Initialize.ps1",
            "install.sh",
            "lib/config.json",
            "lib/deep/tool.bin"
        ]
    );
    assert_eq!(
        blobs["install.sh"].md5,
        Some(md5(b"#!/bin/bash\necho hi\n"))
    );
    assert_eq!(blobs["lib/deep/tool.bin"].md5, Some(md5(&[0, 1, 2, 3])));
    assert_eq!(
        blobs["install.sh"].content_type.as_deref(),
        Some("text/x-shellscript")
    );
    assert_eq!(
        blobs["lib/config.json"].content_type.as_deref(),
        Some("application/json")
    );
    let file = outcome["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "lib/config.json")
        .unwrap();
    assert!(
        file["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{ACCOUNT}/{CONTAINER}/lib/config.json")),
        "{file}"
    );
    assert_eq!(
        file["md5"],
        base64::engine::general_purpose::STANDARD.encode(md5(b"{\"a\": 1}"))
    );
    assert_eq!(file["sha256"].as_str().unwrap().len(), 64);

    // Act + Assert: nothing changed, nothing uploaded (one listing, no PUT)
    w.emu.clear_requests();
    let second = w.run(&[]);
    second.expect(0);
    assert!(
        second.stderr.contains("0 uploaded, 4 unchanged"),
        "{}",
        second.stderr
    );
    assert_eq!(w.blob_requests("PUT"), 0);
    assert_eq!(w.blob_requests("GET"), 1, "one listing");

    // Act + Assert: one byte changed, one file uploaded
    w.write("lib/config.json", b"{\"a\": 2}");
    w.emu.clear_requests();
    let third = w.run(&["--output", "json"]);
    let outcome = third.expect(0).outcome();
    assert_eq!(outcome["uploaded"], 1);
    assert_eq!(outcome["skipped"], 3);
    assert_eq!(w.blob_requests("PUT"), 1);
    assert_eq!(
        w.blobs().await["lib/config.json"].md5,
        Some(md5(b"{\"a\": 2}"))
    );
}

/// A CRLF shell script is warned about and uploaded byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn crlf_shell_scripts_are_warned_about_and_never_changed() {
    let w = World::start().await;
    let crlf = b"#!/bin/bash\r\necho hi\r\n";
    w.write("win.sh", crlf);
    let run = w.run(&[]);
    run.expect(0);
    assert!(
        run.stderr.contains("win.sh has CRLF line endings"),
        "{}",
        run.stderr
    );
    assert_eq!(w.blobs().await["win.sh"].md5, Some(md5(crlf)));
}

/// GitHub Actions gets outputs (counts, base URL, each blob's URL and SHA-256) and a summary.
#[tokio::test(flavor = "multi_thread")]
async fn github_outputs_and_summary_describe_the_upload() {
    let w = World::start().await;
    w.write("a.sh", b"echo a\n");
    let output = w.root.path().join("gh-output");
    let summary = w.root.path().join("gh-summary");
    let run = Run::of(
        w.command(&[])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary),
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let outputs = std::fs::read_to_string(&output).unwrap();
    for needle in [
        "uploaded<<",
        "skipped<<",
        "pruned<<",
        "blobBaseUrl<<",
        "blobs<<",
    ] {
        assert!(outputs.contains(needle), "{needle} in {outputs}");
    }
    assert!(
        outputs.contains(&format!("/{ACCOUNT}/{CONTAINER}/a.sh")),
        "{outputs}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("1 uploaded, 0 unchanged, 0 pruned"),
        "{summary}"
    );
    assert!(summary.contains("| `a.sh` |"), "{summary}");
    let stdout = &run.stdout;
    assert!(
        stdout.contains("uploaded a.sh"),
        "a line per file in CI: {stdout}"
    );
}

/// --prune deletes blobs with no local file (off by default); --what-if lists uploads and
/// prunes and sends no write.
#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_only_when_asked_and_what_if_writes_nothing() {
    // Arrange: two blobs uploaded, then one local file removed and one added
    let w = World::start().await;
    w.write("keep.sh", b"keep");
    w.write("old.sh", b"old");
    w.run(&[]).expect(0);
    std::fs::remove_file(w.up().join("old.sh")).unwrap();
    w.write("new.sh", b"new");

    // Act: what-if with prune
    w.emu.clear_requests();
    let plan = w.run(&["--what-if", "--prune", "--output", "json"]);

    // Assert: it says what it would do, and nothing was written
    let outcome = plan.expect(0).outcome();
    assert_eq!(outcome["whatIf"], true);
    assert_eq!(outcome["uploaded"], 1);
    assert_eq!(outcome["pruned"], 1);
    assert_eq!(outcome["extraBlobs"], serde_json::json!(["old.sh"]));
    assert!(plan.stderr.contains("upload: new.sh"), "{}", plan.stderr);
    assert!(plan.stderr.contains("prune: old.sh"), "{}", plan.stderr);
    assert_eq!(w.blob_requests("PUT") + w.blob_requests("DELETE"), 0);

    // Act + Assert: without --prune the extra blob stays
    w.run(&[]).expect(0);
    assert!(w.blobs().await.contains_key("old.sh"));

    // Act + Assert: with --prune it goes
    let pruned = w.run(&["--prune", "--output", "json"]);
    assert_eq!(pruned.expect(0).outcome()["pruned"], 1);
    let names: Vec<String> = w.blobs().await.into_keys().collect();
    assert_eq!(names, ["keep.sh", "new.sh"]);
}

/// A connection string with the account key works without ARM or Entra ID, and the key is
/// masked in the output.
#[tokio::test(flavor = "multi_thread")]
async fn connection_string_with_account_key_uploads_without_entra() {
    // Arrange: shared keys allowed on the account; the key from listKeys
    let w = World::start().await;
    let keys: serde_json::Value = w
        .azure
        .arm
        .post(
            &format!("{}/listKeys", w.account.path()),
            None::<&()>,
            aib::azure::arm::Idempotency::Idempotent,
        )
        .await
        .unwrap()
        .unwrap();
    let key = keys["keys"][0]["value"].as_str().unwrap().to_owned();
    let cs = format!(
        "DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={}{ACCOUNT}",
        w.emu.blob_url()
    );
    w.write("a.sh", b"echo a\n");
    w.write("dir/b.json", b"{}");

    // Act: no Entra variables at all
    w.emu.clear_requests();
    let run = Run::of(
        w.command(&["--output", "json"])
            .env_remove("AZURE_CLIENT_SECRET")
            .env_remove("AZURE_CLIENT_ID")
            .env("AZURE_STORAGE_CONNECTION_STRING", &cs),
    );

    // Assert
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert_eq!(run.code, Some(0), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(&key) && !stderr.contains(&key),
        "the key is masked"
    );
    let blobs = w.blobs().await;
    assert_eq!(blobs["dir/b.json"].md5, Some(md5(b"{}")));
}
