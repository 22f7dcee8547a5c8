//! The HTTPS blob front: path-style `https://127.0.0.1:<port>/<account>/<container>/<blob>`.
//!
//! It plays the part of Azure Storage's front end: checks the bearer token (our signature,
//! audience storage, not expired) and that the caller holds a *data* role on the account or
//! container (ARM roles such as Owner do not count), injects faults, then forwards the request to
//! Azurite, passing the bearer token through to Azurite's `--oauth basic` mode over HTTPS. Errors
//! are Storage's XML. ARM account names map onto Azurite accounts (own name or a pool account);
//! XML answers get the Azurite account URL rewritten back to the front's.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use serde_json::Value;

use crate::arm::rbac;
use crate::core::{Inner, STORAGE_AUD, storage_error, unix_now, with_caller};
use crate::knobs::Fault;

const BLOB_DATA: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";

/// Creates or deletes a container in Azurite on behalf of ARM.
pub(crate) async fn container_op(
    inner: &Inner,
    azurite_account: &str,
    container: &str,
    method: Method,
) -> Result<(), String> {
    let Some(backend) = &inner.azurite else {
        return Ok(());
    };
    let (token, _) = inner.issue_access_token(STORAGE_AUD, &inner.object_id, &inner.client_id);
    let url = format!(
        "{}/{azurite_account}/{container}?restype=container",
        backend.base.as_str().trim_end_matches('/')
    );
    let resp = backend
        .client
        .request(method, &url)
        .bearer_auth(token)
        .header("x-ms-version", "2025-01-05")
        .header("x-ms-date", httpdate_now())
        .header("content-length", "0")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let s = resp.status().as_u16();
    // 409 ContainerAlreadyExists / 404 ContainerNotFound are fine: the goal state holds.
    if resp.status().is_success() || s == 409 || s == 404 {
        Ok(())
    } else {
        Err(format!("Azurite answered {s}"))
    }
}

fn httpdate_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap_or_default()
}

