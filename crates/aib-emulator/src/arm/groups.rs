//! Microsoft.Resources: resource groups (create/get/head/patch, delete as a Location-style
//! operation that cascades), resource lists with `$filter`/`$expand` and list lag, providers.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Instant, SystemTime};

use super::{Ctx, accepted_location, page, rbac, start_op, subscription_operation_url};
use crate::core::{Group, OpEffect, arm_error, empty, json_response, rfc3339};

const RG_TYPE: &str = "Microsoft.Resources/resourceGroups";

fn group_id(ctx: &Ctx<'_>, name: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{name}", ctx.sub())
}

fn render_group(ctx: &Ctx<'_>, g: &Group) -> Value {
    let mut v = json!({
        "id": group_id(ctx, &g.name),
        "name": g.name,
        "type": RG_TYPE,
        "location": g.location,
        "tags": g.tags,
        "properties": {"provisioningState": if g.deleting { "Deleting" } else { "Succeeded" }},
    });
    if let Some(m) = &g.managed_by {
        v["managedBy"] = json!(m);
    }
    v
}

fn not_found(name: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceGroupNotFound",
        &format!("Resource group '{name}' could not be found."),
    )
}

/// The group must exist (404) and, for writes, not be deleting (409).
#[allow(clippy::result_large_err)]
pub(crate) fn require_group(ctx: &Ctx<'_>, rg: &str, write: bool) -> Result<Group, Response> {
    let w = ctx.inner.lock();
    match w.groups.get(&rg.to_ascii_lowercase()) {
        None => Err(not_found(rg)),
        Some(g) if write && g.deleting => Err(arm_error(
            StatusCode::CONFLICT,
            "ResourceGroupBeingDeleted",
            &format!(
                "The resource group '{}' is in deprovisioning state and cannot perform this operation.",
                g.name
            ),
        )),
        Some(g) => Ok(g.clone()),
    }
}

fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 90
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

/// `/subscriptions/{sub}/resourcegroups/{rg}`.
pub(crate) async fn group(ctx: &Ctx<'_>) -> Response {
    let name = ctx.segs[3].clone();
    let key = name.to_ascii_lowercase();
    let id = group_id(ctx, &name);
    let action = match ctx.method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    if let Err(r) = rbac::authorize(
        ctx,
        &format!("Microsoft.Resources/subscriptions/resourceGroups/{action}"),
        &id,
    ) {
        return r;
    }
    match ctx.method {
        Method::GET => match ctx.inner.lock().groups.get(&key) {
            Some(g) => json_response(StatusCode::OK, &render_group(ctx, g)),
            None => not_found(&name),
        },
        Method::HEAD => match ctx.inner.lock().groups.get(&key) {
            Some(_) => empty(StatusCode::NO_CONTENT),
            None => empty(StatusCode::NOT_FOUND),
        },
        Method::PUT => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            if !valid_group_name(&name) {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidResourceGroup",
                    &format!(
                        "The provided resource group name '{name}' has these invalid characters or length. The name can be 1 to 90 characters, contain letters, digits, '-', '_', '.', '(' and ')', and must not end with a period."
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
            let tags = body.get("tags").cloned().unwrap_or_else(|| json!({}));
            let managed_by = body
                .get("managedBy")
                .and_then(Value::as_str)
                .map(str::to_string);
            let mut w = ctx.inner.lock();
            if let Some(g) = w.groups.get_mut(&key) {
                if g.deleting {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "ResourceGroupBeingDeleted",
                        &format!(
                            "The resource group '{}' is in deprovisioning state and cannot perform this operation.",
                            g.name
                        ),
                    );
                }
                if !g.location.eq_ignore_ascii_case(location) {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "InvalidResourceGroupLocation",
                        &format!(
                            "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                            g.location
                        ),
                    );
                }
                g.tags = tags;
                g.managed_by = managed_by;
                g.changed = SystemTime::now();
                let g = g.clone();
                return json_response(StatusCode::OK, &render_group(ctx, &g));
            }
            let now = SystemTime::now();
            let g = Group {
                name: name.clone(),
                location: location.to_string(),
                tags,
                managed_by,
                deleting: false,
                changed: now,
            };
            w.groups.insert(key, g.clone());
            json_response(StatusCode::CREATED, &render_group(ctx, &g))
        }
        Method::PATCH => {
            let body = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut w = ctx.inner.lock();
            let Some(g) = w.groups.get_mut(&key) else {
                return not_found(&name);
            };
            if let Some(t) = body.get("tags") {
                g.tags = t.clone();
            }
            if let Some(m) = body.get("managedBy").and_then(Value::as_str) {
                g.managed_by = Some(m.to_string());
            }
            g.changed = SystemTime::now();
            let g = g.clone();
            json_response(StatusCode::OK, &render_group(ctx, &g))
        }
        Method::DELETE => {
            let mut w = ctx.inner.lock();
            let Some(g) = w.groups.get_mut(&key) else {
                return not_found(&name);
            };
            let existing = if g.deleting {
                w.ops
                    .values()
                    .find(|o| matches!(&o.effect, OpEffect::DeleteGroup(n) if n.eq_ignore_ascii_case(&name)) && !o.done)
                    .map(|o| o.id.clone())
            } else {
                g.deleting = true;
                None
            };
            let op = match existing {
                Some(op) => op,
                None => start_op(
                    &mut w,
                    &ctx.inner.knobs,
                    OpEffect::DeleteGroup(name.clone()),
                ),
            };
            drop(w);
            accepted_location(ctx, subscription_operation_url(ctx, &op))
        }
        _ => super::method_not_allowed(ctx),
    }
}

