//! Microsoft.ManagedIdentity/userAssignedIdentities: synchronous PUT (201/200) with fresh
//! principal and client ids; the principal becomes visible to role assignments only after the
//! principal-visibility delay, as Entra replication does.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::time::{Instant, SystemTime};

use super::{Ctx, forget_resource, render};
use crate::core::{Principal, Res, arm_error, empty, json_response, new_guid};

/// Resource type name as ARM spells it.
pub(crate) const TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

fn valid_name(n: &str) -> bool {
    let ok_len = (3..=128).contains(&n.len());
    let first = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    ok_len
        && first
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `.../resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`.
pub(crate) async fn handle(ctx: &Ctx<'_>, rg: &str) -> Response {
    if ctx.segs.len() != 8 {
        return super::not_found_path(ctx);
    }
    let name = ctx.segs[7].clone();
    // The real service echoes `resourcegroups` lower-case for identities.
    let id = format!(
        "/subscriptions/{}/resourcegroups/{rg}/providers/{TYPE}/{name}",
        ctx.sub()
    );
    let key = id.to_ascii_lowercase();
    if let Err(r) = super::admit(ctx, rg, TYPE, &id) {
        return r;
    }
    let not_found = || {
        arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!(
                "The Resource '{TYPE}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    };
    match ctx.method {
        Method::GET => match ctx.inner.lock().resources.get(&key) {
            Some(r) => json_response(StatusCode::OK, &render(r, false)),
            None => not_found(),
        },
        Method::DELETE => {
            let mut w = ctx.inner.lock();
            match w.resources.remove(&key) {
                Some(r) => {
                    forget_resource(&mut w, &r);
                    let lag = Instant::now() + ctx.inner.knobs.real(ctx.inner.knobs.get().list_lag);
                    w.removed.push((r, lag));
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
            let mut w = ctx.inner.lock();
            if let Some(r) = w.resources.get_mut(&key) {
                if let Some(t) = body.get("tags") {
                    r.tags = t.clone();
                }
                r.changed = SystemTime::now();
                return json_response(StatusCode::OK, &render(r, false));
            }
            if ctx.method == Method::PATCH {
                return not_found();
            }
            if !valid_name(&name) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidResourceName",
                    &format!(
                        "Resource name '{name}' is invalid. The name can contain only letters, numbers, underscores and hyphens, must start with a letter or number, and be 3 to 128 characters long."
                    ),
                );
            }
            let Some(location) = body.get("location").and_then(Value::as_str) else {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            };
            let principal_id = new_guid();
            let client_id = new_guid();
            let mut props = json!({
                "tenantId": ctx.inner.tenant_id,
                "principalId": principal_id,
                "clientId": client_id,
            });
            if ctx.api_version.as_str() >= "2024-11-30" {
                props["isolationScope"] = json!("None");
            }
            let mut m = Map::new();
            m.insert("properties".into(), props);
            let now = SystemTime::now();
            let knobs = ctx.inner.knobs.get();
            let res = Res {
                id: id.clone(),
                rtype: TYPE.into(),
                group: rg.to_string(),
                name: name.clone(),
                location: Some(location.to_string()),
                tags: body.get("tags").cloned().unwrap_or_else(|| json!({})),
                body: m,
                state: "Succeeded".into(),
                visible: true,
                created: now,
                changed: now,
                listed_at: Instant::now() + ctx.inner.knobs.real(knobs.list_lag),
            };
            w.principals.insert(
                principal_id.clone(),
                Principal {
                    visible_at: Instant::now()
                        + ctx.inner.knobs.real(knobs.principal_visibility_delay),
                },
            );
            w.identity_clients
                .insert(client_id.to_ascii_lowercase(), principal_id);
            let out = render(&res, false);
            w.resources.insert(key, res);
            json_response(StatusCode::CREATED, &out)
        }
    }
}
