//! Resources of namespaces the emulator does not model (what a failed build leaves in a staging
//! group) and the `resourceTypes` of provider registrations, from which clients choose an
//! api-version for a type they do not know.

mod aib_support;

use aib_support::*;
use serde_json::json;
use std::time::{Duration, Instant};

const NETWORK_API: &str = "2024-07-01";

/// A provider's registration lists each type it serves with the api-versions it accepts,
/// previews included; modelled namespaces list theirs too.
#[tokio::test]
async fn registrations_list_resource_types_with_api_versions() {
    let env = start(false).await;
    let sub = env.sub();
    let network = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.Network"),
            RG_API,
        )
        .await;
    assert_eq!(network.status, 200, "{}", network.body);
    let nsg = network.body["resourceTypes"]
        .as_array()
        .expect("resourceTypes")
        .iter()
        .find(|t| t["resourceType"] == "networkSecurityGroups")
        .expect("networkSecurityGroups is listed");
    assert_eq!(nsg["apiVersions"][0], NETWORK_API, "{nsg}");

    let vault = env
        .get(
            &format!("/subscriptions/{sub}/providers/microsoft.keyvault"),
            RG_API,
        )
        .await;
    let versions = vault.body["resourceTypes"][0]["apiVersions"].to_string();
    assert!(versions.contains("-preview"), "{versions}");

    let aib = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.VirtualMachineImages"),
            RG_API,
        )
        .await;
    assert_eq!(
        aib.body["resourceTypes"][0]["resourceType"],
        "imageTemplates"
    );
    assert!(
        aib.body["resourceTypes"][0]["apiVersions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == AIB_API)),
        "{}",
        aib.body
    );
}

/// A network security group is created, read, listed in its group, then deleted as a
/// long-running operation (202, `Deleting`, then gone); an api-version the registration does
/// not list is refused.
#[tokio::test]
async fn an_unmodelled_resource_lives_and_is_deleted_like_a_network_one() {
    let env = start(false).await;
    let rg = env.rg_id("rg-leftovers");
    assert_eq!(
        env.put(&rg, RG_API, json!({"location": "westeurope"}))
            .await
            .status,
        201
    );
    let nsg = format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/nsg-build");
    let made = env
        .put(
            &nsg,
            NETWORK_API,
            json!({"location": "westeurope", "properties": {"securityRules": []}}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["properties"]["provisioningState"], "Succeeded");

    let wrong = env.get(&nsg, "2019-01-01-preview").await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert_eq!(wrong.code(), "NoRegisteredProviderFound");

    let listed = env.get(&format!("{rg}/resources"), RG_API).await;
    assert_eq!(
        listed.body["value"][0]["type"], "Microsoft.Network/networkSecurityGroups",
        "{}",
        listed.body
    );

    let deleting = env.delete(&nsg, NETWORK_API).await;
    assert_eq!(deleting.status, 202, "{}", deleting.body);
    let location = deleting.header("location").expect("Location");
    assert_eq!(
        env.get(&nsg, NETWORK_API).await.body["properties"]["provisioningState"],
        "Deleting"
    );
    let start = Instant::now();
    loop {
        let poll = env.call_url(reqwest::Method::GET, &location, None).await;
        if poll.status != 202 {
            assert!(matches!(poll.status, 200 | 204), "{}", poll.body);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "delete never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = env.get(&nsg, NETWORK_API).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "ResourceNotFound");
    assert_eq!(env.delete(&nsg, NETWORK_API).await.status, 204);
}
