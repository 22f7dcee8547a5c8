//! Strict validation of an image template PUT body, the way Image Builder does it from
//! api-version 2024-02-01 on (contract 8.2-8.6, 10.19): first the "unmarshalling" pass (field
//! names are case-sensitive, unknown fields and wrong JSON types are rejected), then the
//! semantic rules per source, customizer, validator and distributor type.
//!
//! Every error becomes a synchronous 400 `ValidationFailed` whose message follows the real
//! service's shape, so a client's error handling meets the same text it will meet in Azure.

use serde_json::{Map, Value};

/// The two api-versions served; 2025-10-01 adds a few fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    V2024_02_01,
    V2025_10_01,
}

const TMPL_REF: &str = "Please review http://aka.ms/azvmimagebuildertmplref for details on fields requirements in the Image Builder Template.";

/// A validation failure: the message of the 400.
pub(crate) type Invalid = String;

fn unknown(field: &str) -> Invalid {
    format!("Unmarshalling entity encountered error: json: unknown field \"{field}\". {TMPL_REF}")
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(v: &Value, path: &str, go_type: &str) -> Invalid {
    format!(
        "Unmarshalling entity encountered error: json: cannot unmarshal {} into Go struct field {path} of type {go_type}. {TMPL_REF}",
        kind_of(v)
    )
}

fn bad(path: &str, field: &str, value: &str) -> Invalid {
    format!("Validation failed: '{path}': Field '{field}' has a bad value: '{value}'. {TMPL_REF}")
}

fn missing(path: &str, field: &str) -> Invalid {
    format!(
        "Validation failed: '{path}': Field '{field}' is required but was not provided. {TMPL_REF}"
    )
}

fn rule(path: &str, text: &str) -> Invalid {
    format!("Validation failed: '{path}': {text} {TMPL_REF}")
}

/// The expected JSON shape of a field (Go types in messages).
#[derive(Clone, Copy)]
enum T {
    Str,
    Int,
    Bool,
    StrList,
    IntList,
    StrMap,
    Obj,
    ObjList,
}

fn check_type(v: &Value, t: T, path: &str) -> Result<(), Invalid> {
    let ok = match t {
        T::Str => v.is_string() || v.is_null(),
        T::Int => v.as_i64().is_some() || v.is_null(),
        T::Bool => v.is_boolean() || v.is_null(),
        T::StrList => v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        T::IntList => {
            v.is_null()
                || v.as_array()
                    .is_some_and(|a| a.iter().all(|x| x.as_i64().is_some()))
        }
        T::StrMap => {
            v.is_null()
                || v.as_object()
                    .is_some_and(|o| o.values().all(Value::is_string))
        }
        T::Obj => v.is_object() || v.is_null(),
        T::ObjList => v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
    };
    if ok {
        return Ok(());
    }
    let go = match t {
        T::Str => "string",
        T::Int => "int32",
        T::Bool => "bool",
        T::StrList => "[]string",
        T::IntList => "[]int32",
        T::StrMap => "map[string]string",
        T::Obj => "struct",
        T::ObjList => "[]struct",
    };
    Err(wrong_type(v, path, go))
}

/// Unmarshalling pass over one object: unknown (or wrongly cased) keys and JSON types.
fn fields(obj: &Map<String, Value>, allowed: &[(&str, T)], path: &str) -> Result<(), Invalid> {
    for (k, v) in obj {
        match allowed.iter().find(|(name, _)| name == k) {
            None => return Err(unknown(k)),
            Some((_, t)) => check_type(v, *t, &format!("{path}.{k}"))?,
        }
    }
    Ok(())
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Invalid> {
    v.as_object().ok_or_else(|| wrong_type(v, path, "struct"))
}

fn s<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str).filter(|x| !x.is_empty())
}

