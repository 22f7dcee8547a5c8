//! Microsoft.Storage: storage accounts (Location-style PUT: 202, empty body, invisible until
//! done; name rules; global uniqueness; stored security properties; listKeys;
//! checkNameAvailability) and blob containers through ARM, which are created in Azurite too.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::time::{Instant, SystemTime};

use super::{
    Ctx, accepted_location, forget_resource, groups, page, provider_operation_url, rbac, render,
    start_op,
};
use crate::core::{OpEffect, Res, arm_error, empty, json_response, rfc3339};

/// Resource type name as ARM spells it.
pub(crate) const TYPE: &str = "Microsoft.Storage/storageAccounts";
const CONTAINER_TYPE: &str = "Microsoft.Storage/storageAccounts/blobServices/containers";

fn valid_account_name(n: &str) -> bool {
    (3..=24).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn valid_container_name(n: &str) -> bool {
    (3..=63).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !n.ends_with('-')
        && !n.contains("--")
}

fn invalid_name_message(n: &str) -> String {
    format!(
        "{n} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only."
    )
}

/// Why a new account name cannot be used, if it cannot: (reason, message).
fn name_problem(ctx: &Ctx<'_>, name: &str) -> Option<(&'static str, String)> {
    if !valid_account_name(name) {
        return Some(("AccountNameInvalid", invalid_name_message(name)));
    }
    let w = ctx.inner.lock();
    let taken = w
        .foreign_storage_names
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
        || w.resources
            .values()
            .any(|r| r.rtype == TYPE && r.name.eq_ignore_ascii_case(name));
    taken.then(|| {
        (
            "AlreadyExists",
            format!("The storage account named {name} is already taken."),
        )
    })
}

/// `POST /subscriptions/{sub}/providers/Microsoft.Storage/checkNameAvailability`.
pub(crate) fn check_name(ctx: &Ctx<'_>) -> Response {
    if ctx.method != Method::POST {
        return super::method_not_allowed(ctx);
    }
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    match name_problem(ctx, name) {
        None => json_response(StatusCode::OK, &json!({"nameAvailable": true})),
        Some((reason, message)) => json_response(
            StatusCode::OK,
            &json!({"nameAvailable": false, "reason": reason, "message": message}),
        ),
    }
}

fn blob_endpoint(ctx: &Ctx<'_>, name: &str) -> String {
    format!(
        "{}/{name}/",
        ctx.inner.blob_url.as_str().trim_end_matches('/')
    )
}

fn account_body(
    ctx: &Ctx<'_>,
    name: &str,
    location: &str,
    req: &Value,
    old: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut m = old.cloned().unwrap_or_default();
    let sku_name = req
        .pointer("/sku/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            old.and_then(|o| o.get("sku"))
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Standard_LRS".into());
    let tier = if sku_name.starts_with("Premium") {
        "Premium"
    } else {
        "Standard"
    };
    m.insert("sku".into(), json!({"name": sku_name, "tier": tier}));
    if let Some(k) = req.get("kind") {
        m.insert("kind".into(), k.clone());
    } else if !m.contains_key("kind") {
        m.insert("kind".into(), json!("StorageV2"));
    }
    let mut props = m
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(|| {
            let now = rfc3339(SystemTime::now());
            let blob = blob_endpoint(ctx, name);
            let mut p = Map::new();
            p.insert("creationTime".into(), json!(now));
            p.insert("keyCreationTime".into(), json!({"key1": now, "key2": now}));
            p.insert(
                "primaryEndpoints".into(),
                json!({
                    "blob": blob,
                    "dfs": format!("https://{name}.dfs.core.windows.net/"),
                    "file": format!("https://{name}.file.core.windows.net/"),
                    "queue": format!("https://{name}.queue.core.windows.net/"),
                    "table": format!("https://{name}.table.core.windows.net/"),
                    "web": format!("https://{name}.z6.web.core.windows.net/"),
                }),
            );
            p.insert("primaryLocation".into(), json!(location));
            p.insert("statusOfPrimary".into(), json!("available"));
            p.insert("accessTier".into(), json!("Hot"));
            p.insert("minimumTlsVersion".into(), json!("TLS1_0"));
            p.insert("allowBlobPublicAccess".into(), json!(false));
            p.insert("supportsHttpsTrafficOnly".into(), json!(true));
            p.insert("publicNetworkAccess".into(), json!("Enabled"));
            p.insert(
                "encryption".into(),
                json!({"keySource": "Microsoft.Storage", "services": {"blob": {"enabled": true, "keyType": "Account"}, "file": {"enabled": true, "keyType": "Account"}}}),
            );
            p.insert("networkAcls".into(), json!({"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [], "defaultAction": "Allow"}));
            p
        });
    if let Some(given) = req.get("properties").and_then(Value::as_object) {
        for k in [
            "allowBlobPublicAccess",
            "minimumTlsVersion",
            "allowSharedKeyAccess",
            "publicNetworkAccess",
            "supportsHttpsTrafficOnly",
            "defaultToOAuthAuthentication",
            "accessTier",
            "isHnsEnabled",
            "networkAcls",
            "encryption",
            "allowCrossTenantReplication",
        ] {
            if let Some(v) = given.get(k) {
                props.insert(k.into(), v.clone());
            }
        }
    }
    m.insert("properties".into(), Value::Object(props));
    m
}

/// `.../providers/Microsoft.Storage/storageAccounts/{name}[/...]`.
pub(crate) async fn handle(ctx: &Ctx<'_>, rg: &str) -> Response {
    let n = ctx.segs.len();
    let name = ctx.segs[7].clone();
    let id = ctx.resource_id(rg, TYPE, &name);
    let l: Vec<&str> = ctx.lsegs.iter().map(String::as_str).collect();
    match &l[8..] {
        [] => account(ctx, rg, &name, &id).await,
        ["listkeys"] => list_keys(ctx, rg, &name, &id),
        ["blobservices", "default"] if ctx.method == Method::GET => {
            if let Err(r) = existing_account(ctx, rg, &name, &id) {
                return r;
            }
            json_response(
                StatusCode::OK,
                &json!({
                    "id": format!("{id}/blobServices/default"),
                    "name": "default",
                    "type": "Microsoft.Storage/storageAccounts/blobServices",
                    "properties": {"deleteRetentionPolicy": {"enabled": false}},
                }),
            )
        }
        ["blobservices", "default", "containers"] => list_containers(ctx, rg, &name, &id),
        ["blobservices", "default", "containers", _] => {
            let c = ctx.segs[n - 1].clone();
            container(ctx, rg, &name, &id, &c).await
        }
        _ => super::not_found_path(ctx),
    }
}

fn not_found(rg: &str, name: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{TYPE}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

#[allow(clippy::result_large_err)]
fn existing_account(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Result<Res, Response> {
    groups::require_group(ctx, rg, false)?;
    match ctx.inner.lock().resources.get(&id.to_ascii_lowercase()) {
        Some(r) if r.visible => Ok(r.clone()),
        _ => Err(not_found(rg, name)),
    }
}

async fn account(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    let key = id.to_ascii_lowercase();
    if let Err(r) = super::admit(ctx, rg, TYPE, id) {
        return r;
    }
    match ctx.method {
        Method::GET => match ctx.inner.lock().resources.get(&key) {
            Some(r) if r.visible => json_response(StatusCode::OK, &render(r, true)),
            _ => not_found(rg, name),
        },
        Method::DELETE => {
            let mut w = ctx.inner.lock();
            let Some(r) = w.resources.remove(&key) else {
                return empty(StatusCode::NO_CONTENT);
            };
            let prefix = format!("{key}/");
            let children: Vec<String> = w
                .resources
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            for c in children {
                w.resources.remove(&c);
            }
            forget_resource(&mut w, &r);
            let lag = Instant::now() + ctx.inner.knobs.real(ctx.inner.knobs.get().list_lag);
            w.removed.push((r, lag));
            empty(StatusCode::OK)
        }
        _ => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            {
                let mut w = ctx.inner.lock();
                if let Some(r) = w.resources.get_mut(&key) {
                    if !r.visible {
                        return arm_error(
                            StatusCode::CONFLICT,
                            "AnotherOperationInProgress",
                            &format!(
                                "Another operation is in progress on storage account {name}. Retry later."
                            ),
                        );
                    }
                    let loc = r.location.clone().unwrap_or_default();
                    r.body = account_body(ctx, name, &loc, &body, Some(&r.body));
                    if let Some(t) = body.get("tags") {
                        r.tags = t.clone();
                    }
                    r.changed = SystemTime::now();
                    return json_response(StatusCode::OK, &render(r, true));
                }
            }
            if ctx.method == Method::PATCH {
                return not_found(rg, name);
            }
            if !valid_account_name(name) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "AccountNameInvalid",
                    &invalid_name_message(name),
                );
            }
            {
                let w = ctx.inner.lock();
                if let Some(other) = w
                    .resources
                    .values()
                    .find(|r| r.rtype == TYPE && r.name.eq_ignore_ascii_case(name))
                {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "StorageAccountInAnotherResourceGroup",
                        &format!(
                            "The account {name} is already in another resource group ({}) in this subscription.",
                            other.group
                        ),
                    );
                }
                if w.foreign_storage_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name))
                {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "StorageAccountAlreadyTaken",
                        &format!("The storage account named {name} is already taken."),
                    );
                }
            }
            let Some(location) = body.get("location").and_then(Value::as_str) else {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            };
            if body.pointer("/sku/name").and_then(Value::as_str).is_none() {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredParameter",
                    "The required parameter 'sku' is missing.",
                );
            }
            let now = SystemTime::now();
            let res = Res {
                id: id.to_string(),
                rtype: TYPE.into(),
                group: rg.to_string(),
                name: name.to_string(),
                location: Some(location.to_string()),
                tags: body.get("tags").cloned().unwrap_or_else(|| json!({})),
                body: account_body(ctx, name, location, &body, None),
                state: "Creating".into(),
                visible: false,
                created: now,
                changed: now,
                listed_at: Instant::now(),
            };
            let op = {
                let mut w = ctx.inner.lock();
                if ctx.inner.azurite.is_some() {
                    let lname = name.to_ascii_lowercase();
                    let slot = match w.azurite_free.iter().position(|n| *n == lname) {
                        Some(i) => Some(w.azurite_free.remove(i)),
                        None => {
                            let i = w.azurite_free.iter().position(|n| n.starts_with("aibpool"));
                            i.map(|i| w.azurite_free.remove(i))
                        }
                    };
                    let Some(slot) = slot else {
                        return arm_error(
                            StatusCode::CONFLICT,
                            "StorageAccountLimitReached",
                            "The emulator's Azurite has no free account left: list the name in the emulator's storage accounts or raise the pool size.",
                        );
                    };
                    w.azurite_map.insert(lname, slot);
                }
                w.resources.insert(key.clone(), res);
                start_op(&mut w, &ctx.inner.knobs, OpEffect::RevealResource(key))
            };
            accepted_location(
                ctx,
                provider_operation_url(ctx, "Microsoft.Storage", location, "asyncoperations", &op),
            )
        }
    }
}

