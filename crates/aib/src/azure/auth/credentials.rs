//! Building an azure_identity credential from an [`AuthPlan`], plus the pieces azure_identity 1.0
//! lacks or only offers through the process environment.
//!
//! Ours: the GitHub Actions assertion (a fresh id token per exchange), the Azure Pipelines
//! assertion (azure_identity's `AzurePipelinesCredential` reads `SYSTEM_OIDCREQUESTURI` from the
//! process environment, which tests cannot set safely), a static assertion for `AzureCLI@2`'s
//! `idToken`, the App Service style managed identity endpoint (same reason), and an `az` runner
//! that gets `PATH` from the environment map. Everything else is azure_identity's, and all of
//! them send through our one HTTP client and our authority host (never `AZURE_AUTHORITY_HOST`
//! from the process).

use std::ffi::OsStr;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions};
use azure_core::time::OffsetDateTime;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertion, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    Executor, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use super::detect::{AuthPlan, Source};
use super::{AuthError, chain_text};
use crate::azure::Observer;
use crate::azure::cloud::Cloud;
use crate::azure::http;
use crate::secret::Secret;

/// The audience GitHub and Azure Pipelines id tokens must carry for Entra's token exchange.
pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Builds the credential the plan describes. No request is sent until the first token.
pub fn build_credential(
    plan: &AuthPlan,
    cloud: &Cloud,
    client: &reqwest::Client,
    observer: Arc<dyn Observer>,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    for secret in plan.secrets() {
        observer.register_secret(secret.expose());
    }
    let kind = plan.kind;
    let build_err = |e: azure_core::Error| AuthError::Build {
        kind,
        message: chain_text(&e),
    };
    let ids = || -> Result<(String, String), AuthError> {
        match (&plan.tenant_id, &plan.client_id) {
            (Some(t), Some(c)) => Ok((t.clone(), c.clone())),
            _ => Err(AuthError::Build {
                kind,
                message: "AZURE_TENANT_ID and AZURE_CLIENT_ID are required".into(),
            }),
        }
    };
    let assertion_options = || ClientAssertionCredentialOptions {
        client_options: client_options(cloud, client),
    };
    let credential: Arc<dyn TokenCredential> = match &plan.source {
        Source::Secret { secret } => {
            let (tenant, client_id) = ids()?;
            ClientSecretCredential::new(
                &tenant,
                client_id,
                azure_core::credentials::Secret::new(secret.expose().to_owned()),
                Some(ClientSecretCredentialOptions {
                    client_options: client_options(cloud, client),
                }),
            )
            .map_err(build_err)?
        }
        Source::GithubOidc {
            request_url,
            request_token,
        } => {
            let (tenant, client_id) = ids()?;
            let assertion = GithubAssertion {
                client: client.clone(),
                request_url: request_url.clone(),
                request_token: request_token.clone(),
                observer: observer.clone(),
            };
            ClientAssertionCredential::new(tenant, client_id, assertion, Some(assertion_options()))
                .map_err(build_err)?
        }
        Source::AdoOidc {
            request_uri,
            access_token,
            service_connection_id,
        } => {
            let (tenant, client_id) = ids()?;
            let assertion = AdoAssertion {
                client: client.clone(),
                request_uri: request_uri.clone(),
                access_token: access_token.clone(),
                service_connection_id: service_connection_id.clone(),
                observer: observer.clone(),
            };
            ClientAssertionCredential::new(tenant, client_id, assertion, Some(assertion_options()))
                .map_err(build_err)?
        }
        Source::FederatedFile {
            file: Some(file), ..
        } => {
            let (tenant, client_id) = ids()?;
            WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: assertion_options(),
                client_id: Some(client_id),
                tenant_id: Some(tenant),
                token_file_path: Some(file.clone()),
            }))
            .map_err(build_err)?
        }
        Source::FederatedFile { file: None, token } => {
            let (tenant, client_id) = ids()?;
            let assertion = StaticAssertion(token.clone().unwrap_or_default());
            ClientAssertionCredential::new(tenant, client_id, assertion, Some(assertion_options()))
                .map_err(build_err)?
        }
        Source::ManagedIdentity {
            endpoint: Some((endpoint, header)),
        } => Arc::new(AppServiceManagedIdentity {
            client: client.clone(),
            endpoint: endpoint.clone(),
            header: header.clone(),
            client_id: plan.client_id.clone(),
        }),
        Source::ManagedIdentity { endpoint: None } => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: plan.client_id.clone().map(UserAssignedId::ClientId),
                client_options: client_options(cloud, client),
            };
            ManagedIdentityCredential::new(Some(options)).map_err(build_err)?
        }
        Source::AzureCli { path, .. } => AzureCliCredential::new(Some(AzureCliCredentialOptions {
            tenant_id: None,
            subscription: None,
            executor: Some(Arc::new(PathExecutor { path: path.clone() })),
        }))
        .map_err(build_err)?,
    };
    Ok(credential)
}

/// azure_core client options: our transport and our authority host.
fn client_options(cloud: &Cloud, client: &reqwest::Client) -> ClientOptions {
    let mut custom = azure_core::cloud::CustomConfiguration::default();
    custom.authority_host = cloud
        .authority_host
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    ClientOptions {
        transport: Some(http::transport(client)),
        cloud: Some(Arc::new(custom.into())),
        ..ClientOptions::default()
    }
}

fn credential_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Credential, message)
}

