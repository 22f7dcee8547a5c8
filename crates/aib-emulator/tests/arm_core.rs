//! ARM core and Entra token behaviour of the emulator, driven over real HTTPS with reqwest.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Client-secret login returns a JWT with the claims Azurite and ARM check, and real-second expiry.
#[tokio::test]
async fn client_secret_login_issues_scoped_jwt() {
    let emu = emulator(false).await;
    emu.knobs().set_time_scale(120.0);
    let http = client(&emu);
    let r = login(&emu, &http, STORAGE_SCOPE).await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    // 3600 emulated seconds at 120x = 30 real seconds.
    assert_eq!(v["expires_in"], json!(30));
    let token = v["access_token"].as_str().unwrap_or("");
    let payload = token.split('.').nth(1).unwrap_or("");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    assert_eq!(claims["aud"], "https://storage.azure.com");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", emu.tenant_id())
    );
    assert_eq!(claims["oid"], emu.object_id());
    assert_eq!(claims["appid"], emu.client_id());
    for k in ["iat", "nbf", "exp"] {
        assert!(claims[k].is_u64(), "{k} missing");
    }
}

/// A wrong secret and an unknown client get Entra's AADSTS error JSON with the right status.
#[tokio::test]
async fn bad_credentials_get_aadsts_errors() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let r = token_for(&emu, &http, emu.client_id(), "wrong", MGMT_SCOPE).await;
    assert_eq!(r.status(), 401);
    let v = json(r).await;
    assert_eq!(v["error"], "invalid_client");
    assert_eq!(v["error_codes"][0], 7000215);
    let r = token_for(
        &emu,
        &http,
        "00000000-0000-0000-0000-000000000001",
        "x",
        MGMT_SCOPE,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error_codes"][0], 700016);
}

/// Resource group lifecycle: 201/200, immutable location, HEAD, delete as a Location LRO that
/// shows `Deleting`, and the ARM headers with a decreasing rate-limit counter.
#[tokio::test]
async fn resource_group_lifecycle_follows_arm() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let rg = format!(
        "/subscriptions/{}/resourcegroups/rg-one",
        emu.subscription_id()
    );
    let put = |loc: &'static str| {
        http.put(arm_url(&emu, &rg, RG_API))
            .bearer_auth(&token)
            .header("x-ms-correlation-request-id", "corr-1")
            .json(&json!({"location": loc, "tags": {"env": "sbx"}}))
            .send()
    };
    let r = put("westeurope").await.expect("put");
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-ms-correlation-request-id"], "corr-1");
    assert!(r.headers().contains_key("x-ms-request-id"));
    let w1: u64 = r.headers()["x-ms-ratelimit-remaining-subscription-writes"]
        .to_str()
        .unwrap_or("")
        .parse()
        .unwrap_or(0);
    let r = put("westeurope").await.expect("put");
    assert_eq!(r.status(), 200);
    let w2: u64 = r.headers()["x-ms-ratelimit-remaining-subscription-writes"]
        .to_str()
        .unwrap_or("")
        .parse()
        .unwrap_or(0);
    assert!(w2 < w1, "counter must decrease: {w1} then {w2}");
    let r = put("eastus").await.expect("put");
    assert_eq!(r.status(), 409);
    assert_eq!(
        json(r).await["error"]["code"],
        "InvalidResourceGroupLocation"
    );

    let upper = rg
        .replace("resourcegroups", "resourceGroups")
        .replace("rg-one", "RG-ONE");
    let r = bearer_head(&http, &arm_url(&emu, &upper, RG_API), &token).await;
    assert_eq!(r.status(), 204);

    let r = bearer_delete(&http, &arm_url(&emu, &rg, RG_API), &token).await;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap_or("").to_string();
    assert!(r.headers().contains_key("retry-after"));
    let g = json(bearer_get(&http, &arm_url(&emu, &rg, RG_API), &token).await).await;
    assert_eq!(g["properties"]["provisioningState"], "Deleting");
    let mut polls = 0;
    loop {
        let r = bearer_get(&http, &location, &token).await;
        polls += 1;
        if r.status() == 404 {
            panic!("{location}: {}", r.text().await.unwrap_or_default());
        }
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 202);
        assert!(polls < 20, "delete never finished");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(polls >= 2, "the first poll must be answered in progress");
    let r = bearer_head(&http, &arm_url(&emu, &rg, RG_API), &token).await;
    assert_eq!(r.status(), 404);
}

