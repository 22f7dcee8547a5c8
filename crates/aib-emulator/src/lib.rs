//! Local Azure for aib's tests and demo: Entra ID tokens, the Azure Resource Manager core,
//! managed identities, role assignments with enforcement, storage accounts, and blobs (through a
//! child Azurite), all over HTTPS with a generated test CA.
//!
//! No test of this project may reach Azure, so this emulator reproduces what an honest client
//! must cope with (see `shared/reference/azure-rest-contract.md` section 10): short-lived tokens,
//! long-running operations in every header style, throttling with `Retry-After`, paging,
//! eventual consistency (principal replication, RBAC propagation, list lag) and Azure's error
//! shapes.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use aib_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig { azurite: false, ..Default::default() }).await?;
//! let arm = emu.url();              // ARM endpoint and Entra authority host
//! let ca = emu.ca_file();           // trust it via SSL_CERT_FILE or add it as a root
//! emu.knobs().set_throttle_rate(0.2, 1);
//! let log = emu.requests();
//! # Ok(()) }
//! ```
//!
//! Endpoints (all on [`Emulator::url`] unless noted):
//! - `POST /{tenant}/oauth2/v2.0/token` (client secret or client assertion), `/{tenant}/oauth2/token`
//!   (v1), `GET /{tenant}/v2.0/.well-known/openid-configuration`;
//! - `GET /_oidc/github?api-version=2.0&audience=…` (GitHub Actions id tokens),
//!   `POST /_oidc/pipelines?api-version=7.1&serviceConnectionId=…` (Azure Pipelines),
//!   `GET /_msi/token` (App Service managed identity);
//! - `GET|POST /_emulator/knobs`, `GET|DELETE /_emulator/requests`, `GET /_emulator/info`;
//! - everything else is ARM (`/subscriptions/…`, `/providers/…`);
//! - the blob front is on [`Emulator::blob_url`]: `https://127.0.0.1:PORT/{account}/{container}/{blob}`.
//!
//! Time: every delay and lifetime is emulated time at `time_scale` emulated seconds per real
//! second; token `expires_in` is in real seconds so clients refresh on their own clock, rounded
//! up (a token never lives less real time than its lifetime at the current scale, however high
//! the scale), and `exp`/`expires_on` agree with it.
//!
//! Beyond the agreed API (`url`, `ca_file`, ids, `add_client`, the three CI credential sources,
//! `knobs`, `requests`): [`Emulator::blob_url`], [`Emulator::object_id`], [`Emulator::grant`]
//! (a role at once, for test setup), [`Emulator::add_federated_credential`],
//! [`Emulator::early_retries`] (calls sent sooner than the `Retry-After` we gave), and knobs for
//! dropped connections, slow blob bodies, LRO duration and `Retry-After`.
//!
//! Long-running operations, one resource type per header style: resource group DELETE and
//! storage account PUT use `Location` (202 … then 200), galleries use `Azure-AsyncOperation`
//! (status resource under `/subscriptions/{sub}/providers/{ns}/locations/{region}/operations/{id}`
//! with opaque `t`/`c` query parameters that must be kept), identities are synchronous. The
//! `lro_style` knob ([`Knobs::set_lro_style`], `"lro_style"` in `/_emulator/knobs`,
//! `--lro-style`) makes galleries, image definitions and image versions answer in any of the
//! four styles instead: [`LroStyle::AzureAsyncOperation`], [`LroStyle::OperationLocation`],
//! [`LroStyle::Location`], or [`LroStyle::None`] (201 with `Creating` and no polling header;
//! each GET of the resource counts as a poll until it is `Succeeded`). Image templates keep
//! their own `Azure-AsyncOperation` operations.

mod arm;
mod azurite;
mod blob;
mod core;
mod entra;
mod knobs;
mod tls;

pub use arm::imagebuilder::AibKnobs;
pub use knobs::{KnobValues, Knobs, LroStyle, RequestRecord};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use http::StatusCode;
use rand::RngCore;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

use crate::core::{CallerOid, Inner, World, json_response};
use crate::knobs::RequestLog;