/// The start of a call on an existing account (list keys, list containers): 405 for any method
/// but `method`, 404 while the account is missing or still being created, then the caller's
/// permission for `action` on it; both calls refuse in this order. `at` is (group, name, id).
#[allow(clippy::result_large_err)]
fn admit_account_call(
    ctx: &Ctx<'_>,
    (rg, name, id): (&str, &str, &str),
    method: Method,
    action: &str,
) -> Result<(), Response> {
    if ctx.method != method {
        return Err(super::method_not_allowed(ctx));
    }
    existing_account(ctx, rg, name, id)?;
    rbac::authorize(ctx, action, id)
}

fn list_keys(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    let action = format!("{TYPE}/listKeys/action");
    if let Err(r) = admit_account_call(ctx, (rg, name, id), Method::POST, &action) {
        return r;
    }
    let w = ctx.inner.lock();
    let key = w
        .azurite_map
        .get(&name.to_ascii_lowercase())
        .and_then(|a| w.azurite_keys.get(a))
        .cloned()
        .unwrap_or_else(|| crate::core::b64url(name.as_bytes()));
    let now = rfc3339(SystemTime::now());
    json_response(
        StatusCode::OK,
        &json!({"keys": [
            {"keyName": "key1", "value": key, "permissions": "FULL", "creationTime": now},
            {"keyName": "key2", "value": key, "permissions": "FULL", "creationTime": now},
        ]}),
    )
}

