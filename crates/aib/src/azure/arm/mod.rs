//! The one ARM client: every request to Azure Resource Manager goes through here.
//!
//! It owns, once: the base URL and the api-version of each provider ([`api_versions`]), the
//! bearer token (cached per scope, dropped and refreshed once on a 401), the headers every
//! request carries (`x-ms-correlation-request-id` — one per step run —, a fresh
//! `x-ms-client-request-id`, `User-Agent: aib/<version>`), retries ([`retry`]: transient
//! statuses and transport failures, Retry-After, backoff with jitter, an attempt limit and a
//! deadline), long-running operations ([`lro`]), paging through `nextLink`, and turning
//! failures into [`ArmError`]. Steps never build a URL, sleep or retry on their own: they call
//! the typed `get`/`put`/`patch`/`post`/`delete`/`list` here with a resource path.
//!
//! Why reqwest + backon and not an azure_core `Pipeline`: azure_core 1.1's retry policy re-sends
//! a POST after a transport error and, when it gives up, returns the last response without
//! saying how many attempts or how long; both are requirements here. backon gives the loop
//! (backoff, jitter, `when`, `adjust` for Retry-After and the deadline), reqwest is the same
//! client the credentials use as their azure_core transport.

pub mod api_versions;
mod error;
mod lro;
pub mod provider_versions;
pub mod retry;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use backon::Retryable as _;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

pub use error::{
    ArmError, ErrorDetail, GaveUpReason, OperationFailure, ServiceError, role_for_action,
};
pub use lro::{LroOptions, PollOptions, Progress, ProgressCallback, Started};
pub use provider_versions::ProviderVersions;
pub use retry::RetryOptions;

use super::Observer;
use super::auth::TokenProvider;
use super::cloud::Cloud;

/// Settings of the ARM client; [`Default`] is right for production.
#[derive(Debug, Clone)]
pub struct ArmOptions {
    /// Retry limits.
    pub retry: RetryOptions,
    /// Long-running operation polling.
    pub poll: PollOptions,
    /// Time limit of one attempt (ARM gives providers 60 s, then answers 504 itself).
    pub attempt_timeout: Duration,
    /// The `x-ms-correlation-request-id` of every request of this step run.
    pub correlation_id: Uuid,
}

impl Default for ArmOptions {
    fn default() -> Self {
        ArmOptions {
            retry: RetryOptions::default(),
            poll: PollOptions::default(),
            attempt_timeout: Duration::from_secs(100),
            correlation_id: Uuid::new_v4(),
        }
    }
}

/// A raw ARM response (success statuses only; failures are [`ArmError`]s).
#[derive(Debug, Clone)]
pub struct ArmResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body (may be empty).
    pub body: Vec<u8>,
}

impl ArmResponse {
    /// The body as JSON (`Value::Null` when empty).
    pub fn json_value(&self) -> Option<serde_json::Value> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Some(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).ok()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Whether a request may be sent twice without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, PUT, PATCH, DELETE, and POSTs that only read (listKeys, checkNameAvailability).
    Idempotent,
    /// A POST that starts something (AIB `run`, `cancel`).
    NotIdempotent,
}

struct Inner {
    cloud: Cloud,
    http: reqwest::Client,
    tokens: TokenProvider,
    observer: Arc<dyn Observer>,
    options: ArmOptions,
    scope: String,
}

/// The ARM client. Cheap to clone; clones share the HTTP pool and the token cache.
#[derive(Clone)]
pub struct ArmClient(Arc<Inner>);

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.0.cloud.arm_endpoint.as_str())
            .field("correlation_id", &self.0.options.correlation_id)
            .finish_non_exhaustive()
    }
}

/// One request, ready to be sent (and re-sent).
struct Prepared {
    method: Method,
    url: Url,
    path: String,
    body: Option<Vec<u8>>,
    idempotency: Idempotency,
}

