//! ARM errors, decoded once: the service's code, message, target and details plus the request
//! and correlation ids, the retry story (attempts, elapsed, why it stopped) and a hint.
//!
//! No variant carries a header value or a token: what reaches a log is the method, the path,
//! the status, the service's own text and ids.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::azure::auth::AuthError;
use crate::exit::ExitStatus;

/// One `{code, message, target, details}` node of an ARM error body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ErrorDetail {
    /// PascalCase code, e.g. `AuthorizationFailed`.
    #[serde(default)]
    pub code: String,
    /// Human text from the service.
    #[serde(default)]
    pub message: String,
    /// The field or resource the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Nested errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

impl ErrorDetail {
    /// Decodes an error body defensively: `{"error":{…}}`, an unwrapped `{code, message}`, or
    /// Entra's OAuth shape `{"error":"…","error_description":"…"}`; `None` when it is none of them.
    pub fn parse(body: &[u8]) -> Option<ErrorDetail> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        match object.get("error") {
            Some(inner @ serde_json::Value::Object(_)) => {
                serde_json::from_value::<ErrorDetail>(inner.clone())
                    .ok()
                    .filter(|d| !d.code.is_empty() || !d.message.is_empty())
            }
            Some(serde_json::Value::String(code)) => Some(ErrorDetail {
                code: code.clone(),
                message: object
                    .get("error_description")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                ..ErrorDetail::default()
            }),
            _ => serde_json::from_value::<ErrorDetail>(value.clone())
                .ok()
                .filter(|d| !d.code.is_empty()),
        }
    }
}

/// A non-success answer from ARM or a resource provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// HTTP method.
    pub method: String,
    /// The request path (no host, no query).
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// The decoded error (code empty when the body had none).
    pub error: ErrorDetail,
    /// `x-ms-request-id`.
    pub request_id: Option<String>,
    /// `x-ms-correlation-request-id`.
    pub correlation_id: Option<String>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: HTTP {}", self.method, self.path, self.status)?;
        if !self.error.code.is_empty() {
            write!(f, " {}", self.error.code)?;
        }
        if !self.error.message.is_empty() {
            write!(f, ": {}", self.error.message)?;
        }
        if let Some(target) = &self.error.target {
            write!(f, " (target {target})")?;
        }
        for d in &self.error.details {
            write!(f, "; {}: {}", d.code, d.message)?;
        }
        let ids: Vec<String> = [
            self.request_id
                .as_ref()
                .map(|id| format!("x-ms-request-id {id}")),
            self.correlation_id
                .as_ref()
                .map(|id| format!("correlation id {id}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !ids.is_empty() {
            write!(f, " [{}]", ids.join(", "))?;
        }
        if let Some(hint) = self.hint() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl ServiceError {
    /// What to do about it, when we know: for `AuthorizationFailed` the missing action and a
    /// built-in role that grants it.
    pub fn hint(&self) -> Option<String> {
        match self.error.code.as_str() {
            "AuthorizationFailed" | "LinkedAuthorizationFailed" => {
                let action = quoted_after(&self.error.message, "action '");
                let scope = quoted_after(&self.error.message, "scope '");
                let action_text = action.unwrap_or("the action in the message");
                let role = action.map(role_for_action).unwrap_or("Contributor");
                Some(format!(
                    "the identity lacks '{action_text}'{}; assign it a role that grants it, e.g. '{role}'{}",
                    scope.map(|s| format!(" on '{s}'")).unwrap_or_default(),
                    scope
                        .map(|s| format!(" (az role assignment create --role \"{role}\" --scope {s} --assignee <client id>)"))
                        .unwrap_or_default()
                ))
            }
            "MissingSubscriptionRegistration" => Some(
                "register the resource provider named in the message: az provider register --namespace <namespace>"
                    .to_owned(),
            ),
            "InvalidAuthenticationToken" | "ExpiredAuthenticationToken" => Some(
                "the token was refused even after a refresh: check the tenant and the cloud (--cloud, --authority-host)"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let len = text[start..].find('\'')?;
    Some(&text[start..start + len])
}

/// A built-in role that grants `action` (most specific first).
pub fn role_for_action(action: &str) -> &'static str {
    let a = action.to_ascii_lowercase();
    if a.starts_with("microsoft.authorization/roleassignments/") {
        "Role Based Access Control Administrator"
    } else if a.starts_with("microsoft.storage/storageaccounts/blobservices/containers/blobs/") {
        if a.ends_with("/read") {
            "Storage Blob Data Reader"
        } else {
            "Storage Blob Data Contributor"
        }
    } else if a.starts_with("microsoft.managedidentity/userassignedidentities/")
        && a.ends_with("/assign/action")
    {
        "Managed Identity Operator"
    } else if a.ends_with("/read") {
        "Reader"
    } else {
        "Contributor"
    }
}

/// Why retrying stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUpReason {
    /// The overall deadline would have passed before the next attempt.
    Deadline(Duration),
    /// The attempt limit was reached.
    Attempts(u32),
}

impl fmt::Display for GaveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GaveUpReason::Deadline(d) => write!(f, "the retry deadline of {d:?} was reached"),
            GaveUpReason::Attempts(n) => write!(f, "the limit of {n} attempts was reached"),
        }
    }
}

