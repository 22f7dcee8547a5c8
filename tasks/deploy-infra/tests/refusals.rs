//! Runs that must stop with a clear error, exit 1, before they create anything: a storage
//! account name owned by someone else, an image definition whose identity differs, a principal
//! that may not create role assignments.

use crate::support::*;

/// A storage account name taken elsewhere in Azure is refused before anything is created.
#[tokio::test]
async fn a_taken_storage_account_name_stops_before_anything_is_created() {
    let emu = emulator().await;
    // "teststorage" is one of the emulator's names owned by another customer.
    let params = Params::local(&[("staibscriptslocal", "teststorage")]);
    let run = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_run(
        &run,
        1,
        &[
            "storage account name 'teststorage' is not available",
            "Choose another storageAccountName",
        ],
    );
    assert_nothing_written(&emu);
}

/// An existing image definition with another osType is an error naming the property and both
/// values; nothing is written, and the definition is not deleted.
#[tokio::test]
async fn a_definition_with_another_os_type_is_refused_and_kept() {
    let emu = emulator().await;
    let arm = azure(&emu).arm;
    let rg = rg_id(&emu);
    let gallery = format!("{rg}/providers/Microsoft.Compute/galleries/gal_aib_local");
    let image = format!("{gallery}/images/ubuntu-2204-agent");
    let _: serde_json::Value = arm
        .put(&rg, &serde_json::json!({"location": "westeurope"}))
        .await
        .unwrap();
    let _: serde_json::Value = arm
        .put(&gallery, &serde_json::json!({"location": "westeurope"}))
        .await
        .unwrap();
    let _: serde_json::Value = arm
        .put(
            &image,
            &serde_json::json!({"location": "westeurope", "properties": {
                "osType": "Windows", "osState": "Generalized", "hyperVGeneration": "V2",
                "identifier": {"publisher": "aib", "offer": "ci-agent", "sku": "ubuntu-2204-gen2"},
                "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"}]}}),
        )
        .await
        .unwrap();
    emu.clear_requests();

    let params = Params::local(&[]);
    let run = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_run(
        &run,
        1,
        &[
            "osType is 'Windows' in Azure, 'Linux' in the parameter file",
            "aib never deletes a definition",
        ],
    );
    assert_nothing_written(&emu);
    assert_eq!(get(&emu, &image).await["properties"]["osType"], "Windows");
}

/// A principal with Contributor but no right to assign roles is told, before any change,
/// which action on which scope it lacks and which roles grant it.
#[tokio::test]
async fn a_principal_that_may_not_assign_roles_is_told_before_any_change() {
    let emu = emulator().await;
    let client = "0b6f3c9e-8c1a-4d6e-9a57-3b1f2c4d5e6f";
    let secret = "test-secret-deploy-infra";
    let env = contributor_env(&emu, client, secret);
    let params = Params::local(&[]);
    let run = deploy_infra(&params, &[], env).await;
    assert_run(
        &run,
        1,
        &[
            "lacks permissions",
            "'Microsoft.Authorization/roleAssignments/write'",
            "Role Based Access Control Administrator, User Access Administrator or Owner",
        ],
    );
    assert_nothing_written(&emu);
    assert!(!run.all().contains(secret));
}

/// A resource group that exists in another region is a conflict (a location cannot change):
/// exit 1, both regions named, nothing written.
#[tokio::test]
async fn a_group_in_another_region_is_a_conflict_not_a_move() {
    let emu = emulator().await;
    let _: serde_json::Value = azure(&emu)
        .arm
        .put(
            &rg_id(&emu),
            &serde_json::json!({"location": "northeurope"}),
        )
        .await
        .unwrap();
    emu.clear_requests();
    let params = Params::local(&[]);
    let run = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_run(
        &run,
        1,
        &[
            "resource group 'rg-aib-local' is in 'northeurope', the parameter file says 'westeurope'",
        ],
    );
    assert_nothing_written(&emu);
}

/// With `--what-if`, missing permissions are a warning next to the plan, and the exit is 0.
#[tokio::test]
async fn what_if_warns_about_missing_permissions_and_succeeds() {
    let emu = emulator().await;
    let client = "5d0c7a1e-2b3f-4c5d-8e9f-0a1b2c3d4e5f";
    let secret = "test-secret-what-if";
    let env = contributor_env(&emu, client, secret);
    let params = Params::local(&[]);
    let run = deploy_infra(&params, &["--what-if"], env).await;
    assert_run(
        &run,
        0,
        &[
            "lacks permissions",
            "'Microsoft.Authorization/roleDefinitions/write'",
        ],
    );
    assert_nothing_written(&emu);
}
