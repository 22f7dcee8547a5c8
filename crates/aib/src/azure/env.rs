//! Every environment variable the Azure layer understands, declared once, and the [`Env`] map
//! the binaries hand over.
//!
//! The library never reads the process environment (and never sets it: that is `unsafe` in
//! edition 2024 and racy in tests). A binary calls [`Env::from_process`] once at startup; tests
//! build an [`Env`] from pairs. Empty values count as unset, because CI systems often export a
//! variable with nothing in it.

use std::collections::BTreeMap;

/// `--auth` fallback: `secret|github-oidc|ado-oidc|federated-file|managed-identity|azure-cli`.
pub const AIB_AUTH: &str = "AIB_AUTH";
/// `--cloud` fallback: `AzureCloud|AzureUSGovernment|AzureChinaCloud`.
pub const AIB_CLOUD: &str = "AIB_CLOUD";
/// `--arm-endpoint` fallback (the emulator, Azure Stack, a proxy).
pub const AIB_ARM_ENDPOINT: &str = "AIB_ARM_ENDPOINT";
/// `--arm-audience` fallback: the token audience for ARM when it differs from the cloud's.
pub const AIB_ARM_AUDIENCE: &str = "AIB_ARM_AUDIENCE";
/// `--authority-host` fallback (Entra ID login endpoint).
pub const AIB_AUTHORITY_HOST: &str = "AIB_AUTHORITY_HOST";
/// The Azure SDKs' name for the authority host, accepted as a second fallback.
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// `--storage-suffix` fallback (`core.windows.net` in the public cloud).
pub const AIB_STORAGE_SUFFIX: &str = "AIB_STORAGE_SUFFIX";
/// A PEM bundle of extra trusted roots (corporate TLS inspection, the emulator's test CA).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// The application (client) id of the service principal or user-assigned identity.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// The Entra tenant id.
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// A client secret (credential kind `secret`).
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// The subscription the steps work in.
pub const AZURE_SUBSCRIPTION_ID: &str = "AZURE_SUBSCRIPTION_ID";
/// A file holding a federated token (Kubernetes workload identity, or written by a CI step).
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";

/// `AzureCLI@2` with `addSpnToEnvironment`: the service principal's client id.
pub const SERVICE_PRINCIPAL_ID: &str = "servicePrincipalId";
/// `AzureCLI@2` with `addSpnToEnvironment`: the client secret (secret-based service connection).
pub const SERVICE_PRINCIPAL_KEY: &str = "servicePrincipalKey";
/// `AzureCLI@2` with `addSpnToEnvironment`: the tenant id.
pub const TENANT_ID: &str = "tenantId";
/// `AzureCLI@2` with `addSpnToEnvironment`: a federated id token (workload identity service
/// connection); it lives about ten minutes and cannot be refreshed.
pub const ID_TOKEN: &str = "idToken";

/// GitHub Actions (`permissions: id-token: write`): where to ask for an OIDC id token.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: the bearer token for [`ACTIONS_ID_TOKEN_REQUEST_URL`].
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Azure Pipelines: the OIDC request URI of the job.
pub const SYSTEM_OIDCREQUESTURI: &str = "SYSTEM_OIDCREQUESTURI";
/// Azure Pipelines: `$(System.AccessToken)`, mapped into the step's environment explicitly.
pub const SYSTEM_ACCESSTOKEN: &str = "SYSTEM_ACCESSTOKEN";
/// Azure Pipelines: the workload-identity service connection id (our own name).
pub const AIB_SERVICE_CONNECTION_ID: &str = "AIB_SERVICE_CONNECTION_ID";
/// Azure Pipelines: the service connection id as `AzureCLI@2`/`AzurePowerShell@5` export it.
pub const AZURESUBSCRIPTION_SERVICE_CONNECTION_ID: &str = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID";
/// Azure Pipelines: the service connection's client id as those tasks export it.
pub const AZURESUBSCRIPTION_CLIENT_ID: &str = "AZURESUBSCRIPTION_CLIENT_ID";
/// Azure Pipelines: the service connection's tenant id as those tasks export it.
pub const AZURESUBSCRIPTION_TENANT_ID: &str = "AZURESUBSCRIPTION_TENANT_ID";

/// App Service style managed identity endpoint (also what the emulator offers).
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// The header value that goes with [`IDENTITY_ENDPOINT`].
pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
/// Where `az` is looked up.
pub const PATH: &str = "PATH";

/// A snapshot of environment variables, read once by a binary (or built by a test).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env(BTreeMap<String, String>);

impl std::fmt::Debug for Env {
    // Values may be secrets: show only the names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Env {
    /// The process environment; only binaries call this, once, at startup.
    pub fn from_process() -> Env {
        Env::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// An environment from name/value pairs (tests, or a binary that filters).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    /// The value, or `None` when unset or empty (after trimming).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The first of several names that is set.
    pub fn first(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    /// Sets a value (tests and binaries that add a flag's value before resolving).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empty and blank values count as unset, and Debug shows names only.
    #[test]
    fn empty_values_are_unset_and_debug_hides_values() {
        let env = Env::from_pairs([("A", ""), ("B", "  "), ("C", "secret-value")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), None);
        assert_eq!(env.first(&["A", "C"]), Some("secret-value"));
        let shown = format!("{env:?}");
        assert!(!shown.contains("secret-value"), "{shown}");
        assert!(shown.contains('C'));
    }
}
