//! Storage connection strings (`AZURE_STORAGE_CONNECTION_STRING`), for local development only:
//! parsing, and the two ways they authorize a request — a Shared Key signature or a SAS query.
//!
//! `azure_storage_blob` 1.1 knows only Entra ID tokens, so the Shared Key signature
//! (HMAC-SHA256 over the canonical request, as documented in "Authorize with Shared Key") is
//! an azure_core per-try policy here: it runs on every retry, after the body is final. Account
//! keys and SAS tokens are [`Secret`]s from the moment they are parsed.

use std::sync::Arc;

use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use url::Url;

use crate::secret::Secret;

/// The variable the Azure tools read a connection string from.
pub const AZURE_STORAGE_CONNECTION_STRING: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// What a connection string says: where the blob endpoint is and how to authorize.
#[derive(Debug, Clone)]
pub struct ConnectionString {
    /// The blob service endpoint (`BlobEndpoint`, or built from the account and suffix).
    pub blob_endpoint: Url,
    /// The account name.
    pub account: String,
    /// The credential it carries.
    pub credential: KeyCredential,
}

/// The secret part of a connection string.
#[derive(Debug, Clone)]
pub enum KeyCredential {
    /// `AccountKey`: requests are signed with Shared Key.
    AccountKey(Secret),
    /// `SharedAccessSignature`: the token is added to every URL.
    Sas(Secret),
}

impl KeyCredential {
    /// The secret value, for registering it with the reporter's mask.
    pub fn secret(&self) -> &Secret {
        match self {
            KeyCredential::AccountKey(s) | KeyCredential::Sas(s) => s,
        }
    }
}

/// A connection string that cannot be used; never shows the secret.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionStringError {
    /// A required part is missing.
    #[error("the storage connection string has no {0}")]
    Missing(&'static str),
    /// A part is malformed.
    #[error("the storage connection string's {0} is not valid")]
    Invalid(&'static str),
}

impl ConnectionString {
    /// Parses `Key=Value;…` (keys case-insensitive, values may contain `=`).
    pub fn parse(text: &str) -> Result<ConnectionString, ConnectionStringError> {
        let mut get = std::collections::HashMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((k, v)) = part.split_once('=') {
                get.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let account = get.get("accountname").cloned();
        let credential = if let Some(key) = get.get("accountkey") {
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .map_err(|_| ConnectionStringError::Invalid("AccountKey"))?;
            KeyCredential::AccountKey(Secret::new(key.clone()))
        } else if let Some(sas) = get.get("sharedaccesssignature") {
            KeyCredential::Sas(Secret::new(sas.trim_start_matches('?').to_owned()))
        } else {
            return Err(ConnectionStringError::Missing(
                "AccountKey or SharedAccessSignature",
            ));
        };
        let blob_endpoint = match get.get("blobendpoint") {
            Some(e) => Url::parse(e).map_err(|_| ConnectionStringError::Invalid("BlobEndpoint"))?,
            None => {
                let account = account
                    .as_deref()
                    .ok_or(ConnectionStringError::Missing("AccountName"))?;
                let protocol = get
                    .get("defaultendpointsprotocol")
                    .map_or("https", String::as_str);
                let suffix = get
                    .get("endpointsuffix")
                    .map_or("core.windows.net", String::as_str);
                Url::parse(&format!("{protocol}://{account}.blob.{suffix}/"))
                    .map_err(|_| ConnectionStringError::Invalid("AccountName"))?
            }
        };
        let account = match account {
            Some(a) => a,
            // A SAS with an explicit endpoint needs no account name; take it from the host.
            None => blob_endpoint
                .host_str()
                .and_then(|h| h.split('.').next())
                .map(str::to_owned)
                .ok_or(ConnectionStringError::Missing("AccountName"))?,
        };
        Ok(ConnectionString {
            blob_endpoint,
            account,
            credential,
        })
    }

    /// The azure_core policy that authorizes each try with this credential.
    pub fn policy(&self) -> Arc<dyn Policy> {
        match &self.credential {
            KeyCredential::AccountKey(key) => Arc::new(SharedKeyPolicy {
                account: self.account.clone(),
                key: key.clone(),
            }),
            KeyCredential::Sas(sas) => Arc::new(SasPolicy { sas: sas.clone() }),
        }
    }
}

/// Signs every try with the account key.
#[derive(Debug)]
struct SharedKeyPolicy {
    account: String,
    key: Secret,
}

#[async_trait::async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let date = http_date(time::OffsetDateTime::now_utc());
        request.insert_header("x-ms-date", date);
        let signature = self.sign(request);
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        );
        next[0].send(ctx, request, &next[1..]).await
    }
}