/// `^[A-Za-z0-9-_.]{1,64}$` for template, run output and trigger names.
pub(crate) fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `/subscriptions/x/resourceGroups/y/providers/{ns}/{type}/{name}` (case-insensitive), or None.
fn arm_id_of<'a>(id: &'a str, rtype: &str) -> Option<Vec<&'a str>> {
    let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
    let tparts: Vec<&str> = rtype.split('/').collect();
    // subscriptions/s/resourceGroups/g/providers/NS/T1/n1[/T2/n2...]
    if tparts.len() < 2 || segs.len() != 6 + 2 * (tparts.len() - 1) {
        return None;
    }
    let ok = segs[0].eq_ignore_ascii_case("subscriptions")
        && segs[2].eq_ignore_ascii_case("resourceGroups")
        && segs[4].eq_ignore_ascii_case("providers")
        && segs[5].eq_ignore_ascii_case(tparts[0])
        && tparts[1..]
            .iter()
            .enumerate()
            .all(|(i, t)| segs[6 + 2 * i].eq_ignore_ascii_case(t) && !segs[7 + 2 * i].is_empty());
    ok.then_some(segs)
}

/// A URI a customizer or validator downloads, with its optional checksum.
#[derive(Clone, Debug)]
pub(crate) struct Artefact {
    pub uri: String,
    pub sha256: Option<String>,
}

/// What a valid body yields for the handler.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    pub identity_id: String,
    pub vm_identities: Vec<String>,
    pub artefacts: Vec<Artefact>,
    pub staging_rg: Option<String>,
}

fn script_fields(
    o: &Map<String, Value>,
    path: &str,
    uri_field: &str,
    out: &mut Vec<Artefact>,
) -> Result<(), Invalid> {
    let inline = o
        .get("inline")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let uri = s(o, uri_field);
    match (uri, inline) {
        (Some(_), Some(_)) => {
            return Err(rule(
                path,
                &format!("Only one of '{uri_field}' or 'inline' can be specified."),
            ));
        }
        (None, None) => {
            return Err(rule(
                path,
                &format!("Either '{uri_field}' or 'inline' must be specified."),
            ));
        }
        _ => {}
    }
    if let Some(u) = uri {
        if url::Url::parse(u).is_err() {
            return Err(bad(path, uri_field, u));
        }
        out.push(Artefact {
            uri: u.to_string(),
            sha256: s(o, "sha256Checksum").map(str::to_ascii_lowercase),
        });
    }
    if let Some(c) = s(o, "sha256Checksum")
        && (c.len() != 64 || !c.chars().all(|x| x.is_ascii_hexdigit()))
    {
        return Err(bad(path, "sha256Checksum", c));
    }
    Ok(())
}

