//! Shared state of one emulator: principals, resources, operations, role assignments, and the
//! JWT key, plus small response helpers every front uses.
//!
//! All mutable state sits in one `World` behind a mutex: requests are small and few, and a single
//! lock keeps cross-cutting rules (cascading deletes, RBAC checks) simple and race-free.

use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;

use crate::azurite::Backend;
use crate::knobs::{Knobs, RequestLog};

/// The caller's object id, attached to a response so the request log can record it.
#[derive(Clone, Debug)]
pub(crate) struct CallerOid(pub String);

/// A registered application (service principal) that can log in at the token endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub client_id: String,
    pub secret: Option<String>,
    pub object_id: String,
    /// (issuer, subject) pairs accepted as client assertions.
    pub federated: Vec<(String, String)>,
}

/// A principal known to the directory (applications and managed identities).
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub visible_at: Instant,
}

/// A resource group.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub name: String,
    pub location: String,
    pub tags: Value,
    pub managed_by: Option<String>,
    pub deleting: bool,
    pub changed: SystemTime,
}

/// A resource inside a group (identities, storage accounts, containers, galleries…).
#[derive(Clone, Debug)]
pub(crate) struct Res {
    /// Canonical id with the casing the client used at creation.
    pub id: String,
    /// Resource type, e.g. `Microsoft.Storage/storageAccounts`.
    pub rtype: String,
    pub group: String,
    pub name: String,
    pub location: Option<String>,
    pub tags: Value,
    /// Everything else the GET answers (properties, sku, kind…), minus provisioningState.
    pub body: Map<String, Value>,
    pub state: String,
    /// False while a Location-style create runs (the resource is not GET-able yet).
    pub visible: bool,
    pub created: SystemTime,
    pub changed: SystemTime,
    /// From when `/resources` lists show it.
    pub listed_at: Instant,
}

/// What a long-running operation does when it ends.
#[derive(Clone, Debug)]
pub(crate) enum OpEffect {
    DeleteGroup(String),
    RevealResource(String),
    FinishResource(String),
    DeleteResource(String),
}

/// A long-running operation.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    pub id: String,
    pub effect: OpEffect,
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
    pub deadline: Instant,
    pub polls: u32,
    pub done: bool,
    /// Started without a polling header (`LroStyle::None`): GETs of the resource count as polls.
    pub resource_polled: bool,
}

/// A role definition (built-in or custom).
#[derive(Clone, Debug)]
pub(crate) struct RoleDef {
    pub guid: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
    pub assignable_scopes: Vec<String>,
}

/// A role assignment.
#[derive(Clone, Debug)]
pub(crate) struct Assignment {
    pub name: String,
    pub scope: String,
    pub role_guid: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub description: Option<String>,
    pub created: SystemTime,
    pub effective_at: Instant,
    pub created_by: String,
}

/// Everything ARM knows.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub clients: HashMap<String, Client>,
    pub principals: HashMap<String, Principal>,
    pub groups: BTreeMap<String, Group>,
    pub resources: BTreeMap<String, Res>,
    /// Deleted resources still shown by lists until the instant.
    pub removed: Vec<(Res, Instant)>,
    pub ops: HashMap<String, Op>,
    pub custom_roles: BTreeMap<String, RoleDef>,
    pub assignments: BTreeMap<String, Assignment>,
    /// Storage account names taken outside this subscription (global uniqueness).
    pub foreign_storage_names: Vec<String>,
    /// ARM account name (lower) → Azurite account name.
    pub azurite_map: HashMap<String, String>,
    pub azurite_free: Vec<String>,
    /// Azurite account name → its shared key (what `listKeys` answers).
    pub azurite_keys: HashMap<String, String>,
    /// Managed identity client id (lower) → principal (object) id.
    pub identity_clients: HashMap<String, String>,
    /// Image Builder templates and their operations (arm/imagebuilder.rs).
    pub aib: crate::arm::imagebuilder::AibState,
    /// Provider namespaces (lower case) not registered yet: `None` = NotRegistered,
    /// `Some(t)` = Registering until `t`. Every other namespace is Registered.
    pub unregistered: HashMap<String, Option<Instant>>,
}

