//! Emulated Azure Resource Manager: the front door every ARM call passes (bearer check,
//! api-version per provider, rate-limit buckets, injected faults, request/correlation headers),
//! the router to the resource providers, long-running operations and paging.
//!
//! Paths are matched case-insensitively (ARM does), while names keep the casing the client used
//! at creation; some answers echo `resourcegroups` lower-case, as the real service sometimes does.

pub(crate) mod compute;
pub(crate) mod generic;
pub(crate) mod groups;
pub(crate) mod identity;
pub(crate) mod imagebuilder;
pub(crate) mod rbac;
pub(crate) mod storage;

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::core::{
    Inner, MANAGEMENT_AUD, Op, OpEffect, Res, World, arm_error, empty, json_response, new_guid,
    rfc3339, unix_now, with_caller,
};
use crate::knobs::{Fault, Knobs, LroStyle};

/// One ARM request, parsed.
pub(crate) struct Ctx<'a> {
    pub inner: &'a Inner,
    pub method: Method,
    /// Path segments as sent (percent-decoded).
    pub segs: Vec<String>,
    /// The same, lower-cased, for matching.
    pub lsegs: Vec<String>,
    pub query: HashMap<String, String>,
    pub api_version: String,
    pub body: Bytes,
    pub oid: String,
    pub appid: String,
}

impl Ctx<'_> {
    /// The JSON body, or a 400 `InvalidRequestContent`.
    #[allow(clippy::result_large_err)]
    pub(crate) fn json(&self) -> Result<Value, Response> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                &format!("The request content was invalid and could not be deserialized: '{e}'."),
            )
        })
    }

    pub(crate) fn base(&self) -> String {
        self.inner
            .base_url
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    pub(crate) fn sub(&self) -> &str {
        &self.inner.subscription_id
    }

    /// The id of a resource in a group as ARM writes it (`resourceGroups` camel-cased; managed
    /// identities echo it lower-cased, see `identity`), the one place providers build it.
    pub(crate) fn resource_id(&self, rg: &str, rtype: &str, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/{rtype}/{name}",
            self.sub()
        )
    }

    /// This request's own URL (query re-encoded), for a `Location` that is polled at the
    /// address it was read from while the operation runs.
    pub(crate) fn request_url(&self) -> String {
        format!(
            "{}/{}?{}",
            self.base(),
            self.segs.join("/"),
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(self.query.iter())
                .finish()
        )
    }
}

/// Api-versions each provider namespace accepts (lower-case namespace).
pub(crate) fn supported_versions(ns: &str) -> Option<&'static [&'static str]> {
    Some(match ns {
        "microsoft.resources" => &[
            "2025-04-01",
            "2025-03-01",
            "2024-11-01",
            "2024-07-01",
            "2024-03-01",
            "2023-07-01",
            "2022-09-01",
            "2021-04-01",
            "2021-01-01",
            "2020-10-01",
            "2020-06-01",
            "2019-10-01",
        ],
        "microsoft.managedidentity" => &[
            "2026-05-31",
            "2026-04-30",
            "2025-05-31-preview",
            "2025-01-31-preview",
            "2024-11-30",
            "2023-07-31-preview",
            "2023-01-31",
            "2022-01-31-preview",
            "2021-09-30-preview",
            "2018-11-30",
        ],
        "microsoft.authorization" => &[
            "2022-05-01-preview",
            "2022-04-01",
            "2022-01-01-preview",
            "2021-03-01-preview",
            "2020-10-01-preview",
            "2020-08-01-preview",
            "2020-04-01-preview",
            "2018-09-01-preview",
            "2018-07-01",
            "2018-01-01-preview",
            "2015-07-01",
        ],
        // 2026-09-01 is the default of azure-mgmt-storage 25.3.0 (the pinned Python SDK).
        "microsoft.storage" => &[
            "2026-09-01",
            "2025-06-01",
            "2025-01-01",
            "2024-01-01",
            "2023-05-01",
            "2023-04-01",
            "2023-01-01",
            "2022-09-01",
            "2022-05-01",
            "2021-09-01",
            "2021-06-01",
            "2021-04-01",
        ],
        "microsoft.compute" => &[
            "2026-03-03",
            "2025-12-03",
            "2025-03-03",
            "2024-03-03",
            "2023-07-03",
            "2022-08-03",
            "2022-03-03",
            "2022-01-03",
            "2021-10-01",
            "2021-07-01",
        ],
        "microsoft.virtualmachineimages" => &["2025-10-01", "2024-02-01"],
        other => return generic::supported_generic_versions(other),
    })
}

