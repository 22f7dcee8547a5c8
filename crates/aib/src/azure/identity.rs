//! User-assigned managed identities (Microsoft.ManagedIdentity/userAssignedIdentities): the
//! typed model and calls. The identity Image Builder runs as is created here; its
//! `principalId` feeds role assignments, its `clientId` the outputs.
//!
//! ARM creates identities synchronously (201/200), but the service principal behind one is
//! replicated to Entra ID asynchronously: role assignments right after a create may meet
//! `PrincipalNotFound` (handled in [`super::rbac`]).

use serde::{Deserialize, Serialize};

use super::arm::{ArmClient, ArmError, LroOptions};
use super::groups::{Tags, tags_or_empty};

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`.
pub fn identity_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

/// An identity as ARM returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct UserAssignedIdentity {
    /// Resource id (ARM may echo `resourcegroups` lower-case: compare ids case-insensitively).
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Region; immutable.
    #[serde(default)]
    pub location: String,
    /// Tags.
    #[serde(default, deserialize_with = "tags_or_empty")]
    pub tags: Tags,
    /// The ids.
    #[serde(default)]
    pub properties: IdentityProperties,
}

/// The ids of an identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProperties {
    /// Object id of the service principal: what role assignments name.
    #[serde(default)]
    pub principal_id: String,
    /// Application id: what IMDS and `--assignee` take.
    #[serde(default)]
    pub client_id: String,
    /// The tenant.
    #[serde(default)]
    pub tenant_id: String,
}

/// What an identity PUT sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityBody {
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: Tags,
}

/// The identity, or `None` when it does not exist.
pub async fn get_identity(
    arm: &ArmClient,
    id: &str,
) -> Result<Option<UserAssignedIdentity>, ArmError> {
    arm.get_optional(id).await
}

/// Creates the identity or updates its tags; the ids of an existing identity never change.
pub async fn put_identity(
    arm: &ArmClient,
    id: &str,
    body: &IdentityBody,
    options: &LroOptions,
) -> Result<UserAssignedIdentity, ArmError> {
    arm.put_with(id, body, options).await
}
