//! Helpers for the gallery and Image Builder tests: an emulator on a fast clock, an HTTPS client
//! that trusts its CA, ARM calls with the Owner's token, long-running-operation polling, and the
//! setup every build needs (group, identity, gallery, definition, a scripts container).

#![allow(dead_code)]

// The HTTPS client, the token request and the api-versions are those of the other tests.
#[path = "../common/mod.rs"]
mod common;

use aib_emulator::{Emulator, EmulatorConfig, KnobValues};
// Each test binary uses some of these, none all of them.
#[allow(unused_imports)]
pub use common::{AUTHZ_API, MSI_API, RG_API, STORAGE_API};
use common::{MGMT_SCOPE, STORAGE_SCOPE};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const COMPUTE_API: &str = "2025-03-03";
pub const AIB_API: &str = "2025-10-01";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
pub const BLOB_CONTRIBUTOR: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";

/// A started emulator plus a client and the Owner's management token.
pub struct Env {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub token: String,
}

pub async fn start(azurite: bool) -> Env {
    let emu = Emulator::start(EmulatorConfig {
        azurite,
        time_scale: 600.0,
        // Emulated lifetime at 600x: about 100 real minutes, longer than any test.
        token_lifetime: Duration::from_secs(3_600_000),
        knobs: KnobValues::fast(),
        ..Default::default()
    })
    .await
    .expect("emulator starts");
    let http = common::client(&emu);
    let token = token(&emu, &http, MGMT_SCOPE).await;
    Env { emu, http, token }
}

