//! Tokens are refreshed ahead of expiry: hours of emulated waiting with tokens that live
//! seconds produce no 401.

use std::time::Duration;

use aib_emulator::EmulatorConfig;

use super::support::*;

/// A two-hour (emulated) long-running operation polled once a second with 60-second tokens
/// (at 120× time: half a real second, which the emulator rounds up to one, never down to
/// nothing): no request is ever refused with 401, because tokens are renewed before they
/// expire.
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
    let path = gallery_id(&emu, "rg", "long");
    let started = std::time::Instant::now();
    let gallery = put_gallery(&azure, &path)
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

/// A credential with a cached token that ARM no longer accepts (revoked, or from another
/// tenant), as azure_identity would keep handing out until shortly before it expires.
#[derive(Debug)]
struct Revoked;

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for Revoked {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Ok(azure_core::credentials::AccessToken::new(
            azure_core::credentials::Secret::new("revoked-token"),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// A 401 drops the cached token, rebuilds the credential (so its own cache cannot hand the
/// same token back) and sends the request once more: one 401, then 200.
#[tokio::test]
async fn unauthorized_rebuilds_the_credential_and_retries_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let emu = emulator().await;
    let s = settings(&secret_env(&emu));
    let http = aib::azure::http::build_client(&s.http).unwrap();
    let observer: Arc<dyn aib::azure::Observer> = Arc::new(Recorder::default());
    let builds = Arc::new(AtomicU32::new(0));
    let factory: aib::azure::auth::CredentialFactory = {
        let (plan, cloud, http, observer, builds) = (
            s.auth.clone(),
            s.cloud.clone(),
            http.clone(),
            observer.clone(),
            builds.clone(),
        );
        Arc::new(move || {
            if builds.fetch_add(1, Ordering::SeqCst) == 0 {
                return Ok(Arc::new(Revoked) as Arc<dyn azure_core::credentials::TokenCredential>);
            }
            aib::azure::auth::build_credential(&plan, &cloud, &http, observer.clone())
        })
    };
    let tokens =
        aib::azure::auth::TokenProvider::rebuilding(factory, None, observer.clone()).unwrap();
    let arm =
        aib::azure::arm::ArmClient::new(s.cloud.clone(), http, tokens, observer, s.arm.clone());
    let path = format!("{}/resourcegroups", sub(&emu));
    let groups: Vec<serde_json::Value> = arm.list(&path).await.expect("second try succeeds");
    assert!(groups.is_empty());
    let statuses: Vec<u16> = requests_to(&emu, "/resourcegroups")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [401, 200]);
    assert_eq!(
        builds.load(Ordering::SeqCst),
        2,
        "the credential was rebuilt once"
    );
}
