//! Every scope of `aib run`, on an environment with nothing yet and on one whose infrastructure
//! exists: the steps the scope selects run (their ARM requests carry their correlation ids),
//! the others send no request at all, and a step that needs what is missing fails alone.

use std::collections::BTreeSet;
use std::path::Path;

use aib_testkit::Run;

use crate::emulated::{Pipeline as _, World, e2e_root, is_write, steps_seen};

/// Copies the sbx fixture into `root` as environment `env`, with names of its own (a fresh
/// environment on the shared emulator), plus the scripts folder.
fn fresh_environment(root: &Path, env: &str) {
    let text = std::fs::read_to_string(e2e_root().join("parameters/sbx.image.parameters.json"))
        .expect("the sbx fixture");
    let text = text
        .replace("e2e-sbx", &format!("e2e-{env}"))
        .replace("e2esbx", &format!("e2e{}", env.replace('-', "")))
        .replace("e2e_sbx", &format!("e2e_{}", env.replace('-', "_")));
    std::fs::create_dir_all(root.join("parameters")).unwrap();
    std::fs::write(
        root.join(format!("parameters/{env}.image.parameters.json")),
        text,
    )
    .unwrap();
    let scripts = root.join("scripts/uploads/linux");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::copy(
        e2e_root().join("scripts/uploads/linux/setup.sh"),
        scripts.join("setup.sh"),
    )
    .unwrap();
}

