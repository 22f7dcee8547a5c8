//! Retries against injected faults: throttling with Retry-After, 5xx, terminal 4xx, the
//! deadline, and non-idempotent POSTs.

use std::collections::HashMap;
use std::time::Duration;

use aib::azure::arm::{ArmError, GaveUpReason, Idempotency};
use aib::exit::ExitStatus;
use futures::StreamExt as _;
use reqwest::Method;

use super::support::*;

/// 200 GETs with 30 % 429 (Retry-After: 1) and 10 % 5xx all succeed, and no request follows a
/// 429 on the same resource sooner than the Retry-After it carried.
#[tokio::test]
async fn throttled_calls_all_succeed_and_never_retry_before_retry_after() {
    let emu = emulator().await;
    let (azure, _) = connect_recorded(&settings(&secret_env(&emu)));
    const WORKERS: usize = 20;
    for i in 0..WORKERS {
        create_group(&azure, &emu, &format!("rg-{i}")).await;
    }
    emu.clear_requests();
    emu.knobs().set_throttle_rate(0.3, 1);
    emu.knobs().set_server_error_rate(0.1);

    // 20 workers, each 10 sequential GETs of its own group: a 429 and its retry share a path.
    let results: Vec<Result<(), ArmError>> = futures::stream::iter(0..WORKERS)
        .map(|i| {
            let azure = azure.clone();
            let path = format!("{}/resourcegroups/rg-{i}", sub(&emu));
            async move {
                for _ in 0..10 {
                    let group: serde_json::Value = azure.arm.get(&path).await?;
                    assert_eq!(group["name"], format!("rg-{i}"));
                }
                Ok(())
            }
        })
        .buffer_unordered(WORKERS)
        .collect()
        .await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }

    let log: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path.to_ascii_lowercase().contains("/resourcegroups/rg-"))
        .collect();
    let ok = log.iter().filter(|r| r.status == 200).count();
    let throttled = log.iter().filter(|r| r.status == 429).count();
    let failed = log.iter().filter(|r| r.status >= 500).count();
    assert_eq!(ok, 200, "every call ended in one 200");
    assert!(throttled > 20, "faults were injected: {throttled} × 429");
    assert!(failed > 3, "faults were injected: {failed} × 5xx");
    let mut by_path: HashMap<String, Vec<_>> = HashMap::new();
    for r in log {
        by_path
            .entry(r.path.to_ascii_lowercase())
            .or_default()
            .push(r);
    }
    let mut checked = 0;
    for records in by_path.values() {
        for pair in records.windows(2) {
            if let Some(secs) = pair[0].retry_after.filter(|_| pair[0].status == 429) {
                let gap = pair[1].at.duration_since(pair[0].at).unwrap_or_default();
                assert!(
                    gap >= Duration::from_secs(secs),
                    "retry after {gap:?}, but Retry-After said {secs}s: {pair:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, throttled, "every 429 was followed by a retry");
    let early = emu.early_retries();
    assert!(
        early.is_empty(),
        "the emulator saw early retries: {early:?}"
    );
}

/// A 404 is final: one request, a decoded error with the request and correlation ids.
#[tokio::test]
async fn terminal_client_errors_are_not_retried() {
    let emu = emulator().await;
    let (azure, _) = connect_recorded(&settings(&secret_env(&emu)));
    let path = format!("{}/resourcegroups/missing", sub(&emu));
    let err = azure.arm.get::<serde_json::Value>(&path).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(err.code(), Some("ResourceGroupNotFound"), "{err}");
    let service = err.service().unwrap();
    assert!(service.request_id.is_some(), "{err}");
    assert_eq!(
        service.correlation_id.as_deref(),
        Some(azure.arm.correlation_id().to_string().as_str()),
        "the correlation id of this run is echoed"
    );
    assert_eq!(requests_to(&emu, "/resourcegroups/missing").len(), 1);
    assert_eq!(err.exit_status(), ExitStatus::AzureFailure);
    assert!(is_gone(&azure, &path).await);
}

/// When throttling never stops, the deadline ends the retries with an error that says so.
#[tokio::test]
async fn deadline_ends_retries_with_an_error_that_says_so() {
    let emu = emulator().await;
    let mut s = settings(&secret_env(&emu));
    s.arm.retry.deadline = Duration::from_millis(2500);
    let (azure, _) = connect_recorded(&s);
    emu.knobs().set_throttle_rate(1.0, 1);
    let path = format!("{}/resourcegroups/rg", sub(&emu));
    let err = azure.arm.get::<serde_json::Value>(&path).await.unwrap_err();
    let ArmError::GaveUp {
        attempts,
        elapsed,
        reason,
        ..
    } = &err
    else {
        panic!("expected GaveUp, got {err}");
    };
    assert_eq!(*reason, GaveUpReason::Deadline(Duration::from_millis(2500)));
    let sent = requests_to(&emu, "/resourcegroups/rg").len() as u32;
    assert_eq!(*attempts, sent, "attempts counted as sent");
    assert!(
        (2..=3).contains(attempts),
        "Retry-After 1 s within 2.5 s: {attempts}"
    );
    assert!(*elapsed < Duration::from_millis(2500), "{elapsed:?}");
    let text = err.to_string();
    assert!(text.contains("gave up after"), "{text}");
    assert!(text.contains("deadline"), "{text}");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.exit_status(), ExitStatus::Timeout);
}

/// A non-idempotent POST is not sent again after a 500 (it may have run), but is after a 503.
#[tokio::test]
async fn non_idempotent_post_is_not_resent_after_an_ambiguous_failure() {
    let emu = emulator().await;
    let (azure, _) = connect_recorded(&settings(&secret_env(&emu)));
    emu.knobs().set_server_error_rate(1.0); // half 500, half 503
    let path = format!("{}/providers/Microsoft.Compute/register", sub(&emu));
    let err = azure
        .arm
        .send(Method::POST, &path, None::<&()>, Idempotency::NotIdempotent)
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::NotResent { .. }), "{err}");
    assert!(err.to_string().contains("may have reached Azure"), "{err}");
    let log = requests_to(&emu, "/providers/Microsoft.Compute/register");
    let last = log.last().unwrap();
    assert_eq!(last.status, 500, "it stopped at the 500: {log:?}");
    assert!(
        log[..log.len() - 1].iter().all(|r| r.status == 503),
        "503s were retried: {log:?}"
    );
}

