//! Resource groups and resource provider registrations (Microsoft.Resources): typed models and
//! the calls steps make on them, through the one ARM client.
//!
//! Only what the steps need: read a group (absent is `None`), create or update it, read a
//! provider's registration state and ask for a registration. Paths are built here, once, so
//! steps never write an ARM URL. Also the [`Tags`] type every resource model shares, because
//! ARM answers `"tags": null` as readily as `{}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::arm::{ArmClient, ArmError, Idempotency, LroOptions};

/// Resource tags as ARM stores them (names are case-insensitive in Azure; values are strings).
pub type Tags = BTreeMap<String, String>;

/// Reads `tags` that may be absent or `null` as an empty map.
pub fn tags_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Tags, D::Error> {
    Ok(Option::<Tags>::deserialize(d)?.unwrap_or_default())
}

/// `/subscriptions/{sub}/resourceGroups/{name}`.
pub fn group_id(subscription: &str, name: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{name}")
}

/// A resource group as ARM returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceGroup {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Region; immutable once created.
    pub location: String,
    /// Tags.
    #[serde(default, deserialize_with = "tags_or_empty")]
    pub tags: Tags,
}

/// What a resource group PUT sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceGroupBody {
    /// Region.
    pub location: String,
    /// Tags (the PUT replaces them all).
    pub tags: Tags,
}

/// The group, or `None` when it does not exist.
pub async fn get_group(
    arm: &ArmClient,
    subscription: &str,
    name: &str,
) -> Result<Option<ResourceGroup>, ArmError> {
    arm.get_optional(&group_id(subscription, name)).await
}

/// Creates the group or brings it to `body` (synchronous in ARM; `options` gets its state).
pub async fn put_group(
    arm: &ArmClient,
    subscription: &str,
    name: &str,
    body: &ResourceGroupBody,
    options: &LroOptions,
) -> Result<ResourceGroup, ArmError> {
    arm.put_with(&group_id(subscription, name), body, options)
        .await
}

/// A resource provider's registration in a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// `Microsoft.Compute`, …
    #[serde(default)]
    pub namespace: String,
    /// `NotRegistered`, `Registering`, `Registered`, `Unregistering`.
    #[serde(default)]
    pub registration_state: String,
}

impl Provider {
    /// Whether resources of this namespace can be created now.
    pub fn is_registered(&self) -> bool {
        self.registration_state.eq_ignore_ascii_case("Registered")
    }
}

fn provider_path(subscription: &str, namespace: &str) -> String {
    format!("/subscriptions/{subscription}/providers/{namespace}")
}

/// The registration state of `namespace`.
pub async fn get_provider(
    arm: &ArmClient,
    subscription: &str,
    namespace: &str,
) -> Result<Provider, ArmError> {
    arm.get(&provider_path(subscription, namespace)).await
}

/// Asks ARM to register `namespace` (needs `<namespace>/register/action` on the subscription,
/// which Contributor has); the answer is usually still `Registering`.
pub async fn register_provider(
    arm: &ArmClient,
    subscription: &str,
    namespace: &str,
) -> Result<Option<Provider>, ArmError> {
    arm.post::<(), Provider>(
        &format!("{}/register", provider_path(subscription, namespace)),
        None,
        Idempotency::Idempotent,
    )
    .await
}
