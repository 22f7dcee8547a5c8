//! The credential chain: which kind of login to use, built from flags and the environment map,
//! and the token cache every request goes through.
//!
//! Kinds, in detection order: `secret`, `github-oidc`, `ado-oidc`, `federated-file`,
//! `managed-identity`, `azure-cli` ([`AuthKind`]). `--auth` (or `AIB_AUTH`) picks one; otherwise
//! the first whose inputs are all present wins, and when none fits the error lists every kind,
//! why it was skipped and what to set ([`AuthError::NothingFits`]). Detection is pure (an
//! [`Env`] in, an [`AuthPlan`] out) so it is unit-tested with fake environments; building the
//! credential ([`build_credential`]) makes no request; tokens are fetched lazily by
//! [`TokenProvider`], cached per scope and refreshed before they expire.
//!
//! Secrets (client secret, CI request tokens, assertions, access tokens) are [`Secret`]s from
//! the moment they are read and are registered with the [`Observer`](super::Observer) so the
//! reporter masks them.

mod credentials;
mod detect;
mod tokens;

pub use credentials::build_credential;
pub use detect::{AuthKind, AuthOptions, AuthPlan, Identity, Skipped};
pub use tokens::{CredentialFactory, TokenProvider, token_claims};

use crate::exit::ExitStatus;

/// Why no credential could be used, or a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `--auth`/`AIB_AUTH` named no known kind.
    #[error(
        "'{0}' is not a credential kind (--auth / AIB_AUTH); expected one of: {kinds}",
        kinds = AuthKind::ALL.map(|k| k.as_str()).join(", ")
    )]
    UnknownKind(String),
    /// The kind was chosen explicitly but its inputs are missing.
    #[error("--auth {}: {}; {}", .0.kind, .0.why, .0.set)]
    NotConfigured(Skipped),
    /// Detection found nothing.
    #[error("{}", nothing_fits(.0))]
    NothingFits(Vec<Skipped>),
    /// The credential could not be set up from its inputs (a malformed id, usually).
    #[error("cannot set up the {kind} credential: {message}")]
    Build {
        /// Which kind.
        kind: AuthKind,
        /// What azure_identity said (never carries a secret value).
        message: String,
    },
    /// The token request failed.
    #[error("could not get a token for {scope} with the {credential} credential: {message}")]
    Token {
        /// Which kind (its `--auth` name).
        credential: String,
        /// The scope asked for.
        scope: String,
        /// The token service's or tool's answer, flattened (the service's error code and
        /// description; never a secret).
        message: String,
    },
}

impl AuthError {
    /// Missing or malformed configuration is bad input (2); a refused token is an Azure failure (1).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            AuthError::Token { .. } => ExitStatus::AzureFailure,
            _ => ExitStatus::BadInput,
        }
    }
}

fn nothing_fits(tried: &[Skipped]) -> String {
    let mut out = String::from(
        "no Azure credential is configured; tried, in order (choose one with --auth or AIB_AUTH):",
    );
    for s in tried {
        out.push_str(&format!("\n  - {}: {}; {}", s.kind, s.why, s.set));
    }
    out
}

/// The flattened text of an azure_core error chain (its Display plus every source), for our
/// own error messages; azure_core's errors carry service text, never request secrets.
pub(crate) fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
