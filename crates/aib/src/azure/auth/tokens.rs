//! The token cache every ARM (and blob) request goes through: one token per scope, refreshed
//! ahead of expiry, dropped on a 401.
//!
//! Refresh happens when less than `min(5 min, half the token's lifetime)` is left, so long
//! waits (AIB builds run for hours) never send an expired token, and short-lived tokens (the
//! emulator's 60-second ones) are still reused for half their life. Each new token is
//! registered with the observer so the reporter masks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

use super::{AuthError, AuthKind, chain_text};
use crate::azure::Observer;
use crate::secret::Secret;

#[derive(Clone)]
struct Cached {
    token: Secret,
    fetched: SystemTime,
    expires: SystemTime,
}

impl Cached {
    fn fresh(&self, now: SystemTime) -> bool {
        let lifetime = self
            .expires
            .duration_since(self.fetched)
            .unwrap_or_default();
        let margin = std::cmp::min(Duration::from_secs(300), lifetime / 2);
        match self.expires.checked_sub(margin) {
            Some(refresh_at) => now < refresh_at,
            None => false,
        }
    }
}

/// Builds a credential with an empty cache of its own; called again after a 401, because
/// azure_identity credentials keep their tokens until five minutes before expiry and have no
/// "refresh now".
pub type CredentialFactory =
    Arc<dyn Fn() -> Result<Arc<dyn TokenCredential>, AuthError> + Send + Sync>;

struct Inner {
    credential: Mutex<Arc<dyn TokenCredential>>,
    factory: Option<CredentialFactory>,
    // Set by a 401: the next fetch uses a freshly built credential.
    stale: std::sync::atomic::AtomicBool,
    kind: Option<AuthKind>,
    observer: Arc<dyn Observer>,
    cache: Mutex<HashMap<String, Cached>>,
    // One fetch at a time, so concurrent requests share a refresh.
    fetch: tokio::sync::Mutex<()>,
}

/// Tokens for any scope from one credential, cached and refreshed ahead of expiry. Cheap to
/// clone (clones share the cache).
#[derive(Clone)]
pub struct TokenProvider(Arc<Inner>);

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("kind", &self.0.kind)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// Wraps a credential (one from [`build_credential`](super::build_credential), or any other);
    /// `kind` only names the credential in errors.
    pub fn new(
        credential: Arc<dyn TokenCredential>,
        kind: Option<AuthKind>,
        observer: Arc<dyn Observer>,
    ) -> TokenProvider {
        TokenProvider(Arc::new(Inner {
            credential: Mutex::new(credential),
            factory: None,
            stale: std::sync::atomic::AtomicBool::new(false),
            kind,
            observer,
            cache: Mutex::new(HashMap::new()),
            fetch: tokio::sync::Mutex::new(()),
        }))
    }

    /// A provider whose credential comes from `factory`, which is called again after a 401 so
    /// that the retry gets a token the credential had not cached.
    pub fn rebuilding(
        factory: CredentialFactory,
        kind: Option<AuthKind>,
        observer: Arc<dyn Observer>,
    ) -> Result<TokenProvider, AuthError> {
        let credential = factory()?;
        Ok(TokenProvider(Arc::new(Inner {
            credential: Mutex::new(credential),
            factory: Some(factory),
            stale: std::sync::atomic::AtomicBool::new(false),
            kind,
            observer,
            cache: Mutex::new(HashMap::new()),
            fetch: tokio::sync::Mutex::new(()),
        })))
    }

    /// A bearer token for `scope` (e.g. `https://management.azure.com/.default`).
    pub async fn token(&self, scope: &str) -> Result<Secret, AuthError> {
        if let Some(token) = self.cached(scope) {
            return Ok(token);
        }
        let _guard = self.0.fetch.lock().await;
        if let Some(token) = self.cached(scope) {
            return Ok(token);
        }
        // A token that would expire before it can be used (an issuer that counts whole
        // seconds can hand one out at the end of its last second) is waited out and replaced.
        let mut fetches = 0;
        let (token, expires) = loop {
            fetches += 1;
            let (token, expires) = self.fetch(scope).await?;
            let left = expires
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            if left >= MIN_USABLE || fetches >= 3 {
                break (token, expires);
            }
            tokio::time::sleep(left).await;
        };
        let entry = Cached {
            token: token.clone(),
            fetched: SystemTime::now(),
            expires,
        };
        if let Ok(mut cache) = self.0.cache.lock() {
            cache.insert(scope.to_owned(), entry);
        }
        Ok(token)
    }

    /// One token request; the expiry is the earlier of what the service said and the token's
    /// own `exp` claim, in whole seconds.
    async fn fetch(&self, scope: &str) -> Result<(Secret, SystemTime), AuthError> {
        let stale = self
            .0
            .stale
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if let (true, Some(factory)) = (stale, &self.0.factory) {
            let fresh = factory()?;
            if let Ok(mut credential) = self.0.credential.lock() {
                *credential = fresh;
            }
        }
        let credential = match self.0.credential.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let access = credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| AuthError::Token {
                credential: self.0.kind.map_or("given", AuthKind::as_str).to_owned(),
                scope: scope.to_owned(),
                message: chain_text(&e),
            })?;
        let token = Secret::new(access.token.secret());
        self.0.observer.register_secret(token.expose());
        let said = u64::try_from(access.expires_on.unix_timestamp()).unwrap_or(0);
        let claimed = token_exp(&token).unwrap_or(u64::MAX);
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(said.min(claimed));
        Ok((token, expires))
    }

    /// Forgets the cached token for `scope` (after a 401), so the next call fetches anew, from a
    /// rebuilt credential when the provider has a factory.
    pub fn invalidate(&self, scope: &str) {
        if let Ok(mut cache) = self.0.cache.lock() {
            cache.remove(scope);
        }
        self.0
            .stale
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// This provider as an azure_core credential, for azure_core clients (blobs) so that they
    /// share the cache and the secret registration.
    pub fn as_token_credential(&self) -> Arc<dyn TokenCredential> {
        Arc::new(self.clone())
    }

    /// The credential kind, when the credential came from [`build_credential`](super::build_credential).
    pub fn kind(&self) -> Option<AuthKind> {
        self.0.kind
    }

    fn cached(&self, scope: &str) -> Option<Secret> {
        let cache = self.0.cache.lock().ok()?;
        let entry = cache.get(scope)?;
        entry.fresh(SystemTime::now()).then(|| entry.token.clone())
    }
}

