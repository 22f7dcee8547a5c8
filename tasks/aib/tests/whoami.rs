//! `aib whoami` against the emulator: the chosen kind and public ids, never the secret; with
//! nothing configured, exit 2 and the list of every kind tried.

use std::process::{Command, Output};

use aib_emulator::{Emulator, EmulatorConfig};

const SENTINEL: &str = "sentinel-secret-whoami-51c7";

/// Runs `aib <args>` with exactly `env` (nothing inherited), off the async runtime.
async fn aib_in(args: &[&str], env: Vec<(String, String)>) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_aib"))
            .args(&args)
            .env_clear()
            .envs(env)
            .output()
            .expect("aib runs")
    })
    .await
    .expect("the run finishes")
}

fn emulator_env(emu: &Emulator) -> Vec<(String, String)> {
    [
        ("PATH", "/usr/bin:/bin".to_owned()),
        ("NO_COLOR", "1".to_owned()),
        ("SSL_CERT_FILE", emu.ca_file().display().to_string()),
        ("AIB_ARM_ENDPOINT", emu.url().to_string()),
        ("AIB_AUTHORITY_HOST", emu.url().to_string()),
        ("AZURE_CLIENT_ID", emu.client_id().to_owned()),
        ("AZURE_TENANT_ID", emu.tenant_id().to_owned()),
        ("AZURE_SUBSCRIPTION_ID", emu.subscription_id().to_owned()),
        ("AZURE_CLIENT_SECRET", emu.client_secret().to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// whoami names the kind, tenant, client and subscription, gets a token, and never prints
/// the client secret (text and JSON).
#[tokio::test]
async fn whoami_shows_the_chosen_credential_and_never_the_secret() {
    let emu = Emulator::start(EmulatorConfig {
        azurite: false,
        client_secret: Some(SENTINEL.to_owned()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let out = aib_in(&["whoami"], emulator_env(&emu)).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("credential:   secret (detected from the environment)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("tenant:       {}", emu.tenant_id())),
        "{text}"
    );
    assert!(
        text.contains(&format!("client:       {}", emu.client_id())),
        "{text}"
    );
    assert!(
        text.contains(&format!("subscription: {}", emu.subscription_id())),
        "{text}"
    );
    assert!(text.contains("token:        issued"), "{text}");
    assert!(!text.contains(SENTINEL), "{text}");

    let out = aib_in(&["whoami", "--output", "json"], emulator_env(&emu)).await;
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(SENTINEL) && !String::from_utf8_lossy(&out.stderr).contains(SENTINEL));
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let outcome = &doc["outcome"];
    assert_eq!(outcome["kind"], "secret", "{doc}");
    assert_eq!(outcome["tenantId"], emu.tenant_id(), "{doc}");
    assert_eq!(outcome["clientId"], emu.client_id(), "{doc}");
    assert_eq!(outcome["subscriptionId"], emu.subscription_id(), "{doc}");
    assert_eq!(outcome["token"]["issued"], true, "{doc}");
}

/// With no credential in the environment whoami exits 2 and lists every kind, why it was
/// skipped and what to set.
#[tokio::test]
async fn whoami_without_credentials_exits_2_listing_every_kind() {
    let env = vec![
        ("PATH".to_owned(), "/nonexistent".to_owned()),
        ("NO_COLOR".to_owned(), "1".to_owned()),
    ];
    let out = aib_in(&["whoami"], env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no Azure credential is configured"),
        "{stderr}"
    );
    for kind in [
        "secret",
        "github-oidc",
        "ado-oidc",
        "federated-file",
        "managed-identity",
        "azure-cli",
    ] {
        assert!(
            stderr.contains(&format!("  - {kind}: ")),
            "{kind} missing: {stderr}"
        );
    }
    assert!(
        stderr.contains("set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET"),
        "{stderr}"
    );
}
