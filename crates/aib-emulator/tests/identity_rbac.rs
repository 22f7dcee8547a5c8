//! Managed identities, role assignments and their eventual consistency, and RBAC enforcement.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// A new identity's principal is unknown to role assignments for a while (PrincipalNotFound),
/// unless principalType ServicePrincipal is sent; duplicates and changed reuse conflict.
#[tokio::test]
async fn role_assignment_follows_principal_window_and_conflict_rules() {
    let emu = emulator(false).await;
    emu.knobs()
        .set_principal_visibility_delay(Duration::from_secs(60));
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let sub = emu.subscription_id().to_string();
    let rg = format!("/subscriptions/{sub}/resourceGroups/rg-id");
    new_group(&emu, &http, &token, &rg).await;
    let id_path = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aib-id");
    let r = bearer_put(
        &http,
        &arm_url(&emu, &id_path, MSI_API),
        &token,
        json!({"location": "eastus"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let ident = json(r).await;
    let principal = ident["properties"]["principalId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ident["properties"]["clientId"].is_string());
    assert!(
        ident["id"]
            .as_str()
            .unwrap_or_default()
            .contains("/resourcegroups/")
    );

    let reader = format!(
        "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
    );
    let name1 = "11111111-1111-1111-1111-111111111111";
    let ra = |name: &str| {
        arm_url(
            &emu,
            &format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            AUTHZ_API,
        )
    };
    let r = bearer_put(
        &http,
        &ra(name1),
        &token,
        json!({"properties": {"roleDefinitionId": reader, "principalId": principal}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v = json(r).await;
    assert_eq!(v["error"]["code"], "PrincipalNotFound");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(" does not exist in the directory ")
    );

    let body = json!({"properties": {"roleDefinitionId": reader, "principalId": principal, "principalType": "ServicePrincipal"}});
    let r = bearer_put(&http, &ra(name1), &token, body.clone()).await;
    assert_eq!(r.status(), 201);
    // Same name, same content: idempotent.
    assert!(
        bearer_put(&http, &ra(name1), &token, body.clone())
            .await
            .status()
            .is_success()
    );
    // Same triple, another name.
    let r = bearer_put(
        &http,
        &ra("22222222-2222-2222-2222-222222222222"),
        &token,
        body,
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(json(r).await["error"]["code"], "RoleAssignmentExists");
    // Same name, another role.
    let contributor = reader.replace(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
    );
    let r = bearer_put(&http, &ra(name1), &token, json!({"properties": {"roleDefinitionId": contributor, "principalId": principal, "principalType": "ServicePrincipal"}})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        json(r).await["error"]["code"],
        "RoleAssignmentUpdateNotPermitted"
    );
    // Not a GUID.
    let r = bearer_put(
        &http,
        &ra("not-a-guid"),
        &token,
        json!({"properties": {"roleDefinitionId": reader, "principalId": principal}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    // Listing with atScope() sees it; DELETE answers 200 then 204.
    let list = json(
        bearer_get(
            &http,
            &format!(
                "{}&$filter=atScope()",
                ra("").replace("/roleAssignments/?", "/roleAssignments?")
            ),
            &token,
        )
        .await,
    )
    .await;
    assert!(
        list["value"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["name"] == name1)),
        "{list}"
    );
    assert_eq!(bearer_delete(&http, &ra(name1), &token).await.status(), 200);
    assert_eq!(bearer_delete(&http, &ra(name1), &token).await.status(), 204);
}

/// A principal without a role gets 403 AuthorizationFailed naming principal, action and scope;
/// after an assignment it is still refused until the propagation delay has passed.
#[tokio::test]
async fn rbac_is_enforced_with_propagation_delay() {
    let emu = emulator(false).await;
    emu.knobs()
        .set_rbac_propagation_delay(Duration::from_secs(30));
    emu.knobs().set_time_scale(30.0);
    let http = client(&emu);
    let owner = mgmt_token(&emu, &http).await;
    let oid = emu.add_client("33333333-3333-3333-3333-333333333333", "s3cret");
    let r = token_for(
        &emu,
        &http,
        "33333333-3333-3333-3333-333333333333",
        "s3cret",
        MGMT_SCOPE,
    )
    .await;
    let token = field(r, "access_token").await;
    let sub = emu.subscription_id().to_string();
    let rg = arm_url(
        &emu,
        &format!("/subscriptions/{sub}/resourceGroups/rg-x"),
        RG_API,
    );
    let r = bearer_put(&http, &rg, &token, json!({"location": "eastus"})).await;
    assert_eq!(r.status(), 403);
    let msg = json(r).await["error"].clone();
    assert_eq!(msg["code"], "AuthorizationFailed");
    let text = msg["message"].as_str().unwrap_or_default();
    assert!(
        text.contains(&oid)
            && text.contains("Microsoft.Resources/subscriptions/resourceGroups/write")
            && text.contains("/resourceGroups/rg-x"),
        "{text}"
    );

    let ra = arm_url(
        &emu,
        &format!(
            "/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/44444444-4444-4444-4444-444444444444"
        ),
        AUTHZ_API,
    );
    let r = bearer_put(&http, &ra, &owner, json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"), "principalId": oid, "principalType": "ServicePrincipal"}})).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        bearer_put(&http, &rg, &token, json!({"location": "eastus"}))
            .await
            .status(),
        403
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        bearer_put(&http, &rg, &token, json!({"location": "eastus"}))
            .await
            .status(),
        201
    );
    // Contributor may not write role assignments.
    let r = bearer_put(&http, &ra.replace("44444444", "55555555"), &token, json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"), "principalId": oid}})).await;
    assert_eq!(r.status(), 403);
}

/// Built-in roles carry their real GUIDs; custom roles can be created, read and deleted.
#[tokio::test]
async fn role_definitions_builtin_and_custom() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let sub = emu.subscription_id().to_string();
    let defs = format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions");
    for (guid, name) in [
        ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
        ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
        ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"),
        (
            "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
            "Storage Blob Data Reader",
        ),
        (
            "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
            "Storage Blob Data Contributor",
        ),
        (
            "f1a07417-d97a-45cb-824c-7a7467783830",
            "Managed Identity Operator",
        ),
        (
            "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
            "Role Based Access Control Administrator",
        ),
    ] {
        let v = json(
            bearer_get(
                &http,
                &arm_url(&emu, &format!("{defs}/{guid}"), AUTHZ_API),
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(v["properties"]["roleName"], name);
    }
    let custom = format!("{defs}/66666666-6666-6666-6666-666666666666");
    let body = json!({"properties": {"roleName": "AIB image writer", "type": "CustomRole", "permissions": [{"actions": ["Microsoft.Compute/galleries/read"], "notActions": [], "dataActions": [], "notDataActions": []}], "assignableScopes": [format!("/subscriptions/{sub}")]}});
    assert_eq!(
        bearer_put(
            &http,
            &arm_url(&emu, &custom, AUTHZ_API),
            &token,
            body.clone()
        )
        .await
        .status(),
        201
    );
    let clash = bearer_put(
        &http,
        &arm_url(
            &emu,
            &custom.replace("66666666-6666", "77777777-7777"),
            AUTHZ_API,
        ),
        &token,
        body,
    )
    .await;
    assert_eq!(clash.status(), 409);
    let list = json(
        bearer_get(
            &http,
            &format!(
                "{}&$filter=roleName%20eq%20'AIB%20image%20writer'",
                arm_url(&emu, &defs, AUTHZ_API)
            ),
            &token,
        )
        .await,
    )
    .await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        bearer_delete(&http, &arm_url(&emu, &custom, AUTHZ_API), &token)
            .await
            .status(),
        200
    );
    assert_eq!(
        bearer_get(&http, &arm_url(&emu, &custom, AUTHZ_API), &token)
            .await
            .status(),
        404
    );
}