fn customizer(c: &Value, path: &str, out: &mut Vec<Artefact>) -> Result<(), Invalid> {
    let o = obj(c, path)?;
    let Some(t) = o.get("type").and_then(Value::as_str) else {
        return Err(missing(path, "type"));
    };
    match t {
        "Shell" => {
            fields(
                o,
                &[
                    ("type", T::Str),
                    ("name", T::Str),
                    ("scriptUri", T::Str),
                    ("sha256Checksum", T::Str),
                    ("inline", T::StrList),
                ],
                path,
            )?;
            script_fields(o, path, "scriptUri", out)
        }
        "PowerShell" => {
            fields(
                o,
                &[
                    ("type", T::Str),
                    ("name", T::Str),
                    ("scriptUri", T::Str),
                    ("sha256Checksum", T::Str),
                    ("inline", T::StrList),
                    ("runElevated", T::Bool),
                    ("runAsSystem", T::Bool),
                    ("validExitCodes", T::IntList),
                ],
                path,
            )?;
            if o.get("runAsSystem").and_then(Value::as_bool) == Some(true)
                && o.get("runElevated").and_then(Value::as_bool) != Some(true)
            {
                return Err(rule(
                    path,
                    "'runAsSystem' can only be set when 'runElevated' is true.",
                ));
            }
            script_fields(o, path, "scriptUri", out)
        }
        "File" => {
            fields(
                o,
                &[
                    ("type", T::Str),
                    ("name", T::Str),
                    ("sourceUri", T::Str),
                    ("sha256Checksum", T::Str),
                    ("destination", T::Str),
                ],
                path,
            )?;
            let Some(src) = s(o, "sourceUri") else {
                return Err(missing(path, "sourceUri"));
            };
            let Some(dest) = s(o, "destination") else {
                return Err(missing(path, "destination"));
            };
            if !(dest.starts_with('/')
                || dest.get(1..3) == Some(":\\")
                || dest.get(1..3) == Some(":/"))
            {
                return Err(bad(path, "destination", dest));
            }
            if url::Url::parse(src).is_err() {
                return Err(bad(path, "sourceUri", src));
            }
            if let Some(c) = s(o, "sha256Checksum")
                && (c.len() != 64 || !c.chars().all(|x| x.is_ascii_hexdigit()))
            {
                return Err(bad(path, "sha256Checksum", c));
            }
            out.push(Artefact {
                uri: src.to_string(),
                sha256: s(o, "sha256Checksum").map(str::to_ascii_lowercase),
            });
            Ok(())
        }
        "WindowsRestart" => {
            fields(
                o,
                &[
                    ("type", T::Str),
                    ("name", T::Str),
                    ("restartCommand", T::Str),
                    ("restartCheckCommand", T::Str),
                    ("restartTimeout", T::Str),
                ],
                path,
            )?;
            if let Some(t) = s(o, "restartTimeout") {
                let (num, unit) = t.split_at(t.len() - 1);
                if num.is_empty()
                    || !num.chars().all(|c| c.is_ascii_digit())
                    || !matches!(unit, "h" | "m" | "s")
                {
                    return Err(bad(path, "restartTimeout", t));
                }
            }
            Ok(())
        }
        "WindowsUpdate" => {
            fields(
                o,
                &[
                    ("type", T::Str),
                    ("name", T::Str),
                    ("searchCriteria", T::Str),
                    ("filters", T::StrList),
                    ("updateLimit", T::Int),
                ],
                path,
            )?;
            if o.get("updateLimit")
                .and_then(Value::as_i64)
                .is_some_and(|n| n < 0)
            {
                return Err(bad(path, "updateLimit", &o["updateLimit"].to_string()));
            }
            Ok(())
        }
        other => Err(bad(path, "type", other)),
    }
}

fn validator(c: &Value, path: &str, out: &mut Vec<Artefact>) -> Result<(), Invalid> {
    let o = obj(c, path)?;
    match o.get("type").and_then(Value::as_str) {
        Some("Shell" | "PowerShell" | "File") => customizer(c, path, out),
        Some(other) => Err(bad(path, "type", other)),
        None => Err(missing(path, "type")),
    }
}

fn source(v: &Value) -> Result<(), Invalid> {
    let path = "ImageTemplate.properties.source";
    let o = obj(v, path)?;
    match o.get("type").and_then(Value::as_str) {
        Some("PlatformImage") => {
            fields(
                o,
                &[
                    ("type", T::Str),
                    ("publisher", T::Str),
                    ("offer", T::Str),
                    ("sku", T::Str),
                    ("version", T::Str),
                    ("planInfo", T::Obj),
                    ("exactVersion", T::Str),
                ],
                path,
            )?;
            for f in ["publisher", "offer", "sku", "version"] {
                if s(o, f).is_none() {
                    return Err(missing(path, f));
                }
            }
            if let Some(p) = o.get("planInfo").filter(|p| !p.is_null()) {
                let po = obj(p, &format!("{path}.planInfo"))?;
                fields(
                    po,
                    &[
                        ("planName", T::Str),
                        ("planProduct", T::Str),
                        ("planPublisher", T::Str),
                    ],
                    &format!("{path}.planInfo"),
                )?;
                for f in ["planName", "planProduct", "planPublisher"] {
                    if s(po, f).is_none() {
                        return Err(missing(&format!("{path}.planInfo"), f));
                    }
                }
            }
            Ok(())
        }
        Some("ManagedImage") => {
            fields(o, &[("type", T::Str), ("imageId", T::Str)], path)?;
            let Some(id) = s(o, "imageId") else {
                return Err(missing(path, "imageId"));
            };
            if arm_id_of(id, "Microsoft.Compute/images").is_none() {
                return Err(bad(path, "imageId", id));
            }
            Ok(())
        }
        Some("SharedImageVersion") => {
            fields(
                o,
                &[
                    ("type", T::Str),
                    ("imageVersionId", T::Str),
                    ("exactVersion", T::Str),
                ],
                path,
            )?;
            let Some(id) = s(o, "imageVersionId") else {
                return Err(missing(path, "imageVersionId"));
            };
            let ok =
                arm_id_of(id, "Microsoft.Compute/galleries/images/versions").is_some_and(|segs| {
                    let v = segs[segs.len() - 1];
                    v.eq_ignore_ascii_case("latest")
                        || crate::arm::compute::parse_version(v).is_some()
                });
            if !ok {
                return Err(bad(path, "imageVersionId", id));
            }
            Ok(())
        }
        Some(other) => Err(bad(path, "type", other)),
        None => Err(missing(path, "type")),
    }
}

