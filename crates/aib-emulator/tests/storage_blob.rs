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
    let r = token_for(emu, http, id, secret, STORAGE_SCOPE).await;
    field(r, "access_token").await
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
    new_group(&emu, &http, &token, &rg).await;

    let acct = format!("{rg}/providers/Microsoft.Storage/storageAccounts/aibtest01");
    let body = json!({"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2",
        "properties": {"allowBlobPublicAccess": false, "minimumTlsVersion": "TLS1_2", "allowSharedKeyAccess": false}});
    // PUTs the account body under another account name.
    let put_account = |name: &str| {
        let url = arm_url(&emu, &acct.replace("aibtest01", name), STORAGE_API);
        let (http, token, body) = (&http, &token, body.clone());
        async move { bearer_put(http, &url, token, body).await }
    };
    let bad = put_account("Bad_Name").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(json(bad).await["error"]["code"], "AccountNameInvalid");
    let taken = put_account("storage").await;
    assert_eq!(taken.status(), 409);
    assert_eq!(
        json(taken).await["error"]["code"],
        "StorageAccountAlreadyTaken"
    );

    let r = put_account("aibtest01").await;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(r.text().await.unwrap_or_default().is_empty());
    let r = bearer_get(&http, &arm_url(&emu, &acct, STORAGE_API), &token).await;
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
        let r = bearer_get(&http, &location, &token).await;
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
    let r = bearer_put(
        &http,
        &arm_url(&emu, &container, STORAGE_API),
        &token,
        json!({"properties": {"publicAccess": "None"}}),
    )
    .await;
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
    let r = bearer_put(&http, &arm_url(&emu, &ra, AUTHZ_API), &token, json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
        "principalId": emu.object_id(), "principalType": "ServicePrincipal"}})).await;
    assert_eq!(r.status(), 201);
    // A data-plane GET with the storage token.
    let read = |url: String| {
        http.get(url)
            .bearer_auth(&st)
            .header("x-ms-version", "2025-01-05")
            .header("x-ms-date", http_date())
            .send()
    };
    let r = upload(st.clone()).await.expect("upload");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = read(blob.clone()).await.expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap_or_default(), "echo hello\n");
    let list = read(format!(
        "{blob_endpoint}scripts?restype=container&comp=list&prefix=dir/"
    ))
    .await
    .expect("list");
    assert_eq!(list.status(), 200);
    let xml = list.text().await.unwrap_or_default();
    assert!(xml.contains("<Name>dir/hello.sh</Name>"), "{xml}");
    // A slow body still arrives whole.
    emu.knobs().set_slow_bodies(1.0, Duration::from_millis(5));
    let r = read(blob.clone()).await.expect("download");
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
