//! The storage calls deploy-infra needs beyond what `azure::storage` offers (the typed account
//! model and ids come from there): account writes that report progress to the step's line, a
//! PATCH for settings drift, reading a container's public access, and `checkNameAvailability`.
//! To be moved into `azure::storage` (issue 7's module) when its owner agrees.

use serde::{Deserialize, Serialize};

use reqwest::Method;

use crate::azure::arm::{ArmClient, ArmError, Idempotency, LroOptions};
use crate::azure::storage::{StorageAccount, StorageAccountId};

/// The account's ARM id.
pub fn account_id(subscription: &str, resource_group: &str, name: &str) -> String {
    StorageAccountId {
        subscription_id: subscription.to_owned(),
        resource_group: resource_group.to_owned(),
        name: name.to_owned(),
    }
    .path()
}

/// `{account id}/blobServices/default/containers/{name}`.
pub fn container_id(account_id: &str, name: &str) -> String {
    format!("{account_id}/blobServices/default/containers/{name}")
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

/// Creates the account (Location-style long-running operation) and waits.
pub async fn put_account(
    arm: &ArmClient,
    id: &str,
    body: &serde_json::Value,
    options: &LroOptions,
) -> Result<StorageAccount, ArmError> {
    arm.put_with(id, body, options).await
}

/// Updates the given settings and tags of an existing account and waits.
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
