//! Role assignments and role definitions (Microsoft.Authorization): typed models, the calls,
//! deterministic assignment names, and the two eventual-consistency windows of RBAC.
//!
//! Assignment names are UUIDv5 of `scope|principal|role` (lower-case), so the same grant always
//! has the same name and a re-run is a no-op instead of a `RoleAssignmentExists` conflict.
//! A duplicate made by someone else under another name (409 `RoleAssignmentExists`) counts as
//! done, as the Azure CLI treats it.
//!
//! Right after an identity is created its service principal may not be replicated yet: the
//! assignment is sent with `principalType: ServicePrincipal` (ARM then skips the directory
//! lookup) and, when ARM still answers `PrincipalNotFound` (or does not know a custom role
//! created a moment ago), it is sent again with backoff until [`ConsistencyRetry`]'s deadline.
//! That loop is backon's, like the ARM client's own; transient HTTP failures are retried
//! inside each attempt by the client.
//!
//! [`granted`] evaluates role definitions the way ARM does (wildcards, `notActions`), so a step
//! can check a principal's permissions before it changes anything.

use std::time::Duration;

use backon::Retryable as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::arm::{ArmClient, ArmError};

/// Built-in role definition GUIDs (the same in every tenant).
pub mod builtin {
    /// Owner.
    pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    /// Contributor.
    pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    /// User Access Administrator.
    pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
    /// Role Based Access Control Administrator.
    pub const RBAC_ADMINISTRATOR: &str = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";
    /// Storage Blob Data Reader: what Image Builder's identity needs to read the scripts.
    pub const STORAGE_BLOB_DATA_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
}

/// The namespace of assignment and custom-role names made by aib (a fixed, random UUID).
const AIB_NAMESPACE: Uuid = Uuid::from_u128(0x6d2b_51f4_9a0e_4c1b_8f7d_2e36_a4c9_0b15);

/// The deterministic name of the assignment of `role_guid` to `principal_id` at `scope`.
pub fn assignment_name(scope: &str, principal_id: &str, role_guid: &str) -> Uuid {
    let key = format!(
        "{}|{}|{}",
        scope.trim_end_matches('/'),
        principal_id,
        role_guid
    )
    .to_ascii_lowercase();
    Uuid::new_v5(&AIB_NAMESPACE, key.as_bytes())
}

/// A deterministic GUID for a custom role of aib's, from what makes it unique (its scope).
pub fn custom_role_guid(key: &str) -> Uuid {
    Uuid::new_v5(&AIB_NAMESPACE, key.to_ascii_lowercase().as_bytes())
}

/// `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}`: how an
/// assignment names its role.
pub fn role_definition_id(subscription: &str, role_guid: &str) -> String {
    format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"
    )
}

/// The GUID at the end of a role definition id, lower-case.
pub fn role_guid_of(role_definition_id: &str) -> String {
    role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether an assignment at `assignment_scope` applies at `target` (same scope or a parent).
pub fn scope_covers(assignment_scope: &str, target: &str) -> bool {
    let s = assignment_scope.trim_end_matches('/').to_ascii_lowercase();
    let t = target.trim_end_matches('/').to_ascii_lowercase();
    s.is_empty() || t == s || t.starts_with(&format!("{s}/"))
}

/// A role assignment as ARM returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RoleAssignment {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// The assignment's GUID.
    #[serde(default)]
    pub name: String,
    /// What is granted to whom where.
    pub properties: RoleAssignmentProperties,
}

/// The grant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    /// Full role definition id.
    pub role_definition_id: String,
    /// Object id of the principal.
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// The scope.
    #[serde(default)]
    pub scope: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// How long to keep re-sending an assignment ARM refuses only because Entra or the role store
/// has not caught up yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyRetry {
    /// First wait.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Give up once the waits add up to this (the Azure CLI waits up to 3 minutes).
    pub deadline: Duration,
}

impl Default for ConsistencyRetry {
    fn default() -> Self {
        ConsistencyRetry {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(20),
            deadline: Duration::from_secs(180),
        }
    }
}

