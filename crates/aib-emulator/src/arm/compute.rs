//! Microsoft.Compute/galleries: galleries, image definitions (`galleries/images`) and image
//! versions (`galleries/images/versions`), the Azure Compute Gallery resources the image pipeline
//! publishes into (contract section 7).
//!
//! All three PUTs are long-running in the Azure-AsyncOperation style (201 with a non-terminal
//! `provisioningState` + `Azure-AsyncOperation`), DELETEs answer 202 with both
//! `Azure-AsyncOperation` and `Location` (the `lro_style` knob switches both to another style,
//! see `super::lro_started`). Definitions enforce their required identity fields, versions
//! their `int.int.int` names, and a version GET with `$expand=ReplicationStatus` reports
//! per-region progress while the version replicates. Image Builder (`imagebuilder.rs`)
//! creates versions through [`create_version_now`], the same record a client PUT creates.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::time::{Instant, SystemTime};

use super::{Ctx, groups, page, rbac, render, start_op};
use crate::core::{OpEffect, Res, World, arm_error, json_response, rfc3339};

/// Resource type name as ARM spells it.
pub(crate) const TYPE: &str = "Microsoft.Compute/galleries";
/// Image definitions.
pub(crate) const IMAGE_TYPE: &str = "Microsoft.Compute/galleries/images";
/// Image versions.
pub(crate) const VERSION_TYPE: &str = "Microsoft.Compute/galleries/images/versions";

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 80
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn valid_image_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 80
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// `Major(int32).Minor(int32).Patch(int32)`; returns the three numbers.
pub(crate) fn parse_version(n: &str) -> Option<(u32, u32, u32)> {
    let parts: Vec<&str> = n.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let mut nums = [0u32; 3];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 10 || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: u64 = p.parse().ok()?;
        if v > i32::MAX as u64 {
            return None;
        }
        nums[i] = v as u32;
    }
    Some((nums[0], nums[1], nums[2]))
}

/// Compute's error shape adds a `target` naming the offending parameter.
fn invalid(code: &str, message: &str, target: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": {"code": code, "message": message, "target": target, "details": []}}),
    )
}

fn missing(target: &str) -> Response {
    invalid(
        "InvalidParameter",
        &format!("Required parameter '{target}' is missing (null)."),
        target,
    )
}