/// Api-version is required and checked per provider; the message names supported versions.
#[tokio::test]
async fn api_version_is_checked_per_provider() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let rg = format!(
        "{}subscriptions/{}/resourcegroups/x",
        emu.url(),
        emu.subscription_id()
    );
    let r = bearer_get(&http, &rg, &token).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"]["code"], "MissingApiVersionParameter");
    let r = bearer_get(&http, &format!("{rg}?api-version=2099-01-01"), &token).await;
    assert_eq!(r.status(), 400);
    let v = json(r).await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("2025-04-01"),
        "{v}"
    );
    let uami = format!(
        "/subscriptions/{}/resourceGroups/x/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        emu.subscription_id()
    );
    let r = bearer_get(&http, &arm_url(&emu, &uami, RG_API), &token).await;
    assert_eq!(r.status(), 400);
    assert!(
        json(r).await["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("2024-11-30")
    );
}

/// The subscriptions API answers in its own api-versions (`az login` lists subscriptions with
/// 2022-12-01) but only on its own paths: a resource group refuses 2022-12-01.
#[tokio::test]
async fn subscriptions_api_serves_az_login_versions() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let base = emu.url().to_string();
    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).bearer_auth(&token);
        async move {
            let r = request.send().await.expect("get");
            (r.status().as_u16(), json(r).await)
        }
    };
    let (status, v) = get("subscriptions?api-version=2022-12-01".into()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["value"][0]["subscriptionId"], emu.subscription_id());
    assert_eq!(v["value"][0]["tenantId"], emu.tenant_id());
    assert_eq!(v["value"][0]["state"], "Enabled");
    let sub = emu.subscription_id();
    let (status, v) = get(format!("subscriptions/{sub}?api-version=2022-12-01")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], format!("/subscriptions/{sub}"));
    let (status, v) = get("tenants?api-version=2022-12-01".into()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["value"][0]["tenantId"], emu.tenant_id());
    let (status, v) = get(format!(
        "subscriptions/{sub}/resourcegroups/x?api-version=2022-12-01"
    ))
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "InvalidApiVersionParameter");
    let (status, v) = get("subscriptions?api-version=2099-01-01".into()).await;
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("2022-12-01"), "{v}");
}

/// Tokens expire on the emulated clock: ARM answers 401 ExpiredAuthenticationToken afterwards.
#[tokio::test]
async fn expired_token_gets_401_expired() {
    let emu = emulator(false).await;
    emu.knobs().set_token_lifetime(Duration::from_secs(60));
    emu.knobs().set_time_scale(60.0);
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let url = groups_url(&emu);
    assert_eq!(bearer_get(&http, &url, &token).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = bearer_get(&http, &url, &token).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(json(r).await["error"]["code"], "ExpiredAuthenticationToken");
    let r = bearer_get(&http, &url, "not-a-token").await;
    assert_eq!(json(r).await["error"]["code"], "InvalidAuthenticationToken");
    let storage = login(&emu, &http, STORAGE_SCOPE).await;
    let st = field(storage, "access_token").await;
    let r = bearer_get(&http, &url, &st).await;
    assert_eq!(
        json(r).await["error"]["code"],
        "InvalidAuthenticationTokenAudience"
    );
}

/// Injected throttling answers 429 TooManyRequests with Retry-After, and the log records it.
#[tokio::test]
async fn throttle_knob_answers_429_with_retry_after() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    emu.knobs().set_throttle_rate(1.0, 7);
    emu.clear_requests();
    let url = groups_url(&emu);
    let r = bearer_get(&http, &url, &token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(json(r).await["error"]["code"], "TooManyRequests");
    let log = emu.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, 429);
    assert_eq!(log[0].retry_after, Some(7));
    assert_eq!(log[0].principal.as_deref(), Some(emu.object_id()));
    emu.knobs().set_throttle_rate(0.0, 1);
    assert_eq!(bearer_get(&http, &url, &token).await.status(), 200);
}

