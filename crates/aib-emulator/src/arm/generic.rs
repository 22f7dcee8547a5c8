//! Resources of namespaces the emulator registers but does not model (Microsoft.Network,
//! Microsoft.KeyVault, Microsoft.ContainerInstance), and the `resourceTypes` of every
//! namespace's registration.
//!
//! Why: a staging group can hold what a failed build left behind — NICs, virtual networks,
//! network security groups, key vaults —, and a client cleaning it must read, list and delete
//! those without knowing their types in advance. Such resources are stored as sent (PUT is
//! synchronous, `Succeeded`) and deleted like the Network RP does it: 202 with `Location`
//! (and `Azure-AsyncOperation`, per the `lro_style` knob), `Deleting` until the operation
//! ends. Clients that do not know a type's api-version (`az resource delete --ids`, aib's
//! leftover removal) read it from `GET /subscriptions/{s}/providers/{ns}` →
//! `resourceTypes[].apiVersions`, so the registration lists every type the emulator serves with
//! the versions it accepts.

use std::time::{Instant, SystemTime};

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{Ctx, groups, lro_delete, rbac, render, start_op, supported_versions};
use crate::core::{OpEffect, Res, arm_error, empty, json_response};

/// Namespaces held generically: (namespace as ARM spells it, top-level types, api-versions
/// newest first, previews included as the real registrations list them).
const GENERIC: [(&str, &[&str], &[&str]); 3] = [
    (
        "Microsoft.Network",
        &[
            "networkSecurityGroups",
            "networkInterfaces",
            "virtualNetworks",
            "publicIPAddresses",
        ],
        &[
            "2024-07-01",
            "2024-05-01",
            "2024-03-01",
            "2024-01-01",
            "2023-11-01",
            "2023-09-01",
            "2023-06-01",
        ],
    ),
    (
        "Microsoft.KeyVault",
        &["vaults"],
        &[
            "2024-12-01-preview",
            "2024-11-01",
            "2024-04-01-preview",
            "2023-07-01",
            "2022-07-01",
        ],
    ),
    (
        "Microsoft.ContainerInstance",
        &["containerGroups"],
        &[
            "2024-11-01-preview",
            "2024-10-01-preview",
            "2023-05-01",
            "2022-09-01",
        ],
    ),
];

/// Types of the namespaces the emulator models, for their registrations (their versions are
/// the namespace's, from [`supported_versions`]).
const MODELLED: [(&str, &[&str]); 6] = [
    ("Microsoft.Resources", &["resourceGroups"]),
    ("Microsoft.ManagedIdentity", &["userAssignedIdentities"]),
    (
        "Microsoft.Authorization",
        &["roleAssignments", "roleDefinitions"],
    ),
    (
        "Microsoft.Storage",
        &[
            "storageAccounts",
            "storageAccounts/blobServices",
            "storageAccounts/blobServices/containers",
        ],
    ),
    (
        "Microsoft.Compute",
        &["galleries", "galleries/images", "galleries/images/versions"],
    ),
    ("Microsoft.VirtualMachineImages", &["imageTemplates"]),
];

fn generic(
    ns: &str,
) -> Option<&'static (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
)> {
    GENERIC.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(ns))
}

/// Api-versions of a generically held namespace (lower-case or not).
pub(crate) fn supported_generic_versions(ns: &str) -> Option<&'static [&'static str]> {
    generic(ns).map(|(_, _, v)| *v)
}

/// Whether `ns`/`typ` is a generically held top-level type.
pub(crate) fn holds(ns: &str, typ: &str) -> bool {
    generic(ns).is_some_and(|(_, types, _)| types.iter().any(|t| t.eq_ignore_ascii_case(typ)))
}

/// `resourceTypes` of a namespace's registration: each type with the versions it accepts.
pub(crate) fn resource_types(ns: &str) -> Value {
    let (types, versions): (&[&str], &[&str]) = match generic(ns) {
        Some((_, types, versions)) => (types, versions),
        None => match MODELLED.iter().find(|(n, _)| n.eq_ignore_ascii_case(ns)) {
            Some((_, types)) => (
                types,
                supported_versions(&ns.to_ascii_lowercase()).unwrap_or_default(),
            ),
            None => (&[], &[]),
        },
    };
    Value::Array(
        types
            .iter()
            .map(|t| json!({"resourceType": t, "locations": [], "apiVersions": versions}))
            .collect(),
    )
}

/// `.../resourceGroups/{rg}/providers/{ns}/{type}/{name}` of a generically held type.
pub(crate) async fn handle(ctx: &Ctx<'_>, rg: &str) -> Response {
    if ctx.segs.len() != 8 {
        return super::not_found_path(ctx);
    }
    let Some((ns, types, _)) = generic(&ctx.segs[5]) else {
        return super::not_found_path(ctx);
    };
    let Some(typ) = types.iter().find(|t| t.eq_ignore_ascii_case(&ctx.segs[6])) else {
        return super::unknown_type(ctx, ns, &ctx.segs[6]);
    };
    let rtype = format!("{ns}/{typ}");
    let name = ctx.segs[7].clone();
    let id = ctx.resource_id(rg, &rtype, &name);
    let key = id.to_ascii_lowercase();
    let action = match ctx.method {
        Method::GET => "read",
        Method::DELETE => "delete",
        Method::PUT => "write",
        _ => return super::method_not_allowed(ctx),
    };
    if let Err(r) = groups::require_group(ctx, rg, action != "read") {
        return r;
    }
    if let Err(r) = rbac::authorize(ctx, &format!("{rtype}/{action}"), &id) {
        return r;
    }
    match ctx.method {
        Method::GET => match ctx.inner.lock().resources.get(&key) {
            Some(r) => json_response(StatusCode::OK, &render(r, true)),
            None => arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!(
                    "The Resource '{rtype}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
                ),
            ),
        },
        Method::DELETE => {
            let mut w = ctx.inner.lock();
            let Some(r) = w.resources.get_mut(&key) else {
                return empty(StatusCode::NO_CONTENT);
            };
            r.state = "Deleting".into();
            let location = r.location.clone().unwrap_or_default();
            let op = start_op(&mut w, &ctx.inner.knobs, OpEffect::DeleteResource(key));
            drop(w);
            lro_delete(ctx, &op, ns, &location)
        }
        _ => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let properties = body.get("properties").cloned().unwrap_or_else(|| json!({}));
            let tags = body.get("tags").cloned().unwrap_or_else(|| json!({}));
            let mut w = ctx.inner.lock();
            if let Some(r) = w.resources.get_mut(&key) {
                r.body.insert("properties".into(), properties);
                r.tags = tags;
                r.changed = SystemTime::now();
                return json_response(StatusCode::OK, &render(r, true));
            }
            let Some(location) = body.get("location").and_then(Value::as_str) else {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            };
            let mut m = Map::new();
            m.insert("properties".into(), properties);
            let now = SystemTime::now();
            let res = Res {
                id,
                rtype,
                group: rg.to_string(),
                name,
                location: Some(location.to_string()),
                tags,
                body: m,
                state: "Succeeded".into(),
                visible: true,
                created: now,
                changed: now,
                listed_at: Instant::now() + ctx.inner.knobs.real(ctx.inner.knobs.get().list_lag),
            };
            let out = render(&res, true);
            w.resources.insert(key, res);
            json_response(StatusCode::CREATED, &out)
        }
    }
}