/// How to start an emulator. `Default` gives a fast ARM+Entra+blob instance on free ports.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Start Azurite behind the blob front (false = ARM/Entra only, starts in milliseconds).
    pub azurite: bool,
    /// Where `ca.pem`, `cert.pem`, `key.pem` live (reused when present); a temp dir when None.
    pub state_dir: Option<PathBuf>,
    /// Emulated seconds per real second.
    pub time_scale: f64,
    /// Access token lifetime (emulated).
    pub token_lifetime: Duration,
    /// All other knobs' starting values (`time_scale`/`token_lifetime` above take precedence).
    pub knobs: KnobValues,
    /// Port of the ARM/Entra server (0 = free port).
    pub port: u16,
    /// Port of the blob front (0 = free port).
    pub blob_port: u16,
    /// Storage account names Azurite hosts under their own name.
    pub storage_accounts: Vec<String>,
    /// Extra Azurite accounts (`aibpool000`…) lent to ARM-created accounts with other names.
    pub azurite_pool_size: usize,
    /// Storage account names "taken by someone else" (global uniqueness: 409 `StorageAccountAlreadyTaken`).
    pub foreign_storage_names: Vec<String>,
    /// Provider namespaces the subscription has not registered (e.g. `Microsoft.VirtualMachineImages`):
    /// writes of their resources answer 409 `MissingSubscriptionRegistration` until a principal
    /// with `<ns>/register/action` registers them (which takes `lro_duration`).
    pub unregistered_providers: Vec<String>,
    /// Fixed ids (random when None), e.g. to keep them stable across runs of the binary.
    pub tenant_id: Option<String>,
    /// See `tenant_id`.
    pub subscription_id: Option<String>,
    /// See `tenant_id`.
    pub client_id: Option<String>,
    /// See `tenant_id` (a test credential, never a real secret).
    pub client_secret: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            azurite: true,
            state_dir: None,
            time_scale: 1.0,
            token_lifetime: Duration::from_secs(3600),
            knobs: KnobValues::default(),
            port: 0,
            blob_port: 0,
            storage_accounts: vec![
                "aibscripts".into(),
                "aiblocal".into(),
                "aiblocalscripts".into(),
                "aibstaging".into(),
            ],
            azurite_pool_size: 40,
            foreign_storage_names: vec![
                "storage".into(),
                "test".into(),
                "teststorage".into(),
                "aib".into(),
            ],
            unregistered_providers: Vec::new(),
            tenant_id: None,
            subscription_id: None,
            client_id: None,
            client_secret: None,
        }
    }
}

/// A running emulator; dropping it stops the servers and kills Azurite.
pub struct Emulator {
    inner: Arc<Inner>,
    ca_file: PathBuf,
    state_dir: PathBuf,
    servers: Vec<tokio::task::JoinHandle<()>>,
    _azurite: Option<azurite::AzuriteProcess>,
    _temp: Option<tempfile::TempDir>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.inner.base_url.as_str())
            .field("blob_url", &self.inner.blob_url.as_str())
            .finish_non_exhaustive()
    }
}