/// How a terminal long-running operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFailure {
    /// The resource path the operation was about.
    pub resource: String,
    /// `Failed` or `Canceled`.
    pub status: String,
    /// The operation's error.
    pub error: ErrorDetail,
}

/// Everything that can go wrong with an ARM call.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// ARM or the provider answered with an error.
    #[error("{0}")]
    Service(Box<ServiceError>),
    /// Transient failures went on until the attempt limit or the deadline.
    #[error("{method} {path}: gave up after {attempts} attempts in {elapsed:.1?}: {reason}")]
    GaveUp {
        /// HTTP method.
        method: String,
        /// Path.
        path: String,
        /// Attempts made.
        attempts: u32,
        /// Time since the first attempt.
        elapsed: Duration,
        /// Deadline or attempt limit.
        reason: GaveUpReason,
        /// The last failure.
        #[source]
        last: Box<ArmError>,
    },
    /// A non-idempotent request failed in a way that leaves open whether Azure ran it.
    #[error(
        "{method} {path} was not sent again after it failed ({what}): it may have reached Azure; check the resource's state before running it again"
    )]
    NotResent {
        /// HTTP method.
        method: String,
        /// Path.
        path: String,
        /// What happened.
        what: String,
        /// The failure.
        #[source]
        last: Box<ArmError>,
    },
    /// No answer (connection, TLS, timeout).
    #[error("{method} {path}: no answer from ARM")]
    Transport {
        /// HTTP method.
        method: String,
        /// Path.
        path: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// No token.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The answer was not what the model expects.
    #[error("{method} {path}: unexpected response body: {message}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Path.
        path: String,
        /// serde's message.
        message: String,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("{}: the operation ended {}: {}: {}", .0.resource, .0.status, .0.error.code, .0.error.message)]
    OperationFailed(Box<OperationFailure>),
    /// A long-running operation outlived its timeout.
    #[error(
        "{resource}: the operation did not finish within {timeout:?} (last state {state}, {polls} polls)"
    )]
    OperationTimeout {
        /// Path.
        resource: String,
        /// The limit.
        timeout: Duration,
        /// Last reported state.
        state: String,
        /// Polls made.
        polls: u32,
    },
    /// The path cannot be sent (unknown provider, bad characters).
    #[error("bad ARM path '{path}': {why}")]
    BadPath {
        /// The path.
        path: String,
        /// Why.
        why: String,
    },
}

