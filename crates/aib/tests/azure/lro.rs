//! Long-running operations followed to their end in each header style (Azure-AsyncOperation,
//! Operation-Location, Location, and none: the resource's provisioningState), with Retry-After
//! honoured on every poll, progress reported, and failures surfaced.

use std::time::Duration;

use aib::azure::arm::ArmError;
use aib_emulator::{LroStyle, RequestRecord};

use super::support::*;

/// Polls of one URL never come sooner than the Retry-After of the answer before them.
fn assert_polls_spaced(records: &[aib_emulator::RequestRecord]) {
    for pair in records.windows(2) {
        if let Some(secs) = pair[0].retry_after {
            let gap = pair[1].at.duration_since(pair[0].at).unwrap_or_default();
            assert!(
                gap >= Duration::from_secs(secs),
                "polled after {gap:?}, asked {secs}s"
            );
        }
    }
}

/// A gallery PUT (201 + Azure-AsyncOperation) is followed through its status URL, unaltered,
/// to `Succeeded`, and the final resource is read back.
#[tokio::test]
async fn azure_async_operation_is_followed_to_the_final_resource() {
    let (emu, azure, recorder) = emulator_with_group("rg").await;
    emu.knobs().set_lro_polls(2);
    emu.clear_requests();
    let path = gallery_id(&emu, "rg", "gallery1");
    let gallery = put_gallery(&azure, &path).await.expect("gallery created");
    assert_eq!(gallery["properties"]["provisioningState"], "Succeeded");
    let log = emu.requests();
    let status_polls: Vec<_> = log
        .iter()
        .filter(|r| r.path.contains("/providers/Microsoft.Compute/locations/") && r.method == "GET")
        .cloned()
        .collect();
    assert!(status_polls.len() >= 2, "status URL polled: {log:?}");
    assert!(
        status_polls.iter().all(|r| r.status == 200),
        "{status_polls:?}"
    );
    assert_polls_spaced(&status_polls);
    assert_eq!(
        log.last().map(|r| (r.method.as_str(), r.path.as_str())),
        Some(("GET", path.as_str())),
        "the final resource is read back"
    );
    let states = recorder.states_of(&path);
    assert!(states.len() >= 3, "a report per poll: {states:?}");
    assert_eq!(
        states.last().map(String::as_str),
        Some("Succeeded"),
        "{states:?}"
    );
}

/// A resource group DELETE (202 + Location) is polled until the final answer; then it is gone.
#[tokio::test]
async fn location_polling_is_followed_until_the_group_is_gone() {
    let (emu, azure, recorder) = emulator_with_group("doomed").await;
    emu.knobs().set_lro_polls(2);
    emu.clear_requests();
    let path = format!("{}/resourcegroups/doomed", sub(&emu));
    azure.arm.delete(&path).await.expect("deleted");
    let log = emu.requests();
    let first = &log[0];
    assert_eq!(
        (first.method.as_str(), first.status),
        ("DELETE", 202),
        "{log:?}"
    );
    let polls: Vec<_> = log[1..]
        .iter()
        .filter(|r| r.method == "GET")
        .cloned()
        .collect();
    assert!(polls.len() >= 2, "{log:?}");
    assert!(
        polls[..polls.len() - 1].iter().all(|r| r.status == 202),
        "{polls:?}"
    );
    assert_polls_spaced(&polls);
    assert!(is_gone(&azure, &path).await);
    assert!(!recorder.progress.lock().unwrap().is_empty());
    // Deleting what is already gone is fine.
    azure.arm.delete(&path).await.expect("idempotent delete");
}

