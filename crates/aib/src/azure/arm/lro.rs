//! Following long-running operations to their end: the only other loop besides the retry loop,
//! and its interval comes from the service's `Retry-After`.
//!
//! Which URL to poll, in the order the Azure SDKs use: `Azure-AsyncOperation`, then
//! `Operation-Location` (both an operation-status resource whose `status` is read), then
//! `Location` (202 while running, then the result), then the resource itself (its
//! `properties.provisioningState`, PUT/PATCH only). Each poll is an ordinary retried GET, so
//! throttling, 5xx on a status URL and token refresh during hours-long waits are handled the
//! same way as everywhere else. Progress (state, elapsed) goes to the caller's callback, or to
//! the client's observer.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use url::Url;

use super::error::{ArmError, ErrorDetail, OperationFailure};
use super::{ArmClient, ArmResponse, Idempotency, decode, retry};

/// Polling intervals and the default limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollOptions {
    /// Interval when the service sends no `Retry-After` (the SDKs use 30 s).
    pub default_interval: Duration,
    /// Upper bound of the interval, so a long `Retry-After` does not hide progress for minutes.
    pub max_interval: Duration,
    /// Give up on an operation after this long (`None`: wait as long as it takes).
    pub timeout: Option<Duration>,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            default_interval: Duration::from_secs(30),
            max_interval: Duration::from_secs(60),
            timeout: None,
        }
    }
}

/// One progress report of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress<'a> {
    /// The resource path.
    pub resource: &'a str,
    /// The service's state (`InProgress`, `Creating`, `Succeeded`…), as it spelled it.
    pub state: &'a str,
    /// Time since the operation was started.
    pub elapsed: Duration,
}