fn list_containers(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    let action = format!("{CONTAINER_TYPE}/read");
    if let Err(r) = admit_account_call(ctx, (rg, name, id), Method::GET, &action) {
        return r;
    }
    let prefix = format!(
        "{}/blobservices/default/containers/",
        id.to_ascii_lowercase()
    );
    let items: Vec<Value> = ctx
        .inner
        .lock()
        .resources
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, r)| render(r, false))
        .collect();
    page(ctx, items)
}

async fn container(
    ctx: &Ctx<'_>,
    rg: &str,
    account_name: &str,
    account_id: &str,
    name: &str,
) -> Response {
    let id = format!("{account_id}/blobServices/default/containers/{name}");
    let key = id.to_ascii_lowercase();
    let Some(action) = super::crud_action(&ctx.method) else {
        return super::method_not_allowed(ctx);
    };
    let account = match existing_account(ctx, rg, account_name, account_id) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if action != "read"
        && let Err(r) = groups::require_group(ctx, rg, true)
    {
        return r;
    }
    if let Err(r) = rbac::authorize(ctx, &format!("{CONTAINER_TYPE}/{action}"), &id) {
        return r;
    }
    let azurite_account = ctx
        .inner
        .lock()
        .azurite_map
        .get(&account_name.to_ascii_lowercase())
        .cloned();
    let not_found = || {
        arm_error(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        )
    };
    match ctx.method {
        Method::GET => match ctx.inner.lock().resources.get(&key) {
            Some(r) => json_response(StatusCode::OK, &render(r, false)),
            None => not_found(),
        },
        Method::DELETE => {
            let removed = ctx.inner.lock().resources.remove(&key);
            match removed {
                Some(_) => {
                    if let Some(a) = azurite_account {
                        let _ =
                            crate::blob::container_op(ctx.inner, &a, name, http::Method::DELETE)
                                .await;
                    }
                    empty(StatusCode::OK)
                }
                None => empty(StatusCode::NO_CONTENT),
            }
        }
        _ => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            if !valid_container_name(name) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "ContainerOperationFailure",
                    "The specifed resource name contains invalid characters. Container names must be 3-63 characters of lowercase letters, digits and single hyphens, starting with a letter or digit.",
                );
            }
            let public = body
                .pointer("/properties/publicAccess")
                .and_then(Value::as_str)
                .unwrap_or("None")
                .to_string();
            let allow_public = account
                .body
                .get("properties")
                .and_then(|p| p.get("allowBlobPublicAccess"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if public != "None" && !allow_public {
                return arm_error(
                    StatusCode::CONFLICT,
                    "PublicAccessNotPermitted",
                    "Public access is not permitted on this storage account.",
                );
            }
            let existing = ctx.inner.lock().resources.get(&key).cloned();
            if let Some(mut r) = existing {
                if let Some(p) = r.body.get_mut("properties").and_then(Value::as_object_mut) {
                    p.insert("publicAccess".into(), json!(public));
                }
                r.changed = SystemTime::now();
                let out = render(&r, false);
                ctx.inner.lock().resources.insert(key, r);
                return json_response(StatusCode::OK, &out);
            }
            if let Some(a) = &azurite_account
                && let Err(e) =
                    crate::blob::container_op(ctx.inner, a, name, http::Method::PUT).await
            {
                return arm_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    &format!("Creating the container in the storage backend failed: {e}"),
                );
            }
            let now = SystemTime::now();
            let mut m = Map::new();
            m.insert(
                "etag".into(),
                json!(format!("\"0x{:X}\"", crate::core::unix_now())),
            );
            m.insert(
                "properties".into(),
                json!({
                    "publicAccess": public,
                    "leaseStatus": "Unlocked",
                    "leaseState": "Available",
                    "hasImmutabilityPolicy": false,
                    "hasLegalHold": false,
                    "deleted": false,
                    "remainingRetentionDays": 0,
                    "lastModifiedTime": rfc3339(now),
                }),
            );
            let res = Res {
                id: id.clone(),
                rtype: CONTAINER_TYPE.into(),
                group: rg.to_string(),
                name: name.to_string(),
                location: None,
                tags: json!({}),
                body: m,
                state: "Succeeded".into(),
                visible: true,
                created: now,
                changed: now,
                listed_at: Instant::now(),
            };
            let mut out = render(&res, false);
            if let Some(o) = out.as_object_mut() {
                o.remove("tags");
            }
            ctx.inner.lock().resources.insert(key, res);
            json_response(StatusCode::CREATED, &out)
        }
    }
}
