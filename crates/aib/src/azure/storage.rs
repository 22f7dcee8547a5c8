//! Storage accounts and blob containers as ARM resources: typed models and the calls on them.
//!
//! This module owns the control-plane view of storage (section 6.1–6.2 of the REST contract):
//! reading an account to learn its blob endpoint (`properties.primaryEndpoints.blob`, so
//! sovereign clouds and the emulator need no special case), creating or updating an account,
//! and creating a container. Every call goes through [`ArmClient`]; nothing here builds a host
//! name or talks to the blob data plane (that is [`super::blob`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use reqwest::Method;

use super::arm::{ArmClient, ArmError, Idempotency, LroOptions};

/// Where a storage account lives; the parts of its ARM id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageAccountId {
    /// Subscription id.
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Account name (3–24 lowercase letters and digits).
    pub name: String,
}

impl StorageAccountId {
    /// The ARM path of the account, which is also the scope role assignments on it use.
    pub fn path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    /// The ARM path of a container of this account.
    pub fn container_path(&self, container: &str) -> String {
        format!(
            "{}/blobServices/default/containers/{container}",
            self.path()
        )
    }
}

/// A storage account as ARM returns it (only the fields aib reads or writes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageAccount {
    /// The ARM id (absent in a PUT body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The account name (absent in a PUT body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Azure region.
    #[serde(default)]
    pub location: String,
    /// Replication SKU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// `StorageV2` for the scripts account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Resource tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Account settings and read-only state.
    #[serde(default)]
    pub properties: StorageAccountProperties,
}

impl StorageAccount {
    /// The blob endpoint ARM reported (`https://{name}.blob.core.windows.net/` in Azure).
    pub fn blob_endpoint(&self) -> Option<Url> {
        let blob = self
            .properties
            .primary_endpoints
            .as_ref()?
            .blob
            .as_deref()?;
        Url::parse(blob).ok()
    }
}

/// The account SKU (`Standard_LRS`, `Standard_ZRS`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    /// The SKU name.
    pub name: String,
    /// `Standard` or `Premium` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// Account properties; `None` fields are left out of a PUT so Azure keeps or defaults them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageAccountProperties {
    /// `Succeeded` once the account is ready (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// The data-plane endpoints (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_endpoints: Option<Endpoints>,
    /// Whether containers may allow anonymous reads (aib: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_blob_public_access: Option<bool>,
    /// Lowest TLS version accepted (aib: `TLS1_2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_tls_version: Option<String>,
    /// Whether account keys and key-signed SAS work (aib: false, Entra ID only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_shared_key_access: Option<bool>,
    /// HTTPS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_https_traffic_only: Option<bool>,
    /// The portal and tools use Entra ID by default.
    #[serde(
        default,
        rename = "defaultToOAuthAuthentication",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_to_oauth_authentication: Option<bool>,
}

/// The account's data-plane endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// The blob endpoint, with a trailing slash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
}

/// A blob container as ARM returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobContainer {
    /// The ARM id (absent in a PUT body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The container name (absent in a PUT body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Container settings.
    #[serde(default)]
    pub properties: ContainerProperties,
}

/// Container settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProperties {
    /// `None` (aib never makes scripts public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access: Option<String>,
}

/// Reads an account; `None` when it does not exist.
pub async fn get_account(
    arm: &ArmClient,
    id: &StorageAccountId,
) -> Result<Option<StorageAccount>, ArmError> {
    arm.get_optional(&id.path()).await
}

/// Creates or updates an account and waits until it is provisioned (a Location-style
/// long-running operation); returns the account as ARM reports it afterwards.
pub async fn put_account(
    arm: &ArmClient,
    id: &StorageAccountId,
    account: &StorageAccount,
) -> Result<StorageAccount, ArmError> {
    arm.put(&id.path(), account).await
}

/// Creates a container (or leaves an existing one as it is, with the given settings).
pub async fn put_container(
    arm: &ArmClient,
    id: &StorageAccountId,
    container: &str,
    body: &BlobContainer,
) -> Result<BlobContainer, ArmError> {
    arm.put(&id.container_path(container), body).await
}