/// A failed attempt, as the retry loop sees it.
enum AttemptError {
    Status(ArmResponse),
    Transport(reqwest::Error),
    Fatal(ArmError),
}

impl AttemptError {
    fn retryable(&self, idempotency: Idempotency) -> bool {
        let idempotent = idempotency == Idempotency::Idempotent;
        match self {
            AttemptError::Status(r) => retry::should_retry_status(r.status, idempotent),
            // A connection that was never made cannot have run anything.
            AttemptError::Transport(e) => idempotent || e.is_connect(),
            AttemptError::Fatal(_) => false,
        }
    }

    fn server_wait(&self) -> Option<Duration> {
        match self {
            AttemptError::Status(r) => retry::retry_after(&r.headers, SystemTime::now()),
            _ => None,
        }
    }
}

impl ArmClient {
    /// A client for one step run; see [`connect`](super::connect) for the usual way to get one.
    pub fn new(
        cloud: Cloud,
        http: reqwest::Client,
        tokens: TokenProvider,
        observer: Arc<dyn Observer>,
        options: ArmOptions,
    ) -> ArmClient {
        let scope = cloud.arm_scope();
        ArmClient(Arc::new(Inner {
            cloud,
            http,
            tokens,
            observer,
            options,
            scope,
        }))
    }

    /// The correlation id all requests of this client carry.
    pub fn correlation_id(&self) -> Uuid {
        self.0.options.correlation_id
    }

    /// The ARM base URL.
    pub fn endpoint(&self) -> &Url {
        &self.0.cloud.arm_endpoint
    }

