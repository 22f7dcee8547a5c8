//! The storage calls deploy-infra needs that `azure::storage` (issue 7, being written at the
//! same time) does not offer yet: the account with the security settings aib enforces, the
//! container's public access, and `checkNameAvailability`. To be merged into `azure::storage`
//! once both have landed; paths are built here only so that the step itself never writes one.

use serde::{Deserialize, Serialize};

use reqwest::Method;

use crate::azure::arm::{ArmClient, ArmError, Idempotency, LroOptions};
use crate::azure::groups::{Tags, tags_or_empty};

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}`.
pub fn account_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Storage/storageAccounts/{name}"
    )
}

/// `{account id}/blobServices/default/containers/{name}`.
pub fn container_id(account_id: &str, name: &str) -> String {
    format!("{account_id}/blobServices/default/containers/{name}")
}

/// A storage account as ARM returns it (the fields deploy-infra compares or reports).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Account {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Region; immutable.
    #[serde(default)]
    pub location: String,
    /// Tags.
    #[serde(default, deserialize_with = "tags_or_empty")]
    pub tags: Tags,
    /// Settings.
    #[serde(default)]
    pub properties: AccountProperties,
}

/// The settings aib enforces, and the blob endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProperties {
    /// Anonymous reads allowed on containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_blob_public_access: Option<bool>,
    /// Lowest TLS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_tls_version: Option<String>,
    /// Account keys and key-signed SAS accepted (Azure's default when absent: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_shared_key_access: Option<bool>,
    /// HTTPS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_https_traffic_only: Option<bool>,
    /// The data-plane endpoints (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_endpoints: Option<Endpoints>,
}

/// Data-plane endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Endpoints {
    /// `https://{name}.blob.core.windows.net/` in Azure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
}

/// A container as ARM returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Container {
    /// Settings.
    #[serde(default)]
    pub properties: ContainerProperties,
}

/// Container settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProperties {
    /// `None`, `Blob` or `Container`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access: Option<String>,
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

/// The account, or `None`.
pub async fn get_account(arm: &ArmClient, id: &str) -> Result<Option<Account>, ArmError> {
    arm.get_optional(id).await
}

/// Creates the account (Location-style long-running operation) and waits.
pub async fn put_account(
    arm: &ArmClient,
    id: &str,
    body: &serde_json::Value,
    options: &LroOptions,
) -> Result<Account, ArmError> {
    arm.put_with(id, body, options).await
}

/// Updates the given settings and tags of an existing account and waits.
pub async fn patch_account(
    arm: &ArmClient,
    id: &str,
    body: &serde_json::Value,
    options: &LroOptions,
) -> Result<Account, ArmError> {
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

/// The container, or `None`.
pub async fn get_container(arm: &ArmClient, id: &str) -> Result<Option<Container>, ArmError> {
    arm.get_optional(id).await
}

/// Creates the container or sets its public access.
pub async fn put_container(
    arm: &ArmClient,
    id: &str,
    options: &LroOptions,
) -> Result<Container, ArmError> {
    arm.put_with(
        id,
        &serde_json::json!({"properties": {"publicAccess": "None"}}),
        options,
    )
    .await
}

/// Whether a new account could take `name` (globally unique across Azure).
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