/// The request's `$filter`, if any; 400 `InvalidFilterInQueryString` when ARM would refuse it.
/// Both lists parse it here so they refuse a bad filter alike.
#[allow(clippy::result_large_err)]
fn query_filter(ctx: &Ctx<'_>) -> Result<Option<Filter>, Response> {
    ctx.query
        .get("$filter")
        .map(|f| Filter::parse(f))
        .transpose()
        .map_err(|msg| arm_error(StatusCode::BAD_REQUEST, "InvalidFilterInQueryString", &msg))
}

/// `GET /subscriptions/{sub}/resourcegroups` (optionally `tagName`/`tagValue` filtered).
pub(crate) fn list_groups(ctx: &Ctx<'_>) -> Response {
    if ctx.method != Method::GET {
        return super::method_not_allowed(ctx);
    }
    if let Err(r) = rbac::authorize(
        ctx,
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        &format!("/subscriptions/{}", ctx.sub()),
    ) {
        return r;
    }
    let filter = match query_filter(ctx) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let items: Vec<Value> = {
        let w = ctx.inner.lock();
        w.groups
            .values()
            .filter(|g| {
                filter.as_ref().is_none_or(|f| {
                    f.matches(
                        &|prop| match prop {
                            "name" => Some(g.name.clone()),
                            "location" => Some(g.location.clone()),
                            _ => None,
                        },
                        &g.tags,
                    )
                })
            })
            .map(|g| render_group(ctx, g))
            .collect()
    };
    page(ctx, items)
}