/// Region display names, as Compute echoes them in `targetRegions`.
pub(crate) fn region_display(name: &str) -> String {
    let key: String = name
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let known = [
        ("westeurope", "West Europe"),
        ("northeurope", "North Europe"),
        ("westus", "West US"),
        ("westus2", "West US 2"),
        ("westus3", "West US 3"),
        ("eastus", "East US"),
        ("eastus2", "East US 2"),
        ("centralus", "Central US"),
        ("southcentralus", "South Central US"),
        ("uksouth", "UK South"),
        ("swedencentral", "Sweden Central"),
        ("germanywestcentral", "Germany West Central"),
        ("francecentral", "France Central"),
        ("switzerlandnorth", "Switzerland North"),
        ("norwayeast", "Norway East"),
        ("australiaeast", "Australia East"),
        ("southeastasia", "Southeast Asia"),
        ("japaneast", "Japan East"),
        ("canadacentral", "Canada Central"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| name.to_string())
}

fn not_found(kind: &str, name: &str, rg: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

fn parent_not_found(kind: &str, name: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ParentResourceNotFound",
        &format!(
            "Can not perform requested operation on nested resource. Parent resource '{kind}/{name}' not found."
        ),
    )
}

/// `.../providers/Microsoft.Compute/galleries/{g}[/images[/{i}[/versions[/{v}]]]]`.
pub(crate) async fn handle(ctx: &Ctx<'_>, rg: &str) -> Response {
    let l: Vec<&str> = ctx.lsegs.iter().map(String::as_str).collect();
    let gallery = ctx.segs[7].clone();
    let gid = ctx.resource_id(rg, TYPE, &gallery);
    match &l[8..] {
        [] => gallery_handler(ctx, rg, &gallery, &gid),
        ["images"] => list_children(ctx, rg, &gid, IMAGE_TYPE, (TYPE, &gallery)),
        ["images", _] => {
            let image = ctx.segs[9].clone();
            image_handler(ctx, rg, &gallery, &gid, &image)
        }
        ["images", _, "versions"] => {
            let iid = format!("{gid}/images/{}", ctx.segs[9]);
            list_children(ctx, rg, &iid, VERSION_TYPE, (IMAGE_TYPE, &ctx.segs[9]))
        }
        ["images", _, "versions", _] => {
            let image = ctx.segs[9].clone();
            let version = ctx.segs[11].clone();
            version_handler(ctx, rg, &gallery, &gid, &image, &version)
        }
        _ => super::unknown_type(ctx, "Microsoft.Compute", &ctx.segs[6..].join("/")),
    }
}

fn list_children(
    ctx: &Ctx<'_>,
    rg: &str,
    parent_id: &str,
    rtype: &str,
    parent: (&str, &str),
) -> Response {
    if ctx.method != Method::GET {
        return super::method_not_allowed(ctx);
    }
    if let Err(r) = groups::require_group(ctx, rg, false) {
        return r;
    }
    if let Err(r) = rbac::authorize(ctx, &format!("{rtype}/read"), parent_id) {
        return r;
    }
    let parent_key = parent_id.to_ascii_lowercase();
    let prefix = format!("{parent_key}/");
    let items: Option<Vec<Value>> = {
        let w = ctx.inner.lock();
        w.resources.get(&parent_key).map(|_| {
            w.resources
                .iter()
                .filter(|(k, r)| r.rtype == rtype && k.starts_with(&prefix))
                .map(|(_, r)| render(r, true))
                .collect()
        })
    };
    match items {
        Some(items) => page(ctx, items),
        None => parent_not_found(parent.0, parent.1),
    }
}

/// 202 + `Azure-AsyncOperation` + `Location` for a delete (or the `lro_style` knob's style).
fn start_delete(ctx: &Ctx<'_>, w: &mut World, key: String, location: &str) -> Response {
    let op = start_op(w, &ctx.inner.knobs, OpEffect::DeleteResource(key));
    super::lro_delete(ctx, &op, "Microsoft.Compute", location)
}

/// The body's `location`, which a new gallery or image definition must name; 400
/// `LocationRequired` otherwise, worded as ARM words it for both.
#[allow(clippy::result_large_err)]
fn required_location(body: &Value) -> Result<String, Response> {
    body.get("location")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            arm_error(
                StatusCode::BAD_REQUEST,
                "LocationRequired",
                "The location property is required for this definition.",
            )
        })
}

/// Puts an existing definition or version into `Updating` for a PUT/PATCH whose `body` may
/// replace its tags; returns the resource as the answer shows it.
fn mark_updating(r: &mut Res, body: &Value) -> Value {
    if let Some(t) = body.get("tags") {
        r.tags = t.clone();
    }
    r.state = "Updating".into();
    r.changed = SystemTime::now();
    render(r, true)
}

/// Starts the operation that ends an update and answers 200 with `out` and its polling headers;
/// takes the world lock to let it go before answering, as `started` wants.
fn start_update(
    ctx: &Ctx<'_>,
    mut w: std::sync::MutexGuard<'_, World>,
    key: String,
    out: &Value,
    location: &str,
) -> Response {
    let op = start_op(&mut w, &ctx.inner.knobs, OpEffect::FinishResource(key));
    drop(w);
    started(ctx, StatusCode::OK, out, &op, location)
}

/// GET of a gallery or an image definition: the stored resource, or ARM's `ResourceNotFound`
/// naming its type; one place so both answer alike.
fn read(ctx: &Ctx<'_>, key: &str, kind: &str, name: &str, rg: &str) -> Response {
    match ctx.inner.lock().resources.get(key) {
        Some(r) => json_response(StatusCode::OK, &render(r, true)),
        None => not_found(kind, name, rg),
    }
}

/// DELETE of a gallery, definition or version: 204 when it is already gone, 409
/// `CannotDeleteResource` while resources nested under `children` remain (ARM will not delete a
/// parent before them), else `Deleting` and the delete operation. One place so the three levels
/// cannot drift apart in what they answer.
fn delete(ctx: &Ctx<'_>, key: String, children: Option<&str>) -> Response {
    let mut w = ctx.inner.lock();
    let nested = children.is_some_and(|c| {
        let prefix = format!("{key}/{c}/");
        w.resources.keys().any(|k| k.starts_with(&prefix))
    });
    let Some(r) = w.resources.get_mut(&key) else {
        return crate::core::empty(StatusCode::NO_CONTENT);
    };
    if nested {
        return arm_error(
            StatusCode::CONFLICT,
            "CannotDeleteResource",
            "Can not delete resource before nested resources are deleted.",
        );
    }
    r.state = "Deleting".into();
    let loc = r.location.clone().unwrap_or_default();
    start_delete(ctx, &mut w, key, &loc)
}

