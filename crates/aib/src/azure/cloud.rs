//! Which Azure cloud: the ARM endpoint, the Entra authority host, the storage suffix and the
//! token audiences.
//!
//! Sovereign clouds and the emulator are just other values of [`Cloud`]; nothing here knows
//! about the emulator. A named cloud gives all endpoints; explicit endpoints override single
//! fields of it (so `--arm-endpoint` alone keeps the public authority host and audience).

use url::Url;

use super::env::{self, Env};

/// The named clouds `--cloud` accepts, as Azure CLI and the pipelines name them.
pub const CLOUD_NAMES: [&str; 3] = ["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"];

/// What the user asked for; `None` fields fall back to the environment, then to the named cloud.
#[derive(Debug, Clone, Default)]
pub struct CloudOptions {
    /// `--cloud`.
    pub cloud: Option<String>,
    /// `--arm-endpoint`.
    pub arm_endpoint: Option<String>,
    /// `--arm-audience`.
    pub arm_audience: Option<String>,
    /// `--authority-host`.
    pub authority_host: Option<String>,
    /// `--storage-suffix`.
    pub storage_suffix: Option<String>,
}

/// The resolved endpoints of one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// The cloud's name (`AzureCloud`…), or the base name when endpoints were overridden.
    pub name: String,
    /// ARM base URL, e.g. `https://management.azure.com/`.
    pub arm_endpoint: Url,
    /// The audience ARM tokens are requested for, e.g. `https://management.azure.com/`.
    pub arm_audience: String,
    /// Entra login host, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// Blob endpoint suffix, e.g. `core.windows.net`.
    pub storage_suffix: String,
}

/// A cloud name or endpoint that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// `--cloud` named something unknown.
    #[error("unknown cloud '{0}'; expected one of {names}", names = CLOUD_NAMES.join(", "))]
    UnknownCloud(String),
    /// An endpoint is not an absolute https URL.
    #[error("{what} '{value}' is not an absolute https:// URL")]
    BadEndpoint {
        /// Which setting.
        what: &'static str,
        /// What was given.
        value: String,
    },
}

/// The storage token scope; the same in every cloud.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

impl Cloud {
    /// One of [`CLOUD_NAMES`] (case-insensitive).
    pub fn named(name: &str) -> Result<Cloud, CloudError> {
        let (canonical, arm, login, suffix) = match name.to_ascii_lowercase().as_str() {
            "azurecloud" | "azurepubliccloud" | "public" => (
                "AzureCloud",
                "https://management.azure.com/",
                "https://login.microsoftonline.com/",
                "core.windows.net",
            ),
            "azureusgovernment" | "usgovernment" => (
                "AzureUSGovernment",
                "https://management.usgovcloudapi.net/",
                "https://login.microsoftonline.us/",
                "core.usgovcloudapi.net",
            ),
            "azurechinacloud" | "china" => (
                "AzureChinaCloud",
                "https://management.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/",
                "core.chinacloudapi.cn",
            ),
            _ => return Err(CloudError::UnknownCloud(name.to_owned())),
        };
        Ok(Cloud {
            name: canonical.to_owned(),
            arm_endpoint: Url::parse(arm).map_err(|_| CloudError::UnknownCloud(name.into()))?,
            arm_audience: arm.to_owned(),
            authority_host: Url::parse(login).map_err(|_| CloudError::UnknownCloud(name.into()))?,
            storage_suffix: suffix.to_owned(),
        })
    }

