//! The one HTTP client: reqwest with rustls, trusting the platform's roots, or, when
//! `SSL_CERT_FILE` names a PEM bundle, that bundle instead (as OpenSSL, curl and Python do).
//!
//! It is built once per process and shared by the credentials (as azure_core's transport), the
//! ARM client and the blob client, so one CA configuration covers tokens, ARM and storage. The
//! CA file is read here explicitly (not by rustls from the environment), so tests pass the
//! emulator's CA as a path instead of mutating the process environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::env::{self, Env};

/// TLS and connection settings of the shared client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Trusted roots (PEM, one or more certificates) that replace the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// How long to wait for a TCP + TLS connection.
    pub connect_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            ca_file: None,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

impl HttpOptions {
    /// Takes `SSL_CERT_FILE` from the environment map.
    pub fn from_env(env: &Env) -> HttpOptions {
        HttpOptions {
            ca_file: env.get(env::SSL_CERT_FILE).map(PathBuf::from),
            ..HttpOptions::default()
        }
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The CA file could not be read.
    #[error("cannot read the CA bundle {path} (SSL_CERT_FILE)")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file is not PEM certificates.
    #[error("the CA bundle {path} (SSL_CERT_FILE) holds no usable PEM certificate")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why, when reqwest said.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// The `User-Agent` of every request: `aib/<version>`.
pub const USER_AGENT: &str = concat!("aib/", env!("CARGO_PKG_VERSION"));

/// Makes ring the process's rustls crypto provider, once; every HTTPS client needs one.
///
/// The shipped binaries carry ring alone (small, and it cross-compiles with a plain C cross
/// compiler). Test builds also link the emulator's aws-lc-rs, and with two providers compiled
/// in rustls will not pick one itself. Whichever is installed first stays; both are complete.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client with reqwest's defaults (platform roots), for the paths that need no CA file
/// (a connection string to a local Azurite, tests).
pub fn default_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// Builds the shared client. Call once and clone (clones share the connection pool).
pub fn build_client(options: &HttpOptions) -> Result<reqwest::Client, HttpError> {
    client_builder(options)?.build().map_err(HttpError::Build)
}

/// What every client of ours starts from: ring, our user agent, the connect timeout and the
/// CA bundle of `SSL_CERT_FILE`. A client for another service (GitHub's API) adds its own
/// headers and timeouts to it, and so trusts exactly what the Azure calls trust.
pub fn client_builder(options: &HttpOptions) -> Result<reqwest::ClientBuilder, HttpError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(options.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|source| HttpError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| HttpError::BadCa {
                path: path.clone(),
                source: Some(source),
            })?;
        if certs.is_empty() {
            return Err(HttpError::BadCa {
                path: path.clone(),
                source: None,
            });
        }
        // The bundle replaces the platform's roots, as SSL_CERT_FILE does for OpenSSL, curl and
        // Python: a proxy's bundle carries the public roots it still needs. It also keeps the
        // check inside rustls (webpki) on every OS, where Windows' verifier with extra roots
        // fails under Wine and on locked-down hosts.
        builder = builder.tls_certs_only(certs);
    }
    Ok(builder)
}

/// The same client as an azure_core transport, so azure_identity credentials and
/// azure_storage_blob clients use our TLS roots too.
pub fn transport(client: &reqwest::Client) -> azure_core::http::Transport {
    azure_core::http::Transport::new(Arc::new(client.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA file that is not PEM fails with the path in the message, before any request.
    #[test]
    fn a_bad_ca_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let err = build_client(&HttpOptions {
            ca_file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
        let missing = build_client(&HttpOptions {
            ca_file: Some(dir.path().join("missing.pem")),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(missing, HttpError::ReadCa { .. }), "{missing}");
    }
}