/// Entry point for every request on the blob front.
pub(crate) async fn handle(inner: &Inner, parts: http::request::Parts, body: Body) -> Response {
    let path = parts.uri.path().to_string();
    let mut segs = path.splitn(4, '/').skip(1);
    let account = segs.next().unwrap_or("").to_string();
    let container = segs.next().unwrap_or("").to_string();
    let rest_present = segs.next().is_some();
    let query = parts.uri.query().unwrap_or("").to_string();

    // Which account and where it lives.
    let found = {
        let w = inner.lock();
        w.resources
            .values()
            .find(|r| r.visible && r.rtype == crate::arm::storage::TYPE && r.name == account)
            .map(|r| (r.id.clone(), r.body.clone()))
            .map(|(id, body)| (id, body, w.azurite_map.get(&account).cloned()))
    };
    let Some((account_id, account_body, azurite_account)) = found else {
        return storage_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        );
    };

    let knobs = inner.knobs.get();
    if inner.knobs.fire(Fault::BlobThrottle, knobs.throttle_rate) {
        let mut r = storage_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServerBusy",
            "The server is busy.",
        );
        if let Ok(v) = HeaderValue::from_str(&knobs.throttle_retry_after.to_string()) {
            r.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return r;
    }
    if inner
        .knobs
        .fire(Fault::BlobServerError, knobs.server_error_rate)
    {
        return storage_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The server encountered an internal error. Please retry the request.",
        );
    }

    let auth = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let shared_key_allowed = account_body
        .get("properties")
        .and_then(|p| p.get("allowSharedKeyAccess"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut caller = None;
    if let Some(token) = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
    {
        let Some(claims) = inner.verify(token.trim()) else {
            return storage_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            );
        };
        let aud = claims.get("aud").and_then(Value::as_str).unwrap_or("");
        if aud.trim_end_matches('/') != STORAGE_AUD {
            return storage_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.\nAuthenticationErrorDetail:Audience validation failed. Audience did not match.",
            );
        }
        if claims.get("exp").and_then(Value::as_u64).unwrap_or(0) <= unix_now() {
            return storage_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.\nAuthenticationErrorDetail:Lifetime validation failed. The token is expired.",
            );
        }
        let oid = claims
            .get("oid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let (data_action, scope) =
            data_action(&parts.method, &query, &account_id, &container, rest_present);
        let is_data = data_action.starts_with(BLOB_DATA);
        let ok = rbac::allowed(&inner.lock(), &oid, &data_action, &scope, is_data);
        if !ok {
            return with_caller(
                storage_error(
                    StatusCode::FORBIDDEN,
                    "AuthorizationPermissionMismatch",
                    "This request is not authorized to perform this operation using this permission.",
                ),
                Some(&oid),
            );
        }
        caller = Some(oid);
    } else if (auth.starts_with("SharedKey") || query.contains("sig=")) && !shared_key_allowed {
        return storage_error(
            StatusCode::FORBIDDEN,
            "KeyBasedAuthenticationNotPermitted",
            "Key based authentication is not permitted on this storage account.",
        );
    }

    let (Some(backend), Some(az)) = (&inner.azurite, azurite_account) else {
        return storage_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServerBusy",
            "This emulator runs without Azurite (EmulatorConfig.azurite = false): the blob data plane is not available.",
        );
    };
    let tail = path
        .strip_prefix(&format!("/{account}"))
        .unwrap_or("")
        .to_string();
    let base = backend.base.as_str().trim_end_matches('/');
    let mut url = format!("{base}/{az}{tail}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    let mut req = backend.client.request(parts.method.clone(), &url);
    for (k, v) in &parts.headers {
        if k == http::header::HOST
            || k == http::header::CONNECTION
            || k == http::header::TRANSFER_ENCODING
        {
            continue;
        }
        req = req.header(k, v);
    }
    let stream = body.into_data_stream();
    req = req.body(reqwest::Body::wrap_stream(stream));
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return storage_error(
                StatusCode::BAD_GATEWAY,
                "InternalError",
                &format!("The storage backend (Azurite) could not be reached: {e}"),
            );
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let is_xml = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("xml"));
    let mut out = if is_xml {
        let bytes = resp.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes)
            .replace(
                &format!("{base}/{az}"),
                &format!(
                    "{}/{account}",
                    inner.blob_url.as_str().trim_end_matches('/')
                ),
            )
            .replace(
                &format!("AccountName=\"{az}\""),
                &format!("AccountName=\"{account}\""),
            );
        Response::new(Body::from(text))
    } else if inner.knobs.fire(Fault::SlowBody, knobs.slow_body_rate) {
        Response::new(Body::from_stream(trickle(
            Box::pin(resp.bytes_stream()),
            knobs.slow_body_delay,
        )))
    } else {
        Response::new(Body::from_stream(resp.bytes_stream()))
    };
    *out.status_mut() = status;
    for (k, v) in &headers {
        if k == http::header::TRANSFER_ENCODING || k == http::header::CONNECTION {
            continue;
        }
        if is_xml && k == http::header::CONTENT_LENGTH {
            continue;
        }
        out.headers_mut().append(k, v.clone());
    }
    with_caller(out, caller.as_deref())
}

/// Re-chunks a body into 16 KiB pieces with a pause before each (the slow-body fault).
fn trickle<S>(
    inner: S,
    delay: std::time::Duration,
) -> impl futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send
where
    S: futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    use futures::StreamExt;
    let state = (inner, bytes::Bytes::new());
    futures::stream::unfold(state, move |(mut inner, mut pending)| async move {
        if pending.is_empty() {
            match inner.next().await {
                Some(Ok(b)) => pending = b,
                Some(Err(e)) => return Some((Err(e), (inner, pending))),
                None => return None,
            }
        }
        tokio::time::sleep(delay).await;
        let piece = pending.split_to(pending.len().min(16 * 1024));
        Some((Ok(piece), (inner, pending)))
    })
}

/// The RBAC action and scope a data-plane request needs.
fn data_action(
    method: &Method,
    query: &str,
    account_id: &str,
    container: &str,
    blob: bool,
) -> (String, String) {
    let container_level = query.contains("restype=container") && !blob;
    let scope = if container.is_empty() {
        account_id.to_string()
    } else {
        format!("{account_id}/blobServices/default/containers/{container}")
    };
    let verb = match *method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    if container_level && verb != "read" {
        // Creating/deleting containers is a control action the data roles also hold.
        return (
            format!("Microsoft.Storage/storageAccounts/blobServices/containers/{verb}"),
            scope,
        );
    }
    (format!("{BLOB_DATA}/{verb}"), scope)
}
