//! A long build through an unreliable service: throttling, server errors and short tokens.

use std::time::Duration;

use crate::support::{World, default_steps};

const NAME: &str = "it-test-2026-11-28-16-00-00";

/// A two-hour emulated build with a fifth of requests throttled (429 with Retry-After) and a
/// fifth failing (500/503), on ARM and on the blob front, and 60-second tokens: it ends with
/// success, the run's operation is followed, tokens are renewed, and no request came sooner
/// than the Retry-After it was answered.
#[tokio::test(flavor = "multi_thread")]
async fn faults_and_short_tokens_during_a_two_hour_build_end_with_success() {
    // Arrange: 30 s queued + 3,600 s building + 2,700 s customizing (one step and the
    // generalization) + 240 s distributing = 1 h 49 min emulated, about 9 real seconds at 720x.
    let w = World::start_with(Duration::from_secs(3_600), None, default_steps(), |k| {
        k.time_scale = 720.0;
        k.aib.customizer = Duration::from_secs(1_800);
        k.lro_retry_after = 1;
        k.token_lifetime = Duration::from_secs(60);
    })
    .await;
    w.grant_blob_reader();
    let operation = w.trigger_with_operation(NAME).await;
    let knobs = w.emu.knobs();
    knobs.set_throttle_rate(0.2, 1);
    knobs.set_server_error_rate(0.2);
    w.emu.clear_requests();

    // Act
    let run = w.run(&[
        "--template",
        NAME,
        "--poll-interval",
        "0.2",
        "--run-operation",
        &operation,
        "--output",
        "json",
    ]);

    // Assert
    knobs.set_throttle_rate(0.0, 1);
    knobs.set_server_error_rate(0.0);
    let outcome = run.expect(0).outcome();
    assert_eq!(outcome["runState"], "Succeeded", "{outcome:#}");
    // Most of the ~9 real seconds (the build started just before the binary did).
    assert!(
        outcome["elapsedMs"].as_u64().unwrap() > 6_000,
        "the wait lasted the emulated two hours: {outcome:#}"
    );
    let requests = w.emu.requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    let failed = requests.iter().filter(|r| r.status >= 500).count();
    assert!(throttled > 0 && failed > 0, "faults were injected");
    let operation_polls = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/operations/") && r.status == 200)
        .count();
    assert!(operation_polls >= 2, "the run's operation was followed");
    let tokens = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/oauth2/v2.0/token") && r.status == 200)
        .count();
    assert!(
        tokens >= 3,
        "60-second tokens were renewed during the build: {tokens}"
    );
    let early = w.emu.early_retries();
    assert!(
        early.is_empty(),
        "requests sooner than Retry-After: {:?}",
        early
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect::<Vec<_>>()
    );
    let stderr = &run.stderr;
    assert!(
        stderr.contains("(telemetry) Starting provisioner shell"),
        "the log was streamed: {stderr}"
    );
    assert!(!stderr.contains("cannot"), "{stderr}");
}