/// Api-versions of ARM's subscriptions API (`GET /subscriptions`, `/subscriptions/{id}`,
/// `/tenants`), which has versions of its own besides Microsoft.Resources': `az login` lists
/// subscriptions with 2022-12-01.
const SUBSCRIPTIONS_API_VERSIONS: &[&str] = &[
    "2022-12-01",
    "2021-01-01",
    "2020-01-01",
    "2019-11-01",
    "2019-06-01",
    "2018-06-01",
    "2016-06-01",
];

/// Whether the path is served by the subscriptions API (see [`SUBSCRIPTIONS_API_VERSIONS`]).
fn is_subscriptions_api(lsegs: &[String]) -> bool {
    matches!(
        lsegs
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["subscriptions"] | ["subscriptions", _] | ["tenants"]
    )
}

fn namespace_of(lsegs: &[String]) -> String {
    // Provider registration calls belong to Microsoft.Resources.
    if lsegs.len() >= 3 && lsegs[0] == "subscriptions" && lsegs[2] == "providers" {
        let n = lsegs.len();
        let is_provider_call = n == 3
            || n == 4
            || (n == 5 && lsegs[4] == "register")
            || (n == 5 && lsegs[4] == "unregister");
        if is_provider_call {
            return "microsoft.resources".into();
        }
    }
    let mut ns = "microsoft.resources".to_string();
    for (i, s) in lsegs.iter().enumerate() {
        if s == "providers" && i + 1 < lsegs.len() {
            ns = lsegs[i + 1].clone();
        }
    }
    ns
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn auth_error(inner: &Inner, code: &str, message: &str) -> Response {
    let mut r = arm_error(StatusCode::UNAUTHORIZED, code, message);
    let v = format!(
        "Bearer authorization_uri=\"{}{}\", error=\"invalid_token\", error_description=\"{}\"",
        inner.base_url,
        inner.tenant_id,
        message.replace('"', "'")
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
    }
    r
}

/// Checks the bearer token: ours, audience management, not expired. Returns (oid, appid).
#[allow(clippy::result_large_err)]
fn authenticate(inner: &Inner, headers: &http::HeaderMap) -> Result<(String, String), Response> {
    let Some(token) = bearer(headers) else {
        return Err(auth_error(
            inner,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let Some(claims) = inner.verify(token) else {
        return Err(auth_error(
            inner,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        ));
    };
    let aud = claims.get("aud").and_then(Value::as_str).unwrap_or("");
    let aud_ok = [
        MANAGEMENT_AUD,
        "https://management.azure.com",
        "https://management.core.windows.net/",
        "https://management.core.windows.net",
    ]
    .contains(&aud);
    if !aud_ok {
        return Err(auth_error(
            inner,
            "InvalidAuthenticationTokenAudience",
            &format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
            ),
        ));
    }
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    let now = unix_now();
    if exp <= now {
        let fmt = |t: u64| {
            time::OffsetDateTime::from_unix_timestamp(t as i64)
                .ok()
                .and_then(|d| {
                    d.format(time::macros::format_description!(
                        "[month padding:none]/[day padding:none]/[year] [hour]:[minute]:[second]"
                    ))
                    .ok()
                })
                .unwrap_or_default()
        };
        return Err(auth_error(
            inner,
            "ExpiredAuthenticationToken",
            &format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                fmt(exp),
                fmt(now)
            ),
        ));
    }
    let oid = claims
        .get("oid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let appid = claims
        .get("appid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok((oid, appid))
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Entry point for every ARM request.
pub(crate) async fn handle(inner: &Inner, parts: http::request::Parts, body: Bytes) -> Response {
    let correlation = parts
        .headers
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(new_guid);
    let request_id = new_guid();
    let class: &'static str = match parts.method {
        Method::GET | Method::HEAD => "reads",
        Method::DELETE => "deletes",
        _ => "writes",
    };

    let (mut resp, caller, remaining) = front_door(inner, &parts, body, class).await;

    let h = resp.headers_mut();
    let hv = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert("x-ms-request-id", hv(&request_id));
    h.insert("x-ms-correlation-request-id", hv(&correlation));
    h.insert(
        "x-ms-routing-request-id",
        hv(&format!(
            "EMULATOR:{}:{}",
            time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!(
                    "[year][month][day]T[hour][minute][second]Z"
                ))
                .unwrap_or_default(),
            request_id
        )),
    );
    if let Some(rem) = remaining {
        let (local, global) = match class {
            "reads" => (
                "x-ms-ratelimit-remaining-subscription-reads",
                "x-ms-ratelimit-remaining-subscription-global-reads",
            ),
            "deletes" => (
                "x-ms-ratelimit-remaining-subscription-deletes",
                "x-ms-ratelimit-remaining-subscription-global-deletes",
            ),
            _ => (
                "x-ms-ratelimit-remaining-subscription-writes",
                "x-ms-ratelimit-remaining-subscription-global-writes",
            ),
        };
        h.insert(local, hv(&rem.to_string()));
        h.insert(global, hv(&(rem * 15).to_string()));
    }
    with_caller(resp, caller.as_deref())
}

async fn front_door(
    inner: &Inner,
    parts: &http::request::Parts,
    body: Bytes,
    class: &'static str,
) -> (Response, Option<String>, Option<u64>) {
    let (oid, appid) = match authenticate(inner, &parts.headers) {
        Ok(x) => x,
        Err(r) => return (r, None, None),
    };
    let caller = Some(oid.clone());
    let segs = decode_segments(parts.uri.path());
    let lsegs: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();

    let Some(remaining) = inner.take_token(&oid, class) else {
        let mut r = arm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "SubscriptionRequestsThrottled",
            &format!(
                "Number of '{class}' requests for subscription '{}' actor '{oid}' exceeded. Please try again after '1' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information.",
                inner.subscription_id
            ),
        );
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return (r, caller, Some(0));
    };

    let ns = namespace_of(&lsegs);
    let Some(api_version) = query.get("api-version").cloned() else {
        return (
            arm_error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ),
            caller,
            Some(remaining),
        );
    };
    let Some(versions) = supported_versions(&ns) else {
        return (
            arm_error(
                StatusCode::NOT_FOUND,
                "InvalidResourceNamespace",
                &format!("The resource namespace '{ns}' is invalid."),
            ),
            caller,
            Some(remaining),
        );
    };
    let subscriptions_api = is_subscriptions_api(&lsegs);
    let accepted = versions.contains(&api_version.as_str())
        || (subscriptions_api && SUBSCRIPTIONS_API_VERSIONS.contains(&api_version.as_str()));
    if !accepted {
        let list = if subscriptions_api {
            [SUBSCRIPTIONS_API_VERSIONS, versions].concat().join(", ")
        } else {
            versions.join(", ")
        };
        let r = if ns == "microsoft.resources" {
            arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                &format!(
                    "The api-version '{api_version}' is invalid. The supported versions are '{list}'."
                ),
            )
        } else {
            arm_error(
                StatusCode::BAD_REQUEST,
                "NoRegisteredProviderFound",
                &format!(
                    "No registered resource provider found for API version '{api_version}' in namespace '{ns}'. The supported api-versions are '{list}'."
                ),
            )
        };
        return (r, caller, Some(remaining));
    }

    let knobs = inner.knobs.get();
    if inner.knobs.fire(Fault::ArmThrottle, knobs.throttle_rate) {
        let secs = knobs.throttle_retry_after;
        let mut r = arm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            &format!("The request is being throttled. Retry after {secs} seconds."),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return (r, caller, Some(remaining));
    }
    if inner
        .knobs
        .fire(Fault::ArmServerError, knobs.server_error_rate)
    {
        let r = if rand::random::<bool>() {
            arm_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Encountered internal server error. Diagnostic information: timestamp '', subscription id '', tracking id '', request correlation id ''.",
            )
        } else {
            arm_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please try again later.",
            )
        };
        return (r, caller, Some(remaining));
    }

    {
        let mut w = inner.lock();
        tick(&mut w, &inner.knobs);
        imagebuilder::advance(inner, &mut w);
        if parts.method == Method::GET {
            poll_by_resource(&mut w, &inner.knobs, &lsegs);
        }
    }

    let ctx = Ctx {
        inner,
        method: parts.method.clone(),
        segs,
        lsegs,
        query,
        api_version,
        body,
        oid,
        appid,
    };
    (route(&ctx).await, caller, Some(remaining))
}