/// `GET .../resources` in a subscription or a group, with `$filter`, `$expand`, list lag.
pub(crate) fn list_resources(ctx: &Ctx<'_>, rg: Option<&str>) -> Response {
    if ctx.method != Method::GET {
        return super::method_not_allowed(ctx);
    }
    let (action, scope) = match rg {
        Some(rg) => {
            if let Err(r) = require_group(ctx, rg, false) {
                return r;
            }
            (
                "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
                group_id(ctx, rg),
            )
        }
        None => (
            "Microsoft.Resources/subscriptions/resources/read",
            format!("/subscriptions/{}", ctx.sub()),
        ),
    };
    if let Err(r) = rbac::authorize(ctx, action, &scope) {
        return r;
    }
    let filter = match query_filter(ctx) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let tag_filter = filter.as_ref().is_some_and(|f| f.uses_tags);
    let expand: Vec<String> = ctx
        .query
        .get("$expand")
        .map(|e| {
            e.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let now = Instant::now();
    let items: Vec<Value> = {
        let mut w = ctx.inner.lock();
        w.removed.retain(|(_, until)| *until > now);
        let live = w
            .resources
            .values()
            .filter(|r| r.visible && r.listed_at <= now);
        let ghosts = w.removed.iter().map(|(r, _)| r);
        live.chain(ghosts)
            .filter(|r| r.rtype.matches('/').count() == 1)
            .filter(|r| rg.is_none_or(|g| r.group.eq_ignore_ascii_case(g)))
            .filter(|r| {
                filter.as_ref().is_none_or(|f| {
                    f.matches(
                        &|prop| match prop {
                            "name" => Some(r.name.clone()),
                            "resourcetype" => Some(r.rtype.clone()),
                            "resourcegroup" => Some(r.group.clone()),
                            "location" => r.location.clone(),
                            "identity/principalid" => r
                                .body
                                .get("identity")
                                .and_then(|i| i.get("principalId"))
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            _ => None,
                        },
                        &r.tags,
                    )
                })
            })
            .map(|r| {
                let mut v = json!({
                    "id": r.id,
                    "name": r.name,
                    "type": r.rtype,
                });
                if let Some(l) = &r.location {
                    v["location"] = json!(l);
                }
                if !tag_filter {
                    v["tags"] = r.tags.clone();
                }
                for k in ["kind", "sku", "identity", "managedBy", "plan"] {
                    if let Some(x) = r.body.get(k) {
                        v[k] = x.clone();
                    }
                }
                if expand.iter().any(|e| e == "createdtime") {
                    v["createdTime"] = json!(rfc3339(r.created));
                }
                if expand.iter().any(|e| e == "changedtime") {
                    v["changedTime"] = json!(rfc3339(r.changed));
                }
                if expand.iter().any(|e| e == "provisioningstate") {
                    v["provisioningState"] = json!(r.state);
                }
                v
            })
            .collect()
    };
    page(ctx, items)
}

/// Namespaces the emulator serves, as ARM spells them.
const PROVIDERS: [&str; 9] = [
    "Microsoft.Resources",
    "Microsoft.ManagedIdentity",
    "Microsoft.Authorization",
    "Microsoft.Storage",
    "Microsoft.Compute",
    "Microsoft.VirtualMachineImages",
    "Microsoft.Network",
    "Microsoft.KeyVault",
    "Microsoft.ContainerInstance",
];

/// `GET /subscriptions/{sub}/providers[/{ns}]`: every namespace is registered unless the
/// emulator was started with it in `unregistered_providers` and nobody registered it yet.
pub(crate) fn providers(ctx: &Ctx<'_>, ns: Option<&str>) -> Response {
    let mut w = ctx.inner.lock();
    let mut render = |n: &str| {
        json!({
            "id": format!("/subscriptions/{}/providers/{n}", ctx.sub()),
            "namespace": n,
            "registrationState": w.provider_state(&n.to_ascii_lowercase()),
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": super::generic::resource_types(n),
        })
    };
    match ns {
        None => {
            let items = PROVIDERS.iter().map(|n| render(n)).collect();
            drop(w);
            page(ctx, items)
        }
        Some(ns) => match PROVIDERS.iter().find(|k| k.eq_ignore_ascii_case(ns)) {
            Some(n) => json_response(StatusCode::OK, &render(n)),
            None => invalid_namespace(ns),
        },
    }
}

fn invalid_namespace(ns: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "InvalidResourceNamespace",
        &format!("The resource namespace '{ns}' is invalid."),
    )
}

/// `POST /subscriptions/{sub}/providers/{ns}/register`: needs `{ns}/register/action` on the
/// subscription; an unregistered namespace is `Registering` for `lro_duration`, then registered.
pub(crate) fn register(ctx: &Ctx<'_>, ns: &str) -> Response {
    let Some(name) = PROVIDERS.iter().find(|k| k.eq_ignore_ascii_case(ns)) else {
        return invalid_namespace(ns);
    };
    let scope = format!("/subscriptions/{}", ctx.sub());
    if let Err(r) = rbac::authorize(ctx, &format!("{name}/register/action"), &scope) {
        return r;
    }
    let until = Instant::now() + ctx.inner.knobs.real(ctx.inner.knobs.get().lro_duration);
    {
        let mut w = ctx.inner.lock();
        if let Some(state) = w.unregistered.get_mut(&name.to_ascii_lowercase())
            && state.is_none()
        {
            *state = Some(until);
        }
    }
    providers(ctx, Some(name))
}

/// The 409 ARM answers a write of a resource whose provider the subscription has not
/// registered (what a client must register first, or explain).
pub(crate) fn missing_registration(ctx: &Ctx<'_>, lsegs: &[&str]) -> Option<Response> {
    if !matches!(ctx.method, Method::PUT | Method::PATCH) {
        return None;
    }
    let p = lsegs.iter().rposition(|s| *s == "providers")?;
    let ns = *lsegs.get(p + 1)?;
    if ns == "microsoft.authorization" || ns == "microsoft.resources" {
        return None;
    }
    let state = ctx.inner.lock().provider_state(ns);
    if state == "Registered" {
        return None;
    }
    let name = PROVIDERS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(ns))
        .copied()
        .unwrap_or(ns);
    Some(arm_error(
        StatusCode::CONFLICT,
        "MissingSubscriptionRegistration",
        &format!(
            "The subscription is not registered to use namespace '{name}'. See https://aka.ms/rps-not-found for how to register subscriptions."
        ),
    ))
}