/// A DELETE answered with both Azure-AsyncOperation and Location follows the status URL.
#[tokio::test]
async fn azure_async_operation_wins_over_location() {
    let (emu, azure, _) = emulator_with_group("rg").await;
    let path = gallery_id(&emu, "rg", "gallery2");
    put_gallery(&azure, &path).await.unwrap();
    emu.clear_requests();
    azure.arm.delete(&path).await.expect("gallery deleted");
    let log = emu.requests();
    assert!(
        log.iter()
            .any(|r| r.path.contains("/locations/") && r.path.contains("/operations/")),
        "status URL polled: {log:?}"
    );
    let err = azure.arm.get::<serde_json::Value>(&path).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// A long-running operation that outlives its timeout ends with an error that says so (exit 3).
#[tokio::test]
async fn operation_timeout_is_reported_with_state_and_polls() {
    let (emu, azure, _) = emulator_with_group("rg").await;
    emu.knobs().set_lro_polls(1000);
    let path = gallery_id(&emu, "rg", "slow");
    let options = aib::azure::arm::LroOptions {
        timeout: Some(Duration::from_millis(2500)),
        ..Default::default()
    };
    let err = azure
        .arm
        .put_with::<_, serde_json::Value>(
            &path,
            &serde_json::json!({"location": "westeurope", "properties": {}}),
            &options,
        )
        .await
        .unwrap_err();
    let ArmError::OperationTimeout { polls, state, .. } = &err else {
        panic!("expected OperationTimeout, got {err}");
    };
    assert!(*polls >= 1, "{err}");
    assert_eq!(state, "InProgress");
    assert_eq!(err.exit_status(), aib::exit::ExitStatus::Timeout);
}

const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

/// An image template whose creation fails asynchronously (its script cannot be downloaded)
/// surfaces the operation's error code and message as a typed error.
#[tokio::test]
async fn failed_operation_surfaces_its_code_and_message() {
    let (emu, azure, recorder) = emulator_with_group("rg").await;
    let rg = format!("{}/resourceGroups/rg", sub(&emu));
    let identity: serde_json::Value = azure
        .arm
        .put(
            &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-aib"),
            &serde_json::json!({"location": "westeurope"}),
        )
        .await
        .expect("identity");
    let uai = identity["id"].as_str().unwrap().to_owned();
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    emu.grant(principal, CONTRIBUTOR, &rg);
    let gallery = format!("{rg}/providers/Microsoft.Compute/galleries/gal_aib");
    let _: serde_json::Value = azure
        .arm
        .put(&gallery, &serde_json::json!({"location": "westeurope"}))
        .await
        .expect("gallery");
    let definition = format!("{gallery}/images/ubuntu");
    let _: serde_json::Value = azure
        .arm
        .put(
            &definition,
            &serde_json::json!({"location": "westeurope", "properties": {
                "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                "identifier": {"publisher": "aib", "offer": "ci-agent", "sku": "ubuntu-2204-gen2"}}}),
        )
        .await
        .expect("image definition");
    let script = format!("{}aibscripts/scripts/setup.sh", emu.blob_url());
    let template = serde_json::json!({
        "location": "westeurope",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {uai.clone(): {}}},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "Canonical",
                "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
            "customize": [{"type": "Shell", "name": "setup", "scriptUri": script}],
            "buildTimeoutInMinutes": 60,
            "vmProfile": {"vmSize": "Standard_D2ds_v5", "osDiskSizeGB": 64},
            "distribute": [{"type": "SharedImage", "runOutputName": "ubuntu",
                "galleryImageId": definition,
                "targetRegions": [{"name": "westeurope", "replicaCount": 1}]}]
        }
    });
    let path = format!("{rg}/providers/Microsoft.VirtualMachineImages/imageTemplates/it-fails");
    let err = azure
        .arm
        .put::<_, serde_json::Value>(&path, &template)
        .await
        .unwrap_err();
    let ArmError::OperationFailed(failure) = &err else {
        panic!("expected OperationFailed, got {err}");
    };
    assert_eq!(failure.status, "Failed");
    assert_eq!(failure.error.code, "NoCustomizerScript", "{err}");
    assert!(failure.error.message.contains("setup.sh"), "{err}");
    assert!(
        err.to_string().contains("ended Failed: NoCustomizerScript"),
        "{err}"
    );
    assert_eq!(err.exit_status(), aib::exit::ExitStatus::AzureFailure);
    let states = recorder.states_of(&path);
    assert_eq!(
        states.last().map(String::as_str),
        Some("Failed"),
        "{states:?}"
    );
}

/// Creates and deletes a gallery with the emulator's galleries answering in `style`, and checks
/// that the client followed the operation the way that style needs (`polled` is what its polls
/// look like), honoured every Retry-After, reported progress and got the final resource.
async fn gallery_lifecycle_in_style(style: LroStyle, polled: fn(&RequestRecord, &str) -> bool) {
    let (emu, azure, recorder) = emulator_with_group("rg").await;
    let knobs = emu.knobs();
    knobs.set_lro_style(style);
    knobs.set_lro_polls(2);
    knobs.set_lro_retry_after(1);
    emu.clear_requests();
    let path = gallery_id(&emu, "rg", "styled");
    let gallery = put_gallery(&azure, &path).await.expect("gallery created");
    assert_eq!(
        gallery["properties"]["provisioningState"], "Succeeded",
        "{style}: {gallery}"
    );
    assert_eq!(gallery["name"], "styled", "{style}: {gallery}");
    let create = arm_requests(&emu);
    assert_eq!(create[0].method, "PUT", "{style}: {create:?}");
    let expected_first = if style == LroStyle::Location {
        202
    } else {
        201
    };
    assert_eq!(create[0].status, expected_first, "{style}: {create:?}");
    let polls: Vec<&RequestRecord> = create[1..].iter().filter(|r| polled(r, &path)).collect();
    assert!(
        polls.len() >= 2,
        "{style}: the operation was polled as that style needs: {create:?}"
    );
    assert_each_wait_honoured(&create, style);
    let states = recorder.states_of(&path);
    assert!(states.len() >= 3, "{style}: a report per poll: {states:?}");
    assert_eq!(
        states.last().map(String::as_str),
        Some("Succeeded"),
        "{style}"
    );

    emu.clear_requests();
    azure.arm.delete(&path).await.expect("gallery deleted");
    let delete = arm_requests(&emu);
    assert_eq!(
        (delete[0].method.as_str(), delete[0].status),
        ("DELETE", 202),
        "{style}: {delete:?}"
    );
    assert!(
        delete.len() >= 3,
        "{style}: the delete was polled: {delete:?}"
    );
    assert_each_wait_honoured(&delete, style);
    let err = azure.arm.get::<serde_json::Value>(&path).await.unwrap_err();
    assert!(err.is_not_found(), "{style}: {err}");
    assert!(emu.early_retries().is_empty(), "{style}");
}

/// The ARM requests of the log (token requests left out), in order.
fn arm_requests(emu: &aib_emulator::Emulator) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/subscriptions/"))
        .collect()
}

/// The client sends one request at a time, so each request must come at least the
/// Retry-After of the answer before it later.
fn assert_each_wait_honoured(records: &[RequestRecord], style: LroStyle) {
    let mut asked = 0;
    for pair in records.windows(2) {
        if let Some(secs) = pair[0].retry_after {
            asked += 1;
            let gap = pair[1].at.duration_since(pair[0].at).unwrap_or_default();
            assert!(
                gap >= Duration::from_secs(secs),
                "{style}: {} {} came {gap:?} after an answer asking {secs}s",
                pair[1].method,
                pair[1].path
            );
        }
    }
    assert!(asked >= 1, "{style}: a Retry-After was given: {records:?}");
}

fn is_status_poll(r: &RequestRecord, _: &str) -> bool {
    r.method == "GET"
        && r.status == 200
        && r.path.contains("/providers/Microsoft.Compute/locations/")
        && r.path.contains("/operations/")
}

/// Azure-AsyncOperation, chosen explicitly: the status resource is polled until `Succeeded`.
#[tokio::test]
async fn azure_async_operation_style_is_followed_to_the_end() {
    gallery_lifecycle_in_style(LroStyle::AzureAsyncOperation, is_status_poll).await;
}

/// Operation-Location (the same status resource under the data-plane header) is followed.
#[tokio::test]
async fn operation_location_style_is_followed_to_the_end() {
    gallery_lifecycle_in_style(LroStyle::OperationLocation, is_status_poll).await;
}

/// Location: 202 answers are polled until the resource (200) comes back from the Location URL.
#[tokio::test]
async fn location_style_is_followed_to_the_end() {
    gallery_lifecycle_in_style(LroStyle::Location, |r, _| {
        r.method == "GET" && r.path.contains("/operationresults/")
    })
    .await;
}

/// No polling header: the client re-reads the resource until its provisioningState is
/// terminal, starting after the Retry-After of the 201.
#[tokio::test]
async fn provisioning_state_style_is_followed_to_the_end() {
    gallery_lifecycle_in_style(LroStyle::None, |r, path| {
        r.method == "GET" && r.path.eq_ignore_ascii_case(path) && r.status == 200
    })
    .await;
}