async fn route(ctx: &Ctx<'_>) -> Response {
    let l: Vec<&str> = ctx.lsegs.iter().map(String::as_str).collect();

    // Extension resources of Microsoft.Authorization at any scope.
    if let Some(p) = l
        .windows(2)
        .rposition(|w| w[0] == "providers" && w[1] == "microsoft.authorization")
    {
        let scope = if p == 0 {
            "/".to_string()
        } else {
            format!("/{}", ctx.segs[..p].join("/"))
        };
        if l.len() >= 2 && l[0] == "subscriptions" && l[1] != ctx.sub().to_ascii_lowercase() {
            return sub_not_found(ctx);
        }
        return rbac::handle(ctx, &scope, &l[p + 2..]).await;
    }

    match l.as_slice() {
        ["subscriptions"] => return list_subscriptions(ctx),
        ["tenants"] => return list_tenants(ctx),
        _ => {}
    }
    if l.first() != Some(&"subscriptions") || l.len() < 2 {
        return not_found_path(ctx);
    }
    if l[1] != ctx.sub().to_ascii_lowercase() {
        return sub_not_found(ctx);
    }
    if let Some(r) = groups::missing_registration(ctx, &l) {
        return r;
    }
    match &l[2..] {
        [] => subscription(ctx),
        ["resourcegroups"] => groups::list_groups(ctx),
        ["resources"] => groups::list_resources(ctx, None),
        ["resourcegroups", _] => groups::group(ctx).await,
        ["resourcegroups", _, "resources"] => {
            let rg = ctx.segs[3].clone();
            groups::list_resources(ctx, Some(&rg))
        }
        ["operationresults", _] => location_poll(ctx, &ctx.segs[3]),
        [
            "providers",
            "microsoft.virtualmachineimages",
            "locations",
            _loc,
            kind,
            _,
        ] => imagebuilder::operation(ctx, kind, &ctx.segs[7]),
        ["providers", _ns, "locations", _loc, kind, _] => match *kind {
            "operations" | "operationstatuses" => status_poll(ctx, &ctx.segs[7]),
            _ => location_poll(ctx, &ctx.segs[7]),
        },
        ["providers"] => groups::providers(ctx, None),
        ["providers", _ns] => groups::providers(ctx, Some(&ctx.segs[3])),
        ["providers", _ns, "register"] => groups::register(ctx, &ctx.segs[3]),
        ["providers", "microsoft.storage", "checknameavailability"] => storage::check_name(ctx),
        ["providers", ns, typ] => list_by_type(ctx, None, ns, typ),
        ["resourcegroups", _, "providers", ns, typ] => {
            let rg = ctx.segs[3].clone();
            list_by_type(ctx, Some(&rg), ns, typ)
        }
        ["resourcegroups", _, "providers", ns, typ, _name, ..] => {
            let rg = ctx.segs[3].clone();
            match (*ns, *typ) {
                ("microsoft.managedidentity", "userassignedidentities") => {
                    identity::handle(ctx, &rg).await
                }
                ("microsoft.storage", "storageaccounts") => storage::handle(ctx, &rg).await,
                ("microsoft.compute", "galleries") => compute::handle(ctx, &rg).await,
                ("microsoft.virtualmachineimages", "imagetemplates") => {
                    imagebuilder::handle(ctx, &rg).await
                }
                _ if generic::holds(ns, typ) => generic::handle(ctx, &rg).await,
                _ => unknown_type(ctx, ns, typ),
            }
        }
        _ => not_found_path(ctx),
    }
}