    /// Flags first, then `AIB_*` variables, then the named cloud (default `AzureCloud`).
    pub fn resolve(options: &CloudOptions, env: &Env) -> Result<Cloud, CloudError> {
        let name = options
            .cloud
            .as_deref()
            .or_else(|| env.get(env::AIB_CLOUD))
            .unwrap_or("AzureCloud");
        let mut cloud = Cloud::named(name)?;
        if let Some(v) = options
            .arm_endpoint
            .as_deref()
            .or_else(|| env.get(env::AIB_ARM_ENDPOINT))
        {
            cloud.arm_endpoint = https_url("--arm-endpoint", v)?;
        }
        if let Some(v) = options
            .arm_audience
            .as_deref()
            .or_else(|| env.get(env::AIB_ARM_AUDIENCE))
        {
            cloud.arm_audience = v.to_owned();
        }
        if let Some(v) = options
            .authority_host
            .as_deref()
            .or_else(|| env.first(&[env::AIB_AUTHORITY_HOST, env::AZURE_AUTHORITY_HOST]))
        {
            cloud.authority_host = https_url("--authority-host", v)?;
        }
        if let Some(v) = options
            .storage_suffix
            .as_deref()
            .or_else(|| env.get(env::AIB_STORAGE_SUFFIX))
        {
            cloud.storage_suffix = v.trim_start_matches('.').to_owned();
        }
        Ok(cloud)
    }

    /// A cloud whose ARM endpoint and authority host are one base URL (the emulator's shape),
    /// with the public cloud's audience and a given storage suffix.
    pub fn custom(base: &Url, storage_suffix: &str) -> Cloud {
        Cloud {
            name: "AzureCloud".to_owned(),
            arm_endpoint: base.clone(),
            arm_audience: "https://management.azure.com/".to_owned(),
            authority_host: base.clone(),
            storage_suffix: storage_suffix.to_owned(),
        }
    }

    /// The scope for ARM tokens: the audience plus `/.default`.
    pub fn arm_scope(&self) -> String {
        format!("{}/.default", self.arm_audience.trim_end_matches('/'))
    }
}

fn https_url(what: &'static str, value: &str) -> Result<Url, CloudError> {
    let bad = || CloudError::BadEndpoint {
        what,
        value: value.to_owned(),
    };
    let mut url = Url::parse(value).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(bad());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Named clouds give consistent endpoints and the ARM scope ends with `/.default`.
    #[test]
    fn named_clouds_resolve_case_insensitively() {
        let gov = Cloud::named("azureusgovernment").unwrap();
        assert_eq!(gov.name, "AzureUSGovernment");
        assert_eq!(
            gov.arm_endpoint.as_str(),
            "https://management.usgovcloudapi.net/"
        );
        assert_eq!(
            gov.arm_scope(),
            "https://management.usgovcloudapi.net/.default"
        );
        assert_eq!(
            Cloud::named("AzureChinaCloud").unwrap().storage_suffix,
            "core.chinacloudapi.cn"
        );
        assert!(matches!(
            Cloud::named("Mars"),
            Err(CloudError::UnknownCloud(_))
        ));
    }

    /// Flags beat environment variables, and explicit endpoints override single fields only.
    #[test]
    fn explicit_endpoints_override_the_named_cloud() {
        let env = Env::from_pairs([
            (env::AIB_ARM_ENDPOINT, "https://127.0.0.1:8443"),
            (env::AIB_AUTHORITY_HOST, "https://login.example/"),
        ]);
        let opts = CloudOptions {
            authority_host: Some("https://127.0.0.1:9443".into()),
            ..Default::default()
        };
        let cloud = Cloud::resolve(&opts, &env).unwrap();
        assert_eq!(cloud.arm_endpoint.as_str(), "https://127.0.0.1:8443/");
        assert_eq!(cloud.authority_host.as_str(), "https://127.0.0.1:9443/");
        assert_eq!(cloud.arm_scope(), "https://management.azure.com/.default");
        assert_eq!(cloud.storage_suffix, "core.windows.net");
    }

    /// A plain-http endpoint is refused before any request (tokens would travel in clear).
    #[test]
    fn http_endpoints_are_refused() {
        let opts = CloudOptions {
            arm_endpoint: Some("http://management.azure.com".into()),
            ..Default::default()
        };
        let err = Cloud::resolve(&opts, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("--arm-endpoint"), "{err}");
    }
}
