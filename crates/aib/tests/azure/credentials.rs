//! Every credential kind gets a token from the emulator, and ARM accepts it.

use aib::azure::auth::AuthKind;
use aib::azure::env;

use super::support::*;

/// Lists resource groups with the connected client: proves the token is one ARM accepts.
async fn arm_accepts(azure: &aib::azure::Azure, emu: &aib_emulator::Emulator) {
    let groups: Vec<serde_json::Value> = azure
        .arm
        .list(&format!("{}/resourcegroups", sub(emu)))
        .await
        .expect("ARM accepts the token");
    assert!(groups.is_empty(), "{groups:?}");
}

/// Detects the credential `env` describes, checks it is `kind`, connects with it and proves
/// ARM accepts its token: where every credential test starts.
async fn connect_as(
    emu: &aib_emulator::Emulator,
    env: &env::Env,
    kind: AuthKind,
) -> (aib::azure::Azure, std::sync::Arc<Recorder>) {
    let s = settings(env);
    assert_eq!(s.auth.kind, kind);
    let (azure, recorder) = connect_recorded(&s);
    arm_accepts(&azure, emu).await;
    (azure, recorder)
}

/// A client secret from the environment gets a token and ARM accepts it.
#[tokio::test]
async fn secret_credential_gets_an_arm_token() {
    let emu = emulator().await;
    let (_, recorder) = connect_as(&emu, &secret_env(&emu), AuthKind::Secret).await;
    let secrets = recorder.secrets.lock().unwrap();
    assert!(
        secrets.iter().any(|v| v == emu.client_secret()),
        "client secret registered"
    );
    assert!(secrets.len() >= 2, "the access token is registered too");
}

/// GitHub OIDC asks for a fresh id token (audience api://AzureADTokenExchange) per exchange.
#[tokio::test]
async fn github_oidc_fetches_a_fresh_id_token_for_every_exchange() {
    let emu = emulator().await;
    let (url, token) = emu.github_oidc();
    let mut e = base_env(&emu);
    e.set(env::AZURE_CLIENT_ID, emu.client_id());
    e.set(env::AZURE_TENANT_ID, emu.tenant_id());
    e.set(env::ACTIONS_ID_TOKEN_REQUEST_URL, url);
    e.set(env::ACTIONS_ID_TOKEN_REQUEST_TOKEN, token.clone());
    let (azure, recorder) = connect_as(&emu, &e, AuthKind::GithubOidc).await;
    azure
        .tokens
        .token(aib::azure::cloud::STORAGE_SCOPE)
        .await
        .expect("a storage token too");
    let id_requests = requests_to(&emu, "/_oidc/github");
    assert_eq!(
        id_requests.len(),
        2,
        "one id token per exchange: {id_requests:?}"
    );
    for r in &id_requests {
        assert!(
            r.query
                .contains("audience=api%3A%2F%2FAzureADTokenExchange"),
            "{}",
            r.query
        );
        assert_eq!(r.status, 200);
    }
    let secrets = recorder.secrets.lock().unwrap();
    assert!(secrets.contains(&token), "the request token is registered");
    assert!(
        secrets.len() >= 5,
        "request token, 2 id tokens, 2 access tokens: {}",
        secrets.len()
    );
}

/// Azure Pipelines OIDC posts to SYSTEM_OIDCREQUESTURI with the service connection id.
#[tokio::test]
async fn azure_pipelines_oidc_gets_an_arm_token() {
    let emu = emulator().await;
    let (uri, access_token, connection) = emu.azure_pipelines_oidc();
    let mut e = base_env(&emu);
    e.set(env::AZURESUBSCRIPTION_CLIENT_ID, emu.client_id());
    e.set(env::AZURESUBSCRIPTION_TENANT_ID, emu.tenant_id());
    e.set(
        env::AZURESUBSCRIPTION_SERVICE_CONNECTION_ID,
        connection.clone(),
    );
    e.set(env::SYSTEM_OIDCREQUESTURI, uri);
    e.set(env::SYSTEM_ACCESSTOKEN, access_token);
    connect_as(&emu, &e, AuthKind::AdoOidc).await;
    let oidc = requests_to(&emu, "/_oidc/pipelines");
    assert_eq!(oidc.len(), 1, "{oidc:?}");
    assert_eq!(oidc[0].method, "POST");
    assert!(
        oidc[0]
            .query
            .contains(&format!("serviceConnectionId={connection}")),
        "{}",
        oidc[0].query
    );
}