async fn run_in(world: &World, root: &Path, env: &str, scope: &str, extra: &[&str]) -> Run {
    let root_text = root.display().to_string();
    let mut args = vec![
        "run",
        "--root",
        &root_text,
        "--env",
        env,
        "--scope",
        scope,
        "--output",
        "json",
        "--poll-interval",
        "0.2",
    ];
    args.extend_from_slice(extra);
    world.aib(root, &args).await
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// Checks which steps sent requests: exactly `sent`, attributed by correlation id (ARM) and by
/// destination (blobs).
fn assert_requests(world: &World, run: &Run, env: &str, sent: &[&str]) {
    let requests = world.requests();
    let account = format!("staibe2e{}", env.replace('-', ""));
    assert_eq!(
        steps_seen(world, run, &requests, &account),
        set(sent),
        "{env}: steps that sent requests\nstderr:\n{}",
        run.stderr
    );
}

/// (environment, scope, exit code, steps that send requests, each selected step's result)
type Case<'a> = (&'a str, &'a str, i32, &'a [&'a str], &'a [&'a str]);

/// On environments with nothing yet: `All` and `Only infrastructure` build what they need;
/// `Only removal` finds nothing to remove; `Only storage & image` and `Only image` fail in their
/// first step (exit 1, saying to run deploy-infra) and the later steps send nothing.
#[tokio::test(flavor = "multi_thread")]
async fn every_scope_on_a_fresh_environment_runs_only_its_steps() {
    // Arrange
    let world = World::start().await;
    let root = tempfile::tempdir().unwrap();
    let cases: [Case; 5] = [
        (
            "fresh-all",
            "all",
            0,
            &[
                "deploy-infra",
                "upload-scripts",
                "trigger-build",
                "wait-for-build",
            ],
            &["succeeded", "succeeded", "succeeded", "succeeded"],
        ),
        (
            "fresh-removal",
            "Only removal",
            0,
            &["remove-templates"],
            &["succeeded"],
        ),
        (
            "fresh-base",
            "Only base",
            0,
            &["deploy-infra", "upload-scripts"],
            &["succeeded", "succeeded"],
        ),
        (
            "fresh-assets",
            "only storage and image",
            1,
            &["upload-scripts"],
            &["failed", "notRun", "notRun"],
        ),
        (
            "fresh-image",
            "ONLY IMAGE",
            1,
            &["trigger-build"],
            &["failed", "notRun"],
        ),
    ];
    for (env, _, _, _, _) in &cases {
        fresh_environment(root.path(), env);
    }
    for (env, scope, code, sent, results) in cases {
        world.clear();

        // Act
        let run = run_in(&world, root.path(), env, scope, &["--wait"]).await;

        // Assert
        run.expect(code);
        let got: Vec<String> = run.steps(0).into_iter().map(|s| s.1).collect();
        assert_eq!(got, results.to_vec(), "{env} ({scope})\n{}", run.stderr);
        assert_requests(&world, &run, env, sent);
        if code == 1 {
            assert!(run.stderr.contains("run deploy-infra"), "{}", run.stderr);
        }
    }
}

/// On an environment whose infrastructure exists: each scope runs exactly its steps; the
/// others send no request (deploy-infra's group, identity and gallery are not even read by
/// `Only image`), and `--remove-previous` removes the earlier template first.
#[tokio::test(flavor = "multi_thread")]
async fn every_scope_on_existing_infrastructure_runs_only_its_steps() {
    // Arrange
    let world = World::start().await;
    let root = tempfile::tempdir().unwrap();
    fresh_environment(root.path(), "infra");
    run_in(&world, root.path(), "infra", "Only infrastructure", &[])
        .await
        .expect(0);
    let group = "rg-aib-e2e-infra";
    let cases: [(&str, &[&str], &[&str]); 6] = [
        (
            "Only image",
            &["--wait"],
            &["trigger-build", "wait-for-build"],
        ),
        ("Only removal", &[], &["remove-templates"]),
        (
            "Only assets & image",
            &[],
            &["upload-scripts", "trigger-build"],
        ),
        (
            "Only infrastructure",
            &[],
            &["deploy-infra", "upload-scripts"],
        ),
        (
            "All",
            &["--wait", "--remove-previous"],
            &[
                "remove-templates",
                "deploy-infra",
                "upload-scripts",
                "trigger-build",
                "wait-for-build",
            ],
        ),
        (
            "only-removal",
            &["--wait", "--remove-previous"],
            &["remove-templates"],
        ),
    ];
    for (scope, extra, sent) in cases {
        world.settle(group).await;
        let before = world.templates(group).await;
        world.clear();

        // Act
        let run = run_in(&world, root.path(), "infra", scope, extra).await;

        // Assert
        run.expect(0);
        let names: Vec<String> = run.steps(0).into_iter().map(|s| s.0).collect();
        assert_eq!(names, sent.to_vec(), "{scope}");
        assert_requests(&world, &run, "infra", sent);
        let after = world.templates(group).await;
        if sent.contains(&"remove-templates") {
            assert!(
                before.iter().all(|t| !after.contains(t)),
                "{scope}: every earlier template removed: {before:?} → {after:?}"
            );
        } else {
            assert!(before.is_subset(&after), "{scope}: nothing removed");
        }
        if sent.contains(&"trigger-build") {
            let kept = if sent.contains(&"remove-templates") {
                0
            } else {
                before.len()
            };
            assert_eq!(after.len(), kept + 1, "{scope}: one new template");
        }
    }
    assert_eq!(
        world
            .versions(group, "gal_aib_e2e_infra", "ubuntu-e2e")
            .await
            .len(),
        3,
        "three builds (Only image, Only assets & image, All), each ending with a version"
    );
}

/// `--what-if` on a fresh environment plans every step and writes nothing: deploy-infra shows
/// its plan, upload-scripts and trigger-build are skipped (the account does not exist yet), and
/// wait-for-build has no build to follow.
#[tokio::test(flavor = "multi_thread")]
async fn what_if_plans_every_step_and_writes_nothing() {
    // Arrange
    let world = World::start().await;
    let root = tempfile::tempdir().unwrap();
    fresh_environment(root.path(), "plan");
    world.clear();

    // Act
    let run = run_in(
        &world,
        root.path(),
        "plan",
        "All",
        &["--what-if", "--wait", "--remove-previous"],
    )
    .await;

    // Assert
    run.expect(0);
    let results: Vec<(String, String)> = run.steps(0).into_iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(
        results,
        [
            ("remove-templates", "succeeded"),
            ("deploy-infra", "succeeded"),
            ("upload-scripts", "skipped"),
            ("trigger-build", "skipped"),
            ("wait-for-build", "skipped"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let writes: Vec<String> = world
        .requests()
        .iter()
        .filter(|r| is_write(r))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(
        run.stderr.contains("deploy-infra would create it"),
        "{}",
        run.stderr
    );
    assert_eq!(run.outcome()["whatIf"], true);
}