fn list_by_type(ctx: &Ctx<'_>, rg: Option<&str>, ns: &str, typ: &str) -> Response {
    if ctx.method != Method::GET {
        return method_not_allowed(ctx);
    }
    let rtype = match (ns, typ) {
        ("microsoft.managedidentity", "userassignedidentities") => identity::TYPE,
        ("microsoft.storage", "storageaccounts") => storage::TYPE,
        ("microsoft.compute", "galleries") => compute::TYPE,
        ("microsoft.virtualmachineimages", "imagetemplates") => imagebuilder::TYPE,
        _ => return unknown_type(ctx, ns, typ),
    };
    let action = format!("{rtype}/read");
    let scope = match rg {
        Some(rg) => {
            if let Err(r) = groups::require_group(ctx, rg, false) {
                return r;
            }
            format!("/subscriptions/{}/resourceGroups/{rg}", ctx.sub())
        }
        None => format!("/subscriptions/{}", ctx.sub()),
    };
    if let Err(r) = rbac::authorize(ctx, &action, &scope) {
        return r;
    }
    let items: Vec<Value> = {
        let w = ctx.inner.lock();
        w.resources
            .values()
            .filter(|r| r.visible && r.rtype == rtype)
            .filter(|r| rg.is_none_or(|g| r.group.eq_ignore_ascii_case(g)))
            .map(|r| render(r, rtype != identity::TYPE))
            .collect()
    };
    page(ctx, items)
}