/// A federated token file (here holding a GitHub id token) is exchanged for an ARM token.
#[tokio::test]
async fn federated_token_file_gets_an_arm_token() {
    let emu = emulator().await;
    let (url, request_token) = emu.github_oidc();
    let http = aib::azure::http::build_client(&aib::azure::http::HttpOptions {
        ca_file: Some(emu.ca_file().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let id: serde_json::Value = http
        .get(format!("{url}&audience=api://AzureADTokenExchange"))
        .bearer_auth(&request_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, id["value"].as_str().unwrap()).unwrap();
    let mut e = base_env(&emu);
    e.set(env::AZURE_CLIENT_ID, emu.client_id());
    e.set(env::AZURE_TENANT_ID, emu.tenant_id());
    e.set(env::AZURE_FEDERATED_TOKEN_FILE, file.display().to_string());
    connect_as(&emu, &e, AuthKind::FederatedFile).await;
}

/// Managed identity through IDENTITY_ENDPOINT/IDENTITY_HEADER gets a token ARM accepts.
#[tokio::test]
async fn managed_identity_endpoint_gets_an_arm_token() {
    let emu = emulator().await;
    let (endpoint, header) = emu.managed_identity();
    let mut e = base_env(&emu);
    e.set(env::IDENTITY_ENDPOINT, endpoint);
    e.set(env::IDENTITY_HEADER, header.clone());
    let (_, recorder) = connect_as(&emu, &e, AuthKind::ManagedIdentity).await;
    let msi = requests_to(&emu, "/_msi/token");
    assert_eq!(msi.len(), 1, "{msi:?}");
    assert!(
        msi[0]
            .query
            .contains("resource=https%3A%2F%2Fmanagement.azure.com"),
        "{}",
        msi[0].query
    );
    assert!(recorder.secrets.lock().unwrap().contains(&header));
}

/// Azure CLI: a fake `az` on the PATH given in the environment map prints what
/// `az account get-access-token` prints, and that token is used for ARM.
#[tokio::test]
async fn azure_cli_runs_az_from_the_given_path() {
    let emu = emulator().await;
    // A real token from the emulator, as `az login` would have cached it.
    let http = aib::azure::http::build_client(&aib::azure::http::HttpOptions {
        ca_file: Some(emu.ca_file().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let issued: serde_json::Value = http
        .post(format!(
            "{}{}/oauth2/v2.0/token",
            emu.url(),
            emu.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = issued["access_token"].as_str().unwrap();
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("az.log");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \"$*\" in\n  *'account get-access-token'*'--scope https://management.azure.com/.default'*)\n    echo '{{\"accessToken\":\"{access_token}\",\"expiresOn\":\"2030-01-01 00:00:00.000000\",\"expires_on\":{expires_on},\"subscription\":\"{sub}\",\"tenant\":\"{tenant}\",\"tokenType\":\"Bearer\"}}' ;;\n  *) echo \"unexpected az call: $*\" >&2; exit 1 ;;\nesac\n",
        log = log.display(),
        sub = emu.subscription_id(),
        tenant = emu.tenant_id(),
    );
    let az = dir.path().join("az");
    std::fs::write(&az, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut e = base_env(&emu);
    e.set(env::PATH, format!("{}:/usr/bin:/bin", dir.path().display()));
    connect_as(&emu, &e, AuthKind::AzureCli).await;
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().count(), 1, "{calls}");
    assert!(
        calls.contains(
            "account get-access-token -o json --scope https://management.azure.com/.default"
        ),
        "{calls}"
    );
}

/// With no credential configured, the error lists every kind (and nothing was sent).
#[tokio::test]
async fn nothing_configured_lists_every_kind_before_any_request() {
    let emu = emulator().await;
    let err = aib::azure::AzureSettings::resolve(
        &Default::default(),
        &Default::default(),
        &base_env(&emu),
    )
    .unwrap_err();
    let text = err.to_string();
    for kind in AuthKind::ALL {
        assert!(text.contains(&format!("  - {kind}: ")), "{text}");
    }
    assert_eq!(err.exit_status(), aib::exit::ExitStatus::BadInput);
    assert!(emu.requests().is_empty());
}
