//! `aib-emulator`: Local Azure for the demo and for trying aib without an Azure subscription.
//! Starts the emulator (ARM, Entra, CI credential endpoints, blob front with Azurite), prints
//! how to point clients at it, serves until Ctrl-C, then stops Azurite.

use aib_emulator::{Emulator, EmulatorConfig, KnobValues, LroStyle};
use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Local Azure over HTTPS: Entra ID tokens, Azure Resource Manager (resource groups, managed
/// identities, role assignments, storage accounts, galleries), and a blob front backed by Azurite.
///
/// Clients trust the emulator through its test CA: `SSL_CERT_FILE=<state-dir>/ca.pem` (Rust,
/// Python `requests` also reads `REQUESTS_CA_BUNDLE`). Use the printed URL as both the ARM
/// endpoint and the Entra authority host. All durations are emulated seconds; `--time-scale`
/// emulated seconds pass per real second.
#[derive(Parser, Debug)]
#[command(name = "aib-emulator", version)]
struct Cli {
    /// Directory for ca.pem, cert.pem, key.pem (reused when present) and Azurite's working files.
    /// A temporary directory (deleted on exit) when omitted.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Port of the ARM/Entra endpoint (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Port of the blob front (0 = any free port).
    #[arg(long, default_value_t = 0)]
    blob_port: u16,
    /// Do not start Azurite (ARM and tokens only; the blob front then answers 503).
    #[arg(long)]
    no_azurite: bool,
    /// Fixed tenant id (random when omitted).
    #[arg(long)]
    tenant_id: Option<String>,
    /// Fixed subscription id (random when omitted).
    #[arg(long)]
    subscription_id: Option<String>,
    /// Fixed client id of the Owner service principal (random when omitted).
    #[arg(long)]
    client_id: Option<String>,
    /// Fixed client secret of that principal (a test credential; random when omitted).
    #[arg(long)]
    client_secret: Option<String>,
    /// Emulated seconds per real second (e.g. 120 makes a one-hour token last 30 s).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Access token lifetime, emulated seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// Lifetime of GitHub/Azure Pipelines id tokens, emulated seconds.
    #[arg(long, default_value_t = 300)]
    federated_token_lifetime: u64,
    /// Items per page of every ARM list (clients must follow nextLink).
    #[arg(long, default_value_t = 5)]
    page_size: usize,
    /// Share (0..1) of requests answered 429 TooManyRequests (ARM) / 503 ServerBusy (blobs).
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Retry-After seconds sent with injected throttling.
    #[arg(long, default_value_t = 1)]
    throttle_retry_after: u64,
    /// Share (0..1) of requests answered 500/503.
    #[arg(long, default_value_t = 0.0)]
    server_error_rate: f64,
    /// Share (0..1) of connections dropped without an answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Roll every fault at random instead of spreading it evenly (0.2 = every fifth request).
    #[arg(long)]
    random_faults: bool,
    /// Share (0..1) of blob answers whose body trickles out in 16 KiB pieces.
    #[arg(long, default_value_t = 0.0)]
    slow_body_rate: f64,
    /// Pause before each 16 KiB piece of a slow blob body, real milliseconds.
    #[arg(long, default_value_t = 50)]
    slow_body_delay_ms: u64,
    /// Delay before a new managed identity's principal is visible to role assignments
    /// (PrincipalNotFound meanwhile), emulated seconds.
    #[arg(long, default_value_t = 5.0)]
    principal_visibility_delay: f64,
    /// Delay before a role assignment takes effect (403 meanwhile), emulated seconds.
    #[arg(long, default_value_t = 5.0)]
    rbac_propagation_delay: f64,
    /// Delay before writes show in /resources lists, emulated seconds.
    #[arg(long, default_value_t = 2.0)]
    list_lag: f64,
    /// Status polls answered "in progress" before a long-running operation may finish.
    #[arg(long, default_value_t = 1)]
    lro_polls: u32,
    /// Minimum duration of long-running operations, emulated seconds.
    #[arg(long, default_value_t = 1.0)]
    lro_duration: f64,
    /// Retry-After (real seconds) on 202s and operation status answers.
    #[arg(long, default_value_t = 1)]
    lro_retry_after: u64,
    /// How galleries, image definitions and image versions advertise a running operation:
    /// `Azure-AsyncOperation`, `Operation-Location` (both a status resource), `Location`
    /// (202 polling), or none (the client re-reads the resource's provisioningState).
    #[arg(long, value_enum, default_value_t = LroStyle::AzureAsyncOperation)]
    lro_style: LroStyle,
    /// Fail role assignments for new principals even with principalType ServicePrincipal.
    #[arg(long)]
    no_principal_type_bypass: bool,
    /// Storage account names Azurite hosts under their own name (others borrow a pool account).
    #[arg(long, value_delimiter = ',')]
    storage_accounts: Option<Vec<String>>,
    /// Number of pool accounts Azurite hosts for other ARM-created storage accounts.
    #[arg(long, default_value_t = 40)]
    azurite_pool_size: usize,
    /// Print one JSON line (url, blobUrl, caFile, tenantId, subscriptionId, clientId,
    /// clientSecret, objectId, CI credential endpoints) instead of the text, for scripts.
    #[arg(long)]
    json: bool,
}

fn secs(v: f64) -> Duration {
    Duration::try_from_secs_f64(v.max(0.0)).unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut config = EmulatorConfig {
        azurite: !cli.no_azurite,
        state_dir: cli.state_dir.clone(),
        time_scale: cli.time_scale,
        token_lifetime: Duration::from_secs(cli.token_lifetime),
        knobs: KnobValues {
            page_size: cli.page_size.max(1),
            throttle_rate: cli.throttle_rate,
            throttle_retry_after: cli.throttle_retry_after,
            server_error_rate: cli.server_error_rate,
            drop_rate: cli.drop_rate,
            random_faults: cli.random_faults,
            slow_body_rate: cli.slow_body_rate,
            slow_body_delay: Duration::from_millis(cli.slow_body_delay_ms),
            federated_token_lifetime: Duration::from_secs(cli.federated_token_lifetime),
            principal_visibility_delay: secs(cli.principal_visibility_delay),
            rbac_propagation_delay: secs(cli.rbac_propagation_delay),
            list_lag: secs(cli.list_lag),
            lro_polls: cli.lro_polls,
            lro_duration: secs(cli.lro_duration),
            lro_retry_after: cli.lro_retry_after,
            lro_style: cli.lro_style,
            principal_type_bypass: !cli.no_principal_type_bypass,
            ..KnobValues::default()
        },
        port: cli.port,
        blob_port: cli.blob_port,
        azurite_pool_size: cli.azurite_pool_size,
        tenant_id: cli.tenant_id.clone(),
        subscription_id: cli.subscription_id.clone(),
        client_id: cli.client_id.clone(),
        client_secret: cli.client_secret.clone(),
        ..EmulatorConfig::default()
    };
    if let Some(accounts) = cli.storage_accounts.clone() {
        config.storage_accounts = accounts;
    }
    // Listen before the startup line is out: a stop sent right after it must not meet the
    // default disposition, which would kill the emulator and leave Azurite running.
    let stop = stop_signal()?;
    let emu = Emulator::start(config).await?;
    let (gh_url, gh_token) = emu.github_oidc();
    let (ado_url, ado_token, ado_conn) = emu.azure_pipelines_oidc();
    let (mi_url, mi_header) = emu.managed_identity();
    if cli.json {
        let info = serde_json::json!({
            "url": emu.url().as_str(),
            "blobUrl": emu.blob_url().as_str(),
            "caFile": emu.ca_file(),
            "stateDir": emu.state_dir(),
            "tenantId": emu.tenant_id(),
            "subscriptionId": emu.subscription_id(),
            "clientId": emu.client_id(),
            "clientSecret": emu.client_secret(),
            "objectId": emu.object_id(),
            "github": {"requestUrl": gh_url, "requestToken": gh_token},
            "azurePipelines": {"oidcRequestUri": ado_url, "systemAccessToken": ado_token, "serviceConnectionId": ado_conn},
            "managedIdentity": {"identityEndpoint": mi_url, "identityHeader": mi_header},
            "azurite": emu.has_azurite(),
        });
        println!("{info}");
    } else {
        print_text(
            &emu, &gh_url, &gh_token, &ado_url, &ado_token, &ado_conn, &mi_url, &mi_header,
        );
    }
    stop.await;
    eprintln!("aib-emulator: stopping");
    drop(emu);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C, a CI job's cancel, `kill`); registered at once.
#[cfg(unix)]
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[allow(clippy::too_many_arguments)]
fn print_text(
    emu: &Emulator,
    gh_url: &str,
    gh_token: &str,
    ado_url: &str,
    ado_token: &str,
    ado_conn: &str,
    mi_url: &str,
    mi_header: &str,
) {
    println!("aib-emulator is serving (Ctrl-C stops it and Azurite).");
    println!();
    println!("ARM endpoint / authority host: {}", emu.url());
    println!(
        "Blob front (path-style):       {}<account>/",
        emu.blob_url()
    );
    println!("Test CA (trust it):            {}", emu.ca_file().display());
    println!(
        "  export SSL_CERT_FILE={} REQUESTS_CA_BUNDLE={}",
        emu.ca_file().display(),
        emu.ca_file().display()
    );
    println!("Tenant id:                     {}", emu.tenant_id());
    println!("Subscription id:               {}", emu.subscription_id());
    println!("Client id (Owner):             {}", emu.client_id());
    println!(
        "Client secret (test credential, not a real secret): {}",
        emu.client_secret()
    );
    println!(
        "Token endpoint:                {}{}/oauth2/v2.0/token",
        emu.url(),
        emu.tenant_id()
    );
    println!(
        "GitHub: ACTIONS_ID_TOKEN_REQUEST_URL={gh_url} ACTIONS_ID_TOKEN_REQUEST_TOKEN={gh_token}"
    );
    println!(
        "Azure Pipelines: SYSTEM_OIDCREQUESTURI={ado_url} SYSTEM_ACCESSTOKEN={ado_token} service connection {ado_conn}"
    );
    println!("Managed identity: IDENTITY_ENDPOINT={mi_url} IDENTITY_HEADER={mi_header}");
    println!(
        "Knobs: {}_emulator/knobs   Request log: {}_emulator/requests",
        emu.url(),
        emu.url()
    );
    if !emu.has_azurite() {
        println!("(Azurite not started: --no-azurite)");
    }
}
