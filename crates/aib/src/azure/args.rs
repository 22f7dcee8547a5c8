//! The Azure flags every binary shares (`--auth`, `--cloud`, endpoints, ids), declared once as
//! a clap `Args` struct that step binaries `#[command(flatten)]`.
//!
//! The flags have no clap `env` fallback on purpose: environment fallbacks are resolved by the
//! library from the [`Env`](super::env::Env) map the binary reads once, so tests and binaries
//! resolve the same way.

use super::auth::AuthOptions;
use super::cloud::CloudOptions;

/// Azure connection flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AzureArgs {
    /// Credential kind: secret, github-oidc, ado-oidc, federated-file, managed-identity or
    /// azure-cli (env AIB_AUTH). Default: the first one the environment configures, in that order.
    /// Example: `--auth azure-cli` on a laptop after `az login`.
    #[arg(long, value_name = "KIND")]
    pub auth: Option<String>,

    /// Application (client) id of the service principal or user-assigned managed identity
    /// (env AZURE_CLIENT_ID). Example: `--client-id 00000000-0000-0000-0000-000000000000`.
    #[arg(long, value_name = "GUID")]
    pub client_id: Option<String>,

    /// Entra tenant id (env AZURE_TENANT_ID). Example: `--tenant-id contoso.onmicrosoft.com` or
    /// the tenant's GUID.
    #[arg(long, value_name = "GUID")]
    pub tenant_id: Option<String>,

    /// Subscription to work in (env AZURE_SUBSCRIPTION_ID). Example:
    /// `--subscription-id 11111111-2222-3333-4444-555555555555`.
    #[arg(long, value_name = "GUID")]
    pub subscription_id: Option<String>,

    /// AzureCloud, AzureUSGovernment or AzureChinaCloud (env AIB_CLOUD; default AzureCloud).
    /// Example: `--cloud AzureUSGovernment`.
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,

    /// ARM endpoint, overriding the cloud's (env AIB_ARM_ENDPOINT). Example:
    /// `--arm-endpoint https://management.azure.com`.
    #[arg(long, value_name = "URL")]
    pub arm_endpoint: Option<String>,

    /// Token audience for ARM, when it differs from the cloud's (env AIB_ARM_AUDIENCE). Example:
    /// `--arm-audience https://management.core.windows.net/`.
    #[arg(long, value_name = "URI")]
    pub arm_audience: Option<String>,

    /// Entra authority host, overriding the cloud's (env AIB_AUTHORITY_HOST or
    /// AZURE_AUTHORITY_HOST). Example: `--authority-host https://login.microsoftonline.com`.
    #[arg(long, value_name = "URL")]
    pub authority_host: Option<String>,

    /// Blob endpoint suffix, overriding the cloud's (env AIB_STORAGE_SUFFIX). Example:
    /// `--storage-suffix core.windows.net`.
    #[arg(long, value_name = "SUFFIX")]
    pub storage_suffix: Option<String>,
}

impl AzureArgs {
    /// The cloud part.
    pub fn cloud_options(&self) -> CloudOptions {
        CloudOptions {
            cloud: self.cloud.clone(),
            arm_endpoint: self.arm_endpoint.clone(),
            arm_audience: self.arm_audience.clone(),
            authority_host: self.authority_host.clone(),
            storage_suffix: self.storage_suffix.clone(),
        }
    }

    /// The credential part.
    pub fn auth_options(&self) -> AuthOptions {
        AuthOptions {
            auth: self.auth.clone(),
            client_id: self.client_id.clone(),
            tenant_id: self.tenant_id.clone(),
            subscription_id: self.subscription_id.clone(),
        }
    }
}