/// 201 (or 200) with the body and `Azure-AsyncOperation` for a create/update in progress (or
/// the `lro_style` knob's style); called without the world lock held.
fn started(ctx: &Ctx<'_>, status: StatusCode, body: &Value, op: &str, location: &str) -> Response {
    super::lro_started(ctx, status, body, op, "Microsoft.Compute", location)
}

/// A new resource in `Creating`; `at` is (group, name, location).
fn new_res(
    ctx: &Ctx<'_>,
    id: &str,
    rtype: &str,
    at: (&str, &str, &str),
    tags: Value,
    props: Value,
) -> Res {
    let (rg, name, location) = at;
    let mut m = Map::new();
    m.insert("properties".into(), props);
    let now = SystemTime::now();
    Res {
        id: id.to_string(),
        rtype: rtype.into(),
        group: rg.to_string(),
        name: name.to_string(),
        location: Some(location.to_string()),
        tags,
        body: m,
        state: "Creating".into(),
        visible: true,
        created: now,
        changed: now,
        listed_at: Instant::now() + ctx.inner.knobs.real(ctx.inner.knobs.get().list_lag),
    }
}

fn gallery_handler(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    let key = id.to_ascii_lowercase();
    if let Err(r) = super::admit(ctx, rg, TYPE, id) {
        return r;
    }
    match ctx.method {
        Method::GET => read(ctx, &key, TYPE, name, rg),
        Method::DELETE => delete(ctx, key, Some("images")),
        _ => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let desc = body.pointer("/properties/description").cloned();
            let mut w = ctx.inner.lock();
            if let Some(r) = w.resources.get_mut(&key) {
                if r.state != "Succeeded" {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "OperationNotAllowed",
                        &format!(
                            "Operation on gallery '{name}' is not allowed while it is {}.",
                            r.state
                        ),
                    );
                }
                if let Some(t) = body.get("tags") {
                    r.tags = t.clone();
                }
                if let (Some(d), Some(p)) = (
                    desc,
                    r.body.get_mut("properties").and_then(Value::as_object_mut),
                ) {
                    p.insert("description".into(), d);
                }
                r.changed = SystemTime::now();
                return json_response(StatusCode::OK, &render(r, true));
            }
            if ctx.method == Method::PATCH {
                return not_found(TYPE, name, rg);
            }
            if !valid_name(name) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    &format!(
                        "The gallery name '{name}' is invalid: use 1-80 letters, digits, '.' and '_', starting and ending with a letter or digit."
                    ),
                );
            }
            let location = match required_location(&body) {
                Ok(l) => l,
                Err(r) => return r,
            };
            let mut props = json!({
                "identifier": {"uniqueName": format!("{}-{}", ctx.sub(), name.to_uppercase())},
            });
            if let Some(d) = desc {
                props["description"] = d;
            }
            let tags = body.get("tags").cloned().unwrap_or_else(|| json!({}));
            let res = new_res(ctx, id, TYPE, (rg, name, &location), tags, props);
            let out = render(&res, true);
            w.resources.insert(key.clone(), res);
            let op = start_op(&mut w, &ctx.inner.knobs, OpEffect::FinishResource(key));
            drop(w);
            started(ctx, StatusCode::CREATED, &out, &op, &location)
        }
    }
}

