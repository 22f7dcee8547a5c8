//! Azure Compute Gallery in the emulator: galleries, image definitions and versions behave as
//! contract section 7 says (long-running PUTs with Azure-AsyncOperation, required fields, name
//! rules, immutable versions, replication status).

mod aib_support;

use aib_support::*;
use serde_json::json;
use std::time::Duration;

/// A definition without osType, osState or identifier is refused with the missing field named.
#[tokio::test]
async fn image_definition_requires_its_identity_fields() {
    let env = start(false).await;
    env.group("rg-gal").await;
    let gid = format!(
        "{}/providers/Microsoft.Compute/galleries/gal_one",
        env.rg_id("rg-gal")
    );
    let a = env
        .put(&gid, COMPUTE_API, json!({"location": "westeurope"}))
        .await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body["properties"]["provisioningState"], "Creating");
    for (drop, field) in [
        ("osType", "osType"),
        ("osState", "osState"),
        ("identifier", "identifier"),
    ] {
        let mut body = image_body();
        body["properties"]
            .as_object_mut()
            .expect("object")
            .remove(drop);
        let a = env
            .put(&format!("{gid}/images/def"), COMPUTE_API, body)
            .await;
        assert_eq!(a.status, 400, "{drop}: {}", a.body);
        assert_eq!(a.code(), "InvalidParameter");
        assert!(a.message().contains(field), "{}", a.message());
    }
    let mut body = image_body();
    body["properties"]["identifier"]
        .as_object_mut()
        .expect("object")
        .remove("sku");
    let a = env
        .put(&format!("{gid}/images/def"), COMPUTE_API, body)
        .await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("identifier.sku"));
    let mut body = image_body();
    body["properties"]["osType"] = json!("Solaris");
    let a = env
        .put(&format!("{gid}/images/def"), COMPUTE_API, body)
        .await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("Solaris"));
}

/// Gallery and definition names follow the contract's character rules; a definition under a
/// missing gallery gets ParentResourceNotFound.
#[tokio::test]
async fn names_and_parents_are_checked() {
    let env = start(false).await;
    env.group("rg-gal").await;
    let base = format!(
        "{}/providers/Microsoft.Compute/galleries",
        env.rg_id("rg-gal")
    );
    let a = env
        .put(
            &format!("{base}/bad-name"),
            COMPUTE_API,
            json!({"location": "westeurope"}),
        )
        .await;
    assert_eq!(a.status, 400, "hyphens are not allowed in gallery names");
    let a = env
        .put(
            &format!("{base}/nogallery/images/def"),
            COMPUTE_API,
            image_body(),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "ParentResourceNotFound");
    let iid = env
        .gallery_with_image("rg-gal", "gal_two", "ubuntu-2204.agent_x")
        .await;
    let a = env
        .put(
            &format!("{base}/gal_two/images/-lead"),
            COMPUTE_API,
            image_body(),
        )
        .await;
    assert_eq!(a.status, 400);
    let got = env.get(&iid, COMPUTE_API).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(got.body["properties"]["hyperVGeneration"], "V2");
    assert_eq!(
        got.body["properties"]["features"][0]["value"],
        "TrustedLaunchSupported"
    );
}