/// The emulator's one subscription as the subscriptions API describes it.
fn subscription_body(ctx: &Ctx<'_>) -> Value {
    let sub = ctx.sub();
    json!({
        "id": format!("/subscriptions/{sub}"),
        "subscriptionId": sub,
        "tenantId": ctx.inner.tenant_id,
        "displayName": "aib-emulator subscription",
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
    })
}

fn subscription(ctx: &Ctx<'_>) -> Response {
    json_response(StatusCode::OK, &subscription_body(ctx))
}

/// `GET /subscriptions`: what `az login` asks right after signing in. The one subscription,
/// for any signed-in principal (as `GET /subscriptions/{id}` is here).
fn list_subscriptions(ctx: &Ctx<'_>) -> Response {
    if ctx.method != Method::GET {
        return method_not_allowed(ctx);
    }
    json_response(
        StatusCode::OK,
        &json!({ "value": [subscription_body(ctx)] }),
    )
}

/// `GET /tenants`: the emulator's one tenant, for clients that list tenants before subscriptions.
fn list_tenants(ctx: &Ctx<'_>) -> Response {
    if ctx.method != Method::GET {
        return method_not_allowed(ctx);
    }
    let tenant = &ctx.inner.tenant_id;
    json_response(
        StatusCode::OK,
        &json!({ "value": [{
            "id": format!("/tenants/{tenant}"),
            "tenantId": tenant,
            "tenantCategory": "Home",
            "displayName": "aib-emulator tenant",
            "defaultDomain": "aib-emulator.onmicrosoft.com",
        }] }),
    )
}

pub(crate) fn sub_not_found(ctx: &Ctx<'_>) -> Response {
    let s = ctx.segs.get(1).cloned().unwrap_or_default();
    arm_error(
        StatusCode::NOT_FOUND,
        "SubscriptionNotFound",
        &format!("The subscription '{s}' could not be found."),
    )
}

pub(crate) fn not_found_path(ctx: &Ctx<'_>) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!(
            "No HTTP resource was found that matches the request URI '/{}'.",
            ctx.segs.join("/")
        ),
    )
}

/// The RBAC action a request on a resource asks for: `read`, `delete`, or `write` for both
/// `PUT` and `PATCH`; None for a method such a resource does not take.
pub(crate) fn crud_action(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "read",
        Method::DELETE => "delete",
        Method::PUT | Method::PATCH => "write",
        _ => return None,
    })
}

/// Shared start of a handler for a resource in a group: 405 for a method it does not take, the
/// group (which a write needs to exist and not be deleting), then the caller's permission for
/// `{rtype}/{action}` on `id`. One place so every provider refuses in the same order.
#[allow(clippy::result_large_err)]
pub(crate) fn admit(
    ctx: &Ctx<'_>,
    rg: &str,
    rtype: &str,
    id: &str,
) -> Result<&'static str, Response> {
    let Some(action) = crud_action(&ctx.method) else {
        return Err(method_not_allowed(ctx));
    };
    groups::require_group(ctx, rg, action != "read")?;
    rbac::authorize(ctx, &format!("{rtype}/{action}"), id)?;
    Ok(action)
}

pub(crate) fn method_not_allowed(ctx: &Ctx<'_>) -> Response {
    arm_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!(
            "The requested resource does not support http method '{}'.",
            ctx.method
        ),
    )
}

pub(crate) fn unknown_type(ctx: &Ctx<'_>, ns: &str, typ: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        &format!(
            "The resource type '{typ}' could not be found in the namespace '{ns}' for api version '{}'.",
            ctx.api_version
        ),
    )
}

/// The JSON a GET answers for a resource.
pub(crate) fn render(r: &Res, with_state: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    m.insert("name".into(), json!(r.name));
    m.insert("type".into(), json!(r.rtype));
    if let Some(l) = &r.location {
        m.insert("location".into(), json!(l));
    }
    m.insert("tags".into(), r.tags.clone());
    for (k, v) in &r.body {
        m.insert(k.clone(), v.clone());
    }
    if with_state {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert("provisioningState".into(), json!(r.state));
        }
    }
    Value::Object(m)
}

