//! The headers every ARM request identifies aib and the run with (issue 5): `User-Agent:
//! aib/<version>`, one `x-ms-correlation-request-id` per client (one step run), a fresh
//! `x-ms-client-request-id` per request — read back from the emulator's request log.

use std::collections::HashSet;

use aib_emulator::RequestRecord;

use super::support::*;

fn arm_requests(emu: &aib_emulator::Emulator) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/subscriptions/"))
        .collect()
}

/// A run of creates, a long-running PUT with its polls, paged lists, throttled-and-retried
/// reads and a long-running DELETE: every ARM request carries aib's User-Agent and the
/// client's one correlation id, each a client request id of its own; the next step run (settings
/// resolved anew) has another correlation id.
#[tokio::test]
async fn every_arm_request_carries_user_agent_and_one_correlation_id() {
    let emu = emulator().await;
    emu.knobs().set_page_size(1);
    let first_run = settings(&secret_env(&emu));
    let (azure, _) = connect_recorded(&first_run);
    create_group(&azure, &emu, "rg-one").await;
    create_group(&azure, &emu, "rg-two").await;
    let gallery = gallery_id(&emu, "rg-one", "headers");
    put_gallery(&azure, &gallery)
        .await
        .expect("gallery created");
    let groups: Vec<serde_json::Value> = azure
        .arm
        .list(&format!("{}/resourcegroups", sub(&emu)))
        .await
        .expect("groups listed");
    assert_eq!(groups.len(), 2, "{groups:?}");
    emu.knobs().set_throttle_rate(0.3, 0);
    for _ in 0..30 {
        let _: serde_json::Value = azure.arm.get(&gallery).await.expect("read");
    }
    emu.knobs().set_throttle_rate(0.0, 0);
    azure
        .arm
        .delete(&format!("{}/resourcegroups/rg-two", sub(&emu)))
        .await
        .expect("group deleted");

    let log = arm_requests(&emu);
    assert!(log.len() >= 40, "{} ARM requests", log.len());
    assert!(
        log.iter().any(|r| r.status == 429),
        "some requests were throttled and sent again"
    );
    let user_agent = format!("aib/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(aib::azure::http::USER_AGENT, user_agent);
    let correlation = azure.arm.correlation_id().to_string();
    let mut client_ids = HashSet::new();
    for r in &log {
        assert_eq!(r.user_agent.as_deref(), Some(user_agent.as_str()), "{r:?}");
        assert_eq!(
            r.correlation_request_id.as_deref(),
            Some(correlation.as_str()),
            "{r:?}"
        );
        let id = r.client_request_id.clone().expect("client request id");
        assert!(client_ids.insert(id), "client request id reused: {r:?}");
    }

    emu.clear_requests();
    // The next step run resolves its settings (and so its correlation id) anew.
    let (next_run, _) = connect_recorded(&settings(&secret_env(&emu)));
    let _: serde_json::Value = next_run.arm.get(&gallery).await.expect("read");
    let next = next_run.arm.correlation_id().to_string();
    assert_ne!(next, correlation);
    let log = arm_requests(&emu);
    assert!(!log.is_empty());
    assert!(
        log.iter()
            .all(|r| r.correlation_request_id.as_deref() == Some(next.as_str())),
        "{log:?}"
    );
}

/// The request log (also served at `/_emulator/requests`) keeps no bearer token and no
/// client secret, only the identifying headers.
#[tokio::test]
async fn request_log_keeps_no_token_or_secret() {
    let (emu, _azure, recorder) = emulator_with_group("rg").await;
    let log = serde_json::to_string(&emu.requests()).expect("log serializes");
    assert!(log.contains("user_agent"), "{log}");
    assert!(!log.contains(emu.client_secret()), "{log}");
    let tokens = recorder.secrets.lock().unwrap().clone();
    assert!(!tokens.is_empty(), "the ARM token was registered");
    for token in tokens {
        assert!(!log.contains(&token), "a registered secret is in the log");
    }
    assert!(!log.contains("eyJ"), "no JWT in the log: {log}");
}