impl ArmError {
    /// A deadline is a timeout (3); missing configuration is bad input (2); the rest is an
    /// Azure failure (1).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            ArmError::GaveUp {
                reason: GaveUpReason::Deadline(_),
                ..
            }
            | ArmError::OperationTimeout { .. } => ExitStatus::Timeout,
            ArmError::Auth(e) => e.exit_status(),
            ArmError::BadPath { .. } => ExitStatus::BadInput,
            _ => ExitStatus::AzureFailure,
        }
    }

    /// The service error at the root, if any (looks through retries).
    pub fn service(&self) -> Option<&ServiceError> {
        match self {
            ArmError::Service(s) => Some(s),
            ArmError::GaveUp { last, .. } | ArmError::NotResent { last, .. } => last.service(),
            _ => None,
        }
    }

    /// The HTTP status of the service error, if any.
    pub fn status(&self) -> Option<u16> {
        self.service().map(|s| s.status)
    }

    /// The ARM error code (`ResourceNotFound`, …) or the failed operation's code.
    pub fn code(&self) -> Option<&str> {
        match self {
            ArmError::OperationFailed(f) => Some(f.error.code.as_str()),
            _ => self.service().map(|s| s.error.code.as_str()),
        }
    }

    /// True for a 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapped, unwrapped and OAuth error shapes all decode; nested details are kept.
    #[test]
    fn error_bodies_decode_in_every_shape() {
        let wrapped = br#"{"error":{"code":"InvalidParameter","message":"bad","target":"properties.x","details":[{"code":"Inner","message":"deeper"}]}}"#;
        let d = ErrorDetail::parse(wrapped).unwrap();
        assert_eq!(d.code, "InvalidParameter");
        assert_eq!(d.target.as_deref(), Some("properties.x"));
        assert_eq!(d.details[0].code, "Inner");
        let unwrapped = br#"{"code":"Conflict","message":"old style"}"#;
        assert_eq!(ErrorDetail::parse(unwrapped).unwrap().code, "Conflict");
        let oauth = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret"}"#;
        let d = ErrorDetail::parse(oauth).unwrap();
        assert_eq!(d.code, "invalid_client");
        assert!(d.message.starts_with("AADSTS7000215"));
        assert_eq!(ErrorDetail::parse(b"<xml/>"), None);
        assert_eq!(ErrorDetail::parse(b"{}"), None);
    }

    /// A 403 AuthorizationFailed names the missing action, the scope and a role that grants it.
    #[test]
    fn authorization_failed_hint_names_action_and_role() {
        let e = ServiceError {
            method: "PUT".into(),
            path: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/x".into(),
            status: 403,
            error: ErrorDetail {
                code: "AuthorizationFailed".into(),
                message: "The client 'c' with object id 'o' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/s/resourceGroups/rg' or the scope is invalid.".into(),
                ..Default::default()
            },
            request_id: Some("req-1".into()),
            correlation_id: Some("corr-1".into()),
        };
        let text = e.to_string();
        assert!(text.contains("HTTP 403 AuthorizationFailed"), "{text}");
        assert!(
            text.contains("x-ms-request-id req-1, correlation id corr-1"),
            "{text}"
        );
        assert!(text.contains("hint: the identity lacks 'Microsoft.Authorization/roleAssignments/write' on '/subscriptions/s/resourceGroups/rg'"), "{text}");
        assert!(
            text.contains("Role Based Access Control Administrator"),
            "{text}"
        );
        assert_eq!(
            role_for_action(
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
            ),
            "Storage Blob Data Contributor"
        );
        assert_eq!(
            role_for_action("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"),
            "Managed Identity Operator"
        );
        assert_eq!(
            role_for_action("Microsoft.Compute/galleries/read"),
            "Reader"
        );
        assert_eq!(
            role_for_action("Microsoft.VirtualMachineImages/imageTemplates/write"),
            "Contributor"
        );
    }

    /// Deadline and operation timeouts exit 3; a service error exits 1.
    #[test]
    fn exit_status_separates_timeouts_from_failures() {
        let service = || {
            ArmError::Service(Box::new(ServiceError {
                method: "GET".into(),
                path: "/p".into(),
                status: 503,
                error: ErrorDetail::default(),
                request_id: None,
                correlation_id: None,
            }))
        };
        let gave_up = ArmError::GaveUp {
            method: "GET".into(),
            path: "/p".into(),
            attempts: 3,
            elapsed: Duration::from_secs(2),
            reason: GaveUpReason::Deadline(Duration::from_secs(2)),
            last: Box::new(service()),
        };
        assert_eq!(gave_up.exit_status(), ExitStatus::Timeout);
        assert_eq!(gave_up.status(), Some(503));
        assert!(gave_up.to_string().contains("gave up after 3 attempts"));
        assert_eq!(service().exit_status(), ExitStatus::AzureFailure);
    }
}