/// The definition's properties from a PUT body, or the 400 Compute answers.
#[allow(clippy::result_large_err)]
fn image_properties(body: &Value) -> Result<Value, Response> {
    let Some(p) = body.get("properties").and_then(Value::as_object) else {
        return Err(missing("properties"));
    };
    let enum_field = |field: &str,
                      allowed: &[&str],
                      required: bool|
     -> Result<Option<String>, Response> {
        match p.get(field) {
            None | Some(Value::Null) if required => Err(missing(field)),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(s))
                .map(|a| Some(a.to_string()))
                .ok_or_else(|| {
                    invalid(
                        "InvalidParameter",
                        &format!("The value '{s}' of parameter '{field}' is not allowed. Allowed values are '{}'.", allowed.join("', '")),
                        field,
                    )
                }),
            Some(other) => Err(invalid(
                "InvalidParameter",
                &format!("The value {other} of parameter '{field}' is not a string."),
                field,
            )),
        }
    };
    let os_type = enum_field("osType", &["Windows", "Linux"], true)?;
    let os_state = enum_field("osState", &["Generalized", "Specialized"], true)?;
    let hyperv =
        enum_field("hyperVGeneration", &["V1", "V2"], false)?.unwrap_or_else(|| "V1".into());
    let arch =
        enum_field("architecture", &["x64", "Arm64"], false)?.unwrap_or_else(|| "x64".into());
    let Some(ident) = p.get("identifier").and_then(Value::as_object) else {
        return Err(missing("identifier"));
    };
    for f in ["publisher", "offer", "sku"] {
        match ident.get(f).and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => {}
            _ => return Err(missing(&format!("identifier.{f}"))),
        }
    }
    let mut out = p.clone();
    out.insert("osType".into(), json!(os_type));
    out.insert("osState".into(), json!(os_state));
    out.insert("hyperVGeneration".into(), json!(hyperv));
    out.insert("architecture".into(), json!(arch));
    if let Some(f) = p.get("features") {
        let Some(list) = f.as_array() else {
            return Err(invalid(
                "InvalidParameter",
                "'features' must be a list.",
                "features",
            ));
        };
        for (i, feat) in list.iter().enumerate() {
            let name = feat.get("name").and_then(Value::as_str);
            let value = feat.get("value").and_then(Value::as_str);
            if name.is_none() || value.is_none() {
                return Err(missing(&format!("features[{i}].name/value")));
            }
            if name == Some("SecurityType") {
                let allowed = [
                    "Standard",
                    "TrustedLaunch",
                    "TrustedLaunchSupported",
                    "ConfidentialVM",
                    "ConfidentialVMSupported",
                    "TrustedLaunchAndConfidentialVmSupported",
                ];
                let v = value.unwrap_or("");
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                    return Err(invalid(
                        "InvalidParameter",
                        &format!(
                            "The value '{v}' of feature 'SecurityType' is not allowed. Allowed values are '{}'.",
                            allowed.join("', '")
                        ),
                        "features",
                    ));
                }
            }
        }
    }
    Ok(Value::Object(out))
}