fn random_key() -> String {
    let mut b = [0u8; 64];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn random_secret() -> String {
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    format!("emu~{}", crate::core::b64url(&b))
}

impl Emulator {
    /// Starts the servers (and Azurite when configured) on 127.0.0.1.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator> {
        // Its own clients (to Azurite) and the tests' need a process-wide rustls provider; with
        // aws-lc-rs (here) and ring (aib's) both compiled in, rustls picks none by itself.
        // Whichever is installed first stays.
        let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (temp, state_dir) = match &config.state_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("aib-emulator-")
                    .tempdir()
                    .context("creating a temp dir for the emulator")?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let files = tls::load_or_create(&state_dir)?;
        let tls_config = tls::server_config(&files)?;
        let ca_pem = std::fs::read(&files.ca).context("reading ca.pem")?;

        let mut azurite_accounts: Vec<(String, String)> = config
            .storage_accounts
            .iter()
            .map(|n| (n.to_ascii_lowercase(), random_key()))
            .collect();
        for i in 0..config.azurite_pool_size {
            azurite_accounts.push((format!("aibpool{i:03}"), random_key()));
        }
        let (azurite_proc, backend) = if config.azurite {
            let (p, b) = azurite::start(
                &state_dir,
                &files.cert,
                &files.key,
                &ca_pem,
                &azurite_accounts,
            )
            .await?;
            (Some(p), Some(b))
        } else {
            (None, None)
        };

        let main_listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .context("binding the ARM/Entra port")?;
        let blob_listener = tokio::net::TcpListener::bind(("127.0.0.1", config.blob_port))
            .await
            .context("binding the blob front port")?;
        let base_url = Url::parse(&format!(
            "https://127.0.0.1:{}/",
            main_listener.local_addr()?.port()
        ))?;
        let blob_url = Url::parse(&format!(
            "https://127.0.0.1:{}/",
            blob_listener.local_addr()?.port()
        ))?;

        let mut knob_values = config.knobs.clone();
        knob_values.time_scale = if config.time_scale > 0.0 {
            config.time_scale
        } else {
            1.0
        };
        knob_values.token_lifetime = config.token_lifetime;
        let mut jwt_key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut jwt_key);

        let tenant_id = config.tenant_id.clone().unwrap_or_else(core::new_guid);
        let client_id = config.client_id.clone().unwrap_or_else(core::new_guid);
        let client_secret = config.client_secret.clone().unwrap_or_else(random_secret);
        let pipelines_connection_id = core::new_guid();
        let oid = core::new_guid();
        let mut world = World {
            foreign_storage_names: config.foreign_storage_names.clone(),
            unregistered: config
                .unregistered_providers
                .iter()
                .map(|n| (n.to_ascii_lowercase(), None))
                .collect(),
            azurite_free: azurite_accounts.iter().map(|(n, _)| n.clone()).collect(),
            azurite_keys: azurite_accounts.iter().cloned().collect(),
            ..Default::default()
        };
        // The main principal: registered, federated for both CI issuers, Owner of the subscription.
        world.clients.insert(
            client_id.to_ascii_lowercase(),
            core::Client {
                client_id: client_id.clone(),
                secret: Some(client_secret.clone()),
                object_id: oid.clone(),
                federated: vec![
                    (core::GITHUB_ISSUER.into(), core::GITHUB_SUBJECT.into()),
                    (
                        core::pipelines_issuer(&tenant_id),
                        core::pipelines_subject(&pipelines_connection_id),
                    ),
                ],
            },
        );
        world.principals.insert(
            oid.clone(),
            core::Principal {
                visible_at: std::time::Instant::now(),
            },
        );
        let inner = Arc::new(Inner {
            tenant_id,
            subscription_id: config
                .subscription_id
                .clone()
                .unwrap_or_else(core::new_guid),
            client_id,
            client_secret,
            object_id: oid.clone(),
            base_url,
            blob_url,
            knobs: Knobs::new(knob_values),
            log: RequestLog::default(),
            jwt_key,
            world: Mutex::new(world),
            buckets: Mutex::new(Default::default()),
            github_request_token: random_secret(),
            pipelines_system_token: random_secret(),
            pipelines_connection_id,
            identity_header: random_secret(),
            azurite: backend,
        });
        arm::rbac::grant_now(
            &inner,
            &oid,
            arm::rbac::OWNER,
            &format!("/subscriptions/{}", inner.subscription_id),
        );

        let main_router = Router::new()
            .fallback(main_handler)
            .with_state(inner.clone());
        let blob_router = Router::new()
            .fallback(blob_handler)
            .with_state(inner.clone());
        let servers = vec![
            tls::serve(
                main_listener,
                tls_config.clone(),
                main_router,
                inner.knobs.clone(),
                inner.log.clone(),
            ),
            tls::serve(
                blob_listener,
                tls_config,
                blob_router,
                inner.knobs.clone(),
                inner.log.clone(),
            ),
        ];
        Ok(Emulator {
            inner,
            ca_file: files.ca,
            state_dir,
            servers,
            _azurite: azurite_proc,
            _temp: temp,
        })
    }

    /// ARM endpoint and Entra authority host: `https://127.0.0.1:PORT/`.
    pub fn url(&self) -> Url {
        self.inner.base_url.clone()
    }
    /// Blob front: `https://127.0.0.1:PORT/` (accounts are path-style below it).
    pub fn blob_url(&self) -> Url {
        self.inner.blob_url.clone()
    }
    /// PEM of the test CA.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
    /// Where the PEM files (and Azurite's working dir) live.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    /// The emulated tenant.
    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }
    /// The emulated subscription.
    pub fn subscription_id(&self) -> &str {
        &self.inner.subscription_id
    }
    /// Client id of the service principal that is Owner of the subscription.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }
    /// Its client secret (a test credential).
    pub fn client_secret(&self) -> &str {
        &self.inner.client_secret
    }
    /// The variables a CI job signed in as that principal with its secret gives aib's
    /// binaries: the emulator as the cloud (`AIB_ARM_ENDPOINT`, `AIB_AUTHORITY_HOST`), its CA
    /// (`SSL_CERT_FILE`) and the `AZURE_*` credential. A test starts a binary with exactly these
    /// (plus what it is about), so nothing of the developer's own environment leaks in.
    pub fn ci_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SSL_CERT_FILE", self.ca_file().display().to_string()),
            ("AIB_ARM_ENDPOINT", self.url().to_string()),
            ("AIB_AUTHORITY_HOST", self.url().to_string()),
            ("AZURE_SUBSCRIPTION_ID", self.subscription_id().to_owned()),
            ("AZURE_CLIENT_ID", self.client_id().to_owned()),
            ("AZURE_TENANT_ID", self.tenant_id().to_owned()),
            ("AZURE_CLIENT_SECRET", self.client_secret().to_owned()),
        ]
    }
    /// Object (principal) id of that service principal.
    pub fn object_id(&self) -> &str {
        &self.inner.object_id
    }
    /// Registers another principal (no roles); returns its object id.
    pub fn add_client(&self, client_id: &str, secret: &str) -> String {
        self.inner.add_client(client_id, Some(secret))
    }
    /// Grants a role (by definition GUID) to a principal at a scope, effective at once — test setup
    /// that would otherwise need an Owner token.
    pub fn grant(&self, principal_id: &str, role_guid: &str, scope: &str) {
        arm::rbac::grant_now(&self.inner, principal_id, role_guid, scope);
    }
    /// (`ACTIONS_ID_TOKEN_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN`); the id tokens,
    /// exchanged as client assertions, log in as [`Emulator::client_id`].
    pub fn github_oidc(&self) -> (String, String) {
        (
            format!("{}_oidc/github?api-version=2.0", self.inner.base_url),
            self.inner.github_request_token.clone(),
        )
    }
    /// (`SYSTEM_OIDCREQUESTURI`, `SYSTEM_ACCESSTOKEN`, service connection id).
    pub fn azure_pipelines_oidc(&self) -> (String, String, String) {
        (
            format!("{}_oidc/pipelines", self.inner.base_url),
            self.inner.pipelines_system_token.clone(),
            self.inner.pipelines_connection_id.clone(),
        )
    }
    /// (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`) of an App Service-style managed identity endpoint.
    pub fn managed_identity(&self) -> (String, String) {
        (
            format!("{}_msi/token", self.inner.base_url),
            self.inner.identity_header.clone(),
        )
    }
    /// Handle on the live knobs.
    pub fn knobs(&self) -> Knobs {
        self.inner.knobs.clone()
    }
    /// The request log, in order: time, method, path, query, status, caller, our `Retry-After`,
    /// and the client's `User-Agent`, `x-ms-correlation-request-id` and `x-ms-client-request-id`
    /// (never `Authorization`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.log.all()
    }
    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.inner.log.clear();
    }
    /// Lets `client_id` log in with CI id tokens whose issuer and subject match (a federated
    /// identity credential); false when the client is unknown. The emulator's GitHub tokens carry
    /// [`Emulator::github_subject`], its Pipelines tokens [`Emulator::azure_pipelines_subject`].
    pub fn add_federated_credential(&self, client_id: &str, issuer: &str, subject: &str) -> bool {
        let mut w = self.inner.lock();
        match w.clients.get_mut(&client_id.to_ascii_lowercase()) {
            Some(c) => {
                c.federated.push((issuer.to_string(), subject.to_string()));
                true
            }
            None => false,
        }
    }
    /// (issuer, subject) of the GitHub Actions id tokens this emulator issues.
    pub fn github_subject(&self) -> (&'static str, &'static str) {
        (core::GITHUB_ISSUER, core::GITHUB_SUBJECT)
    }
    /// (issuer, subject) of the Azure Pipelines id tokens this emulator issues.
    pub fn azure_pipelines_subject(&self) -> (String, String) {
        (
            self.inner.pipelines_issuer(),
            self.inner.pipelines_subject(),
        )
    }
    /// Requests sent again sooner than the `Retry-After` we had answered the same caller for
    /// the same method, path and query — clients that poll or retry faster than asked.
    pub fn early_retries(&self) -> Vec<RequestRecord> {
        let log = self.inner.log.all();
        let mut early = Vec::new();
        for (i, r) in log.iter().enumerate() {
            let Some(wait) = r.retry_after else { continue };
            let again = log[i + 1..].iter().find(|n| {
                n.method == r.method
                    && n.path == r.path
                    && n.query == r.query
                    && n.principal == r.principal
            });
            if let Some(n) = again {
                let gap = n.at.duration_since(r.at).unwrap_or_default();
                // 50 ms of slack for clock granularity between two log stamps.
                if gap + Duration::from_millis(50) < Duration::from_secs(wait) {
                    early.push(n.clone());
                }
            }
        }
        early
    }
    /// Whether Azurite runs behind the blob front.
    pub fn has_azurite(&self) -> bool {
        self.inner.azurite.is_some()
    }
}