/// The answer of `checkNameAvailability`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameAvailability {
    /// Whether a new account may take the name.
    #[serde(default)]
    pub name_available: bool,
    /// `AccountNameInvalid` or `AlreadyExists`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Azure's text.
    #[serde(default)]
    pub message: Option<String>,
}

/// Creates or replaces an account from a raw body (the plan's declared settings), reporting
/// the long-running operation's progress, and waits.
pub async fn put_account_body(
    arm: &ArmClient,
    id: &str,
    body: &serde_json::Value,
    options: &LroOptions,
) -> Result<StorageAccount, ArmError> {
    arm.put_with(id, body, options).await
}

/// Updates only the given settings and tags of an existing account (PATCH leaves the rest, so
/// settings someone else manages stay) and waits.
pub async fn patch_account(
    arm: &ArmClient,
    id: &str,
    body: &serde_json::Value,
    options: &LroOptions,
) -> Result<StorageAccount, ArmError> {
    let started = arm
        .begin(Method::PATCH, id, Some(body), Idempotency::Idempotent)
        .await?;
    let value = arm.wait(started, options).await?;
    serde_json::from_value(value.unwrap_or_default()).map_err(|e| ArmError::Decode {
        method: "PATCH".into(),
        path: id.to_owned(),
        message: e.to_string(),
    })
}

/// The container at its ARM id, or `None` (to read its public access before changing it).
pub async fn get_container(arm: &ArmClient, id: &str) -> Result<Option<BlobContainer>, ArmError> {
    arm.get_optional(id).await
}

/// Creates the container at its ARM id, or turns its public access off, and waits.
pub async fn put_private_container(
    arm: &ArmClient,
    id: &str,
    options: &LroOptions,
) -> Result<BlobContainer, ArmError> {
    arm.put_with(
        id,
        &serde_json::json!({"properties": {"publicAccess": "None"}}),
        options,
    )
    .await
}

/// Whether a new account could take `name`: names are unique across all of Azure, so a name
/// someone else holds must be caught before anything is created.
pub async fn check_name(
    arm: &ArmClient,
    subscription: &str,
    name: &str,
) -> Result<NameAvailability, ArmError> {
    let answer = arm
        .post(
            &format!(
                "/subscriptions/{subscription}/providers/Microsoft.Storage/checkNameAvailability"
            ),
            Some(&serde_json::json!({"name": name, "type": "Microsoft.Storage/storageAccounts"})),
            Idempotency::Idempotent,
        )
        .await?;
    Ok(answer.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blob endpoint is read from what ARM says, whatever the cloud or host.
    #[test]
    fn blob_endpoint_comes_from_primary_endpoints() {
        let account: StorageAccount = serde_json::from_value(serde_json::json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
            "name": "st", "location": "westeurope",
            "properties": {"provisioningState": "Succeeded",
                           "primaryEndpoints": {"blob": "https://st.blob.core.chinacloudapi.cn/", "dfs": "x"}}
        }))
        .unwrap();
        assert_eq!(
            account.blob_endpoint().unwrap().as_str(),
            "https://st.blob.core.chinacloudapi.cn/"
        );
        assert_eq!(StorageAccount::default().blob_endpoint(), None);
    }

    /// A PUT body carries only what was set, with ARM's spelling of each field.
    #[test]
    fn put_body_leaves_unset_fields_out() {
        let account = StorageAccount {
            location: "westeurope".into(),
            sku: Some(Sku {
                name: "Standard_LRS".into(),
                tier: None,
            }),
            kind: Some("StorageV2".into()),
            properties: StorageAccountProperties {
                allow_shared_key_access: Some(false),
                default_to_oauth_authentication: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&account).unwrap(),
            serde_json::json!({"location": "westeurope", "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "properties": {"allowSharedKeyAccess": false, "defaultToOAuthAuthentication": true}})
        );
        let id = StorageAccountId {
            subscription_id: "s".into(),
            resource_group: "rg".into(),
            name: "st".into(),
        };
        assert_eq!(
            id.container_path("c"),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st/blobServices/default/containers/c"
        );
    }
}