fn distributor(d: &Value, i: usize, api: Api, names: &mut Vec<String>) -> Result<(), Invalid> {
    let path = format!("ImageTemplate.properties.distribute[{i}]");
    let path = path.as_str();
    let o = obj(d, path)?;
    let common = [
        ("type", T::Str),
        ("runOutputName", T::Str),
        ("artifactTags", T::StrMap),
    ];
    let t = match o.get("type").and_then(Value::as_str) {
        Some(t) => t,
        None => return Err(missing(path, "type")),
    };
    let mut allowed: Vec<(&str, T)> = common.to_vec();
    match t {
        "ManagedImage" => allowed.extend([("imageId", T::Str), ("location", T::Str)]),
        "SharedImage" => {
            allowed.extend([
                ("galleryImageId", T::Str),
                ("replicationRegions", T::StrList),
                ("storageAccountType", T::Str),
                ("excludeFromLatest", T::Bool),
                ("targetRegions", T::ObjList),
                ("versioning", T::Obj),
            ]);
            if api == Api::V2025_10_01 {
                allowed.push(("replicationMode", T::Str));
            }
        }
        "VHD" => allowed.push(("uri", T::Str)),
        other => return Err(bad(path, "type", other)),
    }
    fields(o, &allowed, path)?;
    let Some(name) = s(o, "runOutputName") else {
        return Err(missing(path, "runOutputName"));
    };
    if !valid_name(name) {
        return Err(bad(path, "runOutputName", name));
    }
    if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        return Err(rule(
            path,
            &format!(
                "runOutputName '{name}' is not unique: every distributor needs its own runOutputName."
            ),
        ));
    }
    names.push(name.to_string());
    match t {
        "ManagedImage" => {
            let Some(id) = s(o, "imageId") else {
                return Err(missing(path, "imageId"));
            };
            if arm_id_of(id, "Microsoft.Compute/images").is_none() {
                return Err(bad(path, "imageId", id));
            }
            if s(o, "location").is_none() {
                return Err(missing(path, "location"));
            }
        }
        "SharedImage" => {
            let Some(id) = s(o, "galleryImageId") else {
                return Err(missing(path, "galleryImageId"));
            };
            let definition = arm_id_of(id, "Microsoft.Compute/galleries/images").is_some();
            let version =
                arm_id_of(id, "Microsoft.Compute/galleries/images/versions").is_some_and(|segs| {
                    crate::arm::compute::parse_version(segs[segs.len() - 1]).is_some()
                });
            if !definition && !version {
                return Err(bad(path, "galleryImageId", id));
            }
            let has_target = o
                .get("targetRegions")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            let has_repl = o
                .get("replicationRegions")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            if has_target && (has_repl || o.get("storageAccountType").is_some_and(|v| !v.is_null()))
            {
                return Err(rule(
                    path,
                    "'targetRegions' cannot be used together with 'replicationRegions' or 'storageAccountType'.",
                ));
            }
            let sat_ok = |v: &str| matches!(v, "Standard_LRS" | "Standard_ZRS" | "Premium_LRS");
            if let Some(sat) = s(o, "storageAccountType")
                && !sat_ok(sat)
            {
                return Err(bad(path, "storageAccountType", sat));
            }
            for (j, tr) in o
                .get("targetRegions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let tp = format!("{path}.targetRegions[{j}]");
                let to = obj(tr, &tp)?;
                fields(
                    to,
                    &[
                        ("name", T::Str),
                        ("replicaCount", T::Int),
                        ("storageAccountType", T::Str),
                    ],
                    &tp,
                )?;
                if s(to, "name").is_none() {
                    return Err(missing(&tp, "name"));
                }
                if to
                    .get("replicaCount")
                    .and_then(Value::as_i64)
                    .is_some_and(|n| !(1..=100).contains(&n))
                {
                    return Err(bad(&tp, "replicaCount", &to["replicaCount"].to_string()));
                }
                if let Some(sat) = s(to, "storageAccountType")
                    && !sat_ok(sat)
                {
                    return Err(bad(&tp, "storageAccountType", sat));
                }
            }
            if let Some(v) = o.get("versioning").filter(|v| !v.is_null()) {
                let vp = format!("{path}.versioning");
                let vo = obj(v, &vp)?;
                match vo.get("scheme").and_then(Value::as_str) {
                    Some("Latest") => fields(vo, &[("scheme", T::Str), ("major", T::Int)], &vp)?,
                    Some("Source") => fields(vo, &[("scheme", T::Str)], &vp)?,
                    Some(other) => return Err(bad(&vp, "scheme", other)),
                    None => return Err(missing(&vp, "scheme")),
                }
                if version {
                    return Err(rule(
                        path,
                        "'versioning' cannot be used with a galleryImageId that names an explicit version.",
                    ));
                }
            }
            if let Some(m) = s(o, "replicationMode")
                && !matches!(m, "Full" | "Shallow")
            {
                return Err(bad(path, "replicationMode", m));
            }
        }
        _ => {
            if let Some(u) = s(o, "uri")
                && url::Url::parse(u).is_err()
            {
                return Err(bad(path, "uri", u));
            }
        }
    }
    Ok(())
}

