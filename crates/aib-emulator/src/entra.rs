//! Emulated Entra ID: the v2 (and v1) token endpoint, OpenID discovery, and the credential
//! sources CI uses — GitHub Actions id tokens, Azure Pipelines OIDC, an App Service-style managed
//! identity endpoint.
//!
//! The shapes follow what the clients actually send: azure_identity 1.0's ClientSecretCredential
//! posts straight to `{authority}/{tenant}/oauth2/v2.0/token` (no discovery); MSAL (Python) first
//! reads `{authority}/{tenant}/v2.0/.well-known/openid-configuration`. azure_identity's App Service
//! credential sends `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…[&client_id=…]` with
//! headers `metadata: true` and `x-identity-header`, and wants `expires_on` as a string.

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::core::{
    EXCHANGE_AUDIENCE, GITHUB_ISSUER, GITHUB_SUBJECT, Inner, MANAGEMENT_AUD, STORAGE_AUD,
    entra_error, json_response, unix_now, with_caller,
};

/// Maps a scope or v1 resource to the audience of the token we issue.
pub(crate) fn audience_for(resource: &str) -> Option<&'static str> {
    let r = resource
        .trim_end_matches("/.default")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    match r.as_str() {
        "https://management.azure.com" | "https://management.core.windows.net" => {
            Some(MANAGEMENT_AUD)
        }
        "https://storage.azure.com" => Some(STORAGE_AUD),
        _ if r.starts_with("https://") && r.ends_with(".blob.core.windows.net") => {
            Some(STORAGE_AUD)
        }
        _ => None,
    }
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1 one).
pub(crate) fn openid_configuration(inner: &Inner, tenant: &str) -> Response {
    if !tenant.eq_ignore_ascii_case(&inner.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let base = inner.base_url.as_str().trim_end_matches('/');
    let t = &inner.tenant_id;
    json_response(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{t}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{base}/oidc/userinfo"),
            "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token` (v2, `scope`) and `/{tenant}/oauth2/token` (v1, `resource`).
pub(crate) fn token(inner: &Inner, tenant: &str, body: &[u8], v1: bool) -> Response {
    let f = form(body);
    if !tenant.eq_ignore_ascii_case(&inner.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let grant = f.get("grant_type").map(String::as_str).unwrap_or("");
    if grant != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let resource = if v1 {
        f.get("resource").cloned().unwrap_or_default()
    } else {
        f.get("scope").cloned().unwrap_or_default()
    };
    let scopes: Vec<&str> = resource.split_whitespace().collect();
    if scopes.len() != 1 {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {resource} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    if !v1 && !scopes[0].ends_with("/.default") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                scopes[0]
            ),
        );
    }
    let Some(aud) = audience_for(scopes[0]) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                scopes[0], inner.tenant_id
            ),
        );
    };
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let client = inner
        .lock()
        .clients
        .get(&client_id.to_ascii_lowercase())
        .cloned();
    let Some(client) = client else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                inner.tenant_id
            ),
        );
    };

    if let Some(secret) = f.get("client_secret") {
        if client.secret.as_deref() != Some(secret.as_str()) {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    client.client_id
                ),
            );
        }
    } else if let Some(assertion) = f.get("client_assertion") {
        let kind = f.get("client_assertion_type").map(String::as_str);
        if kind != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        if let Err(r) = check_assertion(inner, &client, assertion) {
            return r;
        }
    } else {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }

    let issued = inner.issue_token(aud, &client.object_id, &client.client_id);
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "ext_expires_in": issued.expires_in,
        "access_token": issued.jwt,
    });
    if v1 {
        let now = unix_now();
        body = json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in.to_string(),
            "ext_expires_in": issued.expires_in.to_string(),
            "expires_on": issued.expires_on.to_string(),
            "not_before": now.to_string(),
            "resource": scopes[0],
            "access_token": body["access_token"],
        });
    }
    with_caller(
        json_response(StatusCode::OK, &body),
        Some(&client.object_id),
    )
}

