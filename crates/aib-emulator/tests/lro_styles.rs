//! The `lro_style` knob: galleries (which answer in the Azure-AsyncOperation style by default)
//! advertise their operations with `Operation-Location`, `Location` or no header at all when
//! told to, and every style reaches the same end.

mod aib_support;

use aib_emulator::LroStyle;
use aib_support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The emulator's knobs endpoint, where tests and demos read and change knobs over HTTP.
fn knobs_url(env: &Env) -> String {
    format!("{}_emulator/knobs", env.emu.url())
}

/// The knobs as `GET /_emulator/knobs` serves them.
async fn served_knobs(env: &Env) -> Value {
    env.http
        .get(knobs_url(env))
        .send()
        .await
        .expect("knobs")
        .json()
        .await
        .expect("json")
}

/// Sets the style through `POST /_emulator/knobs`, keeping the other knobs.
async fn set_style(env: &Env, style: &str) {
    let mut knobs = served_knobs(env).await;
    knobs["lro_style"] = json!(style);
    let r = env
        .http
        .post(knobs_url(env))
        .json(&knobs)
        .send()
        .await
        .expect("knobs set");
    assert_eq!(r.status(), 200);
    let now: Value = r.json().await.expect("json");
    assert_eq!(now["lro_style"], style);
}

fn gallery(env: &Env, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Compute/galleries/{name}",
        env.rg_id("rg-styles")
    )
}

