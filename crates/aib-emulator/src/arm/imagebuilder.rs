//! Microsoft.VirtualMachineImages/imageTemplates: Azure VM Image Builder as a client sees it
//! (contract section 8, emulator rules 19-27). No VM is built; everything observable is:
//!
//! - PUT validates strictly (see `validate`), then runs creation as a long-running operation:
//!   the template identity downloads every `scriptUri`/`sourceUri` through the blob front with a
//!   token of its own (so a missing data role, a missing blob or a wrong `sha256Checksum` ends
//!   creation `Failed` with a `provisioningError`), and a staging resource group with a storage
//!   account (backed by Azurite) and a `packerlogs` container appears;
//! - a PUT on an existing name answers 409 `Conflict` (templates are immutable), PATCH changes tags,
//!   identity and vmProfile;
//! - `run` walks `Queued → Building → Customizing → (Optimizing) → (Validating) → Distributing` on
//!   the emulated clock, writes `packerlogs/<guid>/customization.log` block by block while it
//!   runs, and ends by creating gallery image versions and run outputs, or failing the way the
//!   real service fails (an inline `exit N`, the build timeout, a missing gallery image…);
//! - `cancel`, DELETE (which removes the staging group and keeps the gallery versions), run
//!   outputs and the lists.
//!
//! Time: every duration is an [`AibKnobs`] value in emulated seconds, turned into real deadlines
//! with the time scale when an operation starts. State moves lazily: [`advance`] runs before
//! every ARM request, and a small task per build writes the log on schedule.

mod validate;

use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{Ctx, compute, groups, identity, page, provider_operation_url, rbac, render};
use crate::core::{
    Group, Inner, Res, STORAGE_AUD, World, arm_error, empty, json_response, new_guid, rfc3339,
    unix_now,
};
use crate::knobs::Fault;
use validate::Api;

/// Resource type name as ARM spells it.
pub(crate) const TYPE: &str = "Microsoft.VirtualMachineImages/imageTemplates";
const NS: &str = "Microsoft.VirtualMachineImages";
const STORAGE_TYPE: &str = "Microsoft.Storage/storageAccounts";
const CONTAINER_TYPE: &str = "Microsoft.Storage/storageAccounts/blobServices/containers";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const TS_URL: &str = "https://aka.ms/azvmimagebuilderts";

/// Image Builder's timings (emulated seconds, scaled by the time scale) and faults.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AibKnobs {
    /// Template creation: validation, downloads, staging resource group.
    #[serde(with = "crate::knobs::secs")]
    pub create: Duration,
    /// `Queued` before the build starts.
    #[serde(with = "crate::knobs::secs")]
    pub queue: Duration,
    /// `Building`: the build VM is created.
    #[serde(with = "crate::knobs::secs")]
    pub build: Duration,
    /// `Customizing`, per customizer (plus half of it for the hidden generalize step).
    #[serde(with = "crate::knobs::secs")]
    pub customizer: Duration,
    /// `Optimizing`, when `optimize` is enabled.
    #[serde(with = "crate::knobs::secs")]
    pub optimize: Duration,
    /// `Validating`, per validator (once for `sourceValidationOnly`).
    #[serde(with = "crate::knobs::secs")]
    pub validate: Duration,
    /// `Distributing`, per distributor.
    #[serde(with = "crate::knobs::secs")]
    pub distribute: Duration,
    /// `Canceling` → `Canceled`.
    #[serde(with = "crate::knobs::secs")]
    pub cancel: Duration,
    /// Template deletion (staging group removal).
    #[serde(with = "crate::knobs::secs")]
    pub delete: Duration,
    /// Force the next runs to fail in this sub-state (`Building`, `Customizing`, `Optimizing`,
    /// `Validating`, `Distributing`); `None` = no forced failure.
    pub fail_in: Option<String>,
    /// End successful runs `PartiallySucceeded`: the last distributor's replication fails.
    pub partially_succeed: bool,
    /// Share (0..1) of template GETs and run status reads during a run answered 500
    /// `InternalOperationError` (the build itself goes on).
    pub internal_error_rate: f64,
    /// Cancel never completes (runs stay `Canceling`), as users sometimes see.
    pub stuck_canceling: bool,
    /// Tolerate a byte-identical re-PUT of an existing template (200) instead of 409.
    pub allow_identical_put: bool,
}

impl Default for AibKnobs {
    fn default() -> Self {
        Self {
            create: Duration::from_secs(40),
            queue: Duration::from_secs(30),
            build: Duration::from_secs(180),
            customizer: Duration::from_secs(120),
            optimize: Duration::from_secs(120),
            validate: Duration::from_secs(90),
            distribute: Duration::from_secs(240),
            cancel: Duration::from_secs(60),
            delete: Duration::from_secs(60),
            fail_in: None,
            partially_succeed: false,
            internal_error_rate: 0.0,
            stuck_canceling: false,
            allow_identical_put: false,
        }
    }
}

// ---- state ---------------------------------------------------------------------------------------

/// Image Builder's side of the world: templates' lifecycles and operations.
#[derive(Debug, Default)]
pub(crate) struct AibState {
    templates: HashMap<String, Tpl>,
    ops: HashMap<String, AibOp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Create,
    Run,
    Cancel,
    Delete,
}

#[derive(Debug)]
struct AibOp {
    id: String,
    kind: OpKind,
    template: String,
    started: SystemTime,
    /// Final status once known.
    end: Option<OpEnd>,
}

/// How an operation ended: (status, error code and message, end time).
type OpEnd = (String, Option<(String, String)>, SystemTime);

/// What the artefact check found (filled in by its task).
type Fetch = Arc<Mutex<Option<Result<(), (String, String, String)>>>>;

#[derive(Debug)]
struct Staging {
    rg: String,
    /// Created by Image Builder (deleted with the template) vs given by the user (emptied).
    owned: bool,
    /// False when creation refused the group (BadStagingResourceGroup): nothing to clean up.
    claimed: bool,
    account: String,
    account_id: String,
    azurite: Option<String>,
}

#[derive(Debug)]
struct Tpl {
    key: String,
    id: String,
    /// The PUT body as sent, for the identical-PUT switch.
    request: Value,
    principal: String,
    create_deadline: Instant,
    create_op: String,
    fetch: Fetch,
    /// A failure known at submission (bad staging group…): (error code, provisioningErrorCode, message).
    pre_failure: Option<(String, String, String)>,
    creating: bool,
    staging: Staging,
    run: Option<Run>,
    delete: Option<(String, Instant)>,
    run_outputs: Vec<Value>,
    auto_run: bool,
}

/// How a run ends if nothing cancels it.
#[derive(Clone, Debug)]
enum Plan {
    /// Reach `Distributing` and distribute.
    Distribute { validation_failed: Option<String> },
    /// Fail in a sub-state: (sub-state, code, message).
    Fail(String, String, String),
}

#[derive(Debug)]
struct Run {
    op: String,
    guid: String,
    started: SystemTime,
    phases: Vec<(String, Instant)>,
    end: Instant,
    plan: Plan,
    cancel: Option<(String, Option<Instant>)>,
    finished: bool,
    cancel_flag: Arc<AtomicBool>,
}

// ---- helpers -------------------------------------------------------------------------------------

fn with_header(mut r: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

fn api_of(v: &str) -> Api {
    if v == "2024-02-01" {
        Api::V2024_02_01
    } else {
        Api::V2025_10_01
    }
}

fn validation_failed(message: &str) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "ValidationFailed", message)
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

fn not_allowed(action: &str, provisioning: &str, run_state: &str) -> Response {
    arm_error(
        StatusCode::CONFLICT,
        "OperationNotAllowed",
        &format!(
            "Operation {TYPE}/{action} is not allowed in provisioning state: {} or run state: {}. For more information, go to {TS_URL}.",
            provisioning.to_ascii_lowercase(),
            run_state.to_ascii_lowercase()
        ),
    )
}

fn props_of(r: &Res) -> Map<String, Value> {
    r.body
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn set_prop(r: &mut Res, k: &str, v: Value) {
    if let Some(p) = r.body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert(k.into(), v);
    }
}