impl World {
    /// The registration state ARM reports for a namespace (lower case), settling a finished
    /// registration.
    pub fn provider_state(&mut self, ns: &str) -> &'static str {
        match self.unregistered.get(ns) {
            None => "Registered",
            Some(None) => "NotRegistered",
            Some(Some(until)) if Instant::now() >= *until => {
                self.unregistered.remove(ns);
                "Registered"
            }
            Some(Some(_)) => "Registering",
        }
    }
}

/// Rate-limit buckets: (principal, class) → (tokens left, last refill).
pub(crate) type Buckets = HashMap<(String, &'static str), (f64, Instant)>;

/// The state shared by all handlers of one emulator.
pub(crate) struct Inner {
    pub tenant_id: String,
    pub subscription_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub object_id: String,
    pub base_url: Url,
    pub blob_url: Url,
    pub knobs: Knobs,
    pub log: RequestLog,
    pub jwt_key: Vec<u8>,
    pub world: Mutex<World>,
    pub buckets: Mutex<Buckets>,
    pub github_request_token: String,
    pub pipelines_system_token: String,
    pub pipelines_connection_id: String,
    pub identity_header: String,
    pub azurite: Option<Backend>,
}

pub(crate) const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub(crate) const GITHUB_SUBJECT: &str = "repo:aib-dev/aib:ref:refs/heads/main";
pub(crate) const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
pub(crate) const MANAGEMENT_AUD: &str = "https://management.azure.com/";
pub(crate) const STORAGE_AUD: &str = "https://storage.azure.com";

impl Inner {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        // A panic while holding the lock must not wedge every later request.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pipelines_issuer(&self) -> String {
        pipelines_issuer(&self.tenant_id)
    }

    pub(crate) fn pipelines_subject(&self) -> String {
        pipelines_subject(&self.pipelines_connection_id)
    }

    /// Signs claims with the instance key (HS256). Azurite's basic OAuth mode checks claims, not
    /// signatures; the emulator itself verifies the signature so forged tokens fail.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        match jsonwebtoken::EncodingKey::from_secret(&self.jwt_key) {
            Ok(key) => jsonwebtoken::encode(&header, claims, &key).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The claims of a token this instance signed; `None` for anything else.
    pub(crate) fn verify(&self, token: &str) -> Option<Map<String, Value>> {
        let key = jsonwebtoken::DecodingKey::from_secret(&self.jwt_key).ok()?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .ok()
            .map(|d| d.claims)
    }

    /// Issues an access token for `aud` to the principal, valid for the current token lifetime.
    /// Returns the JWT and its lifetime in real seconds (see [`Inner::issue_token`]).
    pub(crate) fn issue_access_token(&self, aud: &str, oid: &str, appid: &str) -> (String, u64) {
        let issued = self.issue_token(aud, oid, appid);
        (issued.jwt, issued.expires_in)
    }

    /// Issues an access token for `aud` to the principal. Its real lifetime is never shorter
    /// than the configured (emulated) one at the current time scale: `expires_in` is that
    /// lifetime rounded *up* to whole seconds, and `exp` is the next whole second plus
    /// `expires_in`, so a client that counts `expires_in` from when it got the answer never
    /// believes the token lives longer than ARM accepts it.
    pub(crate) fn issue_token(&self, aud: &str, oid: &str, appid: &str) -> IssuedToken {
        let knobs = self.knobs.get();
        let (expires_in, expires_on) = real_expiry(self.knobs.real(knobs.token_lifetime));
        let now = unix_now();
        let claims = json!({
            "aud": aud,
            "iss": format!("https://sts.windows.net/{}/", self.tenant_id),
            "iat": now.saturating_sub(300),
            "nbf": now.saturating_sub(300),
            "exp": expires_on,
            "oid": oid,
            "sub": oid,
            "appid": appid,
            "appidacr": "1",
            "idtyp": "app",
            "tid": self.tenant_id,
            "uti": uuid::Uuid::new_v4().simple().to_string(),
            "ver": "1.0",
        });
        IssuedToken {
            jwt: self.sign(&claims),
            expires_in,
            expires_on,
        }
    }

    /// Issues a CI id token (GitHub/Pipelines style) for the token exchange audience; like
    /// access tokens, it lives at least its configured lifetime in real time.
    pub(crate) fn issue_federated_token(&self, issuer: &str, subject: &str, aud: &str) -> String {
        let knobs = self.knobs.get();
        let (_, expires_on) = real_expiry(self.knobs.real(knobs.federated_token_lifetime));
        let now = unix_now();
        self.sign(&json!({
            "iss": issuer,
            "sub": subject,
            "aud": aud,
            "iat": now,
            "nbf": now.saturating_sub(5),
            "exp": expires_on,
            "jti": uuid::Uuid::new_v4().to_string(),
        }))
    }

    /// Registers a client (service principal) visible at once.
    pub(crate) fn add_client(&self, client_id: &str, secret: Option<&str>) -> String {
        let oid = uuid::Uuid::new_v4().to_string();
        let mut w = self.lock();
        w.clients.insert(
            client_id.to_ascii_lowercase(),
            Client {
                client_id: client_id.to_string(),
                secret: secret.map(str::to_string),
                object_id: oid.clone(),
                federated: Vec::new(),
            },
        );
        w.principals.insert(
            oid.clone(),
            Principal {
                visible_at: Instant::now(),
            },
        );
        oid
    }

    /// Token-bucket rate limit per principal and class (ARM's model: reads 250 @ 25/s, writes
    /// and deletes 200 @ 10/s). Returns the remaining count, or None when exhausted.
    pub(crate) fn take_token(&self, principal: &str, class: &'static str) -> Option<u64> {
        let (cap, rate) = match class {
            "reads" => (250.0, 25.0),
            _ => (200.0, 10.0),
        };
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let entry = b
            .entry((principal.to_string(), class))
            .or_insert((cap, now));
        let refill = now.duration_since(entry.1).as_secs_f64() * rate;
        entry.0 = (entry.0 + refill).min(cap);
        entry.1 = now;
        if entry.0 < 1.0 {
            return None;
        }
        entry.0 -= 1.0;
        Some(entry.0.floor() as u64)
    }
}