#[async_trait::async_trait]
impl TokenCredential for TokenProvider {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let token = self.token(scope).await.map_err(|e| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e.to_string())
        })?;
        let expires = self
            .0
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(scope).map(|e| e.expires))
            .unwrap_or_else(SystemTime::now);
        let secs = expires
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let expires_on = azure_core::time::OffsetDateTime::from_unix_timestamp(
            i64::try_from(secs).unwrap_or(i64::MAX),
        )
        .unwrap_or_else(|_| azure_core::time::OffsetDateTime::now_utc());
        Ok(AccessToken::new(
            azure_core::credentials::Secret::new(token.expose().to_owned()),
            expires_on,
        ))
    }
}

/// A fetched token with less validity left than this is not handed out.
const MIN_USABLE: Duration = Duration::from_millis(250);

/// The `exp` claim of a JWT, when the token is one.
fn token_exp(token: &Secret) -> Option<u64> {
    use base64::Engine as _;
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("exp")?.as_u64()
}

/// The public claims of a JWT access token (tenant, app, object id, user), read without
/// verification for display (`aib whoami`); `None` when the token is not a JWT.
pub fn token_claims(token: &Secret) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let mut claims = value.as_object()?.clone();
    // Keep only identifying, non-secret claims.
    claims.retain(|k, _| {
        matches!(
            k.as_str(),
            "tid"
                | "appid"
                | "azp"
                | "oid"
                | "sub"
                | "upn"
                | "unique_name"
                | "idtyp"
                | "aud"
                | "iss"
        )
    });
    Some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A one-hour token is refreshed five minutes early; a 60-second one at half its life.
    #[test]
    fn tokens_are_refreshed_ahead_of_expiry() {
        let hour = Cached {
            token: Secret::new("t"),
            fetched: at(1000),
            expires: at(1000 + 3600),
        };
        assert!(hour.fresh(at(1000 + 3600 - 301)));
        assert!(!hour.fresh(at(1000 + 3600 - 300)));
        let minute = Cached {
            token: Secret::new("t"),
            fetched: at(1000),
            expires: at(1060),
        };
        assert!(minute.fresh(at(1029)));
        assert!(!minute.fresh(at(1030)));
        let expired = Cached {
            token: Secret::new("t"),
            fetched: at(1000),
            expires: at(900),
        };
        assert!(!expired.fresh(at(1000)));
    }

    /// Claims are read from the JWT payload and only identifying ones are kept.
    #[test]
    fn token_claims_keep_only_identifying_claims() {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"tid":"t1","appid":"a1","nonce":"n","aud":"https://management.azure.com/"}"#,
        );
        let token = Secret::new(format!("eyJhbGciOiJub25lIn0.{payload}.sig"));
        let claims = token_claims(&token).unwrap();
        assert_eq!(claims["tid"], "t1");
        assert_eq!(claims["appid"], "a1");
        assert!(!claims.contains_key("nonce"));
        assert!(token_claims(&Secret::new("opaque")).is_none());
    }
}
