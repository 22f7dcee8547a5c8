//! Microsoft.Authorization: built-in role definitions with their real GUIDs, custom role
//! definitions, role assignments at any scope (with ARM's conflict rules and the
//! `PrincipalNotFound` replication window), and enforcement with a propagation delay.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Instant, SystemTime};

use super::{Ctx, groups, page};
use crate::core::{Assignment, Inner, RoleDef, World, arm_error, empty, json_response, rfc3339};

struct Builtin {
    guid: &'static str,
    name: &'static str,
    description: &'static str,
    actions: &'static [&'static str],
    not_actions: &'static [&'static str],
    data_actions: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        guid: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        name: "Owner",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
    },
    Builtin {
        guid: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
        data_actions: &[],
    },
    Builtin {
        guid: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        name: "Reader",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
    },
    Builtin {
        guid: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        name: "User Access Administrator",
        description: "Lets you manage user access to Azure resources.",
        actions: &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        not_actions: &[],
        data_actions: &[],
    },
    Builtin {
        guid: "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        name: "Role Based Access Control Administrator",
        description: "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
        actions: &[
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    Builtin {
        guid: "f1a07417-d97a-45cb-824c-7a7467783830",
        name: "Managed Identity Operator",
        description: "Read and Assign User Assigned Identity",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    Builtin {
        guid: "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        name: "Managed Identity Contributor",
        description: "Create, Read, Update, and Delete User Assigned Identity",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/*",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    Builtin {
        guid: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        name: "Storage Blob Data Reader",
        description: "Allows for read access to Azure Storage blob containers and data",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    },
    Builtin {
        guid: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        name: "Storage Blob Data Contributor",
        description: "Allows for read, write and delete access to Azure Storage blob containers and data",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
    },
    Builtin {
        guid: "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        name: "Storage Blob Data Owner",
        description: "Allows for full access to Azure Storage blob containers and data, including assigning POSIX access control.",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/*",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
    },
];

/// The GUID of the built-in Owner role (granted to the emulator's main principal).
pub(crate) const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

fn builtin(b: &Builtin) -> RoleDef {
    RoleDef {
        guid: b.guid.to_string(),
        name: b.name.to_string(),
        description: b.description.to_string(),
        builtin: true,
        actions: b.actions.iter().map(|s| s.to_string()).collect(),
        not_actions: b.not_actions.iter().map(|s| s.to_string()).collect(),
        data_actions: b.data_actions.iter().map(|s| s.to_string()).collect(),
        not_data_actions: Vec::new(),
        assignable_scopes: vec!["/".into()],
    }
}

fn find_role(w: &World, guid: &str) -> Option<RoleDef> {
    let g = guid.to_ascii_lowercase();
    BUILTINS
        .iter()
        .find(|b| b.guid == g)
        .map(builtin)
        .or_else(|| w.custom_roles.get(&g).cloned())
}

/// ARM action wildcard match, case-insensitive; `/*/` also matches a single `/`.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => a
                .split_first()
                .is_some_and(|(x, arest)| x.eq_ignore_ascii_case(c) && glob(rest, arest)),
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
        || (pattern.contains("/*/")
            && glob(pattern.replace("/*/", "/").as_bytes(), action.as_bytes()))
}

fn grants(role: &RoleDef, action: &str, data: bool) -> bool {
    let (allow, deny) = if data {
        (&role.data_actions, &role.not_data_actions)
    } else {
        (&role.actions, &role.not_actions)
    };
    allow.iter().any(|p| action_matches(p, action))
        && !deny.iter().any(|p| action_matches(p, action))
}

fn covers(assignment_scope: &str, target: &str) -> bool {
    let s = assignment_scope.trim_end_matches('/').to_ascii_lowercase();
    let t = target.trim_end_matches('/').to_ascii_lowercase();
    s.is_empty() || t == s || t.starts_with(&format!("{s}/"))
}

/// Whether `principal` holds (effective now) a role granting `action` at `scope`.
pub(crate) fn allowed(w: &World, principal: &str, action: &str, scope: &str, data: bool) -> bool {
    let now = Instant::now();
    w.assignments.values().any(|a| {
        a.principal_id.eq_ignore_ascii_case(principal)
            && a.effective_at <= now
            && covers(&a.scope, scope)
            && find_role(w, &a.role_guid).is_some_and(|r| grants(&r, action, data))
    })
}

/// 403 `AuthorizationFailed` naming principal, action and scope unless the caller may act.
#[allow(clippy::result_large_err)]
pub(crate) fn authorize(ctx: &Ctx<'_>, action: &str, scope: &str) -> Result<(), Response> {
    let ok = allowed(&ctx.inner.lock(), &ctx.oid, action, scope, false);
    if ok {
        return Ok(());
    }
    Err(arm_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        &format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            ctx.appid, ctx.oid
        ),
    ))
}

/// Grants a role at a scope at once (used for the emulator's own Owner principal).
pub(crate) fn grant_now(inner: &Inner, principal: &str, role_guid: &str, scope: &str) {
    let name = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{scope}|{role_guid}|{principal}").as_bytes(),
    )
    .to_string();
    let mut w = inner.lock();
    let a = Assignment {
        name: name.clone(),
        scope: scope.to_string(),
        role_guid: role_guid.to_string(),
        role_definition_id: format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
            inner.subscription_id
        ),
        principal_id: principal.to_string(),
        principal_type: "ServicePrincipal".into(),
        description: None,
        created: SystemTime::now(),
        effective_at: Instant::now(),
        created_by: principal.to_string(),
    };
    w.assignments
        .insert(format!("{}|{}", scope.to_ascii_lowercase(), name), a);
}

fn render_assignment(a: &Assignment) -> Value {
    let scope_part = if a.scope == "/" {
        String::new()
    } else {
        a.scope.clone()
    };
    json!({
        "id": format!("{scope_part}/providers/Microsoft.Authorization/roleAssignments/{}", a.name),
        "name": a.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": a.role_definition_id,
            "principalId": a.principal_id,
            "principalType": a.principal_type,
            "scope": a.scope,
            "condition": null,
            "conditionVersion": null,
            "description": a.description,
            "createdOn": rfc3339(a.created),
            "updatedOn": rfc3339(a.created),
            "createdBy": a.created_by,
            "updatedBy": a.created_by,
            "delegatedManagedIdentityResourceId": null,
        }
    })
}

fn render_role(ctx: &Ctx<'_>, r: &RoleDef) -> Value {
    json!({
        "id": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}", ctx.sub(), r.guid),
        "name": r.guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": r.name,
            "description": r.description,
            "type": if r.builtin { "BuiltInRole" } else { "CustomRole" },
            "permissions": [{
                "actions": r.actions,
                "notActions": r.not_actions,
                "dataActions": r.data_actions,
                "notDataActions": r.not_data_actions,
            }],
            "assignableScopes": r.assignable_scopes,
        }
    })
}

/// The scope must exist: its resource group, and the resource when deeper.
#[allow(clippy::result_large_err)]
fn check_scope(ctx: &Ctx<'_>, scope: &str) -> Result<(), Response> {
    let parts: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    if parts.len() >= 4 && parts[2].eq_ignore_ascii_case("resourcegroups") {
        groups::require_group(ctx, parts[3], false)?;
    }
    if parts.len() > 4 {
        let exists = ctx
            .inner
            .lock()
            .resources
            .get(&scope.to_ascii_lowercase())
            .is_some_and(|r| r.visible);
        if !exists {
            return Err(arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!(
                    "The Resource '{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                    parts[parts.len() - 1],
                    parts[3]
                ),
            ));
        }
    }
    Ok(())
}

/// `{scope}/providers/Microsoft.Authorization/{rest}`.
pub(crate) async fn handle(ctx: &Ctx<'_>, scope: &str, rest: &[&str]) -> Response {
    match rest {
        ["roleassignments"] => list_assignments(ctx, scope),
        ["roleassignments", _] => {
            let name = ctx.segs[ctx.segs.len() - 1].clone();
            assignment(ctx, scope, &name)
        }
        ["roledefinitions"] => list_roles(ctx, scope),
        ["roledefinitions", _] => {
            let guid = ctx.segs[ctx.segs.len() - 1].clone();
            role(ctx, scope, &guid)
        }
        _ => super::not_found_path(ctx),
    }
}

fn assignment(ctx: &Ctx<'_>, scope: &str, name: &str) -> Response {
    let action = match ctx.method {
        Method::GET => "read",
        Method::DELETE => "delete",
        Method::PUT => "write",
        _ => return super::method_not_allowed(ctx),
    };
    if let Err(r) = check_scope(ctx, scope) {
        return r;
    }
    if let Err(r) = authorize(
        ctx,
        &format!("Microsoft.Authorization/roleAssignments/{action}"),
        scope,
    ) {
        return r;
    }
    let key = format!(
        "{}|{}",
        scope.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    );
    let not_found = || {
        arm_error(
            StatusCode::NOT_FOUND,
            "RoleAssignmentNotFound",
            &format!("The role assignment '{name}' is not found."),
        )
    };
    match ctx.method {
        Method::GET => match ctx.inner.lock().assignments.get(&key) {
            Some(a) => json_response(StatusCode::OK, &render_assignment(a)),
            None => not_found(),
        },
        Method::DELETE => match ctx.inner.lock().assignments.remove(&key) {
            Some(a) => json_response(StatusCode::OK, &render_assignment(&a)),
            None => empty(StatusCode::NO_CONTENT),
        },
        _ => put_assignment(ctx, scope, name, &key),
    }
}

fn put_assignment(ctx: &Ctx<'_>, scope: &str, name: &str, key: &str) -> Response {
    if uuid::Uuid::parse_str(name).is_err() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRoleAssignmentId",
            &format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
            ),
        );
    }
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let props = body.get("properties").cloned().unwrap_or_else(|| json!({}));
    let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(role_id), Some(principal)) = (s("roleDefinitionId"), s("principalId")) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content was invalid: properties.roleDefinitionId and properties.principalId are required.",
        );
    };
    let principal_type = s("principalType").unwrap_or_else(|| "User".into());
    let role_guid = role_id
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let knobs = ctx.inner.knobs.get();
    let mut w = ctx.inner.lock();
    let Some(_role) = find_role(&w, &role_guid) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "RoleDefinitionDoesNotExist",
            &format!("The specified role definition with ID '{role_guid}' does not exist."),
        );
    };
    if let Some(existing) = w.assignments.get(key) {
        let same = existing.principal_id.eq_ignore_ascii_case(&principal)
            && existing.role_guid.eq_ignore_ascii_case(&role_guid)
            && existing.scope.eq_ignore_ascii_case(scope);
        if !same {
            return arm_error(
                StatusCode::CONFLICT,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            );
        }
        return json_response(StatusCode::CREATED, &render_assignment(existing));
    }
    let visible = w
        .principals
        .get(&principal.to_ascii_lowercase())
        .is_some_and(|p| p.visible_at <= Instant::now());
    let bypass =
        knobs.principal_type_bypass && principal_type.eq_ignore_ascii_case("ServicePrincipal");
    if !visible && !bypass {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "PrincipalNotFound",
            &format!(
                "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                principal.replace('-', ""),
                ctx.inner.tenant_id
            ),
        );
    }
    if let Some(dup) = w.assignments.values().find(|a| {
        a.principal_id.eq_ignore_ascii_case(&principal)
            && a.role_guid.eq_ignore_ascii_case(&role_guid)
            && a.scope
                .trim_end_matches('/')
                .eq_ignore_ascii_case(scope.trim_end_matches('/'))
    }) {
        return arm_error(
            StatusCode::CONFLICT,
            "RoleAssignmentExists",
            &format!(
                "The role assignment already exists. The ID of the existing role assignment is {}.",
                dup.name.replace('-', "")
            ),
        );
    }
    let a = Assignment {
        name: name.to_string(),
        scope: scope.to_string(),
        role_guid: role_guid.clone(),
        role_definition_id: role_id,
        principal_id: principal,
        principal_type,
        description: s("description"),
        created: SystemTime::now(),
        effective_at: Instant::now() + ctx.inner.knobs.real(knobs.rbac_propagation_delay),
        created_by: ctx.oid.clone(),
    };
    let out = render_assignment(&a);
    w.assignments.insert(key.to_string(), a);
    json_response(StatusCode::CREATED, &out)
}

fn list_assignments(ctx: &Ctx<'_>, scope: &str) -> Response {
    if ctx.method != Method::GET {
        return super::method_not_allowed(ctx);
    }
    if let Err(r) = authorize(ctx, "Microsoft.Authorization/roleAssignments/read", scope) {
        return r;
    }
    let filter = ctx.query.get("$filter").cloned().unwrap_or_default();
    let fl = filter.to_ascii_lowercase();
    let at_scope = fl.contains("atscope()");
    let principal = extract_quoted(&filter, "principalid eq")
        .or_else(|| extract_quoted(&filter, "assignedto("));
    let items: Vec<Value> = {
        let w = ctx.inner.lock();
        w.assignments
            .values()
            .filter(|a| {
                if at_scope {
                    covers(&a.scope, scope)
                } else {
                    covers(&a.scope, scope) || covers(scope, &a.scope)
                }
            })
            .filter(|a| {
                principal
                    .as_ref()
                    .is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p))
            })
            .map(render_assignment)
            .collect()
    };
    page(ctx, items)
}

fn extract_quoted(filter: &str, after: &str) -> Option<String> {
    let l = filter.to_ascii_lowercase();
    let i = l.find(after)? + after.len();
    let rest = &filter[i..];
    let start = rest.find('\'')? + 1;
    let end = rest[start..].find('\'')? + start;
    Some(rest[start..end].to_string())
}

fn list_roles(ctx: &Ctx<'_>, scope: &str) -> Response {
    if ctx.method != Method::GET {
        return super::method_not_allowed(ctx);
    }
    let filter = ctx.query.get("$filter").cloned().unwrap_or_default();
    let name = extract_quoted(&filter, "rolename eq");
    let typ = extract_quoted(&filter, "type eq");
    let items: Vec<Value> = {
        let w = ctx.inner.lock();
        BUILTINS
            .iter()
            .map(builtin)
            .chain(
                w.custom_roles
                    .values()
                    .filter(|r| {
                        r.assignable_scopes
                            .iter()
                            .any(|s| covers(s, scope) || covers(scope, s))
                    })
                    .cloned(),
            )
            .filter(|r| name.as_ref().is_none_or(|n| r.name.eq_ignore_ascii_case(n)))
            .filter(|r| {
                typ.as_ref().is_none_or(|t| {
                    t.eq_ignore_ascii_case(if r.builtin {
                        "BuiltInRole"
                    } else {
                        "CustomRole"
                    })
                })
            })
            .map(|r| render_role(ctx, &r))
            .collect()
    };
    page(ctx, items)
}

fn role(ctx: &Ctx<'_>, scope: &str, guid: &str) -> Response {
    let g = guid.to_ascii_lowercase();
    match ctx.method {
        Method::GET => match find_role(&ctx.inner.lock(), &g) {
            Some(r) => json_response(StatusCode::OK, &render_role(ctx, &r)),
            None => arm_error(
                StatusCode::NOT_FOUND,
                "RoleDefinitionDoesNotExist",
                &format!("The specified role definition with ID '{g}' does not exist."),
            ),
        },
        Method::DELETE => {
            if let Err(r) = authorize(ctx, "Microsoft.Authorization/roleDefinitions/delete", scope)
            {
                return r;
            }
            let mut w = ctx.inner.lock();
            if w.assignments.values().any(|a| a.role_guid == g) {
                return arm_error(
                    StatusCode::CONFLICT,
                    "RoleDefinitionHasAssignments",
                    "There are existing role assignments referencing role (code: RoleDefinitionHasAssignments).",
                );
            }
            match w.custom_roles.remove(&g) {
                Some(r) => json_response(StatusCode::OK, &render_role(ctx, &r)),
                None => empty(StatusCode::NO_CONTENT),
            }
        }
        Method::PUT => {
            if let Err(r) = authorize(ctx, "Microsoft.Authorization/roleDefinitions/write", scope) {
                return r;
            }
            if uuid::Uuid::parse_str(&g).is_err() || BUILTINS.iter().any(|b| b.guid == g) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "RoleDefinitionIdMustBeGuid",
                    &format!(
                        "The role definition ID '{guid}' is not valid: it must be a new GUID that is not a built-in role."
                    ),
                );
            }
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let p = body.get("properties").cloned().unwrap_or_else(|| json!({}));
            let strs = |v: Option<&Value>| -> Vec<String> {
                v.and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let Some(role_name) = p.get("roleName").and_then(Value::as_str) else {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContent",
                    "properties.roleName is required.",
                );
            };
            let assignable = strs(p.get("assignableScopes"));
            if assignable.is_empty() {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRoleDefinition",
                    "The role definition must have at least one assignable scope.",
                );
            }
            let perms = p
                .get("permissions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut def = RoleDef {
                guid: g.clone(),
                name: role_name.to_string(),
                description: p
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                builtin: false,
                actions: Vec::new(),
                not_actions: Vec::new(),
                data_actions: Vec::new(),
                not_data_actions: Vec::new(),
                assignable_scopes: assignable,
            };
            for perm in &perms {
                def.actions.extend(strs(perm.get("actions")));
                def.not_actions.extend(strs(perm.get("notActions")));
                def.data_actions.extend(strs(perm.get("dataActions")));
                def.not_data_actions
                    .extend(strs(perm.get("notDataActions")));
            }
            let mut w = ctx.inner.lock();
            let clash = BUILTINS
                .iter()
                .any(|b| b.name.eq_ignore_ascii_case(role_name))
                || w.custom_roles
                    .values()
                    .any(|r| r.guid != g && r.name.eq_ignore_ascii_case(role_name));
            if clash {
                return arm_error(
                    StatusCode::CONFLICT,
                    "RoleDefinitionWithSameNameExists",
                    "A custom role with the same name already exists in this directory. Use a different name.",
                );
            }
            let status = if w.custom_roles.contains_key(&g) {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let out = render_role(ctx, &def);
            w.custom_roles.insert(g, def);
            json_response(status, &out)
        }
        _ => super::method_not_allowed(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wildcards as ARM applies them: `*`, `*/read`, `/*/` spanning zero or more segments.
    #[test]
    fn action_wildcards_follow_arm() {
        assert!(action_matches(
            "*",
            "Microsoft.Storage/storageAccounts/write"
        ));
        assert!(action_matches(
            "*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read"
        ));
        assert!(!action_matches(
            "*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/write"
        ));
        assert!(action_matches(
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/roleAssignments/write"
        ));
        assert!(action_matches(
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/read"
        ));
    }

    /// Contributor manages resources but cannot write role assignments; Owner has no data access.
    #[test]
    fn builtin_roles_grant_what_azure_grants() {
        let w = World::default();
        let contributor = find_role(&w, "b24988ac-6180-42a0-ab88-20f7382dd24c").map(|r| {
            (
                grants(&r, "Microsoft.Storage/storageAccounts/write", false),
                grants(&r, "Microsoft.Authorization/roleAssignments/write", false),
            )
        });
        assert_eq!(contributor, Some((true, false)));
        let owner = find_role(&w, OWNER);
        assert!(owner.as_ref().is_some_and(|r| !grants(
            r,
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            true
        )));
        let reader = find_role(&w, "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1");
        assert!(reader.is_some_and(|r| grants(
            &r,
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            true
        ) && !grants(
            &r,
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            true
        )));
    }
}