// ---- $filter ----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
}

#[derive(Debug, Clone)]
enum Expr {
    Cmp {
        prop: String,
        ne: bool,
        value: String,
    },
    Substring {
        value: String,
        prop: String,
    },
    StartsWith {
        prop: String,
        value: String,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// A parsed ARM `$filter` expression.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    expr: Expr,
    uses_tags: bool,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err("Unterminated string in $filter.".into()),
                        Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            v.push(*c);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let mut v = String::new();
                while i < cs.len() && !matches!(cs[i], ' ' | '(' | ')' | ',' | '\'') {
                    v.push(cs[i]);
                    i += 1;
                }
                out.push(Tok::Ident(v));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(format!("Invalid $filter: expected {t:?}, found {other:?}.")),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            other => Err(format!(
                "Invalid $filter: expected a quoted value, found {other:?}."
            )),
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            other => Err(format!(
                "Invalid $filter: expected a property, found {other:?}."
            )),
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        while self.peek_kw("and") {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.atom()?));
        }
        Ok(e)
    }
    fn atom(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Open) => {
                let e = self.or()?;
                self.expect(Tok::Close)?;
                Ok(e)
            }
            Some(Tok::Ident(id)) => {
                let l = id.to_ascii_lowercase();
                if l == "substringof" {
                    self.expect(Tok::Open)?;
                    let value = self.string()?;
                    self.expect(Tok::Comma)?;
                    let prop = self.ident()?.to_ascii_lowercase();
                    self.expect(Tok::Close)?;
                    Ok(Expr::Substring { value, prop })
                } else if l == "startswith" {
                    self.expect(Tok::Open)?;
                    let prop = self.ident()?.to_ascii_lowercase();
                    self.expect(Tok::Comma)?;
                    let value = self.string()?;
                    self.expect(Tok::Close)?;
                    Ok(Expr::StartsWith { prop, value })
                } else {
                    let op = self.ident()?.to_ascii_lowercase();
                    let ne = match op.as_str() {
                        "eq" => false,
                        "ne" => true,
                        _ => return Err(format!("Invalid $filter: unsupported operator '{op}'.")),
                    };
                    let value = self.string()?;
                    Ok(Expr::Cmp { prop: l, ne, value })
                }
            }
            other => Err(format!("Invalid $filter near {other:?}.")),
        }
    }
}