/// Lists are paged with an absolute nextLink carrying $skipToken.
#[tokio::test]
async fn lists_page_with_absolute_next_link() {
    let emu = emulator(false).await;
    emu.knobs().set_page_size(2);
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    for i in 0..5 {
        let rg = format!(
            "/subscriptions/{}/resourcegroups/rg-{i}",
            emu.subscription_id()
        );
        new_group(&emu, &http, &token, &rg).await;
    }
    let mut url = groups_url(&emu);
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let v = json(bearer_get(&http, &url, &token).await).await;
        pages += 1;
        for item in v["value"].as_array().cloned().unwrap_or_default() {
            names.push(item["name"].as_str().unwrap_or("").to_string());
        }
        match v["nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(emu.url().as_str()) && next.contains("$skipToken="),
                    "{next}"
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 5);
}

/// The drop knob closes connections without an answer; the log records them with status 0.
#[tokio::test]
async fn drop_knob_closes_connections_without_answer() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    emu.knobs().set_drop_rate(1.0);
    emu.clear_requests();
    let url = groups_url(&emu);
    let r = http.get(&url).bearer_auth(&token).send().await;
    assert!(r.is_err(), "a dropped connection gives no HTTP answer");
    assert!(emu.requests().iter().all(|r| r.status == 0));
    emu.knobs().set_drop_rate(0.0);
    let r = bearer_get(&http, &url, &token).await;
    assert_eq!(r.status(), 200);
}

/// Injected 500/503 use ARM's error shape, and the knob can be switched off again.
#[tokio::test]
async fn server_error_knob_answers_5xx_in_arm_shape() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    emu.knobs().set_server_error_rate(1.0);
    let url = groups_url(&emu);
    let r = bearer_get(&http, &url, &token).await;
    assert!(r.status() == 500 || r.status() == 503, "{}", r.status());
    assert!(json(r).await["error"]["code"].is_string());
}

/// The log tells a client that honours Retry-After from one that retries at once.
#[tokio::test]
async fn early_retries_flags_clients_that_ignore_retry_after() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    let url = groups_url(&emu);
    emu.knobs().set_throttle_rate(1.0, 1);
    emu.clear_requests();
    let _ = bearer_get(&http, &url, &token).await;
    let _ = bearer_get(&http, &url, &token).await;
    assert_eq!(emu.early_retries().len(), 1, "an immediate retry is early");
    emu.clear_requests();
    let _ = bearer_get(&http, &url, &token).await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let _ = bearer_get(&http, &url, &token).await;
    assert!(
        emu.early_retries().is_empty(),
        "waiting Retry-After is fine"
    );
}

/// Another client can be given a federated credential for the emulator's GitHub tokens.
#[tokio::test]
async fn federated_credential_can_be_added_to_another_client() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let other = "99999999-9999-9999-9999-999999999999";
    emu.add_client(other, "unused-secret");
    let (issuer, subject) = emu.github_subject();
    assert!(emu.add_federated_credential(other, issuer, subject));
    assert!(!emu.add_federated_credential("unknown", issuer, subject));
    let assertion = github_assertion(&emu, &http).await;
    let r = exchange(&emu, &http, other, &assertion).await;
    assert_eq!(r.status(), 200);
}

/// A state dir keeps the test CA: a second start reuses ca.pem, so trusted clients keep working.
#[tokio::test]
async fn state_dir_keeps_the_ca_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || aib_emulator::EmulatorConfig {
        azurite: false,
        state_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let first = aib_emulator::Emulator::start(config())
        .await
        .expect("start");
    let ca = std::fs::read(first.ca_file()).expect("ca.pem");
    assert!(dir.path().join("cert.pem").is_file() && dir.path().join("key.pem").is_file());
    drop(first);
    let second = aib_emulator::Emulator::start(config())
        .await
        .expect("restart");
    assert_eq!(std::fs::read(second.ca_file()).expect("ca.pem"), ca);
    let http = client(&second);
    assert!(!mgmt_token(&second, &http).await.is_empty());
}