/// GitHub Actions: GET `ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange` for
/// every exchange, because the id token lives about five minutes and a long build outlives it.
#[derive(Debug)]
struct GithubAssertion {
    client: reqwest::Client,
    request_url: String,
    request_token: Secret,
    observer: Arc<dyn Observer>,
}

#[derive(serde::Deserialize)]
struct GithubIdToken {
    value: String,
}

#[async_trait::async_trait]
impl ClientAssertion for GithubAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let mut url = url::Url::parse(&self.request_url).map_err(|_| {
            credential_error("ACTIONS_ID_TOKEN_REQUEST_URL is not a valid URL".into())
        })?;
        url.query_pairs_mut()
            .append_pair("audience", FEDERATION_AUDIENCE);
        let response = self
            .client
            .get(url)
            .bearer_auth(self.request_token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| credential_error(format!("GitHub id token request failed: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(credential_error(format!(
                "GitHub id token request answered {status} (does the job have `permissions: id-token: write`?)"
            )));
        }
        let token: GithubIdToken = response
            .json()
            .await
            .map_err(|e| credential_error(format!("GitHub id token response: {e}")))?;
        self.observer.register_secret(&token.value);
        Ok(token.value)
    }
}

/// Azure Pipelines: POST `SYSTEM_OIDCREQUESTURI?api-version=7.1&serviceConnectionId=…` with
/// `$(System.AccessToken)`, for every exchange (the OIDC token lives about ten minutes).
#[derive(Debug)]
struct AdoAssertion {
    client: reqwest::Client,
    request_uri: String,
    access_token: Secret,
    service_connection_id: String,
    observer: Arc<dyn Observer>,
}

#[derive(serde::Deserialize)]
struct AdoIdToken {
    #[serde(rename = "oidcToken")]
    oidc_token: String,
}

#[async_trait::async_trait]
impl ClientAssertion for AdoAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let mut url = url::Url::parse(&self.request_uri)
            .map_err(|_| credential_error("SYSTEM_OIDCREQUESTURI is not a valid URL".into()))?;
        url.query_pairs_mut()
            .append_pair("api-version", "7.1")
            .append_pair("serviceConnectionId", &self.service_connection_id);
        let response = self
            .client
            .post(url)
            .bearer_auth(self.access_token.expose())
            .header("X-TFS-FedAuthRedirect", "Suppress")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await
            .map_err(|e| credential_error(format!("Azure Pipelines OIDC request failed: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(credential_error(format!(
                "Azure Pipelines OIDC request answered {status} (check the service connection id and that SYSTEM_ACCESSTOKEN is mapped)"
            )));
        }
        let token: AdoIdToken = response
            .json()
            .await
            .map_err(|e| credential_error(format!("Azure Pipelines OIDC response: {e}")))?;
        self.observer.register_secret(&token.oidc_token);
        Ok(token.oidc_token)
    }
}

/// A federated token handed over as a value (`AzureCLI@2`'s `idToken`): it cannot be renewed.
#[derive(Debug)]
struct StaticAssertion(Secret);

#[async_trait::async_trait]
impl ClientAssertion for StaticAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.0.expose().to_owned())
    }
}

/// App Service style managed identity: `GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…`
/// with `X-IDENTITY-HEADER`.
#[derive(Debug)]
struct AppServiceManagedIdentity {
    client: reqwest::Client,
    endpoint: String,
    header: Secret,
    client_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct MsiToken {
    access_token: String,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn number(value: &Option<serde_json::Value>) -> Option<i64> {
    match value {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

#[async_trait::async_trait]
impl TokenCredential for AppServiceManagedIdentity {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes
            .first()
            .ok_or_else(|| credential_error("no scope".into()))?;
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut url = url::Url::parse(&self.endpoint)
            .map_err(|_| credential_error("IDENTITY_ENDPOINT is not a valid URL".into()))?;
        url.query_pairs_mut()
            .append_pair("api-version", "2019-08-01")
            .append_pair("resource", resource);
        if let Some(id) = &self.client_id {
            url.query_pairs_mut().append_pair("client_id", id);
        }
        let response = self
            .client
            .get(url)
            .header("X-IDENTITY-HEADER", self.header.expose())
            .send()
            .await
            .map_err(|e| credential_error(format!("managed identity request failed: {e}")))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| credential_error(format!("managed identity response: {e}")))?;
        if !status.is_success() {
            let snippet: String = body.chars().take(300).collect();
            return Err(credential_error(format!(
                "managed identity endpoint answered {status}: {snippet}"
            )));
        }
        let token: MsiToken = serde_json::from_str(&body)
            .map_err(|e| credential_error(format!("managed identity response: {e}")))?;
        let now = OffsetDateTime::now_utc();
        let expires_on = match (number(&token.expires_on), number(&token.expires_in)) {
            (Some(at), _) => OffsetDateTime::from_unix_timestamp(at).unwrap_or(now),
            (None, Some(secs)) => now + azure_core::time::Duration::seconds(secs),
            (None, None) => now + azure_core::time::Duration::minutes(5),
        };
        Ok(AccessToken::new(
            azure_core::credentials::Secret::new(token.access_token),
            expires_on,
        ))
    }
}

/// Runs `az` with the `PATH` from the environment map (the child's environment, never ours).
#[derive(Debug)]
struct PathExecutor {
    path: String,
}

#[async_trait::async_trait]
impl Executor for PathExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> std::io::Result<std::process::Output> {
        tokio::process::Command::new(program)
            .args(args)
            .env("PATH", &self.path)
            .kill_on_drop(true)
            .output()
            .await
    }
}
