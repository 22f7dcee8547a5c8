//! Checks before the first write: does the signed-in principal hold roles that grant every
//! write the plan needs? And registering the resource providers the plan found missing.
//!
//! The permission check reads the caller's role assignments (`assignedTo('{oid}')`, which
//! includes group memberships) and their role definitions, and evaluates them as ARM does
//! (wildcards, `notActions`). When that cannot be read, the run goes on and ARM's own 403, with
//! its hint, will name what is missing.

use std::collections::HashMap;
use std::time::Duration;

use backon::Retryable as _;

use super::plan::Names;
use super::{Action, DeployInfraError, Kind, MissingPermission, Resource};
use crate::azure::Azure;
use crate::azure::arm::{ArmClient, ArmError};
use crate::azure::auth::token_claims;
use crate::azure::groups;
use crate::azure::rbac::{self, RoleAssignment, RoleDefinition};
use crate::report::{Annotation, Reporter};

/// The ARM action and scope each planned write needs.
pub fn required_actions(n: &Names, resources: &[Resource]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in resources.iter().filter(|r| r.action != Action::Unchanged) {
        let (action, scope) = match r.kind {
            Kind::Provider => (
                format!("{}/register/action", r.name),
                n.subscription_id.clone(),
            ),
            Kind::ResourceGroup => (
                "Microsoft.Resources/subscriptions/resourceGroups/write".to_owned(),
                r.id.clone(),
            ),
            Kind::Identity => (
                "Microsoft.ManagedIdentity/userAssignedIdentities/write".to_owned(),
                r.id.clone(),
            ),
            Kind::StorageAccount => (
                "Microsoft.Storage/storageAccounts/write".to_owned(),
                r.id.clone(),
            ),
            Kind::Container => (
                "Microsoft.Storage/storageAccounts/blobServices/containers/write".to_owned(),
                r.id.clone(),
            ),
            Kind::Gallery => ("Microsoft.Compute/galleries/write".to_owned(), r.id.clone()),
            Kind::ImageDefinition => (
                "Microsoft.Compute/galleries/images/write".to_owned(),
                r.id.clone(),
            ),
            Kind::RoleDefinition => (
                "Microsoft.Authorization/roleDefinitions/write".to_owned(),
                n.group_id.clone(),
            ),
            Kind::RoleAssignment => (
                "Microsoft.Authorization/roleAssignments/write".to_owned(),
                r.id.split("/providers/Microsoft.Authorization/")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
        };
        if !out.contains(&(action.clone(), scope.clone())) {
            out.push((action, scope));
        }
    }
    out
}

/// Built-in roles that grant `action`, for the message.
pub fn roles_granting(action: &str) -> String {
    let a = action.to_ascii_lowercase();
    if a == "microsoft.authorization/roleassignments/write" {
        "Role Based Access Control Administrator, User Access Administrator or Owner".to_owned()
    } else if a == "microsoft.authorization/roledefinitions/write" {
        "User Access Administrator or Owner (or use --role-mode contributor, which needs no custom role)".to_owned()
    } else if a.ends_with("/register/action") {
        let ns = action.trim_end_matches("/register/action");
        format!(
            "Contributor or Owner on the subscription, or ask an administrator to run: az provider register --namespace {ns}"
        )
    } else {
        "Contributor or Owner".to_owned()
    }
}

async fn caller_assignments(
    arm: &ArmClient,
    n: &Names,
    oid: &str,
) -> Result<Vec<RoleAssignment>, ArmError> {
    match rbac::list_assignments_for_caller(arm, &n.subscription_id, oid).await {
        Ok(list) => Ok(list),
        Err(e) if e.status() == Some(403) => {
            rbac::list_assignments_for_caller(arm, &n.group_id, oid).await
        }
        Err(e) => Err(e),
    }
}

/// Whether an assignment ARM listed for the caller at or around the subscription applies at
/// `target`: the same scope or a parent, or a management group / the root (ARM only lists those
/// above the subscription, so they are its ancestors).
fn applies_at(assignment_scope: &str, target: &str) -> bool {
    let scope = assignment_scope.to_ascii_lowercase();
    !scope.starts_with("/subscriptions/") || rbac::scope_covers(assignment_scope, target)
}

/// Fails with every missing permission (or, with `what_if`, warns) before anything changes.
pub async fn check_permissions(
    azure: &Azure,
    reporter: &dyn Reporter,
    n: &Names,
    resources: &[Resource],
    what_if: bool,
) -> Result<(), DeployInfraError> {
    let required = required_actions(n, resources);
    if required.is_empty() {
        return Ok(());
    }
    let unchecked = |why: String| {
        reporter.info(&format!(
            "Permissions not checked in advance ({why}); Azure will refuse any write the principal may not do."
        ));
    };
    let oid = match azure.tokens.token(&azure.cloud.arm_scope()).await {
        Ok(token) => token_claims(&token)
            .and_then(|c| c.get("oid").and_then(|v| v.as_str()).map(str::to_owned)),
        Err(e) => {
            unchecked(e.to_string());
            return Ok(());
        }
    };
    let Some(oid) = oid else {
        unchecked("the token does not name the principal".to_owned());
        return Ok(());
    };
    let assignments = match caller_assignments(&azure.arm, n, &oid).await {
        Ok(a) => a,
        Err(e) => {
            unchecked(format!("its role assignments cannot be read: {e}"));
            return Ok(());
        }
    };
    let mut roles: HashMap<String, Option<RoleDefinition>> = HashMap::new();
    for a in &assignments {
        let guid = rbac::role_guid_of(&a.properties.role_definition_id);
        if let std::collections::hash_map::Entry::Vacant(slot) = roles.entry(guid) {
            let def = rbac::get_role_definition(&azure.arm, &n.subscription_id, slot.key())
                .await
                .ok()
                .flatten();
            slot.insert(def);
        }
    }
    let missing: Vec<MissingPermission> = required
        .into_iter()
        .filter(|(action, scope)| {
            !assignments.iter().any(|a| {
                applies_at(&a.properties.scope, scope)
                    && roles
                        .get(&rbac::role_guid_of(&a.properties.role_definition_id))
                        .and_then(Option::as_ref)
                        .is_some_and(|r| rbac::granted(r, action))
            })
        })
        .map(|(action, scope)| MissingPermission {
            roles: roles_granting(&action),
            action,
            scope,
        })
        .collect();
    if missing.is_empty() {
        reporter.info("Permissions: the signed-in principal may make every planned change.");
        return Ok(());
    }
    let error = DeployInfraError::MissingPermissions(missing);
    if what_if {
        reporter.annotate(&Annotation::warning(error.to_string()));
        return Ok(());
    }
    Err(error)
}

/// Registers a provider and waits (bounded, with backoff) until ARM says it is registered.
pub async fn register_provider(
    arm: &ArmClient,
    subscription: &str,
    namespace: &str,
) -> Result<(), ArmError> {
    groups::register_provider(arm, subscription, namespace).await?;
    let registered = || async {
        let p = groups::get_provider(arm, subscription, namespace).await?;
        Ok::<bool, ArmError>(p.is_registered())
    };
    let check = || async {
        match registered().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(None),
            Err(e) => Err(Some(e)),
        }
    };
    check
        .retry(
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(2))
                .with_max_delay(Duration::from_secs(15))
                .without_max_times()
                .with_total_delay(Some(Duration::from_secs(600))),
        )
        .sleep(tokio::time::sleep)
        .when(|e: &Option<ArmError>| e.is_none())
        .await
        .or_else(|e| match e {
            Some(e) => Err(e),
            // Still registering after ten minutes: let the resource writes say so.
            None => Ok(()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Assignments at the same scope, a parent, a management group or the root apply; a
    /// sibling resource group's do not.
    #[test]
    fn assignments_apply_at_their_scope_and_below() {
        let rg = "/subscriptions/s/resourceGroups/rg";
        assert!(applies_at("/subscriptions/s", rg));
        assert!(applies_at(
            rg,
            &format!("{rg}/providers/Microsoft.Compute/galleries/g")
        ));
        assert!(applies_at(
            "/providers/Microsoft.Management/managementGroups/mg",
            rg
        ));
        assert!(applies_at("/", rg));
        assert!(!applies_at("/subscriptions/s/resourceGroups/other", rg));
    }

    /// The roles named for each missing action are the ones that grant it.
    #[test]
    fn missing_actions_name_the_roles_that_grant_them() {
        assert!(
            roles_granting("Microsoft.Authorization/roleAssignments/write")
                .starts_with("Role Based Access Control Administrator")
        );
        assert!(
            roles_granting("Microsoft.Compute/register/action")
                .contains("az provider register --namespace Microsoft.Compute")
        );
        assert_eq!(
            roles_granting("Microsoft.Compute/galleries/write"),
            "Contributor or Owner"
        );
    }

    /// Each planned write asks for its own action at its own scope; unchanged resources ask
    /// for nothing.
    #[test]
    fn planned_writes_map_to_actions_and_scopes() {
        let file = crate::config::parse_str(
            "local.json",
            include_str!("../../../../../parameters/local.image.parameters.json"),
        )
        .expect("the local file parses");
        let n = Names::new(
            &file.parameters,
            "sub",
            super::super::RoleMode::LeastPrivilege,
        );
        let resource = |kind, name: &str, id: &str, action| Resource {
            kind,
            name: name.into(),
            id: id.into(),
            action,
            changes: Vec::new(),
            status: super::super::Status::Planned,
        };
        let resources = [
            resource(Kind::Provider, "Microsoft.Compute", "", Action::Create),
            resource(Kind::Gallery, "g", &n.gallery_id, Action::Unchanged),
            resource(
                Kind::RoleAssignment,
                "r",
                &format!(
                    "{}/providers/Microsoft.Authorization/roleAssignments",
                    n.account_id
                ),
                Action::Create,
            ),
        ];
        assert_eq!(
            required_actions(&n, &resources),
            [
                (
                    "Microsoft.Compute/register/action".to_owned(),
                    "/subscriptions/sub".to_owned()
                ),
                (
                    "Microsoft.Authorization/roleAssignments/write".to_owned(),
                    "/subscriptions/sub/resourceGroups/rg-aib-local/providers/Microsoft.Storage/storageAccounts/staibscriptslocal".to_owned()
                ),
            ]
        );
    }
}
