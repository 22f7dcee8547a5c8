//! customization.log: streamed while customizing, grouped per customizer; on failure its tail,
//! the failing step and its URL; without a data role, one warning and the wait goes on; the
//! ranged reads underneath return only new bytes.

use std::time::Duration;

use aib_testkit::Seed;
use serde_json::json;

use crate::support::{GROUP, Run, World};

const NAME: &str = "it-test-2026-11-28-15-00-00";

/// The binary as a GitHub Actions step (groups and annotations are workflow commands).
fn github_run(w: &World, args: &[&str]) -> Run {
    let outputs = w.root.path().join("github_output");
    Run::of(
        w.command(args)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &outputs),
    )
}

/// While customizing, the log's new lines appear in groups named after each customizer, each
/// line once (only new bytes are read), before the build moves on to distributing.
#[tokio::test(flavor = "multi_thread")]
async fn customization_log_is_streamed_in_groups_per_customizer() {
    // Arrange: two steps of about 1.5 real seconds each.
    let steps = json!([
        {"type": "Shell", "name": "hello", "inline": ["echo hi"]},
        {"type": "Shell", "name": "second", "inline": ["echo two"]}
    ]);
    let w = World::start_with(Duration::from_secs(60), None, steps, |k| {
        k.aib.customizer = Duration::from_secs(900);
    })
    .await;
    w.grant_blob_reader();
    w.trigger(NAME).await;

    // Act
    let run = github_run(&w, &["--template", NAME, "--poll-interval", "0.05"]);

    // Assert
    run.expect(0);
    let out = &run.stdout;
    let first = out
        .find("::group::customization.log: 'hello' (Shell, step 1 of 2) [shell]\n")
        .unwrap_or_else(|| panic!("a group for the first step:\n{out}"));
    let second = out
        .find("::group::customization.log: 'second' (Shell, step 2 of 2) [shell]\n")
        .unwrap_or_else(|| panic!("a group for the second step:\n{out}"));
    let distributing = out.find("Running: Distributing").expect("phase line");
    assert!(first < second && second < distributing, "{out}");
    assert_eq!(
        out.matches("(telemetry) Starting provisioner shell")
            .count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches("azure-arm: + echo two").count(), 1, "{out}");
    assert!(!out.contains("cannot show customization.log"), "{out}");
}

/// An inline step that exits 1: exit 1, the error names the step, and the last lines of
/// customization.log are shown in a group and as an error annotation, with the log's URL
/// (a plain blob URL: no SAS).
#[tokio::test(flavor = "multi_thread")]
async fn failing_inline_step_exits_1_with_the_step_and_the_log_tail() {
    // Arrange
    let steps = json!([
        {"type": "Shell", "name": "hello", "inline": ["echo hi"]},
        {"type": "Shell", "name": "break-it", "inline": ["echo about to fail", "exit 1"]}
    ]);
    let w = World::start_with(Duration::from_secs(60), None, steps, |_| {}).await;
    w.grant_blob_reader();
    w.trigger(NAME).await;

    // Act
    let run = github_run(&w, &["--template", NAME, "--poll-interval", "0.05"]);

    // Assert
    run.expect(1);
    let out = &run.stdout;
    assert!(out.contains("::group::customization.log: last "), "{out}");
    let error = out
        .lines()
        .find(|l| l.starts_with("::error::the build of image template"))
        .unwrap_or_else(|| panic!("the build's error:\n{out}"));
    assert!(error.contains("ended Failed"), "{error}");
    assert!(error.contains("failing customizer: 'break-it'"), "{error}");
    let tail = out
        .lines()
        .find(|l| l.starts_with("::error::customization.log: last "))
        .unwrap_or_else(|| panic!("the tail as an annotation:\n{out}"));
    assert!(
        tail.contains("Script exited with non-zero exit status: 1"),
        "{tail}"
    );
    let url = tail
        .split(" (")
        .nth(1)
        .and_then(|rest| rest.split("):").next())
        .unwrap_or_else(|| panic!("the log's URL in the annotation: {tail}"));
    assert!(url.starts_with("https://"), "{url}");
    assert!(url.ends_with("/customization.log"), "{url}");
    assert!(url.contains("/packerlogs/"), "{url}");
    assert!(!url.contains('?') && !out.contains("sig="), "{url}");
    assert!(
        error.contains(&format!("customization.log: {url}")),
        "{error}"
    );
}

