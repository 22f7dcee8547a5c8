//! Tokens are refreshed ahead of expiry: hours of emulated waiting with tokens that live
//! seconds produce no 401.

use std::time::Duration;

use aib_emulator::EmulatorConfig;

use super::support::*;

/// A two-hour (emulated) long-running operation polled once a second with 60-second tokens
/// (at 120× time: one real second, the emulator's shortest): no request is ever refused with
/// 401, because tokens are renewed before they expire, and a token issued at the very end of
/// its only second is waited out instead of being sent.
#[tokio::test]
async fn two_hour_wait_with_short_tokens_makes_no_401() {
    let emu = emulator_with(EmulatorConfig {
        time_scale: 120.0,
        token_lifetime: Duration::from_secs(60),
        ..EmulatorConfig::default()
    })
    .await;
    let (azure, _) = connect_recorded(&settings(&secret_env(&emu)));
    create_group(&azure, &emu, "rg").await;
    emu.knobs().set_lro_polls(0);
    emu.knobs().set_lro_duration(Duration::from_secs(2 * 3600));
    emu.knobs().set_lro_retry_after(1);
    let path = format!(
        "{}/resourceGroups/rg/providers/Microsoft.Compute/galleries/long",
        sub(&emu)
    );
    let started = std::time::Instant::now();
    let gallery: serde_json::Value = azure
        .arm
        .put(
            &path,
            &serde_json::json!({"location": "westeurope", "properties": {}}),
        )
        .await
        .expect("the two-hour operation succeeds");
    assert_eq!(gallery["properties"]["provisioningState"], "Succeeded");
    assert!(
        started.elapsed() >= Duration::from_secs(55),
        "{:?}",
        started.elapsed()
    );
    let log = emu.requests();
    let unauthorized: Vec<_> = log.iter().filter(|r| r.status == 401).collect();
    assert!(unauthorized.is_empty(), "{unauthorized:?}");
    let token_requests = log
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert!(
        token_requests >= 20,
        "tokens were renewed along the way: {token_requests}"
    );
}