fn image_handler(ctx: &Ctx<'_>, rg: &str, gallery: &str, gid: &str, name: &str) -> Response {
    let id = format!("{gid}/images/{name}");
    let key = id.to_ascii_lowercase();
    if let Err(r) = super::admit(ctx, rg, IMAGE_TYPE, &id) {
        return r;
    }
    let gallery_exists = ctx
        .inner
        .lock()
        .resources
        .contains_key(&gid.to_ascii_lowercase());
    if !gallery_exists {
        return if ctx.method == Method::DELETE {
            crate::core::empty(StatusCode::NO_CONTENT)
        } else if ctx.method == Method::GET {
            not_found(IMAGE_TYPE, name, rg)
        } else {
            parent_not_found(TYPE, gallery)
        };
    }
    match ctx.method {
        Method::GET => read(ctx, &key, IMAGE_TYPE, name, rg),
        Method::DELETE => delete(ctx, key, Some("versions")),
        _ => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let existing = ctx.inner.lock().resources.get(&key).cloned();
            if existing.is_none() && ctx.method == Method::PATCH {
                return not_found(IMAGE_TYPE, name, rg);
            }
            if existing.is_none() && !valid_image_name(name) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    &format!(
                        "The gallery image name '{name}' is invalid: use 1-80 letters, digits, '.', '_' and '-', starting and ending with a letter or digit."
                    ),
                );
            }
            // PATCH merges onto the stored properties; PUT replaces them.
            let merged = match (&existing, ctx.method == Method::PATCH) {
                (Some(r), true) => {
                    let mut p = r
                        .body
                        .get("properties")
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    if let (Some(po), Some(given)) = (
                        p.as_object_mut(),
                        body.get("properties").and_then(Value::as_object),
                    ) {
                        for (k, v) in given {
                            po.insert(k.clone(), v.clone());
                        }
                    }
                    json!({"properties": p})
                }
                _ => body.clone(),
            };
            let props = match image_properties(&merged) {
                Ok(p) => p,
                Err(r) => return r,
            };
            let mut w = ctx.inner.lock();
            if let Some(old) = existing {
                if old.state != "Succeeded" {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "OperationNotAllowed",
                        &format!(
                            "Operation on gallery image '{name}' is not allowed while it is {}.",
                            old.state
                        ),
                    );
                }
                let old_props = old.body.get("properties").cloned().unwrap_or_default();
                for f in [
                    "osType",
                    "osState",
                    "hyperVGeneration",
                    "identifier",
                    "architecture",
                ] {
                    if old_props.get(f) != props.get(f) {
                        return arm_error(
                            StatusCode::CONFLICT,
                            "PropertyChangeNotAllowed",
                            &format!(
                                "Changing property 'galleryImage.properties.{f}' is not allowed."
                            ),
                        );
                    }
                }
                let loc = old.location.clone().unwrap_or_default();
                let Some(r) = w.resources.get_mut(&key) else {
                    return not_found(IMAGE_TYPE, name, rg);
                };
                r.body.insert("properties".into(), props);
                let out = mark_updating(r, &body);
                return start_update(ctx, w, key, &out, &loc);
            }
            let location = match required_location(&body) {
                Ok(l) => l,
                Err(r) => return r,
            };
            let tags = body.get("tags").cloned().unwrap_or_else(|| json!({}));
            let res = new_res(ctx, &id, IMAGE_TYPE, (rg, name, &location), tags, props);
            let out = render(&res, true);
            w.resources.insert(key.clone(), res);
            let op = start_op(&mut w, &ctx.inner.knobs, OpEffect::FinishResource(key));
            drop(w);
            started(ctx, StatusCode::CREATED, &out, &op, &location)
        }
    }
}

/// What a version's `publishingProfile` holds once defaults are applied.
pub(crate) fn publishing_profile(given: Option<&Value>, default_region: &str) -> Value {
    let empty = json!({});
    let given = given.unwrap_or(&empty);
    let sat = given
        .get("storageAccountType")
        .and_then(Value::as_str)
        .unwrap_or("Standard_LRS")
        .to_string();
    let replica = given
        .get("replicaCount")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let exclude = given
        .get("excludeFromLatest")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let regions: Vec<Value> = match given.get("targetRegions").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|t| {
                let mut o = t.as_object().cloned().unwrap_or_default();
                let name = o
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(default_region)
                    .to_string();
                o.insert("name".into(), json!(region_display(&name)));
                o.entry("regionalReplicaCount").or_insert(json!(replica));
                o.entry("storageAccountType").or_insert(json!(sat));
                o.entry("excludeFromLatest").or_insert(json!(exclude));
                Value::Object(o)
            })
            .collect(),
        _ => vec![json!({
            "name": region_display(default_region),
            "regionalReplicaCount": replica,
            "storageAccountType": sat,
            "excludeFromLatest": exclude,
        })],
    };
    let mut out = given.as_object().cloned().unwrap_or_default();
    out.insert("targetRegions".into(), json!(regions));
    out.insert("replicaCount".into(), json!(replica));
    out.insert("excludeFromLatest".into(), json!(exclude));
    out.insert("storageAccountType".into(), json!(sat));
    out.entry("replicationMode").or_insert(json!("Full"));
    out.insert("publishedDate".into(), json!(rfc3339(SystemTime::now())));
    Value::Object(out)
}

/// Why a version cannot be created in `w` right now, if it cannot (code, message).
pub(crate) fn version_conflict(w: &World, version_id: &str) -> Option<(String, String)> {
    let key = version_id.to_ascii_lowercase();
    let (image_key, name) = key.rsplit_once("/versions/")?;
    if w.resources
        .get(image_key)
        .is_none_or(|r| r.rtype != IMAGE_TYPE)
    {
        return Some((
            "ParentResourceNotFound".into(),
            format!(
                "Can not perform requested operation on nested resource. Parent resource '{}' not found.",
                image_key
            ),
        ));
    }
    if parse_version(name).is_none() {
        return Some((
            "InvalidParameter".into(),
            format!(
                "The gallery image version name '{name}' is invalid. It must follow the format Major(int32).Minor(int32).Patch(int32)."
            ),
        ));
    }
    w.resources.contains_key(&key).then(|| {
        (
            "Conflict".into(),
            format!("Gallery image version '{name}' already exists. An image version cannot be overwritten: choose a new version number."),
        )
    })
}