impl ConsistencyRetry {
    fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .with_total_delay(Some(self.deadline))
    }
}

/// Whether ARM refused only because a new principal or role is not visible yet.
pub fn is_replication_lag(error: &ArmError) -> bool {
    let Some(service) = error.service() else {
        return false;
    };
    let code = service.error.code.as_str();
    code == "PrincipalNotFound"
        || code == "RoleDefinitionDoesNotExist"
        || service
            .error
            .message
            .contains(" does not exist in the directory ")
}

/// How an assignment request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignOutcome {
    /// Created (or our own deterministic name was already there with the same grant).
    Created(RoleAssignment),
    /// The same grant existed under another name.
    AlreadyExisted,
}

/// `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
pub fn assignment_path(scope: &str, name: &Uuid) -> String {
    format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
        scope.trim_end_matches('/')
    )
}

/// Assigns `role_guid` to a service principal at `scope` under the deterministic name, riding
/// out the replication windows (see the module doc).
pub async fn assign_role(
    arm: &ArmClient,
    subscription: &str,
    scope: &str,
    role_guid: &str,
    principal_id: &str,
    description: &str,
    retry: &ConsistencyRetry,
) -> Result<AssignOutcome, ArmError> {
    let path = assignment_path(scope, &assignment_name(scope, principal_id, role_guid));
    let body = serde_json::json!({
        "properties": {
            "roleDefinitionId": role_definition_id(subscription, role_guid),
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
            "description": description,
        }
    });
    let attempt = || async {
        match arm.put::<_, RoleAssignment>(&path, &body).await {
            Ok(a) => Ok(AssignOutcome::Created(a)),
            Err(e) if e.code() == Some("RoleAssignmentExists") => Ok(AssignOutcome::AlreadyExisted),
            Err(e) => Err(e),
        }
    };
    attempt
        .retry(retry.backoff())
        .sleep(tokio::time::sleep)
        .when(is_replication_lag)
        .await
}

/// Every assignment of `principal_id` that ARM lists at `scope` (those at the scope, above it
/// and below it).
pub async fn list_assignments_of(
    arm: &ArmClient,
    scope: &str,
    principal_id: &str,
) -> Result<Vec<RoleAssignment>, ArmError> {
    let filter: String =
        url::form_urlencoded::byte_serialize(format!("principalId eq '{principal_id}'").as_bytes())
            .collect();
    arm.list(&format!(
        "{}/providers/Microsoft.Authorization/roleAssignments?$filter={filter}",
        scope.trim_end_matches('/')
    ))
    .await
}

/// Every assignment that applies to the principal with object id `principal_id` at `scope`,
/// including those through groups (`assignedTo`).
pub async fn list_assignments_for_caller(
    arm: &ArmClient,
    scope: &str,
    principal_id: &str,
) -> Result<Vec<RoleAssignment>, ArmError> {
    let filter: String =
        url::form_urlencoded::byte_serialize(format!("assignedTo('{principal_id}')").as_bytes())
            .collect();
    arm.list(&format!(
        "{}/providers/Microsoft.Authorization/roleAssignments?$filter={filter}",
        scope.trim_end_matches('/')
    ))
    .await
}

/// A role definition as ARM returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RoleDefinition {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// The GUID.
    #[serde(default)]
    pub name: String,
    /// What it grants.
    pub properties: RoleDefinitionProperties,
}

/// What a role grants, and where it may be assigned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionProperties {
    /// Display name; unique in the tenant.
    pub role_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `BuiltInRole` or `CustomRole`.
    #[serde(default, rename = "type")]
    pub role_type: String,
    /// Granted and excluded actions.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// Where it may be assigned.
    #[serde(default)]
    pub assignable_scopes: Vec<String>,
}

/// One permission block of a role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// Control-plane actions (wildcards allowed).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Excluded control-plane actions.
    #[serde(default)]
    pub not_actions: Vec<String>,
    /// Data-plane actions.
    #[serde(default)]
    pub data_actions: Vec<String>,
    /// Excluded data-plane actions.
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

/// `{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
pub fn role_definition_path(scope: &str, role_guid: &str) -> String {
    format!(
        "{}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
        scope.trim_end_matches('/')
    )
}