/// Completes the record of a request with our answer and logs it.
fn record(inner: &Inner, mut rec: RequestRecord, resp: &Response) {
    rec.status = resp.status().as_u16();
    rec.principal = resp.extensions().get::<CallerOid>().map(|c| c.0.clone());
    rec.retry_after = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    inner.log.push(rec);
}

async fn main_handler(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let rec = RequestRecord::arriving(req.method(), req.uri(), req.headers());
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            let r = core::arm_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLarge",
                "The request body is too large.",
            );
            record(&inner, rec, &r);
            return r;
        }
    };
    let resp = route_main(&inner, parts, body).await;
    record(&inner, rec, &resp);
    resp
}

async fn route_main(inner: &Inner, parts: http::request::Parts, body: bytes::Bytes) -> Response {
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let lsegs: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lsegs.iter().map(String::as_str).collect();
    let m = &parts.method;
    match l.as_slice() {
        ["_emulator", "knobs"] => {
            if m == http::Method::POST {
                match serde_json::from_slice::<KnobValues>(&body) {
                    Ok(v) => inner.knobs.set(v),
                    Err(e) => {
                        return json_response(
                            StatusCode::BAD_REQUEST,
                            &json!({"error": e.to_string()}),
                        );
                    }
                }
            }
            json_response(
                StatusCode::OK,
                &serde_json::to_value(inner.knobs.get()).unwrap_or_default(),
            )
        }
        ["_emulator", "requests"] => {
            if m == http::Method::DELETE {
                inner.log.clear();
            }
            json_response(
                StatusCode::OK,
                &serde_json::to_value(inner.log.all()).unwrap_or_default(),
            )
        }
        ["_emulator", "info"] => json_response(
            StatusCode::OK,
            &json!({
                "url": inner.base_url.as_str(),
                "blobUrl": inner.blob_url.as_str(),
                "tenantId": inner.tenant_id,
                "subscriptionId": inner.subscription_id,
                "clientId": inner.client_id,
                "objectId": inner.object_id,
            }),
        ),
        ["_oidc", "github"] if m == http::Method::GET => {
            entra::github_id_token(inner, &parts.headers, &query)
        }
        ["_oidc", "pipelines"] if m == http::Method::POST => {
            entra::pipelines_oidc(inner, &parts.headers, &query)
        }
        ["_msi", "token"] if m == http::Method::GET => {
            entra::managed_identity(inner, &parts.headers, &query)
        }
        [_, "oauth2", "v2.0", "token"] if m == http::Method::POST => {
            entra::token(inner, segs[0], &body, false)
        }
        [_, "oauth2", "token"] if m == http::Method::POST => {
            entra::token(inner, segs[0], &body, true)
        }
        [_, "v2.0", ".well-known", "openid-configuration"]
        | [_, ".well-known", "openid-configuration"] => entra::openid_configuration(inner, segs[0]),
        ["common", "discovery", "instance"] => json_response(
            StatusCode::OK,
            &json!({
                "tenant_discovery_endpoint": format!("{}{}/v2.0/.well-known/openid-configuration", inner.base_url, inner.tenant_id),
                "api-version": "1.1",
                "metadata": [{"preferred_network": inner.base_url.host_str(), "preferred_cache": inner.base_url.host_str(), "aliases": [inner.base_url.host_str()]}],
            }),
        ),
        _ => arm::handle(inner, parts, body).await,
    }
}

async fn blob_handler(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let rec = RequestRecord::arriving(req.method(), req.uri(), req.headers());
    let (parts, body) = req.into_parts();
    let resp = blob::handle(&inner, parts, body).await;
    record(&inner, rec, &resp);
    resp
}