/// A progress callback: the reporter's progress line for one operation.
pub type ProgressCallback = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Per-call options of a long-running operation.
#[derive(Clone, Default)]
pub struct LroOptions {
    /// Called after every poll; when `None`, the client's observer gets the progress.
    pub progress: Option<ProgressCallback>,
    /// Overrides [`PollOptions::timeout`].
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for LroOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LroOptions")
            .field("progress", &self.progress.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Status(Url),
    Location(Url),
    Resource(Url),
}

/// An operation that was sent and may still be running.
#[derive(Debug, Clone)]
pub struct Started {
    method: Method,
    url: Url,
    path: String,
    /// The first response.
    pub response: ArmResponse,
    started: Instant,
}

/// Terminal states (compared case-insensitively).
fn terminal(state: &str) -> Option<Terminal> {
    match state.to_ascii_lowercase().as_str() {
        "succeeded" => Some(Terminal::Succeeded),
        "failed" => Some(Terminal::Failed),
        "canceled" | "cancelled" => Some(Terminal::Canceled),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminal {
    Succeeded,
    Failed,
    Canceled,
}

fn provisioning_state(body: &serde_json::Value) -> Option<&str> {
    body.get("properties")?.get("provisioningState")?.as_str()
}

impl Started {
    pub(crate) fn new(method: Method, url: Url, path: String, response: ArmResponse) -> Started {
        Started {
            method,
            url,
            path,
            response,
            started: Instant::now(),
        }
    }

    /// The resource path the operation is about.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Where to poll, per the header precedence; header URLs are resolved against the request.
    fn target(&self) -> Option<Target> {
        let header = |name: &str| {
            self.response
                .header(name)
                .and_then(|v| self.url.join(v).ok())
        };
        if let Some(url) = header("azure-asyncoperation").or_else(|| header("operation-location")) {
            return Some(Target::Status(url));
        }
        if let Some(url) = header("location") {
            return Some(Target::Location(url));
        }
        let resource_style = matches!(self.method, Method::PUT | Method::PATCH);
        if !resource_style {
            return None;
        }
        let body = self
            .response
            .json_value()
            .unwrap_or(serde_json::Value::Null);
        let running = match provisioning_state(&body) {
            Some(state) => terminal(state).is_none(),
            None => self.response.status == 202,
        };
        running.then(|| Target::Resource(self.url.clone()))
    }
}

impl ArmClient {
    /// Follows a started operation to its end: the final resource (PUT/PATCH), the result
    /// body (POST, when there is one) or `None` (DELETE, bodiless actions).
    pub async fn wait(
        &self,
        started: Started,
        options: &LroOptions,
    ) -> Result<Option<serde_json::Value>, ArmError> {
        let poll = self.poll_options().clone();
        let timeout = options.timeout.or(poll.timeout);
        let report = |state: &str, elapsed: Duration| match &options.progress {
            Some(callback) => callback(&Progress {
                resource: &started.path,
                state,
                elapsed,
            }),
            None => self
                .observer()
                .operation_progress(&started.path, state, elapsed),
        };
        let Some(mut target) = started.target() else {
            let body = started
                .response
                .json_value()
                .unwrap_or(serde_json::Value::Null);
            if let Some(state) = provisioning_state(&body) {
                report(state, started.started.elapsed());
                if let Some(t @ (Terminal::Failed | Terminal::Canceled)) = terminal(state) {
                    return Err(resource_failure(&started.path, t, &body));
                }
            }
            return Ok(match body {
                serde_json::Value::Null => None,
                v => Some(v),
            });
        };
        let mut last_headers = started.response.headers.clone();
        let mut state = String::from("Accepted");
        let mut polls = 0u32;
        loop {
            let asked = retry::retry_after(&last_headers, SystemTime::now());
            let interval = asked
                .unwrap_or(poll.default_interval)
                .min(poll.max_interval);
            if let Some(limit) = timeout.filter(|l| started.started.elapsed() + interval > *l) {
                return Err(ArmError::OperationTimeout {
                    resource: started.path.clone(),
                    timeout: limit,
                    state,
                    polls,
                });
            }
            tokio::time::sleep(interval).await;
            polls += 1;
            let url = match &target {
                Target::Status(u) | Target::Location(u) | Target::Resource(u) => u.clone(),
            };
            let prepared = self.prepare(Method::GET, url, None, Idempotency::Idempotent);
            let response = self.execute(&prepared).await?;
            last_headers = response.headers.clone();
            let elapsed = started.started.elapsed();
            match &target {
                Target::Status(_) => {
                    let body: serde_json::Value = decode(&Method::GET, &prepared.path, &response)?;
                    state = body
                        .get("status")
                        .and_then(|s| s.as_str())
                        .unwrap_or("InProgress")
                        .to_owned();
                    report(&state, elapsed);
                    match terminal(&state) {
                        None => {}
                        Some(Terminal::Succeeded) => {
                            return self.final_result(&started, body).await;
                        }
                        Some(t) => {
                            let error = body
                                .get("error")
                                .and_then(|e| serde_json::from_value::<ErrorDetail>(e.clone()).ok())
                                .unwrap_or_default();
                            return Err(failure(&started.path, t, error));
                        }
                    }
                }
                Target::Location(_) => {
                    if response.status == 202 {
                        state = "InProgress".to_owned();
                        report(&state, elapsed);
                        if let Some(next) = response
                            .header("location")
                            .and_then(|l| started.url.join(l).ok())
                        {
                            target = Target::Location(next);
                        }
                        continue;
                    }
                    report("Succeeded", elapsed);
                    let body = response.json_value().unwrap_or(serde_json::Value::Null);
                    if body.is_null() && matches!(started.method, Method::PUT | Method::PATCH) {
                        return self.get_original(&started).await.map(Some);
                    }
                    return Ok((!body.is_null()).then_some(body));
                }
                Target::Resource(_) => {
                    let body = response.json_value().unwrap_or(serde_json::Value::Null);
                    state = provisioning_state(&body).unwrap_or("Succeeded").to_owned();
                    report(&state, elapsed);
                    match terminal(&state) {
                        None => {}
                        Some(Terminal::Succeeded) => return Ok(Some(body)),
                        Some(t) => return Err(resource_failure(&started.path, t, &body)),
                    }
                }
            }
        }
    }

    /// After an operation-status `Succeeded`: PUT/PATCH re-read the resource; a POST reads its
    /// `Location` result when it has one; DELETE has nothing to fetch.
    async fn final_result(
        &self,
        started: &Started,
        status_body: serde_json::Value,
    ) -> Result<Option<serde_json::Value>, ArmError> {
        match started.method {
            Method::PUT | Method::PATCH => self.get_original(started).await.map(Some),
            Method::POST => {
                if let Some(location) = started
                    .response
                    .header("location")
                    .and_then(|l| started.url.join(l).ok())
                {
                    let prepared =
                        self.prepare(Method::GET, location, None, Idempotency::Idempotent);
                    let response = self.execute(&prepared).await?;
                    let body = response.json_value().unwrap_or(serde_json::Value::Null);
                    return Ok((!body.is_null()).then_some(body));
                }
                Ok(status_body.get("properties").cloned())
            }
            _ => Ok(None),
        }
    }

    async fn get_original(&self, started: &Started) -> Result<serde_json::Value, ArmError> {
        let prepared = self.prepare(
            Method::GET,
            started.url.clone(),
            None,
            Idempotency::Idempotent,
        );
        let response = self.execute(&prepared).await?;
        decode(&Method::GET, &started.path, &response)
    }
}

fn failure(resource: &str, t: Terminal, error: ErrorDetail) -> ArmError {
    ArmError::OperationFailed(Box::new(OperationFailure {
        resource: resource.to_owned(),
        status: match t {
            Terminal::Canceled => "Canceled",
            _ => "Failed",
        }
        .to_owned(),
        error,
    }))
}

/// A resource that ended `Failed`: its `provisioningError` (AIB) or `error`, if any.
fn resource_failure(resource: &str, t: Terminal, body: &serde_json::Value) -> ArmError {
    let properties = body.get("properties");
    let error = properties
        .and_then(|p| p.get("provisioningError"))
        .map(|e| ErrorDetail {
            code: e
                .get("provisioningErrorCode")
                .or_else(|| e.get("code"))
                .and_then(|c| c.as_str())
                .unwrap_or_default()
                .to_owned(),
            message: e
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_owned(),
            ..ErrorDetail::default()
        })
        .or_else(|| {
            body.get("error")
                .and_then(|e| serde_json::from_value::<ErrorDetail>(e.clone()).ok())
        })
        .unwrap_or_default();
    failure(resource, t, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn started(
        method: Method,
        status: u16,
        headers: &[(&'static str, &str)],
        body: &str,
    ) -> Started {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Started::new(
            method,
            Url::parse("https://arm.example/subscriptions/s/resourceGroups/rg?api-version=1")
                .unwrap(),
            "/subscriptions/s/resourceGroups/rg".into(),
            ArmResponse {
                status,
                headers: h,
                body: body.as_bytes().to_vec(),
            },
        )
    }

    /// Azure-AsyncOperation beats Operation-Location beats Location; relative URLs resolve.
    #[test]
    fn polling_target_follows_header_precedence() {
        let s = started(
            Method::PUT,
            201,
            &[
                ("location", "https://arm.example/loc"),
                ("operation-location", "https://arm.example/op"),
                ("azure-asyncoperation", "/status/1?t=x"),
            ],
            "",
        );
        assert_eq!(
            s.target(),
            Some(Target::Status(
                Url::parse("https://arm.example/status/1?t=x").unwrap()
            ))
        );
        let s = started(
            Method::DELETE,
            202,
            &[("location", "https://arm.example/loc")],
            "",
        );
        assert_eq!(
            s.target(),
            Some(Target::Location(
                Url::parse("https://arm.example/loc").unwrap()
            ))
        );
    }

    /// Without headers a PUT with a non-terminal provisioningState polls the resource; a
    /// terminal one or a bodiless DELETE is done.
    #[test]
    fn polling_falls_back_to_provisioning_state() {
        let creating = started(
            Method::PUT,
            201,
            &[],
            r#"{"properties":{"provisioningState":"Creating"}}"#,
        );
        assert!(matches!(creating.target(), Some(Target::Resource(_))));
        let done = started(
            Method::PUT,
            200,
            &[],
            r#"{"properties":{"provisioningState":"succeeded"}}"#,
        );
        assert_eq!(done.target(), None);
        let deleted = started(Method::DELETE, 200, &[], "");
        assert_eq!(deleted.target(), None);
    }

    /// Terminal states are case-insensitive and both cancel spellings count.
    #[test]
    fn terminal_states_are_recognised() {
        assert_eq!(terminal("SUCCEEDED"), Some(Terminal::Succeeded));
        assert_eq!(terminal("Cancelled"), Some(Terminal::Canceled));
        assert_eq!(terminal("Failed"), Some(Terminal::Failed));
        assert_eq!(terminal("Running"), None);
    }

    /// An AIB template that failed provisioning surfaces its provisioningError code and message.
    #[test]
    fn failed_resource_surfaces_provisioning_error() {
        let body = serde_json::json!({"properties": {"provisioningState": "Failed",
            "provisioningError": {"provisioningErrorCode": "BadSourceType", "message": "nope"}}});
        let e = resource_failure("/t", Terminal::Failed, &body);
        assert_eq!(e.code(), Some("BadSourceType"));
        assert!(
            e.to_string().contains("ended Failed: BadSourceType: nope"),
            "{e}"
        );
    }
}