/// Accepts only assertions this emulator's OIDC endpoints issued, for the exchange audience,
/// unexpired, and matching a federated credential of the client.
#[allow(clippy::result_large_err)]
fn check_assertion(
    inner: &Inner,
    client: &crate::core::Client,
    assertion: &str,
) -> Result<(), Response> {
    let Some(claims) = inner.verify(assertion) else {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.",
        ));
    };
    let s = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let n = |k: &str| claims.get(k).and_then(Value::as_u64).unwrap_or(0);
    let now = unix_now();
    if n("exp") <= now || n("nbf") > now {
        let fmt = |t: u64| {
            time::OffsetDateTime::from_unix_timestamp(t as i64)
                .ok()
                .and_then(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default()
        };
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                fmt(now),
                fmt(n("nbf")),
                fmt(n("exp"))
            ),
        ));
    }
    if s("aud") != EXCHANGE_AUDIENCE {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700212,
            &format!(
                "No matching federated identity record found for presented assertion audience '{}'.",
                s("aud")
            ),
        ));
    }
    let (iss, sub) = (s("iss"), s("sub"));
    if !client
        .federated
        .iter()
        .any(|(i, su)| *i == iss && *su == sub)
    {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            70021,
            &format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
                EXCHANGE_AUDIENCE
            ),
        ));
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn query_map(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// `GET {ACTIONS_ID_TOKEN_REQUEST_URL}&audience=…` with `Authorization: bearer {request token}`.
pub(crate) fn github_id_token(inner: &Inner, headers: &HeaderMap, query: &str) -> Response {
    if bearer(headers).as_deref() != Some(inner.github_request_token.as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable or the request token is invalid"}),
        );
    }
    let q = query_map(query);
    let aud = q
        .get("audience")
        .cloned()
        .unwrap_or_else(|| "https://github.com/aib-dev".to_string());
    let jwt = inner.issue_federated_token(GITHUB_ISSUER, GITHUB_SUBJECT, &aud);
    json_response(StatusCode::OK, &json!({"count": 1, "value": jwt}))
}

/// `POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=…` with the system token.
pub(crate) fn pipelines_oidc(inner: &Inner, headers: &HeaderMap, query: &str) -> Response {
    if bearer(headers).as_deref() != Some(inner.pipelines_system_token.as_str()) {
        let mut r = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "TF400813: The user is not authorized to access this resource."}),
        );
        r.headers_mut()
            .insert("x-vss-e2eid", http::HeaderValue::from_static("emulator"));
        return r;
    }
    let q = query_map(query);
    match q.get("serviceConnectionId") {
        Some(id) if id.eq_ignore_ascii_case(&inner.pipelines_connection_id) => {}
        other => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"message": format!("Service connection '{}' was not found or is not a workload identity federation connection.", other.map(String::as_str).unwrap_or(""))}),
            );
        }
    }
    let jwt = inner.issue_federated_token(
        &inner.pipelines_issuer(),
        &inner.pipelines_subject(),
        EXCHANGE_AUDIENCE,
    );
    json_response(StatusCode::OK, &json!({"oidcToken": jwt}))
}

/// App Service-style managed identity: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…`
/// with `X-IDENTITY-HEADER`. Without `client_id`/`object_id`/`msi_res_id` it answers as the
/// emulator's main principal (the "system-assigned" identity); with one it answers for a
/// user-assigned identity created through ARM.
pub(crate) fn managed_identity(inner: &Inner, headers: &HeaderMap, query: &str) -> Response {
    let header_ok = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == inner.identity_header);
    if !header_ok {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"statusCode": 401, "message": "Unauthorized: missing or wrong X-IDENTITY-HEADER"}),
        );
    }
    let q = query_map(query);
    let resource = q.get("resource").cloned().unwrap_or_default();
    let Some(aud) = audience_for(&resource) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"statusCode": 400, "message": format!("No resource or invalid resource '{resource}'.")}),
        );
    };
    let (oid, appid) = {
        let w = inner.lock();
        if let Some(cid) = q.get("client_id") {
            match w.identity_clients.get(&cid.to_ascii_lowercase()) {
                Some(oid) => (oid.clone(), cid.clone()),
                None => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"statusCode": 400, "message": "No managed identity found for the specified client_id."}),
                    );
                }
            }
        } else if let Some(object_id) = q.get("object_id").or(q.get("principal_id")) {
            match w
                .identity_clients
                .iter()
                .find(|(_, o)| o.eq_ignore_ascii_case(object_id))
            {
                Some((cid, oid)) => (oid.clone(), cid.clone()),
                None => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"statusCode": 400, "message": "No managed identity found for the specified object_id."}),
                    );
                }
            }
        } else if let Some(res_id) = q.get("msi_res_id").or(q.get("mi_res_id")) {
            let found = w.resources.get(&res_id.to_ascii_lowercase()).and_then(|r| {
                let p = r.body.get("properties")?;
                Some((
                    p.get("principalId")?.as_str()?.to_string(),
                    p.get("clientId")?.as_str()?.to_string(),
                ))
            });
            match found {
                Some(x) => x,
                None => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"statusCode": 400, "message": "No managed identity found for the specified msi_res_id."}),
                    );
                }
            }
        } else {
            (inner.object_id.clone(), inner.client_id.clone())
        }
    };
    let issued = inner.issue_token(aud, &oid, &appid);
    with_caller(
        json_response(
            StatusCode::OK,
            &json!({
                "access_token": issued.jwt,
                "expires_on": issued.expires_on.to_string(),
                "expires_in": issued.expires_in.to_string(),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": appid,
            }),
        ),
        Some(&oid),
    )
}
