//! Everything that talks to Azure: which cloud, which credential, the one HTTP client and the one
//! ARM client.
//!
//! The split (see `shared/design.md`): [`cloud`] says where the endpoints are, [`http`] builds the
//! single `reqwest::Client` (platform roots, or the `SSL_CERT_FILE` bundle instead) that serves token requests, ARM
//! and blobs alike, [`auth`] picks and builds the credential, [`arm`] is the only code that sends
//! ARM requests (retries, throttling, long-running operations, error decoding live there once).
//! [`env`] names every environment variable this module understands; only binaries read the
//! process environment, and they hand it over as an [`env::Env`] value.
//!
//! [`connect`] wires them together for a step: it returns an [`Azure`] with the ARM client, the
//! credential (for the blob client) and the identity that was chosen.
//!
//! ```no_run
//! # async fn step() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use aib::azure::{AzureSettings, ReporterObserver, args::AzureArgs, connect, env::Env};
//! # let reporter = aib::report::detect(aib::report::OutputFormat::Text);
//! let env = Env::from_process(); // binaries only, once
//! let settings = AzureSettings::from_args(&AzureArgs::default(), &env)?; // exit 2 on error
//! let azure = connect(&settings, Arc::new(ReporterObserver::new(reporter)))?;
//! let rg = format!("/subscriptions/{}/resourceGroups/rg-images", azure.subscription_id()?);
//! let group: serde_json::Value = azure.arm.put(&rg, &serde_json::json!({"location": "westeurope"})).await?;
//! # Ok(()) }
//! ```

pub mod args;
pub mod arm;
pub mod auth;
pub mod blob;
pub mod cloud;
pub mod env;
pub mod gallery;
pub mod groups;
pub mod http;
pub mod identity;
pub mod image_template;
pub mod rbac;
pub mod storage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::exit::ExitStatus;
use crate::report::{ProgressId, Reporter, Unit};
use crate::secret::Secret;

/// Where the Azure layer sends what the user must see or CI must mask; implemented by the
/// reporter (or an adapter around it), so that this module never prints.
pub trait Observer: Send + Sync {
    /// A value that must be masked from now on (a token, a client secret, an assertion).
    fn register_secret(&self, value: &str);

    /// A long-running operation's state changed or is still the same after a poll.
    fn operation_progress(&self, resource: &str, state: &str, elapsed: Duration) {
        let _ = (resource, state, elapsed);
    }
}

impl std::fmt::Debug for dyn Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// An observer that drops everything, for tests and tools that have no reporter.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn register_secret(&self, _value: &str) {}
}

/// The reporter as an [`Observer`]: secrets go to its mask, each long-running operation gets
/// a status line (`Creating, 1m 20s`) that is finished when the operation ends.
pub struct ReporterObserver {
    reporter: Arc<dyn Reporter>,
    operations: Mutex<HashMap<String, ProgressId>>,
}

impl ReporterObserver {
    /// Wraps the step's reporter.
    pub fn new(reporter: Arc<dyn Reporter>) -> ReporterObserver {
        ReporterObserver {
            reporter,
            operations: Mutex::new(HashMap::new()),
        }
    }
}

impl Observer for ReporterObserver {
    fn register_secret(&self, value: &str) {
        self.reporter.secret(&Secret::new(value));
    }

    fn operation_progress(&self, resource: &str, state: &str, elapsed: Duration) {
        let Ok(mut operations) = self.operations.lock() else {
            return;
        };
        let id = *operations.entry(resource.to_owned()).or_insert_with(|| {
            let name = resource.rsplit('/').next().unwrap_or(resource);
            self.reporter.progress_start(name, Unit::Items)
        });
        let done = matches!(
            state.to_ascii_lowercase().as_str(),
            "succeeded" | "failed" | "canceled" | "cancelled"
        );
        let text = format!("{state}, {}", elapsed_text(elapsed));
        if done {
            self.reporter.progress_finish(id, &text);
            operations.remove(resource);
        } else {
            self.reporter.status(id, &text);
        }
    }
}

/// `1h 02m`, `3m 20s`, `12s`.
pub fn elapsed_text(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

/// What a step needs to connect: the cloud, the credential choice and the HTTP settings, all
/// resolved from flags and the environment map before the first network call.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// The endpoints.
    pub cloud: cloud::Cloud,
    /// The chosen credential and the ids that go with it.
    pub auth: auth::AuthPlan,
    /// TLS roots and timeouts for the one HTTP client.
    pub http: http::HttpOptions,
    /// Retry, deadline and polling settings of the ARM client.
    pub arm: arm::ArmOptions,
}

/// Errors while resolving settings or connecting; each says what to set or fix.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// A cloud name or endpoint was wrong.
    #[error(transparent)]
    Cloud(#[from] cloud::CloudError),
    /// No credential could be chosen or built.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The HTTP client could not be built (a bad `SSL_CERT_FILE`, usually).
    #[error(transparent)]
    Http(#[from] http::HttpError),
    /// A step needs a subscription and none was given.
    #[error(
        "no subscription is set: pass --subscription-id or set AZURE_SUBSCRIPTION_ID (credential: {kind})"
    )]
    MissingSubscription {
        /// The credential kind in use.
        kind: auth::AuthKind,
    },
}