/// Pages `items` with the page-size knob, `$top` and an absolute `nextLink` with `$skipToken`.
pub(crate) fn page(ctx: &Ctx<'_>, items: Vec<Value>) -> Response {
    let skip: usize = ctx
        .query
        .get("$skipToken")
        .or(ctx.query.get("$skiptoken"))
        .and_then(|t| {
            use base64::Engine;
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()?;
            String::from_utf8(raw)
                .ok()?
                .strip_prefix("skip:")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let top: Option<usize> = ctx.query.get("$top").and_then(|t| t.parse().ok());
    let mut size = ctx.inner.knobs.get().page_size.max(1);
    let total = match top {
        Some(t) => items.len().min(t),
        None => items.len(),
    };
    if skip >= total {
        size = 0;
    }
    let end = (skip + size).min(total);
    let value: Vec<Value> = items
        .into_iter()
        .skip(skip)
        .take(end.saturating_sub(skip))
        .collect();
    let mut body = json!({ "value": value });
    if end < total {
        let token = crate::core::b64url(format!("skip:{end}").as_bytes());
        let mut url = format!("{}/{}?", ctx.base(), ctx.segs.join("/"));
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &ctx.query {
            if !k.eq_ignore_ascii_case("$skipToken") {
                ser.append_pair(k, v);
            }
        }
        url.push_str(&ser.finish());
        url.push_str(&format!("&$skipToken={token}"));
        body["nextLink"] = json!(url);
    }
    json_response(StatusCode::OK, &body)
}

// ---- long-running operations ------------------------------------------------------------------

/// Starts an operation; returns its id.
pub(crate) fn start_op(w: &mut World, knobs: &Knobs, effect: OpEffect) -> String {
    let id = new_guid();
    let emu = knobs.get().lro_duration;
    w.ops.insert(
        id.clone(),
        Op {
            id: id.clone(),
            effect,
            started: SystemTime::now(),
            ended: None,
            deadline: Instant::now() + knobs.real(emu),
            polls: 0,
            done: false,
            resource_polled: false,
        },
    );
    id
}

/// Ends operations nobody polls once well past their deadline, so fire-and-forget deletes end.
pub(crate) fn tick(w: &mut World, knobs: &Knobs) {
    let now = Instant::now();
    let grace = Duration::from_secs(30).max(knobs.real(knobs.get().lro_duration));
    let due: Vec<String> = w
        .ops
        .values()
        .filter(|o| !o.done && now >= o.deadline + grace)
        .map(|o| o.id.clone())
        .collect();
    for id in due {
        complete(w, knobs, &id);
    }
}

/// Applies an operation's effect.
pub(crate) fn complete(w: &mut World, knobs: &Knobs, id: &str) {
    let Some(op) = w.ops.get_mut(id) else { return };
    if op.done {
        return;
    }
    op.done = true;
    op.ended = Some(SystemTime::now());
    let effect = op.effect.clone();
    let lag = Instant::now() + knobs.real(knobs.get().list_lag);
    match effect {
        OpEffect::DeleteGroup(rg) => delete_group(w, &rg, lag),
        OpEffect::RevealResource(rid) => {
            if let Some(r) = w.resources.get_mut(&rid) {
                r.visible = true;
                r.state = "Succeeded".into();
                r.listed_at = lag;
            }
        }
        OpEffect::FinishResource(rid) => {
            if let Some(r) = w.resources.get_mut(&rid) {
                r.state = "Succeeded".into();
            }
        }
        OpEffect::DeleteResource(rid) => {
            let children: Vec<String> = w
                .resources
                .keys()
                .filter(|k| **k == rid || k.starts_with(&format!("{rid}/")))
                .cloned()
                .collect();
            remove_resources(w, children, lag);
        }
    }
}

/// Removes a resource group with everything in it and the role assignments scoped to it or
/// below; shared by a group DELETE and Image Builder's release of a staging group it created, so
/// both leave the same world behind.
pub(crate) fn delete_group(w: &mut World, rg: &str, lag: Instant) {
    let rg_l = rg.to_ascii_lowercase();
    w.groups.remove(&rg_l);
    remove_group_resources(w, rg, lag);
    w.assignments.retain(|_, a| {
        let s = a.scope.to_ascii_lowercase();
        !(s.contains(&format!("/resourcegroups/{rg_l}/"))
            || s.ends_with(&format!("/resourcegroups/{rg_l}")))
    });
}

/// Removes every resource in group `rg` (any case) and keeps the group itself; Image Builder
/// empties a staging group the user gave it this way.
pub(crate) fn remove_group_resources(w: &mut World, rg: &str, lag: Instant) {
    let gone: Vec<String> = w
        .resources
        .iter()
        .filter(|(_, r)| r.group.eq_ignore_ascii_case(rg))
        .map(|(k, _)| k.clone())
        .collect();
    remove_resources(w, gone, lag);
}

/// Removes resources by key with their side records, keeping each in `removed` until `lag` so
/// lists still show it for as long as ARM's do.
fn remove_resources(w: &mut World, keys: Vec<String>, lag: Instant) {
    for k in keys {
        if let Some(r) = w.resources.remove(&k) {
            forget_resource(w, &r);
            w.removed.push((r, lag));
        }
    }
}

/// Drops the side records of a removed resource (identity client ids, role assignments).
pub(crate) fn forget_resource(w: &mut World, r: &Res) {
    if r.rtype == identity::TYPE
        && let Some(cid) = r
            .body
            .get("properties")
            .and_then(|p| p.get("clientId"))
            .and_then(Value::as_str)
    {
        w.identity_clients.remove(&cid.to_ascii_lowercase());
    }
    let id = r.id.to_ascii_lowercase();
    w.assignments.retain(|_, a| {
        let s = a.scope.to_ascii_lowercase();
        s != id && !s.starts_with(&format!("{id}/"))
    });
}

/// Counts a poll; completes the operation when enough polls were answered and its time is up.
fn poll(w: &mut World, knobs: &Knobs, id: &str) -> Option<Op> {
    let key = w.ops.keys().find(|k| k.eq_ignore_ascii_case(id))?.clone();
    let min_polls = knobs.get().lro_polls;
    let ready = {
        let op = w.ops.get_mut(&key)?;
        if op.done {
            false
        } else if op.polls >= min_polls && Instant::now() >= op.deadline {
            true
        } else {
            op.polls += 1;
            false
        }
    };
    if ready {
        complete(w, knobs, &key);
    }
    w.ops.get(&key).cloned()
}

/// A GET of a resource whose operation advertised no polling header ([`LroStyle::None`]) is the
/// client's poll: it counts, and may end the operation before the resource is rendered.
fn poll_by_resource(w: &mut World, knobs: &Knobs, lsegs: &[String]) {
    let key = format!("/{}", lsegs.join("/"));
    let pending = w.ops.values().find(|o| {
        !o.done
            && o.resource_polled
            && matches!(&o.effect, OpEffect::FinishResource(rid) if *rid == key)
    });
    if let Some(id) = pending.map(|o| o.id.clone()) {
        poll(w, knobs, &id);
    }
}

/// The answer to a PUT/PATCH whose operation `op` (a [`OpEffect::FinishResource`]) now runs,
/// in the header style of the `lro_style` knob; `body` is the resource with its non-terminal
/// `provisioningState`, `status` 201 (create) or 200 (update). `ns` and `location` place the
/// operation-status URL (`/subscriptions/{sub}/providers/{ns}/locations/{location}/…`).
pub(crate) fn lro_started(
    ctx: &Ctx<'_>,
    status: StatusCode,
    body: &Value,
    op: &str,
    ns: &str,
    location: &str,
) -> Response {
    let style = ctx.inner.knobs.get().lro_style;
    let status_url = || provider_operation_url(ctx, ns, location, "operations", op);
    match style {
        LroStyle::AzureAsyncOperation => retry_after(
            ctx,
            with_header(
                json_response(status, body),
                "azure-asyncoperation",
                &status_url(),
            ),
        ),
        LroStyle::OperationLocation => retry_after(
            ctx,
            with_header(
                json_response(status, body),
                "operation-location",
                &status_url(),
            ),
        ),
        LroStyle::Location => accepted_location(
            ctx,
            provider_operation_url(ctx, ns, location, "operationresults", op),
        ),
        LroStyle::None => {
            if let Some(o) = ctx.inner.lock().ops.get_mut(op) {
                o.resource_polled = true;
            }
            retry_after(ctx, json_response(status, body))
        }
    }
}

/// The answer to a DELETE whose operation `op` now runs, in the `lro_style` knob's style:
/// 202 with `Azure-AsyncOperation` (or `Operation-Location`) and `Location`, or `Location`
/// alone (also for [`LroStyle::None`]: a deleted resource cannot be re-read to its end).
pub(crate) fn lro_delete(ctx: &Ctx<'_>, op: &str, ns: &str, location: &str) -> Response {
    let style = ctx.inner.knobs.get().lro_style;
    let r = accepted_location(
        ctx,
        provider_operation_url(ctx, ns, location, "operationresults", op),
    );
    let status_url = || provider_operation_url(ctx, ns, location, "operations", op);
    match style {
        LroStyle::AzureAsyncOperation => with_header(r, "azure-asyncoperation", &status_url()),
        LroStyle::OperationLocation => with_header(r, "operation-location", &status_url()),
        LroStyle::Location | LroStyle::None => r,
    }
}

fn with_header(mut r: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

fn retry_after(ctx: &Ctx<'_>, mut r: Response) -> Response {
    let secs = ctx.inner.knobs.get().lro_retry_after;
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    r
}

/// Location-style polling: 202 while running, then what the synchronous call would answer.
fn location_poll(ctx: &Ctx<'_>, id: &str) -> Response {
    if ctx.method != Method::GET {
        return method_not_allowed(ctx);
    }
    let id = decode_op_token(id);
    let mut w = ctx.inner.lock();
    let Some(op) = poll(&mut w, &ctx.inner.knobs, &id) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            &format!("The operation '{id}' could not be found."),
        );
    };
    if !op.done {
        let mut r = empty(StatusCode::ACCEPTED);
        if let Ok(v) = HeaderValue::from_str(&ctx.request_url()) {
            r.headers_mut().insert(http::header::LOCATION, v);
        }
        return retry_after(ctx, r);
    }
    match &op.effect {
        OpEffect::RevealResource(rid) | OpEffect::FinishResource(rid) => match w.resources.get(rid)
        {
            Some(r) => json_response(StatusCode::OK, &render(r, true)),
            None => empty(StatusCode::NO_CONTENT),
        },
        OpEffect::DeleteGroup(_) => empty(StatusCode::OK),
        OpEffect::DeleteResource(_) => empty(StatusCode::NO_CONTENT),
    }
}

/// Azure-AsyncOperation status: always 200, state in the body.
fn status_poll(ctx: &Ctx<'_>, id: &str) -> Response {
    if ctx.method != Method::GET {
        return method_not_allowed(ctx);
    }
    if !ctx.query.contains_key("t") || !ctx.query.contains_key("c") {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidOperationStatusUrl",
            "The operation status URL was altered: its opaque query parameters 't' and 'c' are missing. Poll the Azure-AsyncOperation URL exactly as returned.",
        );
    }
    let mut w = ctx.inner.lock();
    let Some(op) = poll(&mut w, &ctx.inner.knobs, id) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            &format!("The operation '{id}' could not be found."),
        );
    };
    let mut body = json!({
        "name": op.id.to_uppercase(),
        "status": if op.done { "Succeeded" } else { "InProgress" },
        "startTime": rfc3339(op.started),
    });
    if let Some(end) = op.ended {
        body["endTime"] = json!(rfc3339(end));
        body["percentComplete"] = json!(100.0);
    } else {
        body["percentComplete"] = json!(0.0);
    }
    let r = json_response(StatusCode::OK, &body);
    if op.done { r } else { retry_after(ctx, r) }
}