/// The full check of a PUT body for template `name` in subscription `sub`.
pub(crate) fn template(body: &Value, api: Api, sub: &str) -> Result<Checked, Invalid> {
    let top = obj(body, "ImageTemplate")?;
    fields(
        top,
        &[
            ("location", T::Str),
            ("tags", T::StrMap),
            ("identity", T::Obj),
            ("properties", T::Obj),
            ("id", T::Str),
            ("name", T::Str),
            ("type", T::Str),
            ("systemData", T::Obj),
        ],
        "ImageTemplate",
    )?;
    let Some(props) = top.get("properties").and_then(Value::as_object) else {
        return Err(missing("ImageTemplate", "properties"));
    };
    let mut allowed = vec![
        ("source", T::Obj),
        ("customize", T::ObjList),
        ("optimize", T::Obj),
        ("validate", T::Obj),
        ("distribute", T::ObjList),
        ("errorHandling", T::Obj),
        ("buildTimeoutInMinutes", T::Int),
        ("vmProfile", T::Obj),
        ("stagingResourceGroup", T::Str),
        ("autoRun", T::Obj),
        ("managedResourceTags", T::StrMap),
        ("provisioningState", T::Str),
        ("provisioningError", T::Obj),
        ("lastRunStatus", T::Obj),
        ("exactStagingResourceGroup", T::Str),
    ];
    if api == Api::V2025_10_01 {
        allowed.push(("additionalDataDisks", T::ObjList));
    }
    fields(props, &allowed, "ImageTemplate.properties")?;

    // Identity: required, UserAssigned, exactly one.
    let Some(identity) = top.get("identity").and_then(Value::as_object) else {
        return Err(missing("ImageTemplate", "identity"));
    };
    fields(
        identity,
        &[("type", T::Str), ("userAssignedIdentities", T::Obj)],
        "ImageTemplate.identity",
    )?;
    if identity.get("type").and_then(Value::as_str) != Some("UserAssigned") {
        return Err(bad(
            "ImageTemplate.identity",
            "type",
            identity.get("type").and_then(Value::as_str).unwrap_or(""),
        ));
    }
    let uais = identity
        .get("userAssignedIdentities")
        .and_then(Value::as_object);
    let ids: Vec<&String> = uais.map(|m| m.keys().collect()).unwrap_or_default();
    if ids.len() != 1 {
        return Err(rule(
            "ImageTemplate.identity",
            &format!(
                "Exactly one user assigned identity is required, found {}.",
                ids.len()
            ),
        ));
    }
    let identity_id = ids[0].clone();
    if arm_id_of(
        &identity_id,
        "Microsoft.ManagedIdentity/userAssignedIdentities",
    )
    .is_none()
    {
        return Err(bad(
            "ImageTemplate.identity",
            "userAssignedIdentities",
            &identity_id,
        ));
    }

    let Some(src) = props.get("source").filter(|v| !v.is_null()) else {
        return Err(missing("ImageTemplate.properties", "source"));
    };
    source(src)?;

    let mut artefacts = Vec::new();
    for (i, c) in props
        .get("customize")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        customizer(
            c,
            &format!("ImageTemplate.properties.customize[{i}]"),
            &mut artefacts,
        )?;
    }

    if let Some(opt) = props.get("optimize").filter(|v| !v.is_null()) {
        let p = "ImageTemplate.properties.optimize";
        let o = obj(opt, p)?;
        let mut allowed = vec![("vmBoot", T::Obj)];
        if api == Api::V2025_10_01 {
            allowed.push(("workload", T::Obj));
        }
        fields(o, &allowed, p)?;
        if let Some(vb) = o.get("vmBoot").and_then(Value::as_object) {
            fields(vb, &[("state", T::Str)], &format!("{p}.vmBoot"))?;
            if let Some(st) = s(vb, "state")
                && !matches!(st, "Enabled" | "Disabled")
            {
                return Err(bad(&format!("{p}.vmBoot"), "state", st));
            }
        }
        if let Some(wl) = o.get("workload").and_then(Value::as_object) {
            let wp = format!("{p}.workload");
            fields(
                wl,
                &[
                    ("state", T::Str),
                    ("scriptUri", T::Str),
                    ("sha256Checksum", T::Str),
                ],
                &wp,
            )?;
            if let Some(st) = s(wl, "state")
                && !matches!(st, "Enabled" | "Disabled")
            {
                return Err(bad(&wp, "state", st));
            }
            if let Some(u) = s(wl, "scriptUri") {
                artefacts.push(Artefact {
                    uri: u.to_string(),
                    sha256: s(wl, "sha256Checksum").map(str::to_ascii_lowercase),
                });
            }
        }
    }

    if let Some(val) = props.get("validate").filter(|v| !v.is_null()) {
        let p = "ImageTemplate.properties.validate";
        let o = obj(val, p)?;
        fields(
            o,
            &[
                ("continueDistributeOnFailure", T::Bool),
                ("sourceValidationOnly", T::Bool),
                ("inVMValidations", T::ObjList),
            ],
            p,
        )?;
        let invm = o
            .get("inVMValidations")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        if o.get("sourceValidationOnly").and_then(Value::as_bool) == Some(true) && invm > 0 {
            return Err(rule(
                p,
                "'inVMValidations' cannot be used with 'sourceValidationOnly'.",
            ));
        }
        for (i, v) in o
            .get("inVMValidations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            validator(v, &format!("{p}.inVMValidations[{i}]"), &mut artefacts)?;
        }
    }

    let dist = props
        .get("distribute")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let Some(dist) = dist else {
        return Err(missing("ImageTemplate.properties", "distribute"));
    };
    let mut names = Vec::new();
    for (i, d) in dist.iter().enumerate() {
        distributor(d, i, api, &mut names)?;
    }

    if let Some(eh) = props.get("errorHandling").and_then(Value::as_object) {
        let p = "ImageTemplate.properties.errorHandling";
        fields(
            eh,
            &[("onCustomizerError", T::Str), ("onValidationError", T::Str)],
            p,
        )?;
        for f in ["onCustomizerError", "onValidationError"] {
            if let Some(v) = s(eh, f)
                && !matches!(v, "cleanup" | "abort")
            {
                return Err(bad(p, f, v));
            }
        }
    }

    if let Some(t) = props.get("buildTimeoutInMinutes").and_then(Value::as_i64)
        && !(0..=960).contains(&t)
    {
        return Err(bad(
            "ImageTemplate.properties",
            "buildTimeoutInMinutes",
            &t.to_string(),
        ));
    }

    let mut vm_identities = Vec::new();
    if let Some(vm) = props.get("vmProfile").and_then(Value::as_object) {
        let p = "ImageTemplate.properties.vmProfile";
        fields(
            vm,
            &[
                ("vmSize", T::Str),
                ("osDiskSizeGB", T::Int),
                ("userAssignedIdentities", T::StrList),
                ("vnetConfig", T::Obj),
            ],
            p,
        )?;
        if let Some(n) = vm.get("osDiskSizeGB").and_then(Value::as_i64)
            && n < 0
        {
            return Err(bad(p, "osDiskSizeGB", &n.to_string()));
        }
        for id in vm
            .get("userAssignedIdentities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = id.as_str().unwrap_or("");
            if arm_id_of(id, "Microsoft.ManagedIdentity/userAssignedIdentities").is_none() {
                return Err(bad(p, "userAssignedIdentities", id));
            }
            vm_identities.push(id.to_string());
        }
        if let Some(vn) = vm.get("vnetConfig").and_then(Value::as_object) {
            let vp = format!("{p}.vnetConfig");
            fields(
                vn,
                &[
                    ("subnetId", T::Str),
                    ("containerInstanceSubnetId", T::Str),
                    ("proxyVmSize", T::Str),
                ],
                &vp,
            )?;
            if s(vn, "containerInstanceSubnetId").is_some() {
                if s(vn, "subnetId").is_none() {
                    return Err(rule(
                        &vp,
                        "'containerInstanceSubnetId' requires 'subnetId'.",
                    ));
                }
                if s(vn, "proxyVmSize").is_some() {
                    return Err(rule(
                        &vp,
                        "'proxyVmSize' cannot be used with 'containerInstanceSubnetId'.",
                    ));
                }
            }
        }
    }

    if let Some(disks) = props.get("additionalDataDisks").and_then(Value::as_array) {
        for (i, d) in disks.iter().enumerate() {
            let p = format!("ImageTemplate.properties.additionalDataDisks[{i}]");
            let o = obj(d, &p)?;
            fields(o, &[("sizeGB", T::Int)], &p)?;
            if o.get("sizeGB")
                .and_then(Value::as_i64)
                .is_none_or(|n| n <= 0)
            {
                return Err(missing(&p, "sizeGB"));
            }
        }
    }

    if let Some(ar) = props.get("autoRun").and_then(Value::as_object) {
        let p = "ImageTemplate.properties.autoRun";
        fields(ar, &[("state", T::Str)], p)?;
        if let Some(st) = s(ar, "state")
            && !matches!(st, "Enabled" | "Disabled")
        {
            return Err(bad(p, "state", st));
        }
    }

    let staging_rg = match s(props, "stagingResourceGroup") {
        None => None,
        Some(id) => {
            let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
            let ok = segs.len() == 4
                && segs[0].eq_ignore_ascii_case("subscriptions")
                && segs[1].eq_ignore_ascii_case(sub)
                && segs[2].eq_ignore_ascii_case("resourceGroups")
                && !segs[3].is_empty();
            if !ok {
                return Err(bad("ImageTemplate.properties", "stagingResourceGroup", id));
            }
            Some(segs[3].to_string())
        }
    };

    if s(top, "location").is_none() {
        return Err(missing("ImageTemplate", "location"));
    }

    Ok(Checked {
        identity_id,
        vm_identities,
        artefacts,
        staging_rg,
    })
}

