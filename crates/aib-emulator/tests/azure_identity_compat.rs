//! The official Rust credentials (azure_identity 1.0) against the emulated Entra: client secret
//! with a custom authority host, the App Service managed identity endpoint, Azure Pipelines OIDC.
//! One test in this binary, because two of the credentials read their endpoint from the process
//! environment.

mod common;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzurePipelinesCredential, AzurePipelinesCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions,
};
use common::*;
use std::sync::Arc;

fn options(emu: &aib_emulator::Emulator) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = emu.url().as_str().trim_end_matches('/').to_string();
    let cloud: CloudConfiguration = custom.into();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(client(emu)))),
        cloud: Some(Arc::new(cloud)),
        ..Default::default()
    }
}

/// ClientSecret, ManagedIdentity (App Service) and AzurePipelines credentials all get tokens
/// that the emulated ARM accepts, with expiry taken from the emulator's real-second lifetime.
#[tokio::test]
async fn azure_identity_credentials_log_in_against_the_emulator() {
    let emu = emulator(false).await;
    emu.knobs().set_time_scale(60.0);
    let scope = ["https://management.azure.com/.default"];

    let secret = ClientSecretCredential::new(
        emu.tenant_id(),
        emu.client_id().to_string(),
        Secret::new(emu.client_secret().to_string()),
        Some(ClientSecretCredentialOptions {
            client_options: options(&emu),
        }),
    )
    .expect("credential");
    let token = secret
        .get_token(&scope, None)
        .await
        .expect("client secret token");
    let left = token.expires_on - time::OffsetDateTime::now_utc();
    // 3600 emulated seconds at 60x: one real minute.
    assert!(
        left.whole_seconds() > 50 && left.whole_seconds() <= 60,
        "{left}"
    );

    let (endpoint, header) = emu.managed_identity();
    let (oidc_uri, system_token, connection) = emu.azure_pipelines_oidc();
    // SAFETY: this test binary runs this single test; no other thread reads the environment yet.
    unsafe {
        std::env::set_var("IDENTITY_ENDPOINT", &endpoint);
        std::env::set_var("IDENTITY_HEADER", &header);
        std::env::set_var("SYSTEM_OIDCREQUESTURI", &oidc_uri);
    }
    let mi = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        client_options: options(&emu),
        ..Default::default()
    }))
    .expect("credential");
    let mi_token = mi
        .get_token(&scope, None)
        .await
        .expect("managed identity token");

    let ado = AzurePipelinesCredential::new(
        emu.tenant_id().to_string(),
        emu.client_id().to_string(),
        &connection,
        system_token,
        Some(AzurePipelinesCredentialOptions {
            credential_options: ClientAssertionCredentialOptions {
                client_options: options(&emu),
            },
        }),
    )
    .expect("credential");
    let ado_token = ado.get_token(&scope, None).await.expect("pipelines token");

    let http = client(&emu);
    let url = arm_url(
        &emu,
        &format!("/subscriptions/{}/resourcegroups", emu.subscription_id()),
        RG_API,
    );
    for t in [&token, &mi_token, &ado_token] {
        let r = http
            .get(&url)
            .bearer_auth(t.token.secret())
            .send()
            .await
            .expect("list");
        assert_eq!(r.status(), 200);
    }
}
