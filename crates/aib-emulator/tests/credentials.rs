//! CI credential sources of the emulated Entra: GitHub Actions and Azure Pipelines id tokens
//! exchanged as client assertions, and the App Service-style managed identity endpoint.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

/// A GitHub id token exchanged as a client assertion logs in as the emulator's principal.
#[tokio::test]
async fn github_id_token_exchanges_for_an_arm_token() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let assertion = github_assertion(&emu, &http).await;
    let r = exchange(&emu, &http, emu.client_id(), &assertion).await;
    assert_eq!(r.status(), 200);
    let token = field(r, "access_token").await;
    let r = bearer_get(&http, &groups_url(&emu), &token).await;
    assert_eq!(r.status(), 200);
    // Without the request token the id-token endpoint refuses.
    let (url, _) = emu.github_oidc();
    let r = http
        .get(format!("{url}&audience=api://AzureADTokenExchange"))
        .header("Authorization", "bearer wrong")
        .send()
        .await
        .expect("id token request");
    assert_eq!(r.status(), 401);
}

/// A cached (expired) id token is refused with AADSTS700024, as Entra does after ~5 minutes.
#[tokio::test]
async fn expired_assertion_is_refused_with_aadsts700024() {
    let emu = emulator(false).await;
    emu.knobs()
        .set_federated_token_lifetime(Duration::from_secs(1));
    let http = client(&emu);
    let assertion = github_assertion(&emu, &http).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = exchange(&emu, &http, emu.client_id(), &assertion).await;
    assert_eq!(r.status(), 400);
    let v = json(r).await;
    assert_eq!(v["error"], "invalid_client");
    assert_eq!(v["error_codes"][0], 700024);
    // A self-made token (not issued by the emulator) is refused too.
    let r = exchange(
        &emu,
        &http,
        emu.client_id(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    )
    .await;
    assert_eq!(r.status(), 400);
    // An id token for the wrong audience matches no federated credential.
    emu.knobs()
        .set_federated_token_lifetime(Duration::from_secs(300));
    let r = github_id_token(&emu, &http, "https://github.com/someone").await;
    let other = field(r, "value").await;
    let r = exchange(&emu, &http, emu.client_id(), &other).await;
    assert_eq!(json(r).await["error_codes"][0], 700212);
}

/// Azure Pipelines: POST with the system token and service connection id → {"oidcToken"}.
#[tokio::test]
async fn azure_pipelines_oidc_token_logs_in() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let (url, system_token, connection) = emu.azure_pipelines_oidc();
    let r = http
        .post(format!(
            "{url}?api-version=7.1&serviceConnectionId={connection}"
        ))
        .bearer_auth(&system_token)
        .header("Content-Type", "application/json")
        .header("Content-Length", "0")
        .send()
        .await
        .expect("oidc request");
    assert_eq!(r.status(), 200);
    let assertion = field(r, "oidcToken").await;
    assert_eq!(
        exchange(&emu, &http, emu.client_id(), &assertion)
            .await
            .status(),
        200
    );
    let r = http
        .post(format!("{url}?api-version=7.1&serviceConnectionId=other"))
        .bearer_auth(&system_token)
        .send()
        .await
        .expect("oidc request");
    assert_eq!(r.status(), 400);
}

/// The managed identity endpoint answers in the App Service 2019-08-01 shape azure_identity reads
/// (`expires_on` as a string), and only with the right X-IDENTITY-HEADER.
#[tokio::test]
async fn managed_identity_endpoint_answers_app_service_shape() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let (url, header) = managed_identity_url(&emu);
    let r = http
        .get(&url)
        .header("metadata", "true")
        .header("x-identity-header", &header)
        .send()
        .await
        .expect("mi request");
    assert_eq!(r.status(), 200);
    let v: Value = json(r).await;
    assert!(v["expires_on"].is_string());
    assert_eq!(v["token_type"], "Bearer");
    let token = v["access_token"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        bearer_get(&http, &groups_url(&emu), &token).await.status(),
        200
    );
    let r = http
        .get(&url)
        .header("x-identity-header", "wrong")
        .send()
        .await
        .expect("mi request");
    assert_eq!(r.status(), 401);
}
