//! `aib run --start-env sbx --through dev` with the fixtures under `tests/fixtures/e2e`: both
//! stages deploy and build in order; a build failing in sbx stops the run before dev; a stage
//! without a parameter file is bad input before any request.

use crate::emulated::{Pipeline as _, World, e2e_root};

fn stage_args(through: &str) -> Vec<String> {
    [
        "--root",
        &e2e_root().display().to_string(),
        "--start-env",
        "sbx",
        "--through",
        through,
        "--scope",
        "All",
        "--wait",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// sbx then dev: each gets its infrastructure and an image version, in that order; then, with
/// builds failing in Customizing, sbx fails (exit 1) and dev sends no request at all.
#[tokio::test(flavor = "multi_thread")]
async fn stages_deploy_in_order_and_a_failure_in_sbx_stops_before_dev() {
    // Arrange
    let world = World::start().await;
    let args = stage_args("dev");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Act
    let run = world.run(&args).await;

    // Assert: both environments, in order, each with its version
    run.expect(0);
    let outcome = run.outcome();
    let envs: Vec<&str> = outcome["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["sbx", "dev"]);
    for (i, env) in ["sbx", "dev"].iter().enumerate() {
        assert!(
            run.steps(i).iter().all(|s| s.1 == "succeeded"),
            "{env}: {:?}",
            run.steps(i)
        );
        let group = format!("rg-aib-e2e-{env}");
        let versions = world
            .versions(&group, &format!("gal_aib_e2e_{env}"), "ubuntu-e2e")
            .await;
        assert_eq!(versions.len(), 1, "{env}: {versions:?}");
        assert!(
            outcome["environments"][i]["imageVersionId"]
                .as_str()
                .is_some_and(|v| v.contains(&format!("gal_aib_e2e_{env}"))),
            "{outcome}"
        );
    }
    let stderr = &run.stderr;
    let sbx_at = stderr.find("trigger-build (sbx)").expect("sbx line");
    let dev_at = stderr.find("deploy-infra (dev)").expect("dev line");
    assert!(sbx_at < dev_at, "sbx runs before dev:\n{stderr}");

    // Arrange: every build fails from now on
    let mut knobs = world.emu.knobs().get();
    knobs.aib.fail_in = Some("Customizing".into());
    world.emu.knobs().set(knobs);
    world.clear();

    // Act
    let failed = world.run(&args).await;

    // Assert: sbx's build failed, dev was not run and sent nothing
    failed.expect(1);
    let sbx: Vec<String> = failed.steps(0).into_iter().map(|s| s.1).collect();
    assert_eq!(sbx, ["succeeded", "succeeded", "succeeded", "failed"]);
    let dev = failed.steps(1);
    assert!(
        dev.iter().all(|s| s.1 == "notRun" && s.2.is_none()),
        "{dev:?}"
    );
    let touched_dev: Vec<String> = world
        .requests()
        .iter()
        .filter(|r| r.path.contains("e2e-dev") || r.path.contains("e2edev"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(touched_dev.is_empty(), "{touched_dev:?}");
    assert!(
        failed
            .stderr
            .contains("pipeline stopped: wait-for-build failed in sbx; not run: dev"),
        "{}",
        failed.stderr
    );
}

/// A walk through prd, which has no file among the fixtures, exits 2 naming the missing file,
/// before any request (sbx is valid but is not started).
#[tokio::test(flavor = "multi_thread")]
async fn a_stage_without_a_parameter_file_is_bad_input_before_any_request() {
    // Arrange
    let world = World::start().await;
    world.clear();
    let args = stage_args("prd");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Act
    let run = world.run(&args).await;

    // Assert
    run.expect(2);
    assert!(
        run.stderr.contains("prd.image.parameters.json"),
        "{}",
        run.stderr
    );
    assert!(world.requests().is_empty(), "{:?}", world.requests());
}