fn decode_op_token(token: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("op:").map(str::to_string))
        .unwrap_or_else(|| token.to_string())
}

/// 202 + `Location` (+ `Retry-After`) for a Location-style operation.
pub(crate) fn accepted_location(ctx: &Ctx<'_>, url: String) -> Response {
    let mut r = empty(StatusCode::ACCEPTED);
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    retry_after(ctx, r)
}

/// The subscription-level operation-results URL used by resource group deletion.
pub(crate) fn subscription_operation_url(ctx: &Ctx<'_>, op: &str) -> String {
    let token = crate::core::b64url(format!("op:{op}").as_bytes());
    format!(
        "{}/subscriptions/{}/operationresults/{token}?api-version={}",
        ctx.base(),
        ctx.sub(),
        ctx.api_version
    )
}

/// A provider-level status URL (`operations` = Azure-AsyncOperation style with opaque params,
/// `asyncoperations` = Location style).
pub(crate) fn provider_operation_url(
    ctx: &Ctx<'_>,
    ns: &str,
    location: &str,
    kind: &str,
    op: &str,
) -> String {
    let mut url = format!(
        "{}/subscriptions/{}/providers/{ns}/locations/{location}/{kind}/{op}?",
        ctx.base(),
        ctx.sub()
    );
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    if kind == "asyncoperations" {
        ser.append_pair("monitor", "true");
    }
    ser.append_pair("api-version", &ctx.api_version);
    if kind == "operations" {
        ser.append_pair("t", &unix_now().to_string());
        ser.append_pair("c", &crate::core::b64url(new_guid().as_bytes()));
    }
    url.push_str(&ser.finish());
    url
}