impl AzureError {
    /// Every one of these is a configuration problem found before any call to Azure, except a
    /// token request that the service refused.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            AzureError::Auth(e) => e.exit_status(),
            _ => ExitStatus::BadInput,
        }
    }
}

/// A connected Azure session: the ARM client and the credential share one HTTP client and one
/// token cache.
#[derive(Clone)]
pub struct Azure {
    /// The one ARM client.
    pub arm: arm::ArmClient,
    /// Tokens for any scope (the blob client uses the storage scope through
    /// [`auth::TokenProvider::as_token_credential`]).
    pub tokens: auth::TokenProvider,
    /// The endpoints in use.
    pub cloud: cloud::Cloud,
    /// Which credential kind was chosen and the public ids that go with it.
    pub identity: auth::Identity,
    /// The shared HTTP client, for other azure_core clients (blobs) to use as their transport.
    pub http: reqwest::Client,
}

impl Azure {
    /// The subscription the steps work in, or an error (exit 2) saying how to set it.
    pub fn subscription_id(&self) -> Result<&str, AzureError> {
        self.identity
            .subscription_id
            .as_deref()
            .ok_or(AzureError::MissingSubscription {
                kind: self.identity.kind,
            })
    }
}

impl std::fmt::Debug for Azure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Azure")
            .field("cloud", &self.cloud)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl AzureSettings {
    /// Resolves everything from the flags the binary parsed and the environment map it read,
    /// without any network call: bad input fails here, with exit status 2.
    pub fn resolve(
        cloud: &cloud::CloudOptions,
        auth: &auth::AuthOptions,
        env: &env::Env,
    ) -> Result<AzureSettings, AzureError> {
        let cloud = cloud::Cloud::resolve(cloud, env)?;
        let auth = auth::AuthPlan::detect(auth, env)?;
        let http = http::HttpOptions::from_env(env);
        Ok(AzureSettings {
            cloud,
            auth,
            http,
            arm: arm::ArmOptions::default(),
        })
    }
}

impl AzureSettings {
    /// [`resolve`](Self::resolve) from the shared flags.
    pub fn from_args(args: &args::AzureArgs, env: &env::Env) -> Result<AzureSettings, AzureError> {
        AzureSettings::resolve(&args.cloud_options(), &args.auth_options(), env)
    }
}

/// Builds the HTTP client, the credential and the ARM client for one step run (one correlation
/// id for all its requests). No request is sent yet.
pub fn connect(settings: &AzureSettings, observer: Arc<dyn Observer>) -> Result<Azure, AzureError> {
    let http = http::build_client(&settings.http)?;
    let factory: auth::CredentialFactory = {
        let (plan, cloud, http, observer) = (
            settings.auth.clone(),
            settings.cloud.clone(),
            http.clone(),
            observer.clone(),
        );
        Arc::new(move || auth::build_credential(&plan, &cloud, &http, observer.clone()))
    };
    let tokens =
        auth::TokenProvider::rebuilding(factory, Some(settings.auth.kind), observer.clone())?;
    let arm = arm::ArmClient::new(
        settings.cloud.clone(),
        http.clone(),
        tokens.clone(),
        observer,
        settings.arm.clone(),
    );
    Ok(Azure {
        arm,
        tokens,
        cloud: settings.cloud.clone(),
        identity: settings.auth.identity(),
        http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Capture, Terminal, TerminalMode};

    /// Secrets reach the reporter's mask, and an operation's states become its status lines
    /// until the terminal state closes it.
    #[test]
    fn reporter_observer_masks_secrets_and_reports_operation_states() {
        let capture = Capture::new();
        let reporter: Arc<dyn Reporter> =
            Arc::new(Terminal::new(capture.writer(), TerminalMode::Plain));
        let observer = ReporterObserver::new(reporter.clone());
        observer.register_secret("tok-123456");
        reporter.info("token tok-123456");
        let rg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g";
        observer.operation_progress(rg, "InProgress", Duration::from_secs(5));
        observer.operation_progress(rg, "Succeeded", Duration::from_secs(65));
        reporter.finish().unwrap();
        let text = capture.text();
        assert!(!text.contains("tok-123456"), "{text}");
        assert!(text.contains("InProgress, 5s"), "{text}");
        assert!(text.contains("Succeeded, 1m 05s"), "{text}");
        assert!(observer.operations.lock().unwrap().is_empty());
    }

    /// Elapsed times read as seconds, minutes, or hours.
    #[test]
    fn elapsed_text_is_short() {
        assert_eq!(elapsed_text(Duration::from_secs(12)), "12s");
        assert_eq!(elapsed_text(Duration::from_secs(200)), "3m 20s");
        assert_eq!(elapsed_text(Duration::from_secs(3720)), "1h 02m");
    }
}
