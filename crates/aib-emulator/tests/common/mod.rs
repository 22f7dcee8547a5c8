//! Helpers shared by the emulator's integration tests: an HTTPS client that trusts the test CA
//! and small wrappers for tokens and ARM calls.

#![allow(dead_code)]

use aib_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

pub const RG_API: &str = "2025-04-01";
pub const AUTHZ_API: &str = "2022-04-01";
pub const MSI_API: &str = "2024-11-30";
pub const STORAGE_API: &str = "2025-06-01";
pub const MGMT_SCOPE: &str = "https://management.azure.com/.default";
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

pub async fn emulator(azurite: bool) -> Emulator {
    Emulator::start(EmulatorConfig {
        azurite,
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

pub fn client(emu: &Emulator) -> reqwest::Client {
    let pem = std::fs::read(emu.ca_file()).expect("ca.pem");
    let ca = reqwest::Certificate::from_pem(&pem).expect("CA parses");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The emulated tenant's v2 token endpoint, where every login and assertion exchange goes.
pub fn token_url(emu: &Emulator) -> String {
    format!("{}{}/oauth2/v2.0/token", emu.url(), emu.tenant_id())
}

/// A client-credentials request to the v2 token endpoint with `fields` after the grant type:
/// a secret login and an assertion exchange differ only in those.
pub async fn post_token(
    emu: &Emulator,
    http: &reqwest::Client,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(fields);
    http.post(token_url(emu))
        .form(&form)
        .send()
        .await
        .expect("token request")
}

pub async fn token_for(
    emu: &Emulator,
    http: &reqwest::Client,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> reqwest::Response {
    post_token(
        emu,
        http,
        &[
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ],
    )
    .await
}

/// The emulator's own client logging in with its secret for `scope`: the answer as it came.
pub async fn login(emu: &Emulator, http: &reqwest::Client, scope: &str) -> reqwest::Response {
    token_for(emu, http, emu.client_id(), emu.client_secret(), scope).await
}

pub async fn mgmt_token(emu: &Emulator, http: &reqwest::Client) -> String {
    let r = login(emu, http, MGMT_SCOPE).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

pub fn arm_url(emu: &Emulator, path: &str, api: &str) -> String {
    format!(
        "{}{}?api-version={api}",
        emu.url(),
        path.trim_start_matches('/')
    )
}

pub async fn json(r: reqwest::Response) -> Value {
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A string field of a JSON answer (`access_token`, `value`, `oidcToken`), empty when it is
/// missing, so a test that reads a token from an answer fails on the use, not on the read.
pub async fn field(r: reqwest::Response, name: &str) -> String {
    json(r).await[name].as_str().unwrap_or_default().to_string()
}

/// Exchanges an id token as a client assertion for a management token as `client_id`, the way
/// federated (workload identity) clients log in.
pub async fn exchange(
    emu: &Emulator,
    http: &reqwest::Client,
    client_id: &str,
    assertion: &str,
) -> reqwest::Response {
    post_token(
        emu,
        http,
        &[
            ("client_id", client_id),
            ("scope", MGMT_SCOPE),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// Asks the GitHub Actions id-token endpoint for a token for `audience`, with the request token
/// the emulator hands out (as `ACTIONS_ID_TOKEN_REQUEST_TOKEN` would be).
pub async fn github_id_token(
    emu: &Emulator,
    http: &reqwest::Client,
    audience: &str,
) -> reqwest::Response {
    let (url, request_token) = emu.github_oidc();
    http.get(format!("{url}&audience={audience}"))
        .header("Authorization", format!("bearer {request_token}"))
        .send()
        .await
        .expect("id token request")
}

/// A GitHub id token for Entra's token exchange audience, checked to be issued: the assertion a
/// federated login sends.
pub async fn github_assertion(emu: &Emulator, http: &reqwest::Client) -> String {
    let r = github_id_token(emu, http, "api://AzureADTokenExchange").await;
    assert_eq!(r.status(), 200);
    field(r, "value").await
}

/// The App Service managed identity endpoint's URL for a management token, and the
/// `X-IDENTITY-HEADER` value it wants.
pub fn managed_identity_url(emu: &Emulator) -> (String, String) {
    let (endpoint, header) = emu.managed_identity();
    (
        format!("{endpoint}?api-version=2019-08-01&resource=https://management.azure.com"),
        header,
    )
}

/// The subscription's resource group list: the cheapest call that proves ARM accepts a token.
pub fn groups_url(emu: &Emulator) -> String {
    arm_url(
        emu,
        &format!("/subscriptions/{}/resourcegroups", emu.subscription_id()),
        RG_API,
    )
}

/// A GET with a bearer token; a transport error fails the test.
pub async fn bearer_get(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.get(url).bearer_auth(token).send().await.expect("get")
}

/// A DELETE with a bearer token; a transport error fails the test.
pub async fn bearer_delete(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.delete(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("delete")
}

/// A HEAD with a bearer token; a transport error fails the test.
pub async fn bearer_head(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.head(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("head")
}

/// A PUT of a JSON body with a bearer token; a transport error fails the test.
pub async fn bearer_put(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> reqwest::Response {
    http.put(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("put")
}

/// Creates resource group `rg` (its ARM path) in eastus, checked to be new (201).
pub async fn new_group(emu: &Emulator, http: &reqwest::Client, token: &str, rg: &str) {
    let r = bearer_put(
        http,
        &arm_url(emu, rg, RG_API),
        token,
        serde_json::json!({"location": "eastus"}),
    )
    .await;
    assert_eq!(r.status(), 201);
}