/// Versions must be named int.int.int within int32, go Creating → Succeeded through the
/// Azure-AsyncOperation URL, and report per-region replication under $expand.
#[tokio::test]
async fn version_lifecycle_with_replication_status() {
    let env = start(false).await;
    env.group("rg-gal").await;
    let iid = env.gallery_with_image("rg-gal", "gal_v", "def").await;
    let source = format!(
        "{}/providers/Microsoft.Compute/images/src",
        env.rg_id("rg-gal")
    );
    let body = json!({
        "location": "westeurope",
        "properties": {
            "publishingProfile": {"targetRegions": [
                {"name": "westeurope", "regionalReplicaCount": 1},
                {"name": "northeurope", "regionalReplicaCount": 2, "excludeFromLatest": true}
            ]},
            "storageProfile": {"source": {"id": source}}
        }
    });
    for bad in ["1.0", "1.0.0.0", "a.b.c", "1.0.2147483648", "-1.0.0"] {
        let a = env
            .put(&format!("{iid}/versions/{bad}"), COMPUTE_API, body.clone())
            .await;
        assert_eq!(a.status, 400, "version name {bad}");
    }
    // Slow the clock down so the version is observed while it replicates.
    env.tune(|k| {
        k.time_scale = 10.0;
        k.lro_duration = Duration::from_secs(20);
    });
    let a = env
        .put(&format!("{iid}/versions/1.0.0"), COMPUTE_API, body.clone())
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["properties"]["provisioningState"], "Creating");
    let aao = a
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation");
    assert!(aao.contains("/providers/Microsoft.Compute/locations/westeurope/operations/"));
    let during = env
        .get(
            &format!("{iid}/versions/1.0.0?$expand=ReplicationStatus"),
            COMPUTE_API,
        )
        .await;
    assert_eq!(during.body["properties"]["provisioningState"], "Creating");
    assert_eq!(
        during.body["properties"]["replicationStatus"]["aggregatedState"],
        "InProgress"
    );
    let regions = &during.body["properties"]["publishingProfile"]["targetRegions"];
    assert_eq!(regions[0]["name"], "West Europe");
    assert_eq!(regions[1]["excludeFromLatest"], true);
    let st = env.wait_status(&aao, Duration::from_secs(20)).await;
    assert_eq!(st["status"], "Succeeded");
    let after = env
        .get(
            &format!("{iid}/versions/1.0.0?$expand=ReplicationStatus"),
            COMPUTE_API,
        )
        .await;
    assert_eq!(after.body["properties"]["provisioningState"], "Succeeded");
    let rs = &after.body["properties"]["replicationStatus"];
    assert_eq!(rs["aggregatedState"], "Completed");
    assert_eq!(rs["summary"].as_array().map(Vec::len), Some(2));
    let plain = env.get(&format!("{iid}/versions/1.0.0"), COMPUTE_API).await;
    assert!(
        plain.body["properties"].get("replicationStatus").is_none(),
        "only under $expand"
    );

    // An existing version cannot get another source.
    let mut other = body.clone();
    other["properties"]["storageProfile"]["source"]["id"] = json!(format!("{source}2"));
    let a = env
        .put(&format!("{iid}/versions/1.0.0"), COMPUTE_API, other)
        .await;
    assert_eq!(a.status, 409, "{}", a.body);

    let list = env.get(&format!("{iid}/versions"), COMPUTE_API).await;
    assert_eq!(list.body["value"].as_array().map(Vec::len), Some(1));

    // The definition cannot go while it has versions; deleting the version first works.
    let d = env.delete(&iid, COMPUTE_API).await;
    assert_eq!(d.status, 409);
    let d = env
        .delete(&format!("{iid}/versions/1.0.0"), COMPUTE_API)
        .await;
    assert_eq!(d.status, 202);
    assert!(d.header("location").is_some() && d.header("azure-asyncoperation").is_some());
    let st = env
        .wait_status(
            &d.header("azure-asyncoperation").expect("aao"),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(st["status"], "Succeeded");
    let gone = env.get(&format!("{iid}/versions/1.0.0"), COMPUTE_API).await;
    assert_eq!(gone.status, 404);
}

/// Definition identity fields are fixed after creation.
#[tokio::test]
async fn definition_identity_fields_cannot_change() {
    let env = start(false).await;
    env.group("rg-gal").await;
    let iid = env.gallery_with_image("rg-gal", "gal_c", "def").await;
    let mut body = image_body();
    body["properties"]["osState"] = json!("Specialized");
    let a = env.put(&iid, COMPUTE_API, body).await;
    assert_eq!(a.status, 409);
    assert_eq!(a.code(), "PropertyChangeNotAllowed");
    let mut body = image_body();
    body["properties"]["description"] = json!("agents");
    let a = env.put(&iid, COMPUTE_API, body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["properties"]["provisioningState"], "Updating");
}