/// Issuer of the emulated Azure Pipelines OIDC tokens.
pub(crate) fn pipelines_issuer(tenant: &str) -> String {
    format!("https://vstoken.dev.azure.com/{tenant}")
}

/// Subject of the emulated Azure Pipelines OIDC tokens (service connection).
pub(crate) fn pipelines_subject(connection: &str) -> String {
    format!("sc://aib-dev/aib/{connection}")
}

/// An access token and when it ends.
pub(crate) struct IssuedToken {
    pub jwt: String,
    /// Whole real seconds, rounded up from the configured lifetime (at least 1).
    pub expires_in: u64,
    /// The `exp` claim: Unix seconds.
    pub expires_on: u64,
}

/// Whole seconds of `real`, rounded up (at least 1); a microsecond of float noise from the time
/// scale does not add a second.
pub(crate) fn ceil_secs(real: Duration) -> u64 {
    let whole = real.as_secs();
    let extra = u64::from(real.subsec_micros() > 0);
    (whole + extra).max(1)
}

/// (`expires_in`, `exp`) of a token that must live `real`: `exp` is counted from the next whole
/// second, so the token is accepted for at least `expires_in` ≥ `real` seconds from now and
/// never past `exp` (ARM compares `exp` with whole seconds).
pub(crate) fn real_expiry(real: Duration) -> (u64, u64) {
    let expires_in = ceil_secs(real);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let next_second = now.as_secs() + u64::from(now.subsec_nanos() > 0);
    (expires_in, next_second + expires_in)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 time with 7 fractional digits, like ARM.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// ARM's error shape: `{"error":{"code","message","details":[]}}`.
pub(crate) fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "details": []}}),
    )
}

/// Entra's OAuth error shape.
pub(crate) fn entra_error(
    status: StatusCode,
    error: &str,
    aadsts: u32,
    description: &str,
) -> Response {
    let trace = new_guid();
    let corr = new_guid();
    let now = rfc3339(SystemTime::now());
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {now}"),
            "error_codes": [aadsts],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=".to_string() + &aadsts.to_string(),
        }),
    )
}

/// Storage's XML error shape plus `x-ms-error-code`.
pub(crate) fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = new_guid();
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{request_id}\nTime:{}</Message></Error>",
        rfc3339(SystemTime::now())
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-ms-error-code", v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-ms-request-id", v);
    }
    r
}

/// Adds the caller to a response for the request log.
pub(crate) fn with_caller(mut r: Response, oid: Option<&str>) -> Response {
    if let Some(oid) = oid {
        r.extensions_mut().insert(CallerOid(oid.to_string()));
    }
    r
}