impl Filter {
    /// Parses `eq`/`ne`, `substringof('v', prop)`, `startswith(prop, 'v')`, `and`/`or`, parens.
    pub(crate) fn parse(s: &str) -> Result<Filter, String> {
        let toks = tokenize(s)?;
        let uses_tags = toks.iter().any(|t| {
            matches!(t, Tok::Ident(x) if x.eq_ignore_ascii_case("tagname") || x.eq_ignore_ascii_case("tagvalue"))
        });
        let mut p = Parser { toks, pos: 0 };
        let expr = p.or()?;
        if p.pos < p.toks.len() {
            return Err(format!("Invalid $filter '{s}': unexpected trailing input."));
        }
        Ok(Filter { expr, uses_tags })
    }

    /// Evaluates against a resource's properties (lower-case names) and tags.
    pub(crate) fn matches(&self, get: &dyn Fn(&str) -> Option<String>, tags: &Value) -> bool {
        let mut last_tag: Option<String> = None;
        eval(&self.expr, get, tags, &mut last_tag)
    }
}

fn eval(
    e: &Expr,
    get: &dyn Fn(&str) -> Option<String>,
    tags: &Value,
    last_tag: &mut Option<String>,
) -> bool {
    let tag_map = tags.as_object();
    match e {
        Expr::And(a, b) => eval(a, get, tags, last_tag) && eval(b, get, tags, last_tag),
        Expr::Or(a, b) => {
            let x = eval(a, get, tags, last_tag);
            eval(b, get, tags, last_tag) || x
        }
        Expr::Cmp { prop, ne, value } => {
            let hit = match prop.as_str() {
                "tagname" => {
                    *last_tag = Some(value.clone());
                    tag_map.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(value)))
                }
                "tagvalue" => tag_map.is_some_and(|m| {
                    m.iter().any(|(k, v)| {
                        last_tag.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(k))
                            && v.as_str().is_some_and(|v| v == value)
                    })
                }),
                p => get(p).is_some_and(|v| v.eq_ignore_ascii_case(value)),
            };
            hit != *ne
        }
        Expr::Substring { value, prop } => {
            get(prop).is_some_and(|v| v.to_ascii_lowercase().contains(&value.to_ascii_lowercase()))
        }
        Expr::StartsWith { prop, value } => {
            if prop == "tagname" {
                tag_map.is_some_and(|m| {
                    m.keys().any(|k| {
                        k.to_ascii_lowercase()
                            .starts_with(&value.to_ascii_lowercase())
                    })
                })
            } else {
                get(prop).is_some_and(|v| {
                    v.to_ascii_lowercase()
                        .starts_with(&value.to_ascii_lowercase())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(p: &str) -> Option<String> {
        match p {
            "name" => Some("aibScripts01".into()),
            "resourcetype" => Some("Microsoft.Storage/storageAccounts".into()),
            "resourcegroup" => Some("rg-aib".into()),
            _ => None,
        }
    }

    /// The filter grammar ARM documents: eq/ne, substringof value-first, tags, and/or.
    #[test]
    fn filter_grammar_matches_like_arm() {
        let tags = json!({"env": "sbx", "owner": "ci"});
        let m = |f: &str| {
            Filter::parse(f)
                .map(|f| f.matches(&props, &tags))
                .unwrap_or(false)
        };
        assert!(m("resourceType eq 'microsoft.storage/storageaccounts'"));
        assert!(!m("resourceType ne 'Microsoft.Storage/storageAccounts'"));
        assert!(m("substringof('scripts', name)"));
        assert!(!m("substringof('name', scripts)"));
        assert!(m("tagName eq 'env' and tagValue eq 'sbx'"));
        assert!(!m("tagName eq 'env' and tagValue eq 'ci'"));
        assert!(m(
            "resourceGroup eq 'nope' or substringof('aib', resourceGroup)"
        ));
        assert!(m("startswith(tagName, 'ow')"));
        assert!(Filter::parse("name eq 'unterminated").is_err());
        assert!(Filter::parse("name gt 'x'").is_err());
    }
}