/// A dropped connection after the request was sent: a GET is retried, a POST is not re-sent.
#[tokio::test]
async fn dropped_connections_are_retried_only_when_idempotent() {
    let (emu, azure, _) = emulator_with_group("rg").await;
    emu.clear_requests();
    emu.knobs().set_drop_rate(0.5);
    let path = format!("{}/resourcegroups/rg", sub(&emu));
    for _ in 0..10 {
        let _: serde_json::Value = azure.arm.get(&path).await.expect("GET survives drops");
    }
    let dropped = requests_to(&emu, "/resourcegroups/rg")
        .iter()
        .filter(|r| r.status == 0)
        .count();
    assert!(dropped > 0, "connections were dropped");

    emu.knobs().set_drop_rate(1.0);
    let post = format!("{}/providers/Microsoft.Storage/register", sub(&emu));
    let err = azure
        .arm
        .send(Method::POST, &post, None::<&()>, Idempotency::NotIdempotent)
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::NotResent { .. }), "{err}");
    assert_eq!(
        requests_to(&emu, "/providers/Microsoft.Storage/register").len(),
        1
    );
}

/// A list split into small pages is read to the end through `nextLink`.
#[tokio::test]
async fn lists_follow_next_link_to_the_last_page() {
    let emu = emulator().await;
    let (azure, _) = connect_recorded(&settings(&secret_env(&emu)));
    for i in 0..5 {
        create_group(&azure, &emu, &format!("paged-{i}")).await;
    }
    emu.knobs().set_page_size(2);
    emu.clear_requests();
    let groups: Vec<serde_json::Value> = azure
        .arm
        .list(&format!("{}/resourcegroups", sub(&emu)))
        .await
        .unwrap();
    let mut names: Vec<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"]
    );
    let pages = requests_to(&emu, "/resourcegroups");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[1..]
            .iter()
            .all(|r| r.query.to_ascii_lowercase().contains("skiptoken")),
        "{pages:?}"
    );
}

/// A principal without a role gets 403 AuthorizationFailed, decoded with the missing action
/// and a role that grants it, and it is not retried.
#[tokio::test]
async fn authorization_failed_names_the_missing_action_and_a_role() {
    let emu = emulator().await;
    emu.add_client("11111111-2222-3333-4444-555555555555", "no-roles-secret");
    let mut e = secret_env(&emu);
    e.set(
        aib::azure::env::AZURE_CLIENT_ID,
        "11111111-2222-3333-4444-555555555555",
    );
    e.set(aib::azure::env::AZURE_CLIENT_SECRET, "no-roles-secret");
    let (azure, _) = connect_recorded(&settings(&e));
    let path = format!("{}/resourcegroups/rg-denied", sub(&emu));
    let err = azure
        .arm
        .put::<_, serde_json::Value>(&path, &serde_json::json!({"location": "westeurope"}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.code(), Some("AuthorizationFailed"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            "hint: the identity lacks 'Microsoft.Resources/subscriptions/resourceGroups/write'"
        ),
        "{text}"
    );
    assert!(text.contains("'Contributor'"), "{text}");
    assert_eq!(requests_to(&emu, "/resourcegroups/rg-denied").len(), 1);
}
