//! CI credential sources of the emulated Entra: GitHub Actions and Azure Pipelines id tokens
//! exchanged as client assertions, and the App Service-style managed identity endpoint.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

async fn exchange(
    emu: &aib_emulator::Emulator,
    http: &reqwest::Client,
    assertion: &str,
) -> reqwest::Response {
    http.post(format!(
        "{}{}/oauth2/v2.0/token",
        emu.url(),
        emu.tenant_id()
    ))
    .form(&[
        ("grant_type", "client_credentials"),
        ("client_id", emu.client_id()),
        ("scope", "https://management.azure.com/.default"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ])
    .send()
    .await
    .expect("token request")
}

async fn github_token(emu: &aib_emulator::Emulator, http: &reqwest::Client) -> String {
    let (url, request_token) = emu.github_oidc();
    let r = http
        .get(format!("{url}&audience=api://AzureADTokenExchange"))
        .header("Authorization", format!("bearer {request_token}"))
        .send()
        .await
        .expect("id token request");
    assert_eq!(r.status(), 200);
    json(r).await["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A GitHub id token exchanged as a client assertion logs in as the emulator's principal.
#[tokio::test]
async fn github_id_token_exchanges_for_an_arm_token() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let assertion = github_token(&emu, &http).await;
    let r = exchange(&emu, &http, &assertion).await;
    assert_eq!(r.status(), 200);
    let token = json(r).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = arm_url(
        &emu,
        &format!("/subscriptions/{}/resourcegroups", emu.subscription_id()),
        RG_API,
    );
    let r = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("list");
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
    let assertion = github_token(&emu, &http).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = exchange(&emu, &http, &assertion).await;
    assert_eq!(r.status(), 400);
    let v = json(r).await;
    assert_eq!(v["error"], "invalid_client");
    assert_eq!(v["error_codes"][0], 700024);
    // A self-made token (not issued by the emulator) is refused too.
    let r = exchange(&emu, &http, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.").await;
    assert_eq!(r.status(), 400);
    // An id token for the wrong audience matches no federated credential.
    let (url, request_token) = emu.github_oidc();
    emu.knobs()
        .set_federated_token_lifetime(Duration::from_secs(300));
    let r = http
        .get(format!("{url}&audience=https://github.com/someone"))
        .header("Authorization", format!("bearer {request_token}"))
        .send()
        .await
        .expect("id token");
    let other = json(r).await["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = exchange(&emu, &http, &other).await;
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
    let assertion = json(r).await["oidcToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(exchange(&emu, &http, &assertion).await.status(), 200);
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
    let (endpoint, header) = emu.managed_identity();
    let url = format!("{endpoint}?api-version=2019-08-01&resource=https://management.azure.com");
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
    let list = arm_url(
        &emu,
        &format!("/subscriptions/{}/resourcegroups", emu.subscription_id()),
        RG_API,
    );
    assert_eq!(
        http.get(&list)
            .bearer_auth(&token)
            .send()
            .await
            .expect("list")
            .status(),
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