fn run_state_of(r: &Res) -> String {
    r.body
        .get("properties")
        .and_then(|p| p.pointer("/lastRunStatus/runState"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn lower_random(n: usize) -> String {
    use rand::Rng;
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
        .collect()
}

/// Resolves a URI to one the blob front serves, or None when the emulator cannot reach it.
fn blob_front_url(inner: &Inner, uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    let front = &inner.blob_url;
    if u.host_str() == front.host_str()
        && u.port_or_known_default() == front.port_or_known_default()
    {
        return Some(uri.to_string());
    }
    let host = u.host_str()?.to_ascii_lowercase();
    let account = host.strip_suffix(".blob.core.windows.net")?;
    let mut out = format!(
        "{}/{account}{}",
        front.as_str().trim_end_matches('/'),
        u.path()
    );
    if let Some(q) = u.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// A storage token for a principal, valid long enough for one background job (real seconds).
fn storage_token(inner: &Inner, principal: &str, client_id: &str, valid_for: Duration) -> String {
    let now = unix_now();
    inner.sign(&json!({
        "aud": STORAGE_AUD,
        "iss": format!("https://sts.windows.net/{}/", inner.tenant_id),
        "iat": now.saturating_sub(300),
        "nbf": now.saturating_sub(300),
        "exp": now + valid_for.as_secs() + 600,
        "oid": principal,
        "sub": principal,
        "appid": client_id,
        "idtyp": "app",
        "tid": inner.tenant_id,
        "ver": "1.0",
    }))
}

// ---- entry points --------------------------------------------------------------------------------

/// `.../resourceGroups/{rg}/providers/Microsoft.VirtualMachineImages/imageTemplates/{name}[/...]`.
pub(crate) async fn handle(ctx: &Ctx<'_>, rg: &str) -> Response {
    let l: Vec<&str> = ctx.lsegs.iter().map(String::as_str).collect();
    let name = ctx.segs[7].clone();
    let id = ctx.resource_id(rg, TYPE, &name);
    match &l[8..] {
        [] => match ctx.method {
            Method::GET => get(ctx, rg, &name, &id),
            Method::PUT => put(ctx, rg, &name, &id).await,
            Method::PATCH => patch(ctx, rg, &name, &id),
            Method::DELETE => delete(ctx, rg, &name, &id),
            _ => super::method_not_allowed(ctx),
        },
        ["run"] if ctx.method == Method::POST => run(ctx, rg, &name, &id),
        ["cancel"] if ctx.method == Method::POST => cancel(ctx, rg, &name, &id),
        ["runoutputs"] => run_outputs(ctx, rg, &name, &id, None),
        ["runoutputs", _] => run_outputs(ctx, rg, &name, &id, Some(&ctx.segs[9])),
        ["run" | "cancel"] | ["runoutputs", ..] => super::method_not_allowed(ctx),
        _ => super::not_found_path(ctx),
    }
}

#[allow(clippy::result_large_err)]
fn admit(ctx: &Ctx<'_>, rg: &str, action: &str, id: &str, write: bool) -> Result<(), Response> {
    groups::require_group(ctx, rg, write)?;
    rbac::authorize(ctx, &format!("{TYPE}/{action}"), id)
}

fn get(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    if let Err(r) = admit(ctx, rg, "read", id, false) {
        return r;
    }
    let knobs = ctx.inner.knobs.get();
    let w = ctx.inner.lock();
    let Some(r) = w.resources.get(&id.to_ascii_lowercase()) else {
        return not_found(rg, name);
    };
    if run_state_of(r) == "Running"
        && let Some(e) = injected_internal_error(ctx, &knobs)
    {
        return e;
    }
    json_response(StatusCode::OK, &render(r, true))
}

// ---- create ----------------------------------------------------------------------------------------

async fn put(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    if let Err(r) = admit(ctx, rg, "write", id, true) {
        return r;
    }
    let key = id.to_ascii_lowercase();
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let knobs = ctx.inner.knobs.get();
    {
        let w = ctx.inner.lock();
        if let Some(existing) = w.aib.templates.get(&key) {
            let identical = existing.request == body;
            if !(identical && knobs.aib.allow_identical_put && existing.delete.is_none()) {
                return arm_error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!(
                        "Update/Upgrade of image templates is currently not supported. Please change the name of the template you are submitting. If you have previously tried to submit a template and it failed to provision, you must delete it first and then resubmit. For more information, go to {TS_URL}."
                    ),
                );
            }
            return match w.resources.get(&key) {
                Some(r) => json_response(StatusCode::OK, &render(r, true)),
                None => not_found(rg, name),
            };
        }
    }
    if !validate::valid_name(name) {
        return validation_failed(&format!(
            "Validation failed: the template name '{name}' is invalid: use 1-64 letters, digits, '-', '_' and '.'. Please review http://aka.ms/azvmimagebuildertmplref for details on fields requirements in the Image Builder Template."
        ));
    }
    let checked = match validate::template(&body, api_of(&ctx.api_version), ctx.sub()) {
        Ok(c) => c,
        Err(m) => return validation_failed(&m),
    };
    let location = body
        .get("location")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    // The identities must exist, and the caller must be allowed to assign them (ARM's linked check).
    let mut identities = vec![checked.identity_id.clone()];
    identities.extend(checked.vm_identities.iter().cloned());
    let mut principal = (String::new(), String::new());
    for (i, uai) in identities.iter().enumerate() {
        let found = {
            let w = ctx.inner.lock();
            w.resources
                .get(&uai.to_ascii_lowercase())
                .filter(|r| r.rtype == identity::TYPE)
                .map(|r| {
                    let p = props_of(r);
                    (
                        p.get("principalId")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        p.get("clientId")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                })
        };
        let Some(found) = found else {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "FailedIdentityOperation",
                &format!(
                    "Identity operation for resource '{id}' failed with error 'Failed to perform resource identity operation. Status: 'NotFound'. Response: '{{\"error\":{{\"code\":\"NotFound\",\"message\":\"Resource '{uai}' was not found.\"}}}}'.'."
                ),
            );
        };
        let action = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
        if !rbac::allowed(&ctx.inner.lock(), &ctx.oid, action, uai, false) {
            return arm_error(
                StatusCode::FORBIDDEN,
                "LinkedAuthorizationFailed",
                &format!(
                    "The client '{}' with object id '{}' has permission to perform action '{TYPE}/write' on scope '{id}'; however, it does not have permission to perform action(s) '{action}' on the linked scope(s) '{uai}' (respectively) or the linked scope(s) are invalid.",
                    ctx.appid, ctx.oid
                ),
            );
        }
        if i == 0 {
            principal = found;
        }
    }

    // Staging resource group: the given one (which must be usable) or IT_<rg>_<name>_<guid>.
    let mut pre_failure = None;
    let (staging_rg, owned) = match &checked.staging_rg {
        Some(g) => {
            let w = ctx.inner.lock();
            let in_use = w
                .aib
                .templates
                .values()
                .any(|t| t.staging.claimed && t.staging.rg.eq_ignore_ascii_case(g));
            match w.groups.get(&g.to_ascii_lowercase()) {
                None => (g.clone(), true),
                Some(grp) => {
                    let has_resources = w
                        .resources
                        .values()
                        .any(|r| r.group.eq_ignore_ascii_case(g));
                    let problem = if in_use {
                        Some(format!(
                            "The staging resource group '{g}' is already used by another image template."
                        ))
                    } else if has_resources {
                        Some(format!(
                            "The staging resource group '{g}' is not empty. It must be empty or not exist."
                        ))
                    } else if !grp.location.eq_ignore_ascii_case(&location) {
                        Some(format!(
                            "The staging resource group '{g}' is in location '{}', but the image template is in '{location}'.",
                            grp.location
                        ))
                    } else if !rbac::allowed(
                        &w,
                        &principal.0,
                        "Microsoft.Storage/storageAccounts/write",
                        &format!("/subscriptions/{}/resourceGroups/{}", ctx.sub(), grp.name),
                        false,
                    ) {
                        Some(format!(
                            "The template identity does not have Contributor or Owner rights on the staging resource group '{g}'."
                        ))
                    } else {
                        None
                    };
                    if let Some(m) = problem {
                        pre_failure = Some((
                            "BadStagingResourceGroup".to_string(),
                            "BadStagingResourceGroup".to_string(),
                            m,
                        ));
                    }
                    (grp.name.clone(), false)
                }
            }
        }
        None => {
            let guid = new_guid();
            let mut n = format!("IT_{rg}_{name}_{guid}");
            if n.len() > 90 {
                let keep = 90usize.saturating_sub(3 + rg.len().min(30) + 1 + guid.len() + 1);
                let short_rg: String = rg.chars().take(30).collect();
                let short_name: String = name.chars().take(keep).collect();
                n = format!("IT_{short_rg}_{short_name}_{guid}");
            }
            (n, true)
        }
    };

    let now = SystemTime::now();
    let list_lag = Instant::now() + ctx.inner.knobs.real(knobs.list_lag);
    let account = lower_random(24);
    let staging_id = format!("/subscriptions/{}/resourceGroups/{staging_rg}", ctx.sub());
    let account_id = format!("{staging_id}/providers/{STORAGE_TYPE}/{account}");
    let mut azurite_account = None;
    let mut grant_contributor = false;
    if pre_failure.is_none() {
        let mut w = ctx.inner.lock();
        let mut tags = json!({
            "createdBy": "AzureVMImageBuilder",
            "imageTemplateName": name,
            "imageTemplateResourceGroupName": rg,
        });
        if let Some(extra) = body
            .pointer("/properties/managedResourceTags")
            .and_then(Value::as_object)
        {
            for (k, v) in extra {
                tags[k] = v.clone();
            }
        }
        match w.groups.get_mut(&staging_rg.to_ascii_lowercase()) {
            Some(g) => {
                if let Some(t) = g.tags.as_object_mut() {
                    t.insert("usedBy".into(), json!("AzureVMImageBuilder"));
                    t.insert("imageTemplateName".into(), json!(name));
                    t.insert("imageTemplateResourceGroupName".into(), json!(rg));
                }
            }
            None => {
                w.groups.insert(
                    staging_rg.to_ascii_lowercase(),
                    Group {
                        name: staging_rg.clone(),
                        location: location.clone(),
                        tags: tags.clone(),
                        managed_by: None,
                        deleting: false,
                        changed: now,
                    },
                );
                grant_contributor = true;
            }
        }
        if ctx.inner.azurite.is_some()
            && let Some(i) = w.azurite_free.iter().position(|n| n.starts_with("aibpool"))
        {
            let slot = w.azurite_free.remove(i);
            w.azurite_map.insert(account.clone(), slot.clone());
            azurite_account = Some(slot);
        }
        let blob = format!(
            "{}/{account}/",
            ctx.inner.blob_url.as_str().trim_end_matches('/')
        );
        let mut m = Map::new();
        m.insert(
            "sku".into(),
            json!({"name": "Standard_LRS", "tier": "Standard"}),
        );
        m.insert("kind".into(), json!("StorageV2"));
        m.insert(
            "properties".into(),
            json!({
                "creationTime": rfc3339(now),
                "primaryEndpoints": {"blob": blob},
                "primaryLocation": location,
                "statusOfPrimary": "available",
                "accessTier": "Hot",
                "minimumTlsVersion": "TLS1_2",
                "allowBlobPublicAccess": false,
                "allowSharedKeyAccess": false,
                "supportsHttpsTrafficOnly": true,
                "publicNetworkAccess": "Enabled",
            }),
        );
        w.resources.insert(
            account_id.to_ascii_lowercase(),
            Res {
                id: account_id.clone(),
                rtype: STORAGE_TYPE.into(),
                group: staging_rg.clone(),
                name: account.clone(),
                location: Some(location.clone()),
                tags: tags.clone(),
                body: m,
                state: "Succeeded".into(),
                visible: true,
                created: now,
                changed: now,
                listed_at: list_lag,
            },
        );
        let container_id = format!("{account_id}/blobServices/default/containers/packerlogs");
        let mut cm = Map::new();
        cm.insert(
            "properties".into(),
            json!({"publicAccess": "None", "lastModifiedTime": rfc3339(now)}),
        );
        w.resources.insert(
            container_id.to_ascii_lowercase(),
            Res {
                id: container_id,
                rtype: CONTAINER_TYPE.into(),
                group: staging_rg.clone(),
                name: "packerlogs".into(),
                location: None,
                tags: json!({}),
                body: cm,
                state: "Succeeded".into(),
                visible: true,
                created: now,
                changed: now,
                listed_at: list_lag,
            },
        );
    }
    if grant_contributor {
        rbac::grant_now(ctx.inner, &principal.0, CONTRIBUTOR, &staging_id);
    }
    if let Some(slot) = &azurite_account {
        let _ = crate::blob::container_op(ctx.inner, slot, "packerlogs", Method::PUT).await;
    }

    // The artefact check: downloads with the template identity's token, half-way through creation.
    let create_real = ctx.inner.knobs.real(knobs.aib.create);
    let fetch: Fetch = Arc::new(Mutex::new(None));
    if pre_failure.is_none() {
        let mut jobs = Vec::new();
        for a in &checked.artefacts {
            jobs.push((a.clone(), blob_front_url(ctx.inner, &a.uri)));
        }
        if jobs.is_empty() {
            if let Ok(mut f) = fetch.lock() {
                *f = Some(Ok(()));
            }
        } else {
            let token = storage_token(ctx.inner, &principal.0, &principal.1, create_real);
            let client = ctx.inner.azurite.as_ref().map(|b| b.client.clone());
            let out = fetch.clone();
            tokio::spawn(async move {
                tokio::time::sleep(create_real / 2).await;
                let result = check_artefacts(client, &token, jobs).await;
                if let Ok(mut f) = out.lock() {
                    *f = Some(result);
                }
            });
        }
    }

    let mut props = body
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in [
        "provisioningState",
        "provisioningError",
        "lastRunStatus",
        "exactStagingResourceGroup",
    ] {
        props.remove(k);
    }
    props.entry("buildTimeoutInMinutes").or_insert(json!(0));
    props
        .entry("vmProfile")
        .or_insert(json!({"vmSize": "", "osDiskSizeGB": 0}));
    props.insert("exactStagingResourceGroup".into(), json!(staging_id));
    let mut identity_map = Map::new();
    identity_map.insert(
        checked.identity_id.clone(),
        json!({"principalId": principal.0, "clientId": principal.1}),
    );
    let mut m = Map::new();
    m.insert(
        "identity".into(),
        json!({"type": "UserAssigned", "userAssignedIdentities": identity_map}),
    );
    m.insert("properties".into(), Value::Object(props));
    let res = Res {
        id: id.to_string(),
        rtype: TYPE.into(),
        group: rg.to_string(),
        name: name.to_string(),
        location: Some(location.clone()),
        tags: body.get("tags").cloned().unwrap_or_else(|| json!({})),
        body: m,
        state: "Creating".into(),
        visible: true,
        created: now,
        changed: now,
        listed_at: list_lag,
    };
    let out = render(&res, true);
    let op = new_guid();
    let claimed = pre_failure.is_none();
    let auto_run = body
        .pointer("/properties/autoRun/state")
        .and_then(Value::as_str)
        == Some("Enabled");
    {
        let mut w = ctx.inner.lock();
        w.resources.insert(key.clone(), res);
        w.aib.ops.insert(
            op.clone(),
            AibOp {
                id: op.clone(),
                kind: OpKind::Create,
                template: key.clone(),
                started: now,
                end: None,
            },
        );
        w.aib.templates.insert(
            key.clone(),
            Tpl {
                key,
                id: id.to_string(),
                request: body,
                principal: principal.0,
                create_deadline: Instant::now() + create_real,
                create_op: op.clone(),
                fetch,
                pre_failure,
                creating: true,
                staging: Staging {
                    claimed,
                    rg: staging_rg,
                    owned,
                    account,
                    account_id,
                    azurite: azurite_account,
                },
                run: None,
                delete: None,
                run_outputs: Vec::new(),
                auto_run,
            },
        );
    }
    let r = json_response(StatusCode::CREATED, &out);
    let r = with_header(
        r,
        "azure-asyncoperation",
        &provider_operation_url(ctx, NS, &location, "operations", &op),
    );
    with_header(r, "retry-after", &knobs.lro_retry_after.to_string())
}

/// Downloads every artefact as the template identity; the first problem wins:
/// (error code, provisioningErrorCode, message).
async fn check_artefacts(
    client: Option<reqwest::Client>,
    token: &str,
    jobs: Vec<(validate::Artefact, Option<String>)>,
) -> Result<(), (String, String, String)> {
    for (a, url) in jobs {
        let Some(url) = url else {
            return Err((
                "NoCustomizerScript".into(),
                "NoCustomizerScript".into(),
                format!(
                    "Failed to download '{}': the emulator serves only its own blob endpoint and *.blob.core.windows.net addresses, and does not reach the internet.",
                    a.uri
                ),
            ));
        };
        let Some(client) = &client else {
            return Err((
                "NoCustomizerScript".into(),
                "NoCustomizerScript".into(),
                format!(
                    "Failed to download '{}': this emulator runs without Azurite, so no blob can be read.",
                    a.uri
                ),
            ));
        };
        // Like the real service, transient storage failures (5xx, dropped connections) are
        // retried before the download counts as failed.
        let mut attempt = 0u32;
        let resp = loop {
            attempt += 1;
            let r = client
                .get(&url)
                .bearer_auth(token)
                .header("x-ms-version", "2025-01-05")
                .send()
                .await;
            let transient = match &r {
                Ok(x) => x.status().is_server_error(),
                Err(_) => true,
            };
            if !transient || attempt >= 8 {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return Err((
                    "InternalOperationError".into(),
                    "ServerError".into(),
                    format!("Failed to download '{}': {e}", a.uri),
                ));
            }
        };
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err((
                "Unauthorized".into(),
                "Other".into(),
                format!(
                    "Not authorized to access the resource: {}. Please check the user assigned identity has the correct permissions. For more details, go to {TS_URL}.",
                    a.uri
                ),
            ));
        }
        if status == 404 {
            return Err((
                "NoCustomizerScript".into(),
                "NoCustomizerScript".into(),
                format!(
                    "Failed to download '{}': the blob was not found (404). Make sure the file exists before submitting the template.",
                    a.uri
                ),
            ));
        }
        if !(200..300).contains(&status) {
            return Err((
                "InternalOperationError".into(),
                "ServerError".into(),
                format!("Failed to download '{}': status {status}.", a.uri),
            ));
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        if let Some(want) = &a.sha256 {
            let got = hex(&sha2::Sha256::digest(&bytes));
            if &got != want {
                return Err((
                    "ValidationFailed".into(),
                    "Other".into(),
                    format!(
                        "The sha256 checksum of '{}' does not match: expected '{want}', computed '{got}'.",
                        a.uri
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- patch / delete --------------------------------------------------------------------------------

fn patch(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    if let Err(r) = admit(ctx, rg, "write", id, true) {
        return r;
    }
    let body = match ctx.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(m) = validate::update(&body, api_of(&ctx.api_version)) {
        return validation_failed(&m);
    }
    let mut w = ctx.inner.lock();
    let Some(r) = w.resources.get_mut(&id.to_ascii_lowercase()) else {
        return not_found(rg, name);
    };
    if matches!(r.state.as_str(), "Creating" | "Deleting")
        || matches!(run_state_of(r).as_str(), "Running" | "Canceling")
    {
        return not_allowed("write", &r.state, &run_state_of(r));
    }
    if let Some(t) = body.get("tags") {
        r.tags = t.clone();
    }
    if let Some(i) = body.get("identity") {
        r.body.insert("identity".into(), i.clone());
    }
    if let Some(p) = body.get("properties").and_then(Value::as_object) {
        for (k, v) in p {
            set_prop(r, k, v.clone());
        }
    }
    r.changed = SystemTime::now();
    json_response(StatusCode::OK, &render(r, true))
}

fn delete(ctx: &Ctx<'_>, rg: &str, _name: &str, id: &str) -> Response {
    if let Err(r) = admit(ctx, rg, "delete", id, true) {
        return r;
    }
    let key = id.to_ascii_lowercase();
    let knobs = ctx.inner.knobs.get();
    let mut w = ctx.inner.lock();
    let Some(r) = w.resources.get(&key) else {
        return empty(StatusCode::NO_CONTENT);
    };
    let state = r.state.clone();
    let run_state = run_state_of(r);
    let location = r.location.clone().unwrap_or_default();
    if state == "Creating" || matches!(run_state.as_str(), "Running" | "Canceling") {
        return arm_error(
            StatusCode::CONFLICT,
            "OperationNotAllowed",
            &format!(
                "Operation 'DELETE' is not allowed in provisioningState: '{}' or run state: '{}'. For more information, go to {TS_URL}.",
                state.to_ascii_lowercase(),
                run_state.to_ascii_lowercase()
            ),
        );
    }
    let op = match w.aib.templates.get(&key).and_then(|t| t.delete.as_ref()) {
        Some((op, _)) => op.clone(),
        None => {
            let op = new_guid();
            let deadline = Instant::now() + ctx.inner.knobs.real(knobs.aib.delete);
            if let Some(t) = w.aib.templates.get_mut(&key) {
                t.delete = Some((op.clone(), deadline));
            }
            if let Some(r) = w.resources.get_mut(&key) {
                r.state = "Deleting".into();
            }
            w.aib.ops.insert(
                op.clone(),
                AibOp {
                    id: op.clone(),
                    kind: OpKind::Delete,
                    template: key.clone(),
                    started: SystemTime::now(),
                    end: None,
                },
            );
            op
        }
    };
    drop(w);
    super::accepted_location(
        ctx,
        provider_operation_url(ctx, NS, &location, "operationresults", &op),
    )
}

// ---- run / cancel ----------------------------------------------------------------------------------

/// The emulated length of each phase and the plan for how the run ends.
struct Schedule {
    /// (sub-state, emulated offset from the start).
    phases: Vec<(String, f64)>,
    /// Emulated offset of the end.
    end: f64,
    plan: Plan,
    /// customization.log chunks at emulated offsets.
    log: Vec<(f64, String)>,
    /// validation.log chunks at emulated offsets.
    vlog: Vec<(f64, String)>,
}

/// Exit codes an inline script produces (`exit N`), in order.
fn inline_exits(c: &Value) -> Vec<i64> {
    let mut out = Vec::new();
    for line in c
        .get("inline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let line = line.as_str().unwrap_or("");
        let words: Vec<&str> = line
            .split(|ch: char| ch.is_whitespace() || ch == ';' || ch == '&' || ch == '|')
            .collect();
        for pair in words.windows(2) {
            if pair[0].eq_ignore_ascii_case("exit")
                && let Ok(n) = pair[1].parse::<i64>()
            {
                out.push(n);
            }
        }
    }
    out
}

fn provisioner(t: &str) -> &'static str {
    match t {
        "Shell" => "shell",
        "PowerShell" => "powershell",
        "File" => "file",
        "WindowsRestart" => "windows-restart",
        "WindowsUpdate" => "windows-update",
        _ => "shell",
    }
}

fn plan_run(
    props: &Map<String, Value>,
    k: &AibKnobs,
    log_path: &str,
    op: &str,
    source_problem: Option<&str>,
) -> Schedule {
    let secs = |d: Duration| d.as_secs_f64();
    let mut phases = Vec::new();
    let mut log = Vec::new();
    let mut vlog = Vec::new();
    let mut t = 0.0;
    let mut failure: Option<(f64, String, String, String)> = None;
    let forced = k.fail_in.clone();
    let packer_failed = |step: &str| {
        format!(
            "Failed while waiting for packerizer: Microservice has failed: Failed while processing request: Error when executing packerizer: Packer build command has failed: exit status 1. During the image build, a failure has occurred, please review the build log to identify which build/customization step failed. Failed step: {step}. For more troubleshooting steps go to {TS_URL}. Image Build log location: {log_path}. OperationId: {op}. Use this operationId to search packer logs."
        )
    };
    let force = |phase: &str, at: f64, failure: &mut Option<(f64, String, String, String)>| {
        if forced
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case(phase))
            && failure.is_none()
        {
            *failure = Some((
                at,
                phase.to_string(),
                "InternalOperationError".to_string(),
                format!(
                    "Image build failed in {phase} (failure injected by the emulator's aib.fail_in knob). For more troubleshooting steps go to {TS_URL}. OperationId: {op}."
                ),
            ));
        }
    };

    phases.push(("Queued".to_string(), t));
    t += secs(k.queue);
    phases.push(("Building".to_string(), t));
    log.push((t, "PACKER OUT Build 'azure-arm' started\nPACKER OUT ==> azure-arm: Running builder ...\nPACKER OUT ==> azure-arm: Creating resource group ...\nPACKER OUT ==> azure-arm: Deploying deployment template ...\n".to_string()));
    t += secs(k.build);
    if let Some(problem) = source_problem {
        failure = Some((
            t,
            "Building".into(),
            "BadSharedImageVersionSource".into(),
            format!("{problem} For more troubleshooting steps go to {TS_URL}. OperationId: {op}."),
        ));
    }
    force("Building", t, &mut failure);

    phases.push(("Customizing".to_string(), t));
    log.push((t, "PACKER OUT ==> azure-arm: Waiting for SSH/WinRM to become available...\nPACKER OUT ==> azure-arm: Connected to the build VM!\n".to_string()));
    let customizers: Vec<Value> = props
        .get("customize")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = customizers.len();
    for (i, c) in customizers.iter().enumerate() {
        if failure.is_some() {
            break;
        }
        let ty = c.get("type").and_then(Value::as_str).unwrap_or("Shell");
        let p = provisioner(ty);
        let step_name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let label = if step_name.is_empty() {
            format!("{ty} customizer {} of {total}", i + 1)
        } else {
            format!("'{step_name}' ({ty} customizer {} of {total})", i + 1)
        };
        let mut block = format!("(telemetry) Starting provisioner {p}\n");
        if let Some(u) = c.get("scriptUri").and_then(Value::as_str) {
            block.push_str(&format!(
                "PACKER OUT ==> azure-arm: Provisioning with {p} script: {u}\n"
            ));
        }
        if let Some(u) = c.get("sourceUri").and_then(Value::as_str) {
            let dest = c.get("destination").and_then(Value::as_str).unwrap_or("");
            block.push_str(&format!(
                "PACKER OUT ==> azure-arm: Uploading {u} => {dest}\n"
            ));
        }
        echo_inline(&mut block, c);
        log.push((t, block));
        t += secs(k.customizer);
        let valid: Vec<i64> = c
            .get("validExitCodes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .filter(|v: &Vec<i64>| !v.is_empty())
            .unwrap_or_else(|| vec![0]);
        if let Some(code) = inline_exits(c).into_iter().find(|n| !valid.contains(n)) {
            let allowed: Vec<String> = valid.iter().map(i64::to_string).collect();
            log.push((
                t,
                format!(
                    "PACKER ERR ==> azure-arm: Script exited with non-zero exit status: {code}. Allowed exit codes are: [{}]\nPACKER ERR Build 'azure-arm' errored after {}: Script exited with non-zero exit status: {code} in step {label}\n(telemetry) ending {p}\nPACKER ERR ==> Some builds didn't complete successfully and had errors:\nPACKER ERR --> azure-arm: Script exited with non-zero exit status: {code}. Allowed exit codes are: [{}]\nPACKER ERR ==> Builds finished but no artifacts were created.\n",
                    allowed.join(", "),
                    human(t),
                    allowed.join(", ")
                ),
            ));
            failure = Some((
                t,
                "Customizing".into(),
                "PackerBuildFailed".into(),
                packer_failed(&label),
            ));
            break;
        }
        log.push((t, format!("(telemetry) ending {p}\n")));
    }
    if failure.is_none() {
        t += secs(k.customizer) / 2.0;
        force("Customizing", t, &mut failure);
    }
    if failure.is_none() {
        log.push((t, "PACKER OUT ==> azure-arm: Deprovisioning and generalizing the build VM...\nPACKER OUT ==> azure-arm: Capturing image ...\n(telemetry) Finalizing. - This means the build is complete and artifacts are being captured\n".to_string()));
    }

    let optimize_on = props.get("optimize").is_some_and(|o| {
        o.pointer("/vmBoot/state").and_then(Value::as_str) == Some("Enabled")
            || o.pointer("/workload/state").and_then(Value::as_str) == Some("Enabled")
    });
    if optimize_on && failure.is_none() {
        phases.push(("Optimizing".to_string(), t));
        t += secs(k.optimize);
        force("Optimizing", t, &mut failure);
    }

    let mut validation_failed = None;
    let validate = props.get("validate").and_then(Value::as_object);
    let validators: Vec<Value> = validate
        .and_then(|v| v.get("inVMValidations"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let source_only = validate
        .and_then(|v| v.get("sourceValidationOnly"))
        .and_then(Value::as_bool)
        == Some(true);
    if (source_only || !validators.is_empty()) && failure.is_none() {
        phases.push(("Validating".to_string(), t));
        let continue_on_failure = validate
            .and_then(|v| v.get("continueDistributeOnFailure"))
            .and_then(Value::as_bool)
            == Some(true);
        for (i, v) in validators.iter().enumerate() {
            let ty = v.get("type").and_then(Value::as_str).unwrap_or("Shell");
            let p = provisioner(ty);
            let mut block = format!("(telemetry) Starting validator {p}\n");
            echo_inline(&mut block, v);
            if let Some(u) = v.get("scriptUri").and_then(Value::as_str) {
                block.push_str(&format!(
                    "PACKER OUT ==> azure-arm: Provisioning with {p} script: {u}\n"
                ));
            }
            vlog.push((t, block));
            t += secs(k.validate);
            let valid: Vec<i64> = v
                .get("validExitCodes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .filter(|x: &Vec<i64>| !x.is_empty())
                .unwrap_or_else(|| vec![0]);
            if let Some(code) = inline_exits(v).into_iter().find(|n| !valid.contains(n)) {
                let name = v.get("name").and_then(Value::as_str).unwrap_or("");
                let msg = format!(
                    "Validation failed: in-VM validation '{name}' (validator {} of {}) exited with code {code}. Validation log location: {}. OperationId: {op}.",
                    i + 1,
                    validators.len(),
                    log_path.replace("customization.log", "validation.log")
                );
                vlog.push((
                    t,
                    format!("PACKER ERR ==> azure-arm: Script exited with non-zero exit status: {code}. Allowed exit codes are: {valid:?}\n(telemetry) ending {p}\n"),
                ));
                if continue_on_failure {
                    validation_failed = Some(msg);
                } else {
                    failure = Some((t, "Validating".into(), "ValidationFailed".into(), msg));
                }
                break;
            }
            vlog.push((t, format!("(telemetry) ending {p}\n")));
        }
        if validators.is_empty() {
            t += secs(k.validate);
        }
        force("Validating", t, &mut failure);
    }

    if failure.is_none() {
        phases.push(("Distributing".to_string(), t));
        let n = props
            .get("distribute")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(1)
            .max(1);
        t += secs(k.distribute) * n as f64;
        force("Distributing", t, &mut failure);
    }

    // The build timeout bounds the whole run (0 = 240 minutes).
    let timeout_min = props
        .get("buildTimeoutInMinutes")
        .and_then(Value::as_i64)
        .filter(|m| *m > 0)
        .unwrap_or(240);
    let limit = timeout_min as f64 * 60.0;
    let (end, plan) = match failure {
        Some((at, _, _, _)) if at > limit => timed_out(limit, op),
        Some((at, phase, code, msg)) => (at, Plan::Fail(phase, code, msg)),
        None if t > limit => timed_out(limit, op),
        None => (t, Plan::Distribute { validation_failed }),
    };
    log.retain(|(at, _)| *at <= end);
    vlog.retain(|(at, _)| *at <= end);
    if let Plan::Fail(_, code, _) = &plan
        && code == "BuildTimeout"
    {
        log.push((end, "PACKER ERR ==> azure-arm: Build was cancelled because the build timeout was reached.\nPACKER ERR Cancelling build after receiving terminated\n".to_string()));
    }
    Schedule {
        phases,
        end,
        plan,
        log,
        vlog,
    }
}

fn timed_out(limit: f64, op: &str) -> (f64, Plan) {
    (
        limit,
        Plan::Fail(
            String::new(),
            "BuildTimeout".into(),
            format!(
                "Failed while waiting for packerizer: Timeout waiting for microservice to complete: 'context deadline exceeded'. The build exceeded buildTimeoutInMinutes. For more troubleshooting steps go to {TS_URL}. OperationId: {op}."
            ),
        ),
    )
}

/// The `aib.internal_error_rate` fault: a read of a running build (the template or its run's
/// status) sometimes answers 500 `InternalOperationError` without the build failing, as the real
/// service does; clients must retry the read. Both reads draw from the knob here.
fn injected_internal_error(ctx: &Ctx<'_>, knobs: &crate::knobs::KnobValues) -> Option<Response> {
    ctx.inner
        .knobs
        .fire(Fault::AibInternal, knobs.aib.internal_error_rate)
        .then(|| {
            arm_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalOperationError",
                "Internal error occurred while processing the request. Please retry. If the problem persists, contact support.",
            )
        })
}

/// Packer's echo of a customizer's or validator's `inline` commands in customization.log, one
/// `+` line each, as both phases print them.
fn echo_inline(block: &mut String, step: &Value) {
    for line in step
        .get("inline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        block.push_str(&format!(
            "PACKER OUT     azure-arm: + {}\n",
            line.as_str().unwrap_or("")
        ));
    }
}

fn human(emulated_secs: f64) -> String {
    let s = emulated_secs.max(0.0) as u64;
    format!("{}m{}s", s / 60, s % 60)
}

fn run(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    template_action(
        ctx,
        (rg, name, id),
        "run/action",
        |r| r.state == "Succeeded" && !matches!(run_state_of(r).as_str(), "Running" | "Canceling"),
        |w, key, knobs| start_run(ctx.inner, w, key, knobs),
    )
}

/// The part `run` and `cancel` share, so both answer ARM's way alike: admit the action, 404 for
/// an unknown template, 409 `OperationNotAllowed` unless `allowed` accepts the template, then
/// `start` the operation under the world lock and answer 202 with both polling headers.
/// `at` is (group, template name, template id).
fn template_action(
    ctx: &Ctx<'_>,
    (rg, name, id): (&str, &str, &str),
    action: &str,
    allowed: impl FnOnce(&Res) -> bool,
    start: impl FnOnce(&mut World, &str, &crate::knobs::KnobValues) -> String,
) -> Response {
    if let Err(r) = admit(ctx, rg, action, id, true) {
        return r;
    }
    let key = id.to_ascii_lowercase();
    let knobs = ctx.inner.knobs.get();
    let mut w = ctx.inner.lock();
    let Some(r) = w.resources.get(&key) else {
        return not_found(rg, name);
    };
    let location = r.location.clone().unwrap_or_default();
    if !allowed(r) {
        return not_allowed(action, &r.state, &run_state_of(r));
    }
    let op = start(&mut w, &key, &knobs);
    drop(w);
    accepted_both(ctx, &location, &op, &knobs)
}

fn accepted_both(
    ctx: &Ctx<'_>,
    location: &str,
    op: &str,
    knobs: &crate::knobs::KnobValues,
) -> Response {
    let r = empty(StatusCode::ACCEPTED);
    let r = with_header(
        r,
        "azure-asyncoperation",
        &provider_operation_url(ctx, NS, location, "operations", op),
    );
    let r = with_header(
        r,
        "location",
        &provider_operation_url(ctx, NS, location, "operationresults", op),
    );
    with_header(r, "retry-after", &knobs.lro_retry_after.to_string())
}

/// Starts a run of a template whose creation succeeded; returns the operation id.
fn start_run(inner: &Inner, w: &mut World, key: &str, knobs: &crate::knobs::KnobValues) -> String {
    let op = new_guid();
    let guid = new_guid();
    let scale = knobs.time_scale.max(1e-9);
    let Some(t) = w.aib.templates.get(key) else {
        return op;
    };
    let props = w.resources.get(key).map(props_of).unwrap_or_default();
    let log_path = format!(
        "{}/blobServices/default/containers/packerlogs/{guid}/customization.log",
        t.staging.account_id
    );
    let source = resolve_source(w, &props);
    let problem = source.as_ref().err().map(String::as_str);
    let sched = plan_run(&props, &knobs.aib, &log_path, &op.to_uppercase(), problem);
    if let (Ok(Some(exact)), Some(r)) = (&source, w.resources.get_mut(key))
        && let Some(src) = r
            .body
            .get_mut("properties")
            .and_then(|p| p.get_mut("source"))
            .and_then(Value::as_object_mut)
    {
        src.insert("exactVersion".into(), json!(exact));
    }
    let Some(t) = w.aib.templates.get(key) else {
        return op;
    };
    let start = Instant::now();
    let at = |emu: f64| start + Duration::from_secs_f64(emu / scale);
    let cancel_flag = Arc::new(AtomicBool::new(false));
    // The log writer: appends each block at its time, straight into the staging account.
    if let (Some(backend), Some(slot)) = (&inner.azurite, &t.staging.azurite) {
        let total = Duration::from_secs_f64(sched.end / scale);
        let token = storage_token(inner, &inner.object_id, &inner.client_id, total);
        for (file, chunks) in [
            ("customization.log", &sched.log),
            ("validation.log", &sched.vlog),
        ] {
            if chunks.is_empty() {
                continue;
            }
            let url = format!(
                "{}/{slot}/packerlogs/{guid}/{file}",
                backend.base.as_str().trim_end_matches('/')
            );
            let blocks: Vec<(Instant, String)> =
                chunks.iter().map(|(o, s)| (at(*o), s.clone())).collect();
            let client = backend.client.clone();
            let flag = cancel_flag.clone();
            tokio::spawn(write_log(client, url, token.clone(), blocks, flag));
        }
    }
    let run = Run {
        op: op.clone(),
        guid,
        started: SystemTime::now(),
        phases: sched
            .phases
            .iter()
            .map(|(p, o)| (p.clone(), at(*o)))
            .collect(),
        end: at(sched.end),
        plan: sched.plan,
        cancel: None,
        finished: false,
        cancel_flag,
    };
    let started = rfc3339(run.started);
    let tkey = t.key.clone();
    if let Some(t) = w.aib.templates.get_mut(key) {
        t.run = Some(run);
        t.run_outputs.clear();
    }
    w.aib.ops.insert(
        op.clone(),
        AibOp {
            id: op.clone(),
            kind: OpKind::Run,
            template: tkey,
            started: SystemTime::now(),
            end: None,
        },
    );
    if let Some(r) = w.resources.get_mut(key) {
        set_prop(
            r,
            "lastRunStatus",
            json!({"startTime": started, "endTime": "0001-01-01T00:00:00Z", "runState": "Running", "runSubState": "Queued", "message": ""}),
        );
    }
    op
}

/// Writes `customization.log` block by block (each write replaces the blob with the longer text).
async fn write_log(
    client: reqwest::Client,
    url: String,
    token: String,
    blocks: Vec<(Instant, String)>,
    cancel: Arc<AtomicBool>,
) {
    let mut text = String::new();
    let stamp = || {
        time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]/[month]/[day] [hour]:[minute]:[second]"
            ))
            .unwrap_or_default()
    };
    for (at, block) in blocks {
        loop {
            if cancel.load(Ordering::SeqCst) {
                if text.is_empty() {
                    return;
                }
                text.push_str(&format!("{} PACKER ERR Cancelling build after receiving interrupt (the run was canceled)\n", stamp()));
                upload(&client, &url, &token, &text).await;
                return;
            }
            let now = Instant::now();
            if now >= at {
                break;
            }
            tokio::time::sleep((at - now).min(Duration::from_millis(200))).await;
        }
        for line in block.lines() {
            text.push_str(&format!("{} {line}\n", stamp()));
        }
        upload(&client, &url, &token, &text).await;
    }
}

async fn upload(client: &reqwest::Client, url: &str, token: &str, text: &str) {
    for _ in 0..3 {
        let r = client
            .put(url)
            .bearer_auth(token)
            .header("x-ms-version", "2025-01-05")
            .header("x-ms-blob-type", "BlockBlob")
            .header("content-type", "text/plain; charset=utf-8")
            .body(text.to_string())
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cancel(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str) -> Response {
    template_action(
        ctx,
        (rg, name, id),
        "cancel/action",
        |r| run_state_of(r) == "Running",
        |w, key, knobs| {
            let op = new_guid();
            let done = (!knobs.aib.stuck_canceling)
                .then(|| Instant::now() + ctx.inner.knobs.real(knobs.aib.cancel));
            if let Some(run) = w.aib.templates.get_mut(key).and_then(|t| t.run.as_mut()) {
                run.cancel = Some((op.clone(), done));
                run.cancel_flag.store(true, Ordering::SeqCst);
            }
            if let Some(r) = w.resources.get_mut(key)
                && let Some(p) = r
                    .body
                    .get_mut("properties")
                    .and_then(|p| p.get_mut("lastRunStatus"))
            {
                p["runState"] = json!("Canceling");
            }
            w.aib.ops.insert(
                op.clone(),
                AibOp {
                    id: op.clone(),
                    kind: OpKind::Cancel,
                    template: key.to_string(),
                    started: SystemTime::now(),
                    end: None,
                },
            );
            op
        },
    )
}

fn run_outputs(ctx: &Ctx<'_>, rg: &str, name: &str, id: &str, one: Option<&str>) -> Response {
    if ctx.method != Method::GET {
        return super::method_not_allowed(ctx);
    }
    if let Err(r) = admit(ctx, rg, "runOutputs/read", id, false) {
        return r;
    }
    let key = id.to_ascii_lowercase();
    let w = ctx.inner.lock();
    let Some(t) = w.aib.templates.get(&key) else {
        return not_found(rg, name);
    };
    match one {
        None => {
            let items = t.run_outputs.clone();
            drop(w);
            page(ctx, items)
        }
        Some(n) => match t.run_outputs.iter().find(|o| {
            o["name"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(n))
        }) {
            Some(o) => json_response(StatusCode::OK, o),
            None => arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!(
                    "The Resource '{TYPE}/{name}/runOutputs/{n}' under resource group '{rg}' was not found."
                ),
            ),
        },
    }
}

// ---- operation status ------------------------------------------------------------------------------

/// `/subscriptions/{sub}/providers/Microsoft.VirtualMachineImages/locations/{loc}/{kind}/{id}`:
/// `operations` is the Azure-AsyncOperation status, anything else Location polling.
pub(crate) fn operation(ctx: &Ctx<'_>, kind: &str, id: &str) -> Response {
    if ctx.method != Method::GET {
        return super::method_not_allowed(ctx);
    }
    let knobs = ctx.inner.knobs.get();
    let w = ctx.inner.lock();
    let Some(op) = w.aib.ops.values().find(|o| o.id.eq_ignore_ascii_case(id)) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            &format!("The operation '{id}' could not be found."),
        );
    };
    let retry = knobs.lro_retry_after.to_string();
    if kind == "operations" {
        if !ctx.query.contains_key("t") || !ctx.query.contains_key("c") {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidOperationStatusUrl",
                "The operation status URL was altered: its opaque query parameters 't' and 'c' are missing. Poll the Azure-AsyncOperation URL exactly as returned.",
            );
        }
        // Reading the status of a long build sometimes fails without the build failing.
        if op.end.is_none()
            && op.kind == OpKind::Run
            && let Some(e) = injected_internal_error(ctx, &knobs)
        {
            return e;
        }
        let mut body = json!({"name": op.id.to_uppercase(), "status": "InProgress", "startTime": rfc3339(op.started)});
        return match &op.end {
            None => with_header(json_response(StatusCode::OK, &body), "retry-after", &retry),
            Some((status, error, ended)) => {
                body["status"] = json!(status);
                body["endTime"] = json!(rfc3339(*ended));
                if let Some((code, message)) = error {
                    body["error"] = json!({"code": code, "message": message});
                }
                json_response(StatusCode::OK, &body)
            }
        };
    }
    match &op.end {
        None => {
            let r = with_header(empty(StatusCode::ACCEPTED), "location", &ctx.request_url());
            with_header(r, "retry-after", &retry)
        }
        Some((status, error, _)) => match (status.as_str(), op.kind) {
            ("Succeeded", OpKind::Create) => match w.resources.get(&op.template) {
                Some(r) => json_response(StatusCode::OK, &render(r, true)),
                None => empty(StatusCode::NO_CONTENT),
            },
            ("Succeeded", OpKind::Delete) => empty(StatusCode::OK),
            ("Succeeded", _) => empty(StatusCode::NO_CONTENT),
            _ => {
                let (code, message) = error
                    .clone()
                    .unwrap_or_else(|| ("Canceled".into(), "The operation was canceled.".into()));
                arm_error(StatusCode::BAD_REQUEST, &code, &message)
            }
        },
    }
}

// ---- the clock ---------------------------------------------------------------------------------------

/// Moves every template along its timeline; called before each ARM request.
pub(crate) fn advance(inner: &Inner, w: &mut World) {
    if w.aib.templates.is_empty() {
        return;
    }
    let now = Instant::now();
    let knobs = inner.knobs.get();
    let lag = now + inner.knobs.real(knobs.list_lag);
    let keys: Vec<String> = w.aib.templates.keys().cloned().collect();
    for key in keys {
        finish_creation(inner, w, &key, now, &knobs);
        step_run(
            w,
            &key,
            now,
            lag,
            knobs.aib.partially_succeed,
            inner.blob_url.as_str(),
        );
        finish_delete(w, &key, now, lag);
        forget_orphan(w, &key, lag);
    }
}

/// A template removed with its resource group takes its staging group along.
fn forget_orphan(w: &mut World, key: &str, lag: Instant) {
    let orphan = w
        .aib
        .templates
        .get(key)
        .is_some_and(|t| t.delete.is_none() && !w.resources.contains_key(key));
    if orphan && let Some(t) = w.aib.templates.remove(key) {
        release_staging(w, &t.staging, lag);
    }
}

fn end_op(w: &mut World, op: &str, status: &str, error: Option<(String, String)>) {
    if let Some(o) = w.aib.ops.get_mut(op)
        && o.end.is_none()
    {
        o.end = Some((status.to_string(), error, SystemTime::now()));
    }
}

fn finish_creation(
    inner: &Inner,
    w: &mut World,
    key: &str,
    now: Instant,
    knobs: &crate::knobs::KnobValues,
) {
    let Some(t) = w.aib.templates.get(key) else {
        return;
    };
    if !t.creating || now < t.create_deadline {
        return;
    }
    let outcome = match &t.pre_failure {
        Some(f) => Some(Err(f.clone())),
        None => t.fetch.lock().ok().and_then(|f| f.clone()),
    };
    let Some(outcome) = outcome else { return };
    let op = t.create_op.clone();
    let auto_run = t.auto_run;
    if let Some(t) = w.aib.templates.get_mut(key) {
        t.creating = false;
    }
    match outcome {
        Ok(()) => {
            if let Some(r) = w.resources.get_mut(key) {
                r.state = "Succeeded".into();
            }
            end_op(w, &op, "Succeeded", None);
            if auto_run {
                start_run(inner, w, key, knobs);
            }
        }
        Err((code, prov_code, message)) => {
            if let Some(r) = w.resources.get_mut(key) {
                r.state = "Failed".into();
                set_prop(
                    r,
                    "provisioningError",
                    json!({"provisioningErrorCode": prov_code, "message": message}),
                );
            }
            end_op(w, &op, "Failed", Some((code, message)));
        }
    }
}

fn step_run(
    w: &mut World,
    key: &str,
    now: Instant,
    lag: Instant,
    partial_knob: bool,
    blob_base: &str,
) {
    let Some(t) = w.aib.templates.get(key) else {
        return;
    };
    let Some(run) = &t.run else { return };
    if run.finished {
        return;
    }
    // Cancel first: it wins over anything the plan still had to do.
    if let Some((cancel_op, done)) = run.cancel.clone() {
        if done.is_some_and(|d| now >= d) {
            let run_op = run.op.clone();
            if let Some(r) = w.aib.templates.get_mut(key).and_then(|t| t.run.as_mut()) {
                r.finished = true;
            }
            set_last_run(
                w,
                key,
                "Canceled",
                None,
                "The build was canceled by the user.",
            );
            end_op(
                w,
                &run_op,
                "Canceled",
                Some((
                    "Canceled".into(),
                    "The image build was canceled by the user.".into(),
                )),
            );
            end_op(w, &cancel_op, "Succeeded", None);
            build_vm(w, key, false, lag);
        }
        return;
    }
    let sub = run
        .phases
        .iter()
        .rev()
        .find(|(_, at)| now >= *at)
        .map(|(p, _)| p.clone())
        .unwrap_or_else(|| "Queued".into());
    if now < run.end {
        if sub != "Queued" {
            build_vm(w, key, true, lag);
        }
        set_last_run(w, key, "Running", Some(&sub), "");
        return;
    }
    let run_op = run.op.clone();
    let plan = run.plan.clone();
    if let Some(r) = w.aib.templates.get_mut(key).and_then(|t| t.run.as_mut()) {
        r.finished = true;
    }
    // The build VM and its network go at the end, except after a failure with
    // `errorHandling: abort` for that phase (left for debugging, contract rule 24).
    let handling = |w: &World, field: &str| {
        w.resources
            .get(key)
            .and_then(|r| r.body.get("properties"))
            .and_then(|p| p.get("errorHandling"))
            .and_then(|e| e.get(field))
            .and_then(Value::as_str)
            == Some("abort")
    };
    let keep = match &plan {
        Plan::Fail(phase, _, _) if phase == "Customizing" => handling(w, "onCustomizerError"),
        Plan::Fail(phase, _, _) if phase == "Validating" => handling(w, "onValidationError"),
        Plan::Distribute {
            validation_failed: Some(_),
        } => handling(w, "onValidationError"),
        _ => false,
    };
    build_vm(w, key, keep, lag);
    match plan {
        Plan::Fail(phase, code, message) => {
            let phase = if phase.is_empty() { sub } else { phase };
            set_last_run(w, key, "Failed", Some(&phase), &message);
            end_op(w, &run_op, "Failed", Some((code, message)));
        }
        Plan::Distribute { validation_failed } => {
            let (outputs, errors) = distribute(w, key, lag, blob_base);
            if let Some(t) = w.aib.templates.get_mut(key) {
                t.run_outputs = outputs.clone();
            }
            let ok = outputs.len();
            if let Some(msg) = validation_failed {
                set_last_run(w, key, "Failed", Some("Validating"), &msg);
                end_op(w, &run_op, "Failed", Some(("ValidationFailed".into(), msg)));
            } else if errors.is_empty() && !partial_knob {
                set_last_run(w, key, "Succeeded", Some("Distributing"), "");
                end_op(w, &run_op, "Succeeded", None);
            } else if ok > 0 && (partial_knob || !errors.is_empty()) {
                let msg = if errors.is_empty() {
                    "Some distribution targets failed: Error waiting on Azure Compute Gallery future: replication to one target region failed (injected by the emulator's aib.partially_succeed knob).".to_string()
                } else {
                    format!("Some distribution targets failed: {}", errors.join(" "))
                };
                set_last_run(w, key, "PartiallySucceeded", Some("Distributing"), &msg);
                end_op(w, &run_op, "Succeeded", None);
            } else {
                let msg = format!("Distribution failed: {}", errors.join(" "));
                set_last_run(w, key, "Failed", Some("Distributing"), &msg);
                end_op(w, &run_op, "Failed", Some(("DistributeFailed".into(), msg)));
            }
        }
    }
}

fn set_last_run(w: &mut World, key: &str, state: &str, sub: Option<&str>, message: &str) {
    let terminal = !matches!(state, "Running" | "Canceling");
    let Some(r) = w.resources.get_mut(key) else {
        return;
    };
    let Some(lrs) = r
        .body
        .get_mut("properties")
        .and_then(|p| p.get_mut("lastRunStatus"))
    else {
        return;
    };
    lrs["runState"] = json!(state);
    if let Some(s) = sub {
        lrs["runSubState"] = json!(s);
    }
    lrs["message"] = json!(message);
    if terminal {
        lrs["endTime"] = json!(rfc3339(SystemTime::now()));
    }
}

/// The next version name for a definition under `versioning: Latest` with `major`.
fn next_latest(w: &World, image_key: &str, major: Option<i64>) -> String {
    let prefix = format!("{image_key}/versions/");
    let mut versions: Vec<(u32, u32, u32)> = w
        .resources
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter_map(compute::parse_version)
        .collect();
    versions.sort();
    let major = major.filter(|m| *m >= 0).map(|m| m as u32);
    let best = versions
        .iter()
        .rev()
        .find(|v| major.is_none_or(|m| v.0 == m));
    match (best, major) {
        (Some((a, b, c)), _) => format!("{a}.{b}.{}", c + 1),
        (None, Some(m)) => format!("{m}.0.0"),
        (None, None) => "1.0.0".to_string(),
    }
}

/// AIB's own version names when none is given: `0.YYDDD.SSSSS` (day of year, second of day).
fn generated_version(w: &World, image_key: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let yyddd = (now.year() % 100) as u32 * 1000 + now.ordinal() as u32;
    let mut secs = now.hour() as u32 * 3600 + now.minute() as u32 * 60 + now.second() as u32;
    loop {
        let v = format!("0.{yyddd}.{secs}");
        if !w
            .resources
            .contains_key(&format!("{image_key}/versions/{v}"))
        {
            return v;
        }
        secs += 1;
    }
}

/// Creates what each distributor produces; returns (run outputs, error messages).
fn distribute(
    w: &mut World,
    key: &str,
    lag: Instant,
    blob_base: &str,
) -> (Vec<Value>, Vec<String>) {
    let Some(t) = w.aib.templates.get(key) else {
        return (Vec::new(), Vec::new());
    };
    let tid = t.id.clone();
    let principal = t.principal.clone();
    let staging_account = t.staging.account.clone();
    let guid = t.run.as_ref().map(|r| r.guid.clone()).unwrap_or_default();
    let Some(res) = w.resources.get(key) else {
        return (Vec::new(), Vec::new());
    };
    let tpl_location = res.location.clone().unwrap_or_default();
    let props = props_of(res);
    let source = props.get("source").cloned().unwrap_or_default();
    let dists: Vec<Value> = props
        .get("distribute")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    let output = |name: &str, field: &str, value: &str| {
        json!({
            "id": format!("{tid}/runOutputs/{name}"),
            "name": name,
            "type": format!("{TYPE}/runOutputs"),
            "properties": {field: value, "provisioningState": "Succeeded"},
        })
    };
    for d in dists {
        let run_name = d
            .get("runOutputName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let tags = d.get("artifactTags").cloned().unwrap_or_else(|| json!({}));
        match d.get("type").and_then(Value::as_str).unwrap_or("") {
            "SharedImage" => {
                let gid = d
                    .get("galleryImageId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let (image_id, explicit) = match gid.to_ascii_lowercase().find("/versions/") {
                    Some(i) => (
                        gid[..i].to_string(),
                        Some(gid[i + "/versions/".len()..].to_string()),
                    ),
                    None => (gid.clone(), None),
                };
                let image_key = image_id.to_ascii_lowercase();
                let Some(image) = w
                    .resources
                    .get(&image_key)
                    .filter(|r| r.rtype == compute::IMAGE_TYPE)
                    .cloned()
                else {
                    errors.push(format!("Distribution to '{gid}' ({run_name}) failed: the gallery image definition '{image_id}' was not found (ResourceNotFound)."));
                    continue;
                };
                let version = match (&explicit, d.get("versioning")) {
                    (Some(v), _) => v.clone(),
                    (None, Some(vs))
                        if vs.get("scheme").and_then(Value::as_str) == Some("Latest") =>
                    {
                        next_latest(w, &image_key, vs.get("major").and_then(Value::as_i64))
                    }
                    (None, Some(vs))
                        if vs.get("scheme").and_then(Value::as_str) == Some("Source") =>
                    {
                        let from = source
                            .get("exactVersion")
                            .or_else(|| source.get("imageVersionId"))
                            .and_then(Value::as_str)
                            .and_then(|s| s.rsplit('/').next())
                            .or_else(|| source.get("version").and_then(Value::as_str))
                            .filter(|v| compute::parse_version(v).is_some())
                            .map(str::to_string);
                        from.unwrap_or_else(|| generated_version(w, &image_key))
                    }
                    _ => generated_version(w, &image_key),
                };
                let version_id = format!("{}/versions/{version}", image.id);
                if let Some((code, msg)) = compute::version_conflict(w, &version_id) {
                    errors.push(format!(
                        "Distribution to '{version_id}' ({run_name}) failed: {code}: {msg}"
                    ));
                    continue;
                }
                let action = "Microsoft.Compute/galleries/images/versions/write";
                if !rbac::allowed(w, &principal, action, &version_id, false) {
                    errors.push(format!("Distribution to '{version_id}' ({run_name}) failed: AuthorizationFailed: the template identity with object id '{principal}' does not have authorization to perform action '{action}' over scope '{version_id}'."));
                    continue;
                }
                let image_loc = image.location.clone().unwrap_or_default();
                let mut pp = Map::new();
                if let Some(tr) = d.get("targetRegions").and_then(Value::as_array) {
                    let regions: Vec<Value> = tr
                        .iter()
                        .map(|t| {
                            json!({
                                "name": t.get("name").cloned().unwrap_or(json!(image_loc)),
                                "regionalReplicaCount": t.get("replicaCount").cloned().unwrap_or(json!(1)),
                                "storageAccountType": t.get("storageAccountType").cloned().unwrap_or(json!("Standard_LRS")),
                            })
                        })
                        .collect();
                    pp.insert("targetRegions".into(), json!(regions));
                } else if let Some(rr) = d.get("replicationRegions").and_then(Value::as_array) {
                    let sat = d
                        .get("storageAccountType")
                        .cloned()
                        .unwrap_or(json!("Standard_LRS"));
                    let regions: Vec<Value> = rr.iter().map(|n| json!({"name": n, "regionalReplicaCount": 1, "storageAccountType": sat})).collect();
                    pp.insert("targetRegions".into(), json!(regions));
                    pp.insert("storageAccountType".into(), sat);
                }
                pp.insert(
                    "excludeFromLatest".into(),
                    d.get("excludeFromLatest").cloned().unwrap_or(json!(false)),
                );
                if let Some(m) = d.get("replicationMode") {
                    pp.insert("replicationMode".into(), m.clone());
                }
                let publishing = compute::publishing_profile(Some(&Value::Object(pp)), &image_loc);
                let source_id = format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/images/IntermediateImage-{guid}",
                    tid.split('/').nth(2).unwrap_or(""),
                    w.aib
                        .templates
                        .get(key)
                        .map(|t| t.staging.rg.clone())
                        .unwrap_or_default()
                );
                compute::create_version_now(
                    w,
                    &version_id,
                    &image.group,
                    tags,
                    publishing,
                    &source_id,
                    lag,
                );
                outputs.push(output(&run_name, "artifactId", &version_id));
            }
            "ManagedImage" => {
                let image_id = d
                    .get("imageId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let rg_of = image_id.split('/').nth(4).unwrap_or("").to_string();
                if !w.groups.contains_key(&rg_of.to_ascii_lowercase()) {
                    errors.push(format!("Distribution to '{image_id}' ({run_name}) failed: resource group '{rg_of}' could not be found."));
                    continue;
                }
                let now = SystemTime::now();
                let mut m = Map::new();
                m.insert("properties".into(), json!({"storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized"}}, "hyperVGeneration": "V2"}));
                w.resources.insert(
                    image_id.to_ascii_lowercase(),
                    Res {
                        id: image_id.clone(),
                        rtype: "Microsoft.Compute/images".into(),
                        group: rg_of,
                        name: image_id.rsplit('/').next().unwrap_or("").to_string(),
                        location: d
                            .get("location")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .or(Some(tpl_location.clone())),
                        tags,
                        body: m,
                        state: "Succeeded".into(),
                        visible: true,
                        created: now,
                        changed: now,
                        listed_at: lag,
                    },
                );
                outputs.push(output(&run_name, "artifactId", &image_id));
            }
            _ => {
                let uri = d
                    .get("uri")
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!(
                            "{}/{staging_account}/vhds/{guid}.vhd",
                            blob_base.trim_end_matches('/')
                        )
                    });
                outputs.push(output(&run_name, "artifactUri", &uri));
            }
        }
    }
    (outputs, errors)
}

fn finish_delete(w: &mut World, key: &str, now: Instant, lag: Instant) {
    let Some(t) = w.aib.templates.get(key) else {
        return;
    };
    let Some((op, deadline)) = t.delete.clone() else {
        return;
    };
    if now < deadline {
        return;
    }
    let Some(t) = w.aib.templates.remove(key) else {
        return;
    };
    if let Some(r) = w.resources.remove(key) {
        w.removed.push((r, lag));
    }
    release_staging(w, &t.staging, lag);
    end_op(w, &op, "Succeeded", None);
}

/// Removes the staging group Image Builder created, or empties (and untags) a given one.
fn release_staging(w: &mut World, staging: &Staging, lag: Instant) {
    if !staging.claimed {
        return;
    }
    w.azurite_map.remove(&staging.account);
    if staging.owned {
        super::delete_group(w, &staging.rg, lag);
        return;
    }
    super::remove_group_resources(w, &staging.rg, lag);
    if let Some(g) = w.groups.get_mut(&staging.rg.to_ascii_lowercase())
        && let Some(tags) = g.tags.as_object_mut()
    {
        for k in [
            "usedBy",
            "imageTemplateName",
            "imageTemplateResourceGroupName",
        ] {
            tags.remove(k);
        }
    }
}

/// Puts the build VM, its NIC, OS disk and network into the staging group (`present`), or
/// removes them, so a client listing the staging group sees what a real build leaves there.
fn build_vm(w: &mut World, key: &str, present: bool, lag: Instant) {
    let Some(t) = w.aib.templates.get(key) else {
        return;
    };
    let Some(run) = &t.run else { return };
    if !t.staging.claimed {
        return;
    }
    let tag: String = run.guid.chars().filter(|c| *c != '-').take(8).collect();
    let rg = t.staging.rg.clone();
    let rg_id = t
        .staging
        .account_id
        .split("/providers/")
        .next()
        .unwrap_or_default()
        .to_string();
    let location = w.resources.get(key).and_then(|r| r.location.clone());
    let parts = [
        ("Microsoft.Compute/virtualMachines", format!("vm{tag}")),
        ("Microsoft.Network/networkInterfaces", format!("nic{tag}")),
        ("Microsoft.Compute/disks", format!("osdisk{tag}")),
        ("Microsoft.Network/virtualNetworks", format!("vnet{tag}")),
    ];
    for (rtype, name) in parts {
        let id = format!("{rg_id}/providers/{rtype}/{name}");
        let k = id.to_ascii_lowercase();
        if present {
            if let std::collections::btree_map::Entry::Vacant(slot) = w.resources.entry(k) {
                let now = SystemTime::now();
                let mut m = Map::new();
                m.insert("properties".into(), json!({}));
                slot.insert(Res {
                    id,
                    rtype: rtype.into(),
                    group: rg.clone(),
                    name,
                    location: location.clone(),
                    tags: json!({"createdBy": "AzureVMImageBuilder"}),
                    body: m,
                    state: "Succeeded".into(),
                    visible: true,
                    created: now,
                    changed: now,
                    listed_at: Instant::now(),
                });
            }
        } else if let Some(r) = w.resources.remove(&k) {
            w.removed.push((r, lag));
        }
    }
}

/// Resolves a `SharedImageVersion` source when the build starts: an explicit version must
/// exist, `latest` is the highest version not excluded from latest. Ok(None) for other sources.
fn resolve_source(w: &World, props: &Map<String, Value>) -> Result<Option<String>, String> {
    let Some(src) = props.get("source") else {
        return Ok(None);
    };
    if src.get("type").and_then(Value::as_str) != Some("SharedImageVersion") {
        return Ok(None);
    }
    let id = src
        .get("imageVersionId")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(i) = id.to_ascii_lowercase().find("/versions/") else {
        return Err(format!(
            "The source image version '{id}' is not a gallery image version id."
        ));
    };
    let image_key = id[..i].to_ascii_lowercase();
    let wanted = &id[i + "/versions/".len()..];
    let usable = |r: &Res| r.state == "Succeeded";
    if !wanted.eq_ignore_ascii_case("latest") {
        return match w.resources.get(&id.to_ascii_lowercase()) {
            Some(r) if usable(r) => Ok(Some(r.id.clone())),
            _ => Err(format!("The source image version '{id}' was not found.")),
        };
    }
    let prefix = format!("{image_key}/versions/");
    let excluded = |r: &Res| {
        r.body
            .get("properties")
            .and_then(|p| p.pointer("/publishingProfile/excludeFromLatest"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    w.resources
        .iter()
        .filter(|(k, r)| k.starts_with(&prefix) && usable(r) && !excluded(r))
        .filter_map(|(k, r)| compute::parse_version(&k[prefix.len()..]).map(|v| (v, r.id.clone())))
        .max()
        .map(|(_, id)| Some(id))
        .ok_or_else(|| format!("No image version of '{}' can serve as 'latest' (none exists or all are excluded from latest).", &id[..i]))
}