/// Creates a version in its final state (used by Image Builder's distribution); the caller
/// checked [`version_conflict`] first.
pub(crate) fn create_version_now(
    w: &mut World,
    version_id: &str,
    rg: &str,
    tags: Value,
    publishing: Value,
    source_id: &str,
    list_lag: Instant,
) {
    let key = version_id.to_ascii_lowercase();
    let image_key = key
        .rsplit_once("/versions/")
        .map(|(i, _)| i.to_string())
        .unwrap_or_default();
    let location = w
        .resources
        .get(&image_key)
        .and_then(|r| r.location.clone())
        .unwrap_or_default();
    let name = version_id.rsplit('/').next().unwrap_or("").to_string();
    let mut m = Map::new();
    m.insert(
        "properties".into(),
        json!({
            "publishingProfile": publishing,
            "storageProfile": {"source": {"id": source_id}, "osDiskImage": {"sizeInGB": 30, "hostCaching": "ReadWrite"}},
            "safetyProfile": {"allowDeletionOfReplicatedLocations": true, "reportedForPolicyViolation": false},
        }),
    );
    let now = SystemTime::now();
    w.resources.insert(
        key,
        Res {
            id: version_id.to_string(),
            rtype: VERSION_TYPE.into(),
            group: rg.to_string(),
            name,
            location: Some(location),
            tags,
            body: m,
            state: "Succeeded".into(),
            visible: true,
            created: now,
            changed: now,
            listed_at: list_lag,
        },
    );
}