/// Deletes a gallery in a style that falls back to `Location` for deletes: 202 without
/// `Azure-AsyncOperation`, the Location URL ends with 204, and the gallery is gone.
async fn delete_by_location(env: &Env, id: &str) {
    let d = env.delete(id, COMPUTE_API).await;
    assert_eq!(d.status, 202);
    assert_eq!(d.header("azure-asyncoperation"), None);
    let end = env
        .wait_location(
            &d.header("location").expect("Location"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(end.status, 204);
    assert_eq!(env.get(id, COMPUTE_API).await.status, 404);
}

/// The default is Azure-AsyncOperation; an unknown style is refused with 400 and changes nothing.
#[tokio::test]
async fn knobs_endpoint_shows_and_checks_the_style() {
    let env = start(false).await;
    let knobs = served_knobs(&env).await;
    assert_eq!(knobs["lro_style"], "azure-async-operation");
    let r = env
        .http
        .post(knobs_url(&env))
        .json(&json!({"lro_style": "carrier-pigeon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        env.emu.knobs().get().lro_style,
        LroStyle::AzureAsyncOperation
    );
    env.emu.knobs().set_lro_style(LroStyle::Location);
    let knobs = served_knobs(&env).await;
    assert_eq!(knobs["lro_style"], "location");
}

/// Azure-AsyncOperation and Operation-Location carry the same status resource (with its opaque
/// `t`/`c`), each alone on a 201 with a `Creating` body; a DELETE adds `Location`.
#[tokio::test]
async fn status_resource_styles_use_their_own_header() {
    let env = start(false).await;
    env.group("rg-styles").await;
    for (style, header, other) in [
        (
            "azure-async-operation",
            "azure-asyncoperation",
            "operation-location",
        ),
        (
            "operation-location",
            "operation-location",
            "azure-asyncoperation",
        ),
    ] {
        set_style(&env, style).await;
        let id = gallery(&env, &format!("g_{}", style.replace('-', "_")));
        let a = env
            .put(&id, COMPUTE_API, json!({"location": "westeurope"}))
            .await;
        assert_eq!(a.status, 201, "{style}: {}", a.body);
        assert_eq!(a.body["properties"]["provisioningState"], "Creating");
        let status_url = a.header(header).expect("status header");
        assert!(
            status_url.contains("/providers/Microsoft.Compute/locations/westeurope/operations/")
                && status_url.contains("&t=")
                && status_url.contains("&c="),
            "{style}: {status_url}"
        );
        assert_eq!(a.header(other), None, "{style}");
        assert_eq!(a.header("location"), None, "{style}");
        assert!(a.header("retry-after").is_some(), "{style}");
        let end = env.wait_status(&status_url, Duration::from_secs(10)).await;
        assert_eq!(end["status"], "Succeeded", "{style}");
        let g = env.get(&id, COMPUTE_API).await;
        assert_eq!(g.body["properties"]["provisioningState"], "Succeeded");

        let d = env.delete(&id, COMPUTE_API).await;
        assert_eq!(d.status, 202, "{style}");
        let status_url = d.header(header).expect("status header on delete");
        assert_eq!(d.header(other), None, "{style}");
        assert!(d.header("location").is_some(), "{style}");
        let end = env.wait_status(&status_url, Duration::from_secs(10)).await;
        assert_eq!(end["status"], "Succeeded", "{style}");
        assert_eq!(env.get(&id, COMPUTE_API).await.status, 404, "{style}");
    }
}

/// Location style: 202 with no body, `Location` and `Retry-After`; the resource is readable as
/// `Creating` meanwhile; the Location URL answers 202 until it returns the resource (200).
#[tokio::test]
async fn location_style_answers_202_then_the_resource() {
    let env = start(false).await;
    env.group("rg-styles").await;
    env.emu.knobs().set_lro_style(LroStyle::Location);
    env.emu.knobs().set_lro_polls(2);
    let id = gallery(&env, "g_location");
    let a = env
        .put(&id, COMPUTE_API, json!({"location": "westeurope"}))
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body, Value::Null, "no body on a 202");
    assert_eq!(a.header("azure-asyncoperation"), None);
    assert_eq!(a.header("operation-location"), None);
    assert!(a.header("retry-after").is_some());
    let location = a.header("location").expect("Location");
    let g = env.get(&id, COMPUTE_API).await;
    assert_eq!(g.body["properties"]["provisioningState"], "Creating");
    let mut accepted = 0;
    let end = loop {
        let p = env.call_url(reqwest::Method::GET, &location, None).await;
        if p.status != 202 {
            break p;
        }
        accepted += 1;
        assert!(accepted < 100, "still 202");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(accepted, 2, "answered 202 for each configured poll");
    assert_eq!(end.status, 200);
    assert_eq!(end.body["id"], id);
    assert_eq!(end.body["properties"]["provisioningState"], "Succeeded");

    delete_by_location(&env, &id).await;
}

/// No header at all: a 201 with `Creating`, and each GET of the resource counts as a poll; the
/// state turns `Succeeded` after the configured polls, and a DELETE falls back to `Location`.
#[tokio::test]
async fn no_header_style_finishes_through_resource_reads() {
    let env = start(false).await;
    env.group("rg-styles").await;
    set_style(&env, "none").await;
    env.emu.knobs().set_lro_polls(3);
    let id = gallery(&env, "g_none");
    let a = env
        .put(&id, COMPUTE_API, json!({"location": "westeurope"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["properties"]["provisioningState"], "Creating");
    for h in ["azure-asyncoperation", "operation-location", "location"] {
        assert_eq!(a.header(h), None, "{h}");
    }
    // The operation's minimum duration (10 ms at this clock) passes first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut states = Vec::new();
    for _ in 0..5 {
        let g = env.get(&id, COMPUTE_API).await;
        assert_eq!(g.status, 200);
        states.push(
            g.body["properties"]["provisioningState"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(
        states,
        ["Creating", "Creating", "Creating", "Succeeded", "Succeeded"]
    );

    delete_by_location(&env, &id).await;
}

/// In the no-header style, an image definition PUT also ends through reads of the definition.
#[tokio::test]
async fn no_header_style_covers_image_definitions() {
    let env = start(false).await;
    env.group("rg-styles").await;
    let gid = gallery(&env, "g_defs");
    let a = env
        .put(&gid, COMPUTE_API, json!({"location": "westeurope"}))
        .await;
    env.wait_status(
        &a.header("azure-asyncoperation").expect("default style"),
        Duration::from_secs(10),
    )
    .await;
    env.emu.knobs().set_lro_style(LroStyle::None);
    let def = format!("{gid}/images/ubuntu");
    let a = env.put(&def, COMPUTE_API, image_body()).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("azure-asyncoperation"), None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let first = env.get(&def, COMPUTE_API).await;
    assert_eq!(first.body["properties"]["provisioningState"], "Creating");
    let second = env.get(&def, COMPUTE_API).await;
    assert_eq!(second.body["properties"]["provisioningState"], "Succeeded");
}