/// The role definition, or `None` when there is none with that GUID.
pub async fn get_role_definition(
    arm: &ArmClient,
    scope: &str,
    role_guid: &str,
) -> Result<Option<RoleDefinition>, ArmError> {
    arm.get_optional(&role_definition_path(scope, role_guid))
        .await
}

/// Creates or updates a custom role (same GUID: an update).
pub async fn put_role_definition(
    arm: &ArmClient,
    scope: &str,
    role_guid: &str,
    properties: &RoleDefinitionProperties,
) -> Result<RoleDefinition, ArmError> {
    arm.put(
        &role_definition_path(scope, role_guid),
        &serde_json::json!({ "properties": properties }),
    )
    .await
}

/// ARM's action wildcard match, case-insensitive: `*` spans anything, `/*/` also matches `/`.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => a
                .split_first()
                .is_some_and(|(x, more)| x.eq_ignore_ascii_case(c) && glob(rest, more)),
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
        || (pattern.contains("/*/")
            && glob(pattern.replace("/*/", "/").as_bytes(), action.as_bytes()))
}

/// Whether `role` grants the control-plane `action` (allowed and not excluded by the same block).
pub fn granted(role: &RoleDefinition, action: &str) -> bool {
    role.properties.permissions.iter().any(|p| {
        p.actions.iter().any(|a| action_matches(a, action))
            && !p.not_actions.iter().any(|a| action_matches(a, action))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same scope, principal and role give the same name whatever the casing; any change gives
    /// another.
    #[test]
    fn assignment_names_are_deterministic_and_case_insensitive() {
        let a = assignment_name(
            "/subscriptions/S/resourceGroups/RG",
            "P",
            builtin::CONTRIBUTOR,
        );
        let b = assignment_name(
            "/subscriptions/s/resourcegroups/rg/",
            "p",
            builtin::CONTRIBUTOR,
        );
        assert_eq!(a, b);
        assert_eq!(a.get_version_num(), 5);
        let other = assignment_name("/subscriptions/s/resourcegroups/rg", "p", builtin::OWNER);
        assert_ne!(a, other);
        let elsewhere = assignment_name(
            "/subscriptions/s/resourcegroups/rg2",
            "p",
            builtin::CONTRIBUTOR,
        );
        assert_ne!(a, elsewhere);
    }

    /// Wildcards and exclusions are applied as ARM applies them.
    #[test]
    fn roles_grant_actions_with_arm_wildcards() {
        let role = |actions: &[&str], not: &[&str]| RoleDefinition {
            id: String::new(),
            name: String::new(),
            properties: RoleDefinitionProperties {
                role_name: "r".into(),
                description: String::new(),
                role_type: "BuiltInRole".into(),
                permissions: vec![Permission {
                    actions: actions.iter().map(|s| s.to_string()).collect(),
                    not_actions: not.iter().map(|s| s.to_string()).collect(),
                    ..Permission::default()
                }],
                assignable_scopes: vec!["/".into()],
            },
        };
        let contributor = role(&["*"], &["Microsoft.Authorization/*/Write"]);
        assert!(granted(
            &contributor,
            "Microsoft.Storage/storageAccounts/write"
        ));
        assert!(!granted(
            &contributor,
            "Microsoft.Authorization/roleAssignments/write"
        ));
        let reader = role(&["*/read"], &[]);
        assert!(granted(&reader, "Microsoft.Compute/galleries/read"));
        assert!(!granted(&reader, "Microsoft.Compute/galleries/write"));
        let operator = role(
            &["Microsoft.ManagedIdentity/userAssignedIdentities/*/read"],
            &[],
        );
        assert!(granted(
            &operator,
            "Microsoft.ManagedIdentity/userAssignedIdentities/read"
        ));
        assert!(scope_covers(
            "/subscriptions/s",
            "/subscriptions/S/resourceGroups/rg"
        ));
        assert!(!scope_covers(
            "/subscriptions/s/resourceGroups/rg",
            "/subscriptions/s/resourceGroups/rg2"
        ));
    }
}