    /// GET a resource.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ArmError> {
        let response = self
            .send(Method::GET, path, None::<&()>, Idempotency::Idempotent)
            .await?;
        decode(&Method::GET, path, &response)
    }

    /// GET a resource that may not exist: 404 is `None`.
    pub async fn get_optional<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, ArmError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT a resource and wait until it is provisioned; returns the final resource.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ArmError> {
        self.put_with(path, body, &LroOptions::default()).await
    }

    /// [`put`](Self::put) with a progress callback or a timeout.
    pub async fn put_with<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        options: &LroOptions,
    ) -> Result<T, ArmError> {
        let started = self
            .begin(Method::PUT, path, Some(body), Idempotency::Idempotent)
            .await?;
        let value = self.wait(started, options).await?;
        decode_value(&Method::PUT, path, value)
    }

    /// PATCH a resource and wait; returns the final resource.
    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ArmError> {
        let started = self
            .begin(Method::PATCH, path, Some(body), Idempotency::Idempotent)
            .await?;
        let value = self.wait(started, &LroOptions::default()).await?;
        decode_value(&Method::PATCH, path, value)
    }

    /// DELETE a resource and wait until it is gone; a resource that does not exist is fine.
    pub async fn delete(&self, path: &str) -> Result<(), ArmError> {
        self.delete_with(path, &LroOptions::default()).await
    }

    /// [`delete`](Self::delete) with a progress callback or a timeout.
    pub async fn delete_with(&self, path: &str, options: &LroOptions) -> Result<(), ArmError> {
        match self
            .begin(Method::DELETE, path, None::<&()>, Idempotency::Idempotent)
            .await
        {
            Ok(started) => self.wait(started, options).await.map(|_| ()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// POST an action and wait for it; `None` when it has no result body. Not re-sent after a
    /// failure that may have reached Azure (see [`Idempotency`]).
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
        idempotency: Idempotency,
    ) -> Result<Option<T>, ArmError> {
        let started = self.begin(Method::POST, path, body, idempotency).await?;
        let value = self.wait(started, &LroOptions::default()).await?;
        match value {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => decode_value(&Method::POST, path, Some(v)).map(Some),
        }
    }

    /// Every item of a list, following `nextLink` until it is absent.
    pub async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ArmError> {
        #[derive(serde::Deserialize)]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            #[serde(default, rename = "nextLink")]
            next_link: Option<String>,
        }
        let mut items = Vec::new();
        let mut url = self.url_for(path)?;
        let mut seen = std::collections::HashSet::new();
        loop {
            let prepared = self.prepare(Method::GET, url.clone(), None, Idempotency::Idempotent);
            let response = self.execute(&prepared).await?;
            let page: Page<T> = decode(&Method::GET, &prepared.path, &response)?;
            items.extend(page.value);
            match page.next_link.filter(|l| !l.trim().is_empty()) {
                Some(link) => {
                    let next =
                        self.0
                            .cloud
                            .arm_endpoint
                            .join(&link)
                            .map_err(|e| ArmError::Decode {
                                method: "GET".into(),
                                path: path.to_owned(),
                                message: format!("bad nextLink: {e}"),
                            })?;
                    if !seen.insert(next.to_string()) {
                        return Err(ArmError::Decode {
                            method: "GET".into(),
                            path: path.to_owned(),
                            message: "nextLink repeats an earlier page".into(),
                        });
                    }
                    url = next;
                }
                None => return Ok(items),
            }
        }
    }

    /// One request with retries but without following a long-running operation: for callers
    /// that want the raw status and headers (AIB `run`, whose end `wait-for-build` follows).
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency: Idempotency,
    ) -> Result<ArmResponse, ArmError> {
        let url = self.url_for(path)?;
        let body = encode(&method, path, body)?;
        let prepared = self.prepare(method, url, body, idempotency);
        self.execute(&prepared).await
    }

    /// Sends the first request of a possibly long-running operation; [`wait`](Self::wait)
    /// follows it.
    pub async fn begin<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency: Idempotency,
    ) -> Result<Started, ArmError> {
        let url = self.url_for(path)?;
        let body = encode(&method, path, body)?;
        let prepared = self.prepare(method.clone(), url.clone(), body, idempotency);
        let response = self.execute(&prepared).await?;
        Ok(Started::new(method, url, prepared.path, response))
    }

    /// The absolute URL for a path, with the api-version from the table unless the path has one.
    fn url_for(&self, path: &str) -> Result<Url, ArmError> {
        let bad = |why: String| ArmError::BadPath {
            path: path.to_owned(),
            why,
        };
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(bad("must start with a single '/'".into()));
        }
        let mut url = self
            .0
            .cloud
            .arm_endpoint
            .join(path.trim_start_matches('/'))
            .map_err(|e| bad(e.to_string()))?;
        if !url.query_pairs().any(|(k, _)| k == "api-version") {
            let version = api_versions::api_version_for(path).ok_or_else(|| {
                let (ns, ty) = api_versions::resource_type(path);
                bad(format!(
                    "no api-version known for {ns}/{ty}; add it to azure::arm::api_versions::API_VERSIONS"
                ))
            })?;
            url.query_pairs_mut().append_pair("api-version", version);
        }
        Ok(url)
    }

    fn prepare(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        idempotency: Idempotency,
    ) -> Prepared {
        Prepared {
            path: url.path().to_owned(),
            method,
            url,
            body,
            idempotency,
        }
    }

    /// Sends with retries; the only retry loop of ARM requests.
    async fn execute(&self, request: &Prepared) -> Result<ArmResponse, ArmError> {
        // Polling and paging URLs come from response headers and bodies: the ARM token goes
        // nowhere but the ARM endpoint.
        if request.url.origin() != self.0.cloud.arm_endpoint.origin() {
            return Err(ArmError::BadPath {
                path: format!(
                    "{}{}",
                    request.url.origin().ascii_serialization(),
                    request.path
                ),
                why: format!(
                    "not on the ARM endpoint {}; the token is not sent elsewhere",
                    self.0.cloud.arm_endpoint
                ),
            });
        }
        let options = &self.0.options.retry;
        let start = Instant::now();
        let attempts = AtomicU32::new(0);
        let stopped: Mutex<Option<GaveUpReason>> = Mutex::new(None);
        let result = (|| self.attempt(request, &attempts))
            .retry(options.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &AttemptError| e.retryable(request.idempotency))
            .adjust(|e: &AttemptError, backoff: Option<Duration>| {
                let stop = |reason| {
                    if let Ok(mut s) = stopped.lock() {
                        *s = Some(reason);
                    }
                    None
                };
                let Some(backoff) = backoff else {
                    return stop(GaveUpReason::Attempts(options.max_attempts));
                };
                let wait = retry::next_wait(e.server_wait(), backoff);
                if start.elapsed() + wait > options.deadline {
                    return stop(GaveUpReason::Deadline(options.deadline));
                }
                Some(wait)
            })
            .await;
        let error = match result {
            Ok(response) => return Ok(response),
            Err(e) => e,
        };
        let attempts = attempts.load(Ordering::SeqCst);
        let retryable = error.retryable(request.idempotency);
        let might_have_run = !retryable
            && request.idempotency == Idempotency::NotIdempotent
            && error.retryable(Idempotency::Idempotent);
        let what = match &error {
            AttemptError::Status(r) => format!("HTTP {}", r.status),
            AttemptError::Transport(e) => transport_kind(e).to_owned(),
            AttemptError::Fatal(_) => String::new(),
        };
        let last = self.to_error(request, error);
        let reason = stopped.lock().ok().and_then(|s| *s);
        if might_have_run {
            return Err(ArmError::NotResent {
                method: request.method.to_string(),
                path: request.path.clone(),
                what,
                last: Box::new(last),
            });
        }
        match reason {
            Some(reason) if retryable => Err(ArmError::GaveUp {
                method: request.method.to_string(),
                path: request.path.clone(),
                attempts,
                elapsed: start.elapsed(),
                reason,
                last: Box::new(last),
            }),
            _ => Err(last),
        }
    }

    /// One attempt; a 401 drops the cached token and tries once more with a fresh one.
    async fn attempt(
        &self,
        request: &Prepared,
        attempts: &AtomicU32,
    ) -> Result<ArmResponse, AttemptError> {
        attempts.fetch_add(1, Ordering::SeqCst);
        let mut refreshed = false;
        loop {
            let token = self
                .0
                .tokens
                .token(&self.0.scope)
                .await
                .map_err(|e| AttemptError::Fatal(ArmError::Auth(e)))?;
            let mut builder = self
                .0
                .http
                .request(request.method.clone(), request.url.clone())
                .bearer_auth(token.expose())
                .header(
                    "x-ms-correlation-request-id",
                    self.0.options.correlation_id.to_string(),
                )
                .header("x-ms-client-request-id", Uuid::new_v4().to_string())
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.0.options.attempt_timeout);
            if let Some(body) = &request.body {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            } else if matches!(request.method, Method::POST | Method::PUT | Method::PATCH) {
                builder = builder.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            let response = builder.send().await.map_err(AttemptError::Transport)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(AttemptError::Transport)?
                .to_vec();
            let response = ArmResponse {
                status,
                headers,
                body,
            };
            if status == 401 && !refreshed {
                self.0.tokens.invalidate(&self.0.scope);
                refreshed = true;
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(response);
            }
            return Err(AttemptError::Status(response));
        }
    }

    fn to_error(&self, request: &Prepared, error: AttemptError) -> ArmError {
        match error {
            AttemptError::Fatal(e) => e,
            AttemptError::Transport(source) => ArmError::Transport {
                method: request.method.to_string(),
                path: request.path.clone(),
                source: source.without_url(),
            },
            AttemptError::Status(response) => {
                service_error(&request.method, &request.path, &response)
            }
        }
    }

    fn observer(&self) -> &dyn Observer {
        self.0.observer.as_ref()
    }

    fn poll_options(&self) -> &PollOptions {
        &self.0.options.poll
    }
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response was cut off"
    } else {
        "the connection failed"
    }
}

