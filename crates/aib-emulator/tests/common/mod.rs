//! Helpers shared by the emulator's integration tests: an HTTPS client that trusts the test CA
//! and small wrappers for tokens and ARM calls.

#![allow(dead_code)]

use aib_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

pub const RG_API: &str = "2025-04-01";
pub const AUTHZ_API: &str = "2022-04-01";
pub const MSI_API: &str = "2024-11-30";
pub const STORAGE_API: &str = "2025-06-01";

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

pub async fn token_for(
    emu: &Emulator,
    http: &reqwest::Client,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> reqwest::Response {
    http.post(format!(
        "{}{}/oauth2/v2.0/token",
        emu.url(),
        emu.tenant_id()
    ))
    .form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ])
    .send()
    .await
    .expect("token request")
}

pub async fn mgmt_token(emu: &Emulator, http: &reqwest::Client) -> String {
    let r = token_for(
        emu,
        http,
        emu.client_id(),
        emu.client_secret(),
        "https://management.azure.com/.default",
    )
    .await;
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
