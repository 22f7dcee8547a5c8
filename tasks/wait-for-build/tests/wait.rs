//! Following builds to their end.

use std::time::Duration;

use crate::support::World;

const NAME: &str = "it-test-2026-11-28-14-00-00";

/// A build that succeeds: exit 0, the phases in order, the gallery image version id as output,
/// and a JSON outcome that matches its published schema.
#[tokio::test(flavor = "multi_thread")]
async fn wait_ends_with_the_image_version() {
    // Arrange
    let w = World::start(Duration::from_secs(180), None).await;
    w.trigger(NAME).await;

    // Act
    let run = w.run(&[
        "--template",
        NAME,
        "--poll-interval",
        "0.05",
        "--output",
        "json",
    ]);

    // Assert
    let outcome = run.expect(0).outcome();
    assert_eq!(outcome["runState"], "Succeeded");
    let version = outcome["artifactIds"][0].as_str().expect("an artifact id");
    assert!(
        version.contains("/galleries/gal_aib_test/images/ubuntu/versions/"),
        "{version}"
    );
    let phases: Vec<&str> = outcome["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let distributing = phases.iter().position(|p| *p == "Distributing");
    let customizing = phases.iter().position(|p| *p == "Customizing");
    assert!(
        customizing.is_some() && distributing > customizing,
        "{phases:?}"
    );
    // The document has exactly the fields its published schema lists.
    let schema = aib::steps::wait_for_build::outcome_schema();
    let mut documented: Vec<&String> = schema["properties"]
        .as_object()
        .expect("schema properties")
        .keys()
        .collect();
    let mut printed: Vec<&String> = outcome.as_object().expect("an object").keys().collect();
    documented.sort();
    printed.sort();
    assert_eq!(printed, documented);
    for required in schema["required"].as_array().expect("required fields") {
        let key = required.as_str().unwrap();
        assert!(!outcome[key].is_null(), "{key} is required: {outcome:#}");
    }
}

/// A build that fails while customizing: exit 1 with the service's message.
#[tokio::test(flavor = "multi_thread")]
async fn failed_build_exits_1_with_the_message() {
    // Arrange
    let w = World::start(Duration::from_secs(60), Some("Customizing")).await;
    w.trigger(NAME).await;

    // Act
    let run = w.run(&["--template", NAME, "--poll-interval", "0.05"]);

    // Assert
    run.expect(1);
    assert!(run.stderr.contains("ended Failed"), "{}", run.stderr);
}

/// A build longer than --timeout: exit 3, the build still running; re-attaching later ends
/// with success.
#[tokio::test(flavor = "multi_thread")]
async fn timeout_exits_3_and_a_later_wait_reattaches() {
    // Arrange: about 10 real seconds in Building.
    let w = World::start(Duration::from_secs(6_000), None).await;
    w.trigger(NAME).await;

    // Act
    let run = w.run(&[
        "--template",
        NAME,
        "--poll-interval",
        "0.05",
        "--timeout",
        "0.02",
    ]);

    // Assert
    run.expect(3);
    assert!(
        run.stderr
            .contains(&format!("wait-for-build --template {NAME}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.template(NAME).await["properties"]["lastRunStatus"]["runState"],
        "Running"
    );
    let again = w.run(&[
        "--template",
        NAME,
        "--poll-interval",
        "0.1",
        "--output",
        "json",
    ]);
    assert_eq!(again.expect(0).outcome()["runState"], "Succeeded");
}

/// A template that does not exist is bad input (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn unknown_template_exits_2() {
    let w = World::start(Duration::from_secs(60), None).await;
    let run = w.run(&["--template", "it-test-nope"]);
    run.expect(2);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
}

/// SIGTERM during the wait with --cancel-on-interrupt: the emulator sees `cancel`, exit 130.
#[tokio::test(flavor = "multi_thread")]
async fn interrupt_with_cancel_on_interrupt_cancels_the_build() {
    // Arrange: a long build.
    let w = World::start(Duration::from_secs(36_000), None).await;
    w.trigger(NAME).await;

    // Act: interrupt once the wait has begun.
    let (code, stderr) = w.interrupt_when_running(&[
        "--template",
        NAME,
        "--poll-interval",
        "0.1",
        "--cancel-on-interrupt",
    ]);

    // Assert
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("was canceled"), "{stderr}");
    let cancels = w
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/{NAME}/cancel")))
        .count();
    assert_eq!(cancels, 1);
    let state = w.template(NAME).await["properties"]["lastRunStatus"]["runState"].clone();
    assert!(state == "Canceling" || state == "Canceled", "{state}");
}

/// SIGTERM without --cancel-on-interrupt: the build goes on, the message says how to re-attach.
#[tokio::test(flavor = "multi_thread")]
async fn interrupt_without_cancel_leaves_the_build_running() {
    // Arrange
    let w = World::start(Duration::from_secs(36_000), None).await;
    w.trigger(NAME).await;

    // Act
    let (code, stderr) = w.interrupt_when_running(&["--template", NAME, "--poll-interval", "0.1"]);

    // Assert
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("re-attach with wait-for-build --template {NAME}")),
        "{stderr}"
    );
    assert_eq!(
        w.template(NAME).await["properties"]["lastRunStatus"]["runState"],
        "Running"
    );
}

/// While a phase lasts longer than the heartbeat, a "still <phase>" line shows the wait is
/// alive (CI logs that have no spinner); the step, run in-process, still ends with success.
#[tokio::test(flavor = "multi_thread")]
async fn long_phase_prints_a_heartbeat() {
    // Arrange: about 3 real seconds in Building, a heartbeat every 0.5 s.
    let w = World::start(Duration::from_secs(1_800), None).await;
    w.trigger(NAME).await;
    let log = aib::report::Capture::new();
    let reporter: std::sync::Arc<dyn aib::report::Reporter> = std::sync::Arc::new(
        aib::report::Terminal::new(Box::new(log.writer()), aib::report::TerminalMode::Plain),
    );
    let file = aib::config::parse_str("test", &crate::support::parameter_file()).unwrap();
    let options = aib::steps::wait_for_build::Options {
        template: NAME.into(),
        poll_interval: Duration::from_millis(100),
        heartbeat: Duration::from_millis(500),
        ..Default::default()
    };

    // Act
    let outcome =
        aib::steps::wait_for_build::wait_for_build(&file, &options, &w.azure, &reporter).await;

    // Assert
    let text = log.text();
    assert_eq!(outcome.expect("success").run_state, "Succeeded", "{text}");
    assert!(text.contains("still Building after"), "{text}");
}

/// On Azure Pipelines the task's progress follows the phases (`##vso[task.setprogress]`),
/// once per change and only forward.
#[tokio::test(flavor = "multi_thread")]
async fn azure_pipelines_task_progress_follows_the_phases() {
    // Arrange
    let w = World::start(Duration::from_secs(300), None).await;
    w.trigger(NAME).await;

    // Act
    let run = crate::support::Run::of(
        w.command(&["--template", NAME, "--poll-interval", "0.05"])
            .env("TF_BUILD", "True"),
    );

    // Assert
    let out = &run.expect(0).stdout;
    let values: Vec<u32> = out
        .lines()
        .filter_map(|l| l.strip_prefix("##vso[task.setprogress value="))
        .filter_map(|l| l.split(';').next()?.parse().ok())
        .collect();
    assert!(values.len() >= 3, "{out}");
    assert!(values.windows(2).all(|v| v[0] < v[1]), "{values:?}\n{out}");
    assert!(
        out.contains("##vso[task.setprogress value=85;]Distributing"),
        "{out}"
    );
}