/// Without a data role on the staging account the build is still followed to its end; one
/// warning says which role to grant.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_data_role_one_warning_names_the_role_and_the_wait_goes_on() {
    // Arrange: no blob role for the test principal.
    let w = World::start_with(
        Duration::from_secs(60),
        None,
        crate::support::default_steps(),
        |k| {
            k.aib.customizer = Duration::from_secs(600);
        },
    )
    .await;
    w.trigger(NAME).await;

    // Act
    let run = w.run(&["--template", NAME, "--poll-interval", "0.05"]);

    // Assert
    run.expect(0);
    let err = &run.stderr;
    assert_eq!(
        err.matches("cannot show customization.log").count(),
        1,
        "{err}"
    );
    assert!(err.contains("Storage Blob Data Reader"), "{err}");
    assert!(err.contains("Succeeded"), "{err}");
}

/// A ranged read from an offset returns only the bytes written after it, with the blob's
/// length; at the end it is empty, not an error; the listing has last-modified times.
#[tokio::test(flavor = "multi_thread")]
async fn ranged_reads_return_only_new_bytes() {
    // Arrange: an account and a container the test principal may write.
    let w = World::start(Duration::from_secs(60), None).await;
    Seed::existing(&w.emu, &w.azure, GROUP)
        .storage("aibwaitlogs", "logs")
        .await;
    let container = aib_testkit::container(&w.emu, &w.azure, "aibwaitlogs", "logs");
    let put = |text: &'static str| {
        let container = container.clone();
        async move {
            let md5 = aib_testkit::md5(text.as_bytes());
            container
                .put(
                    "g1/customization.log",
                    azure_core::Bytes::from_static(text.as_bytes()),
                    md5,
                    "text/plain",
                )
                .await
                .expect("upload");
        }
    };

    // Act + Assert
    put("one\n").await;
    let all = container
        .read_from("g1/customization.log", 0)
        .await
        .unwrap();
    assert_eq!((all.bytes.as_slice(), all.total), (&b"one\n"[..], Some(4)));
    let none = container
        .read_from("g1/customization.log", 4)
        .await
        .unwrap();
    assert!(none.bytes.is_empty(), "{none:?}");
    put("one\ntwo\n").await;
    let new = container
        .read_from("g1/customization.log", 4)
        .await
        .unwrap();
    assert_eq!((new.bytes.as_slice(), new.total), (&b"two\n"[..], Some(8)));
    let listed = container.list_with_times(Some("g1/")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "g1/customization.log");
    assert!(listed[0].last_modified.is_some());
}

/// Following the run's operation too (`--run-operation`): a failed build's error carries the
/// operation's error code next to the service's message, and the operation was polled.
#[tokio::test(flavor = "multi_thread")]
async fn failed_run_operation_adds_its_error_code() {
    // Arrange
    let steps = json!([{"type": "Shell", "name": "break-it", "inline": ["exit 3"]}]);
    let w = World::start_with(Duration::from_secs(60), None, steps, |k| {
        k.lro_retry_after = 1;
    })
    .await;
    w.grant_blob_reader();
    let operation = w.trigger_with_operation(NAME).await;

    // Act
    let run = w.run(&[
        "--template",
        NAME,
        "--poll-interval",
        "0.05",
        "--run-operation",
        &operation,
    ]);

    // Assert
    run.expect(1);
    let err = &run.stderr;
    assert!(err.contains("ended Failed: PackerBuildFailed: "), "{err}");
    assert!(err.contains("failing customizer: 'break-it'"), "{err}");
    let polls = w
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/operations/"))
        .count();
    assert!(polls >= 1, "the run's operation was read");
    assert!(w.emu.early_retries().is_empty());
}