/// The emulator's own client's token for `scope`, checked to be issued.
pub async fn token(emu: &Emulator, http: &reqwest::Client, scope: &str) -> String {
    let r = common::login(emu, http, scope).await;
    assert_eq!(r.status(), 200, "token endpoint");
    let v: Value = r.json().await.expect("json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// An answer: status, headers, JSON body (Null when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn code(&self) -> String {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl Env {
    /// Changes some knobs and keeps the rest, the way a test slows or breaks one thing.
    pub fn tune(&self, change: impl FnOnce(&mut KnobValues)) {
        let mut k = self.emu.knobs().get();
        change(&mut k);
        self.emu.knobs().set(k);
    }

    pub fn sub(&self) -> String {
        self.emu.subscription_id().to_string()
    }

    pub fn rg_id(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{rg}", self.sub())
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        api: &str,
        body: Option<Value>,
    ) -> Answer {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{}{sep}api-version={api}",
            self.emu.url(),
            path.trim_start_matches('/')
        );
        self.call_url(method, &url, body).await
    }

    pub async fn call_url(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn put(&self, path: &str, api: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PUT, path, api, Some(body)).await
    }
    pub async fn get(&self, path: &str, api: &str) -> Answer {
        self.call(reqwest::Method::GET, path, api, None).await
    }
    pub async fn post(&self, path: &str, api: &str) -> Answer {
        self.call(reqwest::Method::POST, path, api, None).await
    }
    pub async fn delete(&self, path: &str, api: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, api, None).await
    }

    /// Polls an Azure-AsyncOperation URL until a terminal status; returns the last body.
    pub async fn wait_status(&self, url: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let a = self.call_url(reqwest::Method::GET, url, None).await;
            // A failed status read is not a failed operation: retry it, as clients must.
            if a.status == 429 || a.status >= 500 {
                assert!(
                    start.elapsed() < limit,
                    "status reads kept failing: {}",
                    a.body
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(a.status, 200, "status poll answers 200: {}", a.body);
            let s = a.body["status"].as_str().unwrap_or("").to_string();
            if matches!(s.as_str(), "Succeeded" | "Failed" | "Canceled") {
                return a.body;
            }
            assert!(
                start.elapsed() < limit,
                "operation still {s} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls a Location URL until it stops answering 202; returns the final answer.
    pub async fn wait_location(&self, url: &str, limit: Duration) -> Answer {
        let start = Instant::now();
        loop {
            let a = self.call_url(reqwest::Method::GET, url, None).await;
            if a.status != 202 {
                return a;
            }
            assert!(start.elapsed() < limit, "still 202 after {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn group(&self, rg: &str) {
        let a = self
            .put(&self.rg_id(rg), RG_API, json!({"location": "westeurope"}))
            .await;
        assert!(a.status == 201 || a.status == 200, "group: {}", a.body);
    }

    /// Creates a user-assigned identity; returns (id, principalId).
    pub async fn identity(&self, rg: &str, name: &str) -> (String, String) {
        let id = format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
            self.rg_id(rg)
        );
        let a = self
            .put(&id, MSI_API, json!({"location": "westeurope"}))
            .await;
        assert!(a.status == 201 || a.status == 200, "identity: {}", a.body);
        let p = a.body["properties"]["principalId"]
            .as_str()
            .expect("principalId")
            .to_string();
        (id, p)
    }

    /// PUTs a new compute resource (`what` names it in failures) and waits for its
    /// Azure-AsyncOperation to succeed.
    async fn create_compute(&self, what: &str, id: &str, body: Value) {
        let a = self.put(id, COMPUTE_API, body).await;
        assert_eq!(a.status, 201, "{what}: {}", a.body);
        let st = self
            .wait_status(
                &a.header("azure-asyncoperation").expect("aao"),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(st["status"], "Succeeded");
    }

    /// Gallery + definition, both finished; returns the definition id.
    pub async fn gallery_with_image(&self, rg: &str, gallery: &str, image: &str) -> String {
        let gid = format!(
            "{}/providers/Microsoft.Compute/galleries/{gallery}",
            self.rg_id(rg)
        );
        self.create_compute("gallery", &gid, json!({"location": "westeurope"}))
            .await;
        let iid = format!("{gid}/images/{image}");
        self.create_compute("image", &iid, image_body()).await;
        iid
    }

    /// A storage account with a container, the Owner holding Blob Data Contributor on it;
    /// returns the account's blob endpoint.
    pub async fn scripts_account(&self, rg: &str, account: &str, container: &str) -> String {
        let id = format!(
            "{}/providers/Microsoft.Storage/storageAccounts/{account}",
            self.rg_id(rg)
        );
        let a = self.put(&id, STORAGE_API, json!({"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})).await;
        assert_eq!(a.status, 202, "account: {}", a.body);
        let done = self
            .wait_location(
                &a.header("location").expect("location"),
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(done.status, 200, "account done: {}", done.body);
        let endpoint = done.body["properties"]["primaryEndpoints"]["blob"]
            .as_str()
            .expect("blob endpoint")
            .to_string();
        let c = self
            .put(
                &format!("{id}/blobServices/default/containers/{container}"),
                STORAGE_API,
                json!({}),
            )
            .await;
        assert!(c.status == 201 || c.status == 200, "container: {}", c.body);
        self.emu.grant(self.emu.object_id(), BLOB_CONTRIBUTOR, &id);
        endpoint
    }

    /// A blob-front request as the Owner: a fresh storage token and the service version.
    pub async fn blob_request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let t = token(&self.emu, &self.http, STORAGE_SCOPE).await;
        self.http
            .request(method, url)
            .bearer_auth(t)
            .header("x-ms-version", "2025-01-05")
    }

    /// Uploads a blob as the Owner (bearer token through the blob front).
    pub async fn upload(&self, url: &str, content: &str) {
        let r = self
            .blob_request(reqwest::Method::PUT, url)
            .await
            .header("x-ms-blob-type", "BlockBlob")
            .body(content.to_string())
            .send()
            .await
            .expect("upload");
        assert!(r.status().is_success(), "upload {url}: {}", r.status());
    }

    /// Reads a blob as the Owner; None on 404.
    pub async fn download(&self, url: &str) -> Option<String> {
        let r = self
            .blob_request(reqwest::Method::GET, url)
            .await
            .send()
            .await
            .expect("download");
        if r.status() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "download {url}: {}", r.status());
        Some(r.text().await.unwrap_or_default())
    }
}

pub fn image_body() -> Value {
    json!({
        "location": "westeurope",
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": "V2",
            "identifier": {"publisher": "aib", "offer": "ci-agent", "sku": "ubuntu-2204-gen2"},
            "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"}]
        }
    })
}