impl SharedKeyPolicy {
    fn sign(&self, request: &Request) -> String {
        let header = |name: &str| {
            request
                .headers()
                .iter()
                .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str().to_owned())
                .unwrap_or_default()
        };
        let length = match request.body().len() {
            Some(0) | None => String::new(),
            Some(n) => n.to_string(),
        };
        let mut ms: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str().to_ascii_lowercase().starts_with("x-ms-"))
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.as_str().trim().to_owned(),
                )
            })
            .collect();
        ms.sort();
        let canonical_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let string_to_sign = format!(
            "{}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n{canonical_headers}{}",
            request.method().as_str(),
            header("content-encoding"),
            header("content-language"),
            header("content-md5"),
            header("content-type"),
            header("if-modified-since"),
            header("if-match"),
            header("if-none-match"),
            header("if-unmodified-since"),
            header("range"),
            canonical_resource(&self.account, request.url()),
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(self.key.expose())
            .unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(&key, string_to_sign.as_bytes()))
    }
}

/// `/{account}{path}` then `\nname:v1,v2` per query parameter, names lower-cased and sorted.
fn canonical_resource(account: &str, url: &Url) -> String {
    let mut out = format!("/{account}{}", url.path());
    let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in url.query_pairs() {
        params
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.into_owned());
    }
    for (k, mut values) in params {
        values.sort();
        out.push_str(&format!("\n{k}:{}", values.join(",")));
    }
    out
}

/// HMAC-SHA256 (RFC 2104) over sha2, which is already a dependency.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// RFC 1123 date, as `x-ms-date` wants it.
pub(crate) fn http_date(at: time::OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap_or_default()
}

/// Adds the SAS query to every try's URL.
#[derive(Debug)]
struct SasPolicy {
    sas: Secret,
}

#[async_trait::async_trait]
impl Policy for SasPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let url = request.url_mut();
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{}", self.sas.expose()),
            _ => self.sas.expose().to_owned(),
        };
        url.set_query(Some(&query));
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2: the hand-written HMAC matches the standard.
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// Azurite's well-known connection string gives its path-style endpoint and the key; an
    /// account-only string gives the public endpoint; the key never shows in Debug.
    #[test]
    fn connection_strings_parse_endpoint_and_credential() {
        let cs = ConnectionString::parse(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        )
        .unwrap();
        assert_eq!(
            cs.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(cs.account, "devstoreaccount1");
        assert!(!format!("{cs:?}").contains("Eby8"));
        let cs = ConnectionString::parse(
            "AccountName=st;SharedAccessSignature=?sv=2024&sig=abc;EndpointSuffix=core.usgovcloudapi.net",
        )
        .unwrap();
        assert_eq!(
            cs.blob_endpoint.as_str(),
            "https://st.blob.core.usgovcloudapi.net/"
        );
        assert!(
            matches!(cs.credential, KeyCredential::Sas(ref s) if s.expose() == "sv=2024&sig=abc")
        );
        assert!(ConnectionString::parse("AccountName=st").is_err());
        assert!(ConnectionString::parse("AccountName=st;AccountKey=not base64!").is_err());
    }

    /// The canonical resource has the account, the path, and sorted lower-case parameters.
    #[test]
    fn canonical_resource_sorts_parameters() {
        let url = Url::parse("https://h/acct/c?restype=container&comp=list&Include=b,a").unwrap();
        assert_eq!(
            canonical_resource("acct", &url),
            "/acct/acct/c\ncomp:list\ninclude:b,a\nrestype:container"
        );
    }
}