/// `replicationStatus` for `$expand=ReplicationStatus`: regions complete one after the other over
/// the creation time; everything is `Completed` once the version succeeded.
fn replication_status(ctx: &Ctx<'_>, r: &Res) -> Value {
    let regions: Vec<String> = r
        .body
        .get("properties")
        .and_then(|p| p.pointer("/publishingProfile/targetRegions"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let n = regions.len().max(1) as f64;
    let done = r.state == "Succeeded";
    let total = ctx
        .inner
        .knobs
        .real(ctx.inner.knobs.get().lro_duration)
        .as_secs_f64()
        .max(0.001);
    let elapsed = r.created.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let fraction = if done {
        1.0
    } else {
        (elapsed / total).min(0.99)
    };
    let summary: Vec<Value> = regions
        .iter()
        .enumerate()
        .map(|(i, region)| {
            let share = ((fraction * n) - i as f64).clamp(0.0, 1.0);
            let (state, progress) = if done || share >= 1.0 {
                ("Completed", 100)
            } else {
                ("Replicating", (share * 100.0) as i64)
            };
            json!({"region": region, "state": state, "details": "", "progress": progress})
        })
        .collect();
    let all_done = summary.iter().all(|s| s["state"] == "Completed");
    json!({"aggregatedState": if all_done { "Completed" } else { "InProgress" }, "summary": summary})
}

fn version_handler(
    ctx: &Ctx<'_>,
    rg: &str,
    gallery: &str,
    gid: &str,
    image: &str,
    name: &str,
) -> Response {
    let iid = format!("{gid}/images/{image}");
    let id = format!("{iid}/versions/{name}");
    let key = id.to_ascii_lowercase();
    if let Err(r) = super::admit(ctx, rg, VERSION_TYPE, &id) {
        return r;
    }
    let (gallery_exists, image_res) = {
        let w = ctx.inner.lock();
        (
            w.resources.contains_key(&gid.to_ascii_lowercase()),
            w.resources.get(&iid.to_ascii_lowercase()).cloned(),
        )
    };
    let Some(image_res) = image_res.filter(|_| gallery_exists) else {
        return match ctx.method {
            Method::DELETE => crate::core::empty(StatusCode::NO_CONTENT),
            Method::GET => not_found(VERSION_TYPE, name, rg),
            _ if !gallery_exists => parent_not_found(TYPE, gallery),
            _ => parent_not_found(IMAGE_TYPE, image),
        };
    };
    match ctx.method {
        Method::GET => {
            let expand = ctx
                .query
                .get("$expand")
                .is_some_and(|e| e.eq_ignore_ascii_case("ReplicationStatus"));
            match ctx.inner.lock().resources.get(&key) {
                Some(r) => {
                    let mut v = render(r, true);
                    if expand {
                        v["properties"]["replicationStatus"] = replication_status(ctx, r);
                    }
                    json_response(StatusCode::OK, &v)
                }
                None => not_found(VERSION_TYPE, name, rg),
            }
        }
        Method::DELETE => delete(ctx, key, None),
        _ => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            if parse_version(name).is_none() {
                return invalid(
                    "InvalidParameter",
                    &format!(
                        "The gallery image version name '{name}' is invalid. It must follow the format Major(int32).Minor(int32).Patch(int32), each part a number from 0 to 2147483647."
                    ),
                    "galleryImageVersionName",
                );
            }
            let existing = ctx.inner.lock().resources.get(&key).cloned();
            let location = body
                .get("location")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| existing.as_ref().and_then(|r| r.location.clone()));
            let Some(location) = location else {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            };
            let image_loc = image_res.location.clone().unwrap_or_default();
            if !location
                .replace(' ', "")
                .eq_ignore_ascii_case(&image_loc.replace(' ', ""))
            {
                return invalid(
                    "InvalidParameter",
                    &format!(
                        "The gallery image version location '{location}' must match the location of the gallery image '{image_loc}'."
                    ),
                    "location",
                );
            }
            let given = body.get("properties").cloned().unwrap_or_else(|| json!({}));
            let source = given
                .pointer("/storageProfile/source/id")
                .or_else(|| given.pointer("/storageProfile/osDiskImage/source/id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(old) = existing {
                if old.state == "Creating" || old.state == "Deleting" {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "OperationNotAllowed",
                        &format!(
                            "Operation on gallery image version '{name}' is not allowed while it is {}.",
                            old.state
                        ),
                    );
                }
                let old_source = old
                    .body
                    .get("properties")
                    .and_then(|p| p.pointer("/storageProfile/source/id"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if source.is_some() && source != old_source {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "PropertyChangeNotAllowed",
                        "Changing property 'galleryImageVersion.properties.storageProfile.source.id' is not allowed.",
                    );
                }
                let mut w = ctx.inner.lock();
                let Some(r) = w.resources.get_mut(&key) else {
                    return not_found(VERSION_TYPE, name, rg);
                };
                if let Some(pp) = given.get("publishingProfile")
                    && let Some(p) = r.body.get_mut("properties").and_then(Value::as_object_mut)
                {
                    p.insert(
                        "publishingProfile".into(),
                        publishing_profile(Some(pp), &location),
                    );
                }
                let out = mark_updating(r, &body);
                return start_update(ctx, w, key, &out, &location);
            }
            if ctx.method == Method::PATCH {
                return not_found(VERSION_TYPE, name, rg);
            }
            let Some(source) = source else {
                return missing("storageProfile.source.id");
            };
            if !source.to_ascii_lowercase().starts_with("/subscriptions/") {
                return invalid(
                    "InvalidParameter",
                    &format!("The source id '{source}' is not a valid resource id."),
                    "storageProfile.source.id",
                );
            }
            let mut props = given.as_object().cloned().unwrap_or_default();
            props.insert(
                "publishingProfile".into(),
                publishing_profile(given.get("publishingProfile"), &location),
            );
            props
                .entry("safetyProfile")
                .or_insert(json!({"allowDeletionOfReplicatedLocations": true, "reportedForPolicyViolation": false}));
            let tags = body.get("tags").cloned().unwrap_or_else(|| json!({}));
            let res = new_res(
                ctx,
                &id,
                VERSION_TYPE,
                (rg, name, &image_loc),
                tags,
                Value::Object(props),
            );
            let out = render(&res, true);
            let mut w = ctx.inner.lock();
            w.resources.insert(key.clone(), res);
            let op = start_op(&mut w, &ctx.inner.knobs, OpEffect::FinishResource(key));
            drop(w);
            started(ctx, StatusCode::CREATED, &out, &op, &image_loc)
        }
    }
}