/// Checks a PATCH body (`ImageTemplateUpdateParameters`): tags, identity, vmProfile, distribute.
pub(crate) fn update(body: &Value, api: Api) -> Result<(), Invalid> {
    let top = obj(body, "ImageTemplateUpdateParameters")?;
    fields(
        top,
        &[
            ("tags", T::StrMap),
            ("identity", T::Obj),
            ("properties", T::Obj),
        ],
        "ImageTemplateUpdateParameters",
    )?;
    if let Some(p) = top.get("properties").and_then(Value::as_object) {
        fields(
            p,
            &[("vmProfile", T::Obj), ("distribute", T::ObjList)],
            "ImageTemplateUpdateParameters.properties",
        )?;
        if let Some(vm) = p.get("vmProfile").and_then(Value::as_object) {
            fields(
                vm,
                &[
                    ("vmSize", T::Str),
                    ("osDiskSizeGB", T::Int),
                    ("userAssignedIdentities", T::StrList),
                    ("vnetConfig", T::Obj),
                ],
                "ImageTemplateUpdateParameters.properties.vmProfile",
            )?;
        }
        if let Some(d) = p.get("distribute").and_then(Value::as_array) {
            let mut names = Vec::new();
            for (i, x) in d.iter().enumerate() {
                distributor(x, i, api, &mut names)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "location": "westeurope",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id": {}}},
            "properties": {
                "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s", "version": "latest"},
                "customize": [{"type": "Shell", "name": "a", "inline": ["echo hi"]}],
                "distribute": [{"type": "SharedImage", "runOutputName": "out",
                    "galleryImageId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/def"}]
            }
        })
    }

    /// A minimal valid template passes and yields its identity.
    #[test]
    fn minimal_template_is_accepted() {
        let c = template(&body(), Api::V2024_02_01, "s").expect("valid");
        assert!(c.identity_id.ends_with("/id"));
    }

    /// Field names are case-sensitive: `Type` is an unknown field, as in the real service.
    #[test]
    fn wrongly_cased_field_is_unknown() {
        let mut b = body();
        b["properties"]["source"]["Type"] = json!("PlatformImage");
        let e = template(&b, Api::V2024_02_01, "s").unwrap_err();
        assert!(e.contains("unknown field \"Type\""), "{e}");
    }

    /// 2025-10-01 fields are unknown at 2024-02-01.
    #[test]
    fn newer_fields_are_rejected_by_older_version() {
        let mut b = body();
        b["properties"]["distribute"][0]["replicationMode"] = json!("Shallow");
        assert!(
            template(&b, Api::V2024_02_01, "s")
                .unwrap_err()
                .contains("replicationMode")
        );
        assert!(template(&b, Api::V2025_10_01, "s").is_ok());
    }

    /// scriptUri and inline are mutually exclusive; one of them is required.
    #[test]
    fn script_uri_xor_inline() {
        let mut b = body();
        b["properties"]["customize"][0]["scriptUri"] = json!("https://x/y.sh");
        assert!(
            template(&b, Api::V2024_02_01, "s")
                .unwrap_err()
                .contains("Only one of")
        );
        b["properties"]["customize"][0] = json!({"type": "Shell"});
        assert!(
            template(&b, Api::V2024_02_01, "s")
                .unwrap_err()
                .contains("Either")
        );
    }

    /// buildTimeoutInMinutes is bounded by 960, and runOutputName must be unique.
    #[test]
    fn timeout_bound_and_unique_run_output_names() {
        let mut b = body();
        b["properties"]["buildTimeoutInMinutes"] = json!(961);
        assert!(
            template(&b, Api::V2024_02_01, "s")
                .unwrap_err()
                .contains("buildTimeoutInMinutes")
        );
        let mut b = body();
        let d = b["properties"]["distribute"][0].clone();
        b["properties"]["distribute"] = json!([d.clone(), d]);
        assert!(
            template(&b, Api::V2024_02_01, "s")
                .unwrap_err()
                .contains("not unique")
        );
    }

    /// Exactly one user-assigned identity; a wrong JSON type names the Go field.
    #[test]
    fn identity_count_and_types_are_checked() {
        let mut b = body();
        b["identity"]["userAssignedIdentities"] = json!({});
        assert!(
            template(&b, Api::V2024_02_01, "s")
                .unwrap_err()
                .contains("Exactly one")
        );
        let mut b = body();
        b["properties"]["buildTimeoutInMinutes"] = json!("60");
        assert!(
            template(&b, Api::V2024_02_01, "s")
                .unwrap_err()
                .contains("cannot unmarshal string")
        );
    }
}