fn service_error(method: &Method, path: &str, response: &ArmResponse) -> ArmError {
    let error = ErrorDetail::parse(&response.body).unwrap_or_else(|| ErrorDetail {
        message: String::from_utf8_lossy(&response.body)
            .chars()
            .take(500)
            .collect(),
        ..ErrorDetail::default()
    });
    ArmError::Service(Box::new(ServiceError {
        method: method.to_string(),
        path: path.to_owned(),
        status: response.status,
        error,
        request_id: response.header("x-ms-request-id").map(str::to_owned),
        correlation_id: response
            .header("x-ms-correlation-request-id")
            .map(str::to_owned),
    }))
}

fn encode<B: Serialize + ?Sized>(
    method: &Method,
    path: &str,
    body: Option<&B>,
) -> Result<Option<Vec<u8>>, ArmError> {
    body.map(|b| {
        serde_json::to_vec(b).map_err(|e| ArmError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            message: format!("cannot encode the request body: {e}"),
        })
    })
    .transpose()
}

fn decode<T: DeserializeOwned>(
    method: &Method,
    path: &str,
    response: &ArmResponse,
) -> Result<T, ArmError> {
    let body: &[u8] = if response.body.is_empty() {
        b"null"
    } else {
        &response.body
    };
    serde_json::from_slice(body).map_err(|e| ArmError::Decode {
        method: method.to_string(),
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn decode_value<T: DeserializeOwned>(
    method: &Method,
    path: &str,
    value: Option<serde_json::Value>,
) -> Result<T, ArmError> {
    serde_json::from_value(value.unwrap_or(serde_json::Value::Null)).map_err(|e| ArmError::Decode {
        method: method.to_string(),
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

    #[derive(Debug)]
    struct NoToken;

    #[async_trait::async_trait]
    impl TokenCredential for NoToken {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "no token in unit tests",
            ))
        }
    }

    fn client() -> ArmClient {
        let observer: Arc<dyn Observer> = Arc::new(crate::azure::NoObserver);
        let tokens = TokenProvider::new(Arc::new(NoToken), None, observer.clone());
        let cloud = Cloud::named("AzureCloud").unwrap();
        ArmClient::new(
            cloud,
            crate::azure::http::default_client(),
            tokens,
            observer,
            ArmOptions::default(),
        )
    }

    /// Paths get the api-version of their provider; unknown providers and bad paths are refused.
    #[test]
    fn urls_carry_the_tables_api_version() {
        let arm = client();
        let url = arm.url_for("/subscriptions/s/resourcegroups/rg").unwrap();
        assert_eq!(
            url.as_str(),
            "https://management.azure.com/subscriptions/s/resourcegroups/rg?api-version=2024-07-01"
        );
        let kept = arm
            .url_for("/subscriptions/s/resources?$filter=x&api-version=2021-04-01")
            .unwrap();
        assert_eq!(kept.query(), Some("$filter=x&api-version=2021-04-01"));
        assert!(matches!(
            arm.url_for("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a"),
            Err(ArmError::BadPath { .. })
        ));
        assert!(matches!(
            arm.url_for("subscriptions"),
            Err(ArmError::BadPath { .. })
        ));
        assert!(matches!(
            arm.url_for("//evil.example/x"),
            Err(ArmError::BadPath { .. })
        ));
    }

    /// A polling or paging URL on another host is refused before any token is fetched.
    #[tokio::test]
    async fn the_token_is_never_sent_off_the_arm_endpoint() {
        let arm = client();
        let url = Url::parse("https://attacker.example/steal?x=1").unwrap();
        let request = arm.prepare(Method::GET, url, None, Idempotency::Idempotent);
        let err = arm.execute(&request).await.unwrap_err();
        assert!(matches!(err, ArmError::BadPath { .. }), "{err}");
        assert!(err.to_string().contains("not on the ARM endpoint"), "{err}");
    }
}
