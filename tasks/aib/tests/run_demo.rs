//! The demo flow as a test: `aib run --env local --scope All --wait --remove-previous` twice on
//! a fresh emulator, with the bundled `parameters/local.image.parameters.json`.

use std::collections::BTreeSet;

use crate::emulated::{Pipeline as _, World, blob_requests_to, steps_seen};

const GROUP: &str = "rg-aib-local";
const ARGS: &[&str] = &[
    "--env",
    "local",
    "--scope",
    "All",
    "--wait",
    "--remove-previous",
];
const ALL_STEPS: [&str; 5] = [
    "remove-templates",
    "deploy-infra",
    "upload-scripts",
    "trigger-build",
    "wait-for-build",
];

/// The first run creates the infrastructure, uploads both scripts and builds version 1.0.0; the
/// second changes no infrastructure, uploads nothing (one listing), removes the first template
/// and builds 1.0.1; the emulator ends with both versions and only the second template.
#[tokio::test(flavor = "multi_thread")]
async fn demo_flow_builds_twice_and_the_second_run_changes_only_the_image() {
    // Arrange
    let world = World::start().await;

    // Act: the first run
    let first = world.run(ARGS).await;

    // Assert: every step ran and succeeded, in order, each with its own correlation id
    first.expect(0);
    let steps = first.steps(0);
    let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ALL_STEPS);
    assert!(steps.iter().all(|s| s.1 == "succeeded"), "{steps:?}");
    let ids: BTreeSet<_> = steps.iter().filter_map(|s| s.2.clone()).collect();
    assert_eq!(ids.len(), 5, "one correlation id per step: {steps:?}");
    let deploy = first.step_outcome(0, "deploy-infra");
    let created = deploy["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "create")
        .count();
    assert!(
        created >= 6,
        "group, identity, storage, container, gallery, definition: {deploy}"
    );
    assert_eq!(first.step_outcome(0, "upload-scripts")["uploaded"], 2);
    let outcome = first.outcome();
    let template1 = outcome["environments"][0]["templateName"]
        .as_str()
        .expect("a template name")
        .to_owned();
    assert!(
        template1.starts_with("it-ubuntu-2204-agent-local-"),
        "{template1}"
    );
    let version1 = outcome["environments"][0]["imageVersionId"]
        .as_str()
        .expect("an image version")
        .to_owned();
    assert!(
        version1.ends_with("/galleries/gal_aib_local/images/ubuntu-2204-agent/versions/1.0.0"),
        "{version1}"
    );
    assert_eq!(outcome["succeeded"], true);
    assert_eq!(
        first.document()["outputs"]["imageVersionId"],
        version1.as_str()
    );

    // Act: the second run, watching its requests
    world.clear();
    let second = world.run(ARGS).await;

    // Assert: no infrastructure change, nothing uploaded, the first template removed
    second.expect(0);
    let deploy = second.step_outcome(0, "deploy-infra");
    assert!(
        deploy["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "unchanged"),
        "{deploy}"
    );
    let upload = second.step_outcome(0, "upload-scripts");
    assert_eq!(
        (upload["uploaded"].as_u64(), upload["skipped"].as_u64()),
        (Some(0), Some(2))
    );
    let removed = second.step_outcome(0, "remove-templates");
    assert_eq!(removed["deleted"], 1, "{removed}");
    assert_eq!(removed["templates"][0]["name"], template1.as_str());
    let requests = world.requests();
    let blob = blob_requests_to(&world, &requests, "staibscriptslocal");
    assert_eq!(
        blob.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["GET"],
        "one container listing and no upload: {blob:?}"
    );
    let writes_by_deploy: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.method == "PUT"
                && !r.path.contains("imageTemplates")
                && !r.path.contains("/versions/")
        })
        .map(|r| r.path.clone())
        .collect();
    assert!(
        writes_by_deploy.is_empty(),
        "infrastructure writes: {writes_by_deploy:?}"
    );
    assert_eq!(
        steps_seen(&world, &second, &requests, "staibscriptslocal").len(),
        5
    );
    let template2 = second.outcome()["environments"][0]["templateName"]
        .as_str()
        .unwrap()
        .to_owned();
    let version2 = second.outcome()["environments"][0]["imageVersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(version2.ends_with("/versions/1.0.1"), "{version2}");

    // Assert: the emulator's final state
    for resource in [
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-aib-local",
        "/providers/Microsoft.Storage/storageAccounts/staibscriptslocal",
        "/providers/Microsoft.Compute/galleries/gal_aib_local/images/ubuntu-2204-agent",
    ] {
        let path = format!("{}{resource}", world.group(GROUP));
        assert!(world.get(&path).await.is_some(), "{path} exists");
    }
    assert_eq!(
        world
            .versions(GROUP, "gal_aib_local", "ubuntu-2204-agent")
            .await,
        BTreeSet::from(["1.0.0".to_owned(), "1.0.1".to_owned()])
    );
    assert_eq!(world.templates(GROUP).await, BTreeSet::from([template2]));
}
