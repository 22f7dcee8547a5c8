//! Storage accounts through ARM and blobs through the emulator's HTTPS blob front (Azurite
//! behind it): Location-style LRO, name rules, data-role enforcement with Storage's XML errors.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn http_date() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap_or_default()
}

async fn storage_token(
    emu: &aib_emulator::Emulator,
    http: &reqwest::Client,
    id: &str,
    secret: &str,
) -> String {
    let r = token_for(emu, http, id, secret, "https://storage.azure.com/.default").await;
    json(r).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Account PUT is 202 + empty body + Location, invisible until done; then containers and blobs
/// work through the blob front only with a data role (403 AuthorizationPermissionMismatch before).
#[tokio::test]
async fn storage_account_container_and_blob_round_trip() {
    let emu = emulator(true).await;
    emu.knobs().set_rbac_propagation_delay(Duration::ZERO);
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let sub = emu.subscription_id().to_string();
    let rg = format!("/subscriptions/{sub}/resourceGroups/rg-st");
    let r = http
        .put(arm_url(&emu, &rg, RG_API))
        .bearer_auth(&token)
        .json(&json!({"location": "eastus"}))
        .send()
        .await
        .expect("rg");
    assert_eq!(r.status(), 201);

    let acct = format!("{rg}/providers/Microsoft.Storage/storageAccounts/aibtest01");
    let body = json!({"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2",
        "properties": {"allowBlobPublicAccess": false, "minimumTlsVersion": "TLS1_2", "allowSharedKeyAccess": false}});
    let bad = http
        .put(arm_url(
            &emu,
            &acct.replace("aibtest01", "Bad_Name"),
            STORAGE_API,
        ))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 400);
    assert_eq!(json(bad).await["error"]["code"], "AccountNameInvalid");
    let taken = http
        .put(arm_url(
            &emu,
            &acct.replace("aibtest01", "storage"),
            STORAGE_API,
        ))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(taken.status(), 409);
    assert_eq!(
        json(taken).await["error"]["code"],
        "StorageAccountAlreadyTaken"
    );

    let r = http
        .put(arm_url(&emu, &acct, STORAGE_API))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(r.text().await.unwrap_or_default().is_empty());
    let r = http
        .get(arm_url(&emu, &acct, STORAGE_API))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404, "not visible while creating");
    let check = json(
        http.post(arm_url(
            &emu,
            &format!("/subscriptions/{sub}/providers/Microsoft.Storage/checkNameAvailability"),
            STORAGE_API,
        ))
        .bearer_auth(&token)
        .json(&json!({"name": "aibtest01", "type": "Microsoft.Storage/storageAccounts"}))
        .send()
        .await
        .expect("check"),
    )
    .await;
    assert_eq!(check["nameAvailable"], false);
    assert_eq!(check["reason"], "AlreadyExists");
    let account: Value = loop {
        let r = http
            .get(&location)
            .bearer_auth(&token)
            .send()
            .await
            .expect("poll");
        if r.status() == 200 {
            break json(r).await;
        }
        assert_eq!(r.status(), 202);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(account["properties"]["provisioningState"], "Succeeded");
    assert_eq!(account["properties"]["allowSharedKeyAccess"], false);
    assert_eq!(account["properties"]["minimumTlsVersion"], "TLS1_2");
    let blob_endpoint = account["properties"]["primaryEndpoints"]["blob"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(blob_endpoint, format!("{}aibtest01/", emu.blob_url()));

    let container = format!("{acct}/blobServices/default/containers/scripts");
    let r = http
        .put(arm_url(&emu, &container, STORAGE_API))
        .bearer_auth(&token)
        .json(&json!({"properties": {"publicAccess": "None"}}))
        .send()
        .await
        .expect("container");
    assert_eq!(r.status(), 201);

    // Owner of the subscription is not a data role.
    let st = storage_token(&emu, &http, emu.client_id(), emu.client_secret()).await;
    let blob = format!("{blob_endpoint}scripts/dir/hello.sh");
    let upload = |t: String| {
        http.put(&blob)
            .bearer_auth(t)
            .header("x-ms-blob-type", "BlockBlob")
            .header("x-ms-version", "2025-01-05")
            .header("x-ms-date", http_date())
            .body("echo hello\n")
            .send()
    };
    let r = upload(st.clone()).await.expect("upload");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-ms-error-code"],
        "AuthorizationPermissionMismatch"
    );
    assert!(
        r.text()
            .await
            .unwrap_or_default()
            .contains("<Code>AuthorizationPermissionMismatch</Code>")
    );

    let ra = format!(
        "{acct}/providers/Microsoft.Authorization/roleAssignments/88888888-8888-8888-8888-888888888888"
    );
    let r = http.put(arm_url(&emu, &ra, AUTHZ_API)).bearer_auth(&token).json(&json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
        "principalId": emu.object_id(), "principalType": "ServicePrincipal"}})).send().await.expect("ra");
    assert_eq!(r.status(), 201);
    let r = upload(st.clone()).await.expect("upload");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = http
        .get(&blob)
        .bearer_auth(&st)
        .header("x-ms-version", "2025-01-05")
        .header("x-ms-date", http_date())
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap_or_default(), "echo hello\n");
    let list = http
        .get(format!(
            "{blob_endpoint}scripts?restype=container&comp=list&prefix=dir/"
        ))
        .bearer_auth(&st)
        .header("x-ms-version", "2025-01-05")
        .header("x-ms-date", http_date())
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200);
    let xml = list.text().await.unwrap_or_default();
    assert!(xml.contains("<Name>dir/hello.sh</Name>"), "{xml}");
    // A slow body still arrives whole.
    emu.knobs().set_slow_bodies(1.0, Duration::from_millis(5));
    let r = http
        .get(&blob)
        .bearer_auth(&st)
        .header("x-ms-version", "2025-01-05")
        .header("x-ms-date", http_date())
        .send()
        .await
        .expect("download");
    assert_eq!(r.text().await.unwrap_or_default(), "echo hello\n");
    emu.knobs().set_slow_bodies(0.0, Duration::ZERO);
    // Shared key is refused when the account disallows it.
    let r = http
        .get(&blob)
        .header("Authorization", "SharedKey aibtest01:abc")
        .header("x-ms-version", "2025-01-05")
        .send()
        .await
        .expect("sk");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-ms-error-code"],
        "KeyBasedAuthenticationNotPermitted"
    );
    // A management token is the wrong audience for blobs.
    let r = http
        .get(&blob)
        .bearer_auth(&token)
        .header("x-ms-version", "2025-01-05")
        .send()
        .await
        .expect("aud");
    assert_eq!(r.status(), 401);
}
