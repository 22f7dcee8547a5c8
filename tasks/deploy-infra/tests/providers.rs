//! Resource providers the subscription has not registered: a principal that may register them
//! does so before the first write; one that may not is told which and how, before any change.

use crate::support::*;
use aib_emulator::{Emulator, EmulatorConfig};

const UAA: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

async fn emulator_without(namespaces: &[&str]) -> Emulator {
    Emulator::start(EmulatorConfig {
        azurite: false,
        unregistered_providers: namespaces.iter().map(|n| n.to_string()).collect(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts")
}

async fn registration_state(emu: &Emulator, namespace: &str) -> String {
    let path = format!(
        "/subscriptions/{}/providers/{namespace}",
        emu.subscription_id()
    );
    get(emu, &path).await["registrationState"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// An unregistered provider is registered by a principal allowed to, and the run finishes.
#[tokio::test]
async fn an_unregistered_provider_is_registered_before_the_first_write() {
    let emu = emulator_without(&["Microsoft.VirtualMachineImages", "Microsoft.Compute"]).await;
    assert_eq!(
        registration_state(&emu, "Microsoft.Compute").await,
        "NotRegistered"
    );
    let params = Params::local(&[]);
    let run = deploy_infra(&params, &["--output", "json"], ci_env(&emu)).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let posts = write_posts(&emu.requests());
    for ns in ["Microsoft.VirtualMachineImages", "Microsoft.Compute"] {
        assert!(
            posts
                .iter()
                .any(|p| p.ends_with(&format!("/providers/{ns}/register"))),
            "{ns} registered: {posts:?}"
        );
        assert_eq!(registration_state(&emu, ns).await, "Registered");
    }
    let gallery = format!(
        "{}/providers/Microsoft.Compute/galleries/gal_aib_local",
        rg_id(&emu)
    );
    assert_eq!(
        get(&emu, &gallery).await["properties"]["provisioningState"],
        "Succeeded"
    );
}

/// A principal that may write in its resource group but not register providers is told
/// which namespace is missing and the command an administrator runs; nothing is written.
#[tokio::test]
async fn a_principal_that_may_not_register_is_told_before_any_change() {
    let emu = emulator_without(&["Microsoft.VirtualMachineImages"]).await;
    let arm = azure(&emu).arm;
    let rg = rg_id(&emu);
    let _: serde_json::Value = arm
        .put(
            &rg,
            &serde_json::json!({"location": "westeurope", "tags": {"environment": "local", "workload": "image-builder", "managedBy": "aib"}}),
        )
        .await
        .expect("the group is created");
    let client = "6a0d2f7e-3b4c-4e5f-8a9b-0c1d2e3f4a5b";
    let secret = "test-secret-providers";
    let oid = emu.add_client(client, secret);
    emu.grant(&oid, CONTRIBUTOR, &rg);
    emu.grant(&oid, UAA, &rg);
    emu.clear_requests();

    let params = Params::local(&[]);
    let run = deploy_infra(&params, &[], client_env(&emu, client, secret)).await;
    assert_run(
        &run,
        1,
        &[
            "'Microsoft.VirtualMachineImages/register/action'",
            "az provider register --namespace Microsoft.VirtualMachineImages",
        ],
    );
    assert_nothing_written(&emu);
    assert_eq!(write_posts(&emu.requests()), Vec::<String>::new());
    assert_eq!(
        registration_state(&emu, "Microsoft.VirtualMachineImages").await,
        "NotRegistered"
    );
    assert!(!run.all().contains(secret));
}
