//! The request log keeps the headers a client identifies itself and its run with
//! (`User-Agent`, `x-ms-correlation-request-id`, `x-ms-client-request-id`) and never a
//! secret-bearing one (`Authorization`, `x-identity-header`).

mod common;

use common::*;
use serde_json::Value;

/// An ARM request's identifying headers are logged as sent, also in `/_emulator/requests`; a
/// request without them logs none (not the correlation id ARM makes up for its answer); the
/// bearer token and the managed identity header are nowhere in the log.
#[tokio::test]
async fn identifying_headers_are_logged_and_secrets_are_not() {
    let emu = emulator(false).await;
    let http = client(&emu);
    let token = mgmt_token(&emu, &http).await;
    emu.clear_requests();
    let url = groups_url(&emu);
    let r = http
        .get(&url)
        .bearer_auth(&token)
        .header("user-agent", "aib/9.9.9 test")
        .header("x-ms-correlation-request-id", "corr-1")
        .header("x-ms-client-request-id", "client-1")
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 200);
    let r = bearer_get(&http, &url, &token).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ms-correlation-request-id"));
    let (mi_url, identity_header) = managed_identity_url(&emu);
    let r = http
        .get(mi_url)
        .header("x-identity-header", &identity_header)
        .header("user-agent", "msi-client")
        .send()
        .await
        .expect("mi");
    assert_eq!(r.status(), 200);

    let log = emu.requests();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0].user_agent.as_deref(), Some("aib/9.9.9 test"));
    assert_eq!(log[0].correlation_request_id.as_deref(), Some("corr-1"));
    assert_eq!(log[0].client_request_id.as_deref(), Some("client-1"));
    assert_eq!(log[1].correlation_request_id, None);
    assert_eq!(log[1].client_request_id, None);
    assert_eq!(log[2].user_agent.as_deref(), Some("msi-client"));

    let served: Value = http
        .get(format!("{}_emulator/requests", emu.url()))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    assert_eq!(served[0]["user_agent"], "aib/9.9.9 test");
    assert_eq!(served[0]["correlation_request_id"], "corr-1");
    assert_eq!(served[0]["client_request_id"], "client-1");
    let text = served.to_string();
    assert!(!text.contains(&token), "the bearer token is not logged");
    assert!(
        !text.contains(&identity_header),
        "the identity header is not logged"
    );
}

/// A connection dropped on purpose still logs who sent the request.
#[tokio::test]
async fn dropped_requests_log_their_identifying_headers() {
    let emu = emulator(false).await;
    let http = client(&emu);
    emu.knobs().set_drop_rate(1.0);
    let r = http
        .get(format!("{}_emulator/info", emu.url()))
        .header("user-agent", "dropper")
        .header("x-ms-correlation-request-id", "corr-drop")
        .send()
        .await;
    assert!(r.is_err(), "the connection was dropped");
    emu.knobs().set_drop_rate(0.0);
    let log = emu.requests();
    let dropped = log
        .iter()
        .find(|r| r.status == 0)
        .expect("dropped request logged");
    assert_eq!(dropped.user_agent.as_deref(), Some("dropper"));
    assert_eq!(dropped.correlation_request_id.as_deref(), Some("corr-drop"));
}
