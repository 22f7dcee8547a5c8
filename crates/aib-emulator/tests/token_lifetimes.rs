//! Token lifetimes at high time scales: a token lives at least its configured lifetime in real
//! time (rounded up to whole seconds, never down), and `expires_in`, `expires_on` and the `exp`
//! claim agree, so a client that counts from the answer never sends a token ARM refuses.

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap_or("");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_default(),
    )
    .unwrap_or(Value::Null)
}

/// `expires_in` as a number, or as the string the v1 and managed identity answers use.
fn secs(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

async fn list_groups(emu: &aib_emulator::Emulator, http: &reqwest::Client, token: &str) -> u16 {
    bearer_get(http, &groups_url(emu), token)
        .await
        .status()
        .as_u16()
}

/// Checks one token answer: `expires_in` rounded up from `real` seconds, `exp` at least that far
/// from when the request was sent and at most a second beyond what the client can compute.
fn assert_lifetime(answer: &Value, real: f64, sent: SystemTime, received: SystemTime) -> String {
    let expires_in = secs(&answer["expires_in"]);
    assert_eq!(expires_in, real.ceil() as u64, "{answer}");
    let jwt = answer["access_token"].as_str().unwrap_or_default();
    let exp = claims(jwt)["exp"].as_u64().expect("exp claim");
    assert!(
        exp as f64 >= unix_f64(sent) + real,
        "exp {exp} is less than {real}s after the request ({})",
        unix_f64(sent)
    );
    assert!(
        exp as f64 <= unix_f64(received) + expires_in as f64 + 1.0,
        "exp {exp} disagrees with expires_in {expires_in}"
    );
    if let Some(on) = answer.get("expires_on") {
        assert_eq!(secs(on), exp, "expires_on is the exp claim");
    }
    jwt.to_string()
}

/// Sends one token request (a future, so nothing is sent before the clock is read) and checks
/// its answer with `assert_lifetime`; every endpoint's answer is timed the same way.
async fn token_lifetime(request: impl Future<Output = reqwest::Response>, real: f64) -> String {
    let sent = SystemTime::now();
    let r = request.await;
    let received = SystemTime::now();
    assert_eq!(r.status(), 200);
    assert_lifetime(&json(r).await, real, sent, received)
}

/// At 40x a 60-second token lasts 1.5 real seconds: `expires_in` says 2 (not 1), and the token
/// is still accepted by ARM 1.6 s after it was requested.
#[tokio::test]
async fn short_token_lives_at_least_its_configured_real_time() {
    let emu = emulator(false).await;
    emu.knobs().set_time_scale(40.0);
    emu.knobs().set_token_lifetime(Duration::from_secs(60));
    let http = client(&emu);
    let started = Instant::now();
    let token = token_lifetime(login(&emu, &http, MGMT_SCOPE), 1.5).await;
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(started.elapsed())).await;
    assert_eq!(list_groups(&emu, &http, &token).await, 200);
}

/// A lifetime below one real second (60 s at 120x) is one second, never zero; the v1 endpoint
/// and the managed identity endpoint round the same way and their `expires_on` is the `exp`.
#[tokio::test]
async fn sub_second_lifetimes_round_up_on_every_token_endpoint() {
    let emu = emulator(false).await;
    emu.knobs().set_time_scale(120.0);
    emu.knobs().set_token_lifetime(Duration::from_secs(60));
    let http = client(&emu);
    token_lifetime(login(&emu, &http, MGMT_SCOPE), 0.5).await;
    let v1 = async {
        http.post(format!("{}{}/oauth2/token", emu.url(), emu.tenant_id()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", emu.client_id()),
                ("client_secret", emu.client_secret()),
                ("resource", "https://management.azure.com/"),
            ])
            .send()
            .await
            .expect("v1 token")
    };
    token_lifetime(v1, 0.5).await;
    let (url, header) = managed_identity_url(&emu);
    let mi = async {
        http.get(url)
            .header("metadata", "true")
            .header("x-identity-header", &header)
            .send()
            .await
            .expect("mi token")
    };
    token_lifetime(mi, 0.5).await;
}

/// A whole number of real seconds is not padded: 3600 s at 120x is exactly 30.
#[tokio::test]
async fn whole_second_lifetimes_are_not_padded() {
    let emu = emulator(false).await;
    emu.knobs().set_time_scale(120.0);
    let http = client(&emu);
    token_lifetime(login(&emu, &http, MGMT_SCOPE), 30.0).await;
}

/// A GitHub id token configured for 60 s at 40x (1.5 real seconds) can still be exchanged
/// 1.6 s after it was issued.
#[tokio::test]
async fn short_federated_token_lives_at_least_its_configured_real_time() {
    let emu = emulator(false).await;
    emu.knobs().set_time_scale(40.0);
    emu.knobs()
        .set_federated_token_lifetime(Duration::from_secs(60));
    let http = client(&emu);
    let started = Instant::now();
    let assertion = github_assertion(&emu, &http).await;
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(started.elapsed())).await;
    let r = exchange(&emu, &http, emu.client_id(), &assertion).await;
    let status = r.status();
    assert_eq!(status, 200, "{}", json(r).await);
}
