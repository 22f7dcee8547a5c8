//! Azure VM Image Builder in the emulator (contract section 8, rules 19-27): strict template
//! validation, creation with artefact downloads as the template identity, immutability, the run
//! state machine with its customization.log, failures, cancel, delete, run outputs and lists.
//!
//! Tests that read or write blobs need Azurite (found like the emulator finds it: `AIB_AZURITE`,
//! PATH, or `.tools/npm`); `scripts/test` installs it.

mod aib_support;

use aib_support::*;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const RG: &str = "rg-aib";

/// Group, identity, gallery + definition (identity Contributor on the group); returns
/// (identity id, identity principal, definition id).
async fn setup(env: &Env) -> (String, String, String) {
    env.group(RG).await;
    let (uai, principal) = env.identity(RG, "id-aib").await;
    let def = env.gallery_with_image(RG, "gal_aib", "ubuntu-2204").await;
    env.emu.grant(&principal, CONTRIBUTOR, &env.rg_id(RG));
    (uai, principal, def)
}

fn template(uai: &str, def: &str, customize: Value) -> Value {
    json!({
        "location": "westeurope",
        "tags": {"env": "test"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {uai: {}}},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
            "customize": customize,
            "buildTimeoutInMinutes": 120,
            "vmProfile": {"vmSize": "Standard_D2ds_v5", "osDiskSizeGB": 64},
            "distribute": [{
                "type": "SharedImage",
                "runOutputName": "ubuntu-2204",
                "galleryImageId": def,
                "targetRegions": [{"name": "westeurope", "replicaCount": 1, "storageAccountType": "Standard_LRS"}],
                "versioning": {"scheme": "Latest", "major": 1},
                "artifactTags": {"source": "aib"}
            }]
        }
    })
}

/// A template whose only customizer is one inline shell command.
fn shell_template(uai: &str, def: &str, name: &str, command: &str) -> Value {
    template(
        uai,
        def,
        json!([{"type": "Shell", "name": name, "inline": [command]}]),
    )
}

fn tpl_path(env: &Env, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.VirtualMachineImages/imageTemplates/{name}",
        env.rg_id(RG)
    )
}

/// PUTs a template and waits for creation; returns the final operation status body.
async fn create(env: &Env, name: &str, body: Value) -> Value {
    let a = env.put(&tpl_path(env, name), AIB_API, body).await;
    assert_eq!(a.status, 201, "create {name}: {}", a.body);
    assert_eq!(a.body["properties"]["provisioningState"], "Creating");
    let aao = a
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation");
    assert!(
        aao.contains("/providers/Microsoft.VirtualMachineImages/locations/westeurope/operations/"),
        "{aao}"
    );
    ended(env, &aao).await
}

/// The template's `lastRunStatus` as a client reads it.
async fn last_run(env: &Env, name: &str) -> Value {
    env.get(&tpl_path(env, name), AIB_API).await.body["properties"]["lastRunStatus"].clone()
}

/// `GET .../runOutputs{rest}` of a template: the list (`rest` empty) or one output (`/{name}`).
async fn run_outputs(env: &Env, name: &str, rest: &str) -> Answer {
    env.get(
        &format!("{}/runOutputs{rest}", tpl_path(env, name)),
        AIB_API,
    )
    .await
}

/// Starts a run; returns the Azure-AsyncOperation URL.
async fn start_run(env: &Env, name: &str) -> String {
    let a = env
        .post(&format!("{}/run", tpl_path(env, name)), AIB_API)
        .await;
    assert_eq!(a.status, 202, "run: {}", a.body);
    assert!(a.header("location").is_some(), "run answers a Location too");
    assert!(a.header("retry-after").is_some(), "run answers Retry-After");
    a.header("azure-asyncoperation")
        .expect("Azure-AsyncOperation")
}

/// Creates a template (which must succeed) and starts its run; returns the run's
/// Azure-AsyncOperation URL.
async fn create_and_run(env: &Env, name: &str, body: Value) -> String {
    assert_eq!(create(env, name, body).await["status"], "Succeeded");
    start_run(env, name).await
}

/// Waits (up to 30 s) for an operation to end; returns its final status body.
async fn ended(env: &Env, aao: &str) -> Value {
    env.wait_status(aao, Duration::from_secs(30)).await
}

/// Starts a run of an existing template and waits for it to end; returns the final status body.
async fn run_to_end(env: &Env, name: &str) -> Value {
    ended(env, &start_run(env, name).await).await
}

/// The staging account's blob endpoint, found as a client would: list the staging group's
/// storage accounts; the Owner gets Blob Data Reader on it to read logs.
async fn staging_endpoint(env: &Env, name: &str) -> String {
    let t = env.get(&tpl_path(env, name), AIB_API).await;
    let staging = t.body["properties"]["exactStagingResourceGroup"]
        .as_str()
        .expect("exactStagingResourceGroup")
        .to_string();
    let list = env
        .get(
            &format!("{staging}/resources?$filter=resourceType%20eq%20'Microsoft.Storage/storageAccounts'"),
            RG_API,
        )
        .await;
    let account = list.body["value"][0]["id"]
        .as_str()
        .expect("staging account")
        .to_string();
    env.emu.grant(env.emu.object_id(), BLOB_READER, &account);
    let acc = env.get(&account, STORAGE_API).await;
    acc.body["properties"]["primaryEndpoints"]["blob"]
        .as_str()
        .expect("endpoint")
        .to_string()
}

/// The newest customization.log in the staging account.
async fn log_of(env: &Env, name: &str, op_message: &str) -> String {
    let endpoint = staging_endpoint(env, name).await;
    let i = op_message
        .find("packerlogs/")
        .expect("log path in the message");
    let rest = &op_message[i..];
    let end = rest.find("customization.log").expect("log name") + "customization.log".len();
    let path = &rest[..end];
    env.download(&format!("{endpoint}{path}"))
        .await
        .expect("customization.log exists")
}

/// Strict PUT validation: unknown and wrongly cased fields, the identity rules, the timeout
/// bound, and 2025-10-01-only fields at 2024-02-01 all answer 400 ValidationFailed.
#[tokio::test]
async fn template_put_is_validated_strictly() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    let good = shell_template(&uai, &def, "hi", "echo hi");
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            {
                let mut b = good.clone();
                b["properties"]["optimize"] = json!({"vmboot": {"state": "Enabled"}});
                b
            },
            AIB_API,
            "unknown field \"vmboot\"",
        ),
        (
            {
                let mut b = good.clone();
                b["properties"]["Source"] = b["properties"]["source"].clone();
                b
            },
            AIB_API,
            "unknown field \"Source\"",
        ),
        (
            {
                let mut b = good.clone();
                b.as_object_mut().expect("o").remove("identity");
                b
            },
            AIB_API,
            "identity",
        ),
        (
            {
                let mut b = good.clone();
                b["properties"]["buildTimeoutInMinutes"] = json!(961);
                b
            },
            AIB_API,
            "buildTimeoutInMinutes",
        ),
        (
            {
                let mut b = good.clone();
                b["properties"]["customize"][0]["scriptUri"] =
                    json!("https://x.blob.core.windows.net/c/a.sh");
                b
            },
            AIB_API,
            "Only one of",
        ),
        (
            {
                let mut b = good.clone();
                b["properties"]["distribute"][0]["replicationMode"] = json!("Shallow");
                b
            },
            "2024-02-01",
            "unknown field \"replicationMode\"",
        ),
        (
            {
                let mut b = good.clone();
                b["properties"]["distribute"][0]["replicationRegions"] = json!(["westeurope"]);
                b
            },
            AIB_API,
            "targetRegions",
        ),
        (
            {
                let mut b = good.clone();
                b["properties"]["source"] = json!({"type": "ManagedImage"});
                b
            },
            AIB_API,
            "imageId",
        ),
        (
            {
                let mut b = good.clone();
                b["properties"]["customize"][0] =
                    json!({"type": "PowerShell", "inline": ["x"], "runAsSystem": true});
                b
            },
            AIB_API,
            "runAsSystem",
        ),
    ];
    for (i, (body, api, needle)) in cases.into_iter().enumerate() {
        let a = env
            .put(&tpl_path(&env, &format!("bad{i}")), api, body)
            .await;
        assert_eq!(a.status, 400, "case {i}: {}", a.body);
        assert_eq!(a.code(), "ValidationFailed", "case {i}");
        assert!(a.message().contains(needle), "case {i}: {}", a.message());
    }
    let missing = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope",
        env.rg_id(RG)
    );
    let a = env
        .put(
            &tpl_path(&env, "noid"),
            AIB_API,
            template(&missing, &def, json!([])),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "FailedIdentityOperation");
    let a = env.get(&tpl_path(&env, "bad0"), AIB_API).await;
    assert_eq!(a.status, 404, "a refused template does not exist");
    let a = env.put(&tpl_path(&env, "ok"), "2023-07-01", good).await;
    assert_eq!(a.status, 400, "unsupported api-version");
    assert!(a.message().contains("2025-10-01") && a.message().contains("2024-02-01"));
}

/// The whole happy path: creation with a checked script download, the staging group, 409 on
/// re-PUT, a run through every sub-state, a gallery version from `versioning: Latest`, run
/// outputs, the growing customization.log, and delete keeping the version.
#[tokio::test]
async fn build_runs_through_sub_states_and_publishes_a_version() {
    let env = start(true).await;
    let (uai, principal, def) = setup(&env).await;
    let endpoint = env.scripts_account(RG, "aibscripts", "scripts").await;
    let script = "#!/bin/bash\necho install\n";
    env.upload(&format!("{endpoint}scripts/install.sh"), script)
        .await;
    let account_id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/aibscripts",
        env.rg_id(RG)
    );
    env.emu.grant(&principal, BLOB_READER, &account_id);
    let sha = sha2::Sha256::digest(script.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let customize = json!([
        {"type": "Shell", "name": "install", "scriptUri": format!("{endpoint}scripts/install.sh"), "sha256Checksum": sha},
        {"type": "File", "name": "copy", "sourceUri": format!("{endpoint}scripts/install.sh"), "destination": "/tmp/install.sh"},
        {"type": "Shell", "name": "inline step", "inline": ["echo done", "exit 0"]}
    ]);
    let body = template(&uai, &def, customize);
    let st = create(&env, "it-good", body.clone()).await;
    assert_eq!(st["status"], "Succeeded", "{st}");
    let t = env.get(&tpl_path(&env, "it-good"), AIB_API).await;
    assert_eq!(t.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        t.body["identity"]["userAssignedIdentities"][&uai]["principalId"],
        principal.as_str()
    );
    let staging = t.body["properties"]["exactStagingResourceGroup"]
        .as_str()
        .expect("staging")
        .to_string();
    let staging_name = staging.rsplit('/').next().unwrap_or("").to_string();
    assert!(
        staging_name.starts_with(&format!("IT_{RG}_it-good_")),
        "{staging_name}"
    );
    let g = env.get(&staging, RG_API).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["tags"]["imageTemplateName"], "it-good");
    assert_eq!(g.body["tags"]["imageTemplateResourceGroupName"], RG);

    let again = env.put(&tpl_path(&env, "it-good"), AIB_API, body).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "Conflict");
    assert!(
        again
            .message()
            .starts_with("Update/Upgrade of image templates is currently not supported")
    );
    let patched = env
        .call(
            reqwest::Method::PATCH,
            &tpl_path(&env, "it-good"),
            AIB_API,
            Some(json!({"tags": {"env": "patched"}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["tags"]["env"], "patched");

    // Slow the clock so every sub-state lasts about a real second, even on a busy machine.
    let defaults = env.emu.knobs().get().aib;
    env.tune(|k| {
        k.time_scale = 150.0;
        k.aib.queue = Duration::from_secs(150);
        k.aib.build = Duration::from_secs(150);
        k.aib.customizer = Duration::from_secs(60);
        k.aib.distribute = Duration::from_secs(150);
    });
    let aao = start_run(&env, "it-good").await;
    let again = env
        .post(&format!("{}/run", tpl_path(&env, "it-good")), AIB_API)
        .await;
    assert_eq!(again.status, 409, "a second run while one is under way");
    assert_eq!(again.code(), "OperationNotAllowed");
    let del = env.delete(&tpl_path(&env, "it-good"), AIB_API).await;
    assert_eq!(del.code(), "OperationNotAllowed", "delete while running");
    let mut seen = Vec::<String>::new();
    let mut log_sizes = BTreeSet::new();
    let endpoint_staging = staging_endpoint(&env, "it-good").await;
    let started = Instant::now();
    loop {
        let t = env.get(&tpl_path(&env, "it-good"), AIB_API).await;
        let lrs = &t.body["properties"]["lastRunStatus"];
        let sub = lrs["runSubState"].as_str().unwrap_or("").to_string();
        if seen.last() != Some(&sub) {
            seen.push(sub);
        }
        if lrs["runState"] != "Running" {
            assert_eq!(lrs["runState"], "Succeeded", "{lrs}");
            assert_ne!(lrs["endTime"], "0001-01-01T00:00:00Z");
            break;
        }
        if let Some(list) = list_blobs(
            &env,
            &format!("{endpoint_staging}packerlogs?restype=container&comp=list"),
        )
        .await
            && let Some(name) = list
                .split("<Name>")
                .nth(1)
                .and_then(|s| s.split("</Name>").next())
            && let Some(text) = env
                .download(&format!("{endpoint_staging}packerlogs/{name}"))
                .await
        {
            log_sizes.insert(text.len());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "run did not end: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        seen,
        ["Queued", "Building", "Customizing", "Distributing"],
        "sub-states in order"
    );
    assert!(
        log_sizes.len() >= 3,
        "the log grew while the build ran: {log_sizes:?}"
    );
    let st = env.wait_status(&aao, Duration::from_secs(5)).await;
    assert_eq!(st["status"], "Succeeded");

    let outs = run_outputs(&env, "it-good", "").await;
    assert_eq!(outs.status, 200);
    let out = &outs.body["value"][0];
    assert_eq!(out["name"], "ubuntu-2204");
    let version_id = out["properties"]["artifactId"]
        .as_str()
        .expect("artifactId")
        .to_string();
    assert_eq!(
        version_id,
        format!("{def}/versions/1.0.0"),
        "versioning Latest with major 1 and no versions"
    );
    let one = run_outputs(&env, "it-good", "/ubuntu-2204").await;
    assert_eq!(one.body["properties"]["artifactId"], version_id.as_str());
    let v = env
        .get(
            &format!("{version_id}?$expand=ReplicationStatus"),
            COMPUTE_API,
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(v.body["tags"]["source"], "aib");
    assert_eq!(
        v.body["properties"]["publishingProfile"]["targetRegions"][0]["name"],
        "West Europe"
    );
    assert_eq!(
        v.body["properties"]["replicationStatus"]["aggregatedState"],
        "Completed"
    );

    let list = list_blobs(
        &env,
        &format!("{endpoint_staging}packerlogs?restype=container&comp=list"),
    )
    .await
    .expect("list");
    let name = list
        .split("<Name>")
        .nth(1)
        .and_then(|s| s.split("</Name>").next())
        .expect("a log blob")
        .to_string();
    assert!(name.ends_with("/customization.log"), "{name}");
    let text = env
        .download(&format!("{endpoint_staging}packerlogs/{name}"))
        .await
        .expect("log");
    assert_eq!(
        text.matches("(telemetry) Starting provisioner").count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches("(telemetry) ending").count(), 3);
    assert!(text.contains("(telemetry) Starting provisioner file"));
    assert!(text.contains("(telemetry) Finalizing."));

    // A second run publishes the next patch under major 1.
    env.tune(|k| {
        k.time_scale = 600.0;
        k.aib = defaults;
    });
    let aao = start_run(&env, "it-good").await;
    assert_eq!(ended(&env, &aao).await["status"], "Succeeded");
    let outs = run_outputs(&env, "it-good", "").await;
    assert_eq!(
        outs.body["value"][0]["properties"]["artifactId"],
        format!("{def}/versions/1.0.1")
    );

    let listed = env
        .get(
            &format!(
                "/subscriptions/{}/providers/Microsoft.VirtualMachineImages/imageTemplates",
                env.sub()
            ),
            AIB_API,
        )
        .await;
    assert!(
        listed.body["value"]
            .as_array()
            .is_some_and(|v| v.iter().any(|t| t["name"] == "it-good"))
    );
    let filtered = env
        .get(
            &format!(
                "{}/resources?$filter=substringof('it-go',name)",
                env.rg_id(RG)
            ),
            RG_API,
        )
        .await;
    assert!(
        filtered.body["value"].as_array().is_some_and(|v| v
            .iter()
            .any(|t| t["type"] == "Microsoft.VirtualMachineImages/imageTemplates")),
        "{}",
        filtered.body
    );

    let del = env.delete(&tpl_path(&env, "it-good"), AIB_API).await;
    assert_eq!(del.status, 202, "{}", del.body);
    let done = env
        .wait_location(
            &del.header("location").expect("Location"),
            Duration::from_secs(30),
        )
        .await;
    assert!(done.status == 200 || done.status == 204);
    assert_eq!(
        env.get(&tpl_path(&env, "it-good"), AIB_API).await.status,
        404
    );
    assert_eq!(
        env.get(&staging, RG_API).await.status,
        404,
        "staging group removed"
    );
    assert_eq!(
        env.get(&version_id, COMPUTE_API).await.status,
        200,
        "gallery versions stay"
    );
}

async fn list_blobs(env: &Env, url: &str) -> Option<String> {
    let r = env
        .blob_request(reqwest::Method::GET, url)
        .await
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

/// Creation fails, leaving a Failed template with provisioningError, when the identity has no
/// data role, the blob is missing, or the checksum is wrong; a failed template must be deleted
/// before the name can be used again.
#[tokio::test]
async fn artefact_problems_fail_creation() {
    let env = start(true).await;
    let (uai, principal, def) = setup(&env).await;
    let endpoint = env.scripts_account(RG, "aibscripts", "scripts").await;
    env.upload(&format!("{endpoint}scripts/a.sh"), "echo a\n")
        .await;
    let shell = |uri: String, sha: Option<&str>| {
        let mut c = json!({"type": "Shell", "name": "s", "scriptUri": uri});
        if let Some(s) = sha {
            c["sha256Checksum"] = json!(s);
        }
        json!([c])
    };
    // No data role yet: Unauthorized, even though the Owner can read the blob.
    let st = create(
        &env,
        "it-norole",
        template(&uai, &def, shell(format!("{endpoint}scripts/a.sh"), None)),
    )
    .await;
    assert_eq!(st["status"], "Failed", "{st}");
    assert_eq!(st["error"]["code"], "Unauthorized");
    assert!(
        st["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Not authorized to access the resource")
    );
    let t = env.get(&tpl_path(&env, "it-norole"), AIB_API).await;
    assert_eq!(t.body["properties"]["provisioningState"], "Failed");
    assert!(
        t.body["properties"]["provisioningError"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("a.sh")
    );
    let run = env
        .post(&format!("{}/run", tpl_path(&env, "it-norole")), AIB_API)
        .await;
    assert_eq!(
        run.code(),
        "OperationNotAllowed",
        "a failed template cannot run"
    );

    let account_id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/aibscripts",
        env.rg_id(RG)
    );
    env.emu.grant(&principal, BLOB_READER, &account_id);
    let st = create(
        &env,
        "it-missing",
        template(
            &uai,
            &def,
            shell(format!("{endpoint}scripts/nope.sh"), None),
        ),
    )
    .await;
    assert_eq!(st["status"], "Failed");
    assert!(
        st["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("nope.sh")
    );
    let wrong = "0".repeat(64);
    let st = create(
        &env,
        "it-sum",
        template(
            &uai,
            &def,
            shell(format!("{endpoint}scripts/a.sh"), Some(&wrong)),
        ),
    )
    .await;
    assert_eq!(st["status"], "Failed");
    assert!(
        st["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("checksum"),
        "{st}"
    );

    // Re-submitting the failed name needs a delete first.
    let body = template(&uai, &def, shell(format!("{endpoint}scripts/a.sh"), None));
    assert_eq!(
        env.put(&tpl_path(&env, "it-norole"), AIB_API, body.clone())
            .await
            .status,
        409
    );
    let del = env.delete(&tpl_path(&env, "it-norole"), AIB_API).await;
    assert_eq!(del.status, 202);
    env.wait_location(
        &del.header("location").expect("Location"),
        Duration::from_secs(30),
    )
    .await;
    let st = create(&env, "it-norole", body).await;
    assert_eq!(st["status"], "Succeeded", "{st}");
}

/// An inline `exit 1` fails the run in Customizing with PackerBuildFailed naming the step and
/// the log path; the log ends with that step's error; validExitCodes can allow the code.
#[tokio::test]
async fn inline_exit_code_fails_the_build_with_its_log() {
    let env = start(true).await;
    let (uai, _, def) = setup(&env).await;
    let customize = json!([
        {"type": "Shell", "name": "first", "inline": ["echo ok"]},
        {"type": "Shell", "name": "breaks", "inline": ["echo about to fail", "exit 1"]},
        {"type": "Shell", "name": "never", "inline": ["echo unreachable"]}
    ]);
    assert_eq!(
        create(&env, "it-fail", template(&uai, &def, customize)).await["status"],
        "Succeeded"
    );
    let aao = start_run(&env, "it-fail").await;
    let st = ended(&env, &aao).await;
    assert_eq!(st["status"], "Failed");
    assert_eq!(st["error"]["code"], "PackerBuildFailed");
    let msg = st["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("'breaks'"), "{msg}");
    assert!(
        msg.contains("/blobServices/default/containers/packerlogs/")
            && msg.contains("/customization.log"),
        "{msg}"
    );
    let t = env.get(&tpl_path(&env, "it-fail"), AIB_API).await;
    let lrs = &t.body["properties"]["lastRunStatus"];
    assert_eq!(lrs["runState"], "Failed");
    assert_eq!(lrs["runSubState"], "Customizing");
    assert_eq!(lrs["message"], msg.as_str());
    let log = log_of(&env, "it-fail", &msg).await;
    assert_eq!(
        log.matches("(telemetry) Starting provisioner shell")
            .count(),
        2,
        "{log}"
    );
    assert!(!log.contains("unreachable"));
    let last_error = log
        .lines()
        .rev()
        .find(|l| l.contains("Script exited with non-zero exit status: 1"))
        .expect("error line");
    assert!(last_error.contains("PACKER ERR"));

    // PowerShell with validExitCodes [0, 3010] accepts `exit 3010`.
    let mut body = template(
        &uai,
        &def,
        json!([{"type": "PowerShell", "name": "reboot-needed", "inline": ["exit 3010"], "validExitCodes": [0, 3010]}]),
    );
    body["properties"]["distribute"][0]["versioning"] = json!({"scheme": "Latest", "major": 2});
    let aao = create_and_run(&env, "it-ps", body).await;
    assert_eq!(ended(&env, &aao).await["status"], "Succeeded");
}

/// A build longer than buildTimeoutInMinutes fails with the deadline message; a distributor to
/// a missing definition fails in Distributing; an explicit existing version too.
#[tokio::test]
async fn timeout_and_distribution_failures() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    env.tune(|k| k.aib.customizer = Duration::from_secs(3600));
    let mut body = shell_template(&uai, &def, "slow", "sleep 3600");
    body["properties"]["buildTimeoutInMinutes"] = json!(30);
    let aao = create_and_run(&env, "it-slow", body).await;
    let st = ended(&env, &aao).await;
    assert_eq!(st["status"], "Failed");
    assert!(
        st["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("context deadline exceeded"),
        "{st}"
    );
    assert_eq!(
        last_run(&env, "it-slow").await["runSubState"],
        "Customizing"
    );
    env.tune(|k| k.aib.customizer = Duration::from_secs(60));

    let mut body = template(&uai, &def, json!([]));
    body["properties"]["distribute"][0]["galleryImageId"] = json!(format!(
        "{}/providers/Microsoft.Compute/galleries/gal_aib/images/missing",
        env.rg_id(RG)
    ));
    assert_eq!(create(&env, "it-nodef", body).await["status"], "Succeeded");
    let st = run_to_end(&env, "it-nodef").await;
    assert_eq!(st["status"], "Failed");
    let lrs = last_run(&env, "it-nodef").await;
    assert_eq!(lrs["runSubState"], "Distributing");
    assert!(lrs["message"].as_str().unwrap_or("").contains("missing"));

    let mut body = template(&uai, &def, json!([]));
    body["properties"]["distribute"][0]["galleryImageId"] = json!(format!("{def}/versions/5.0.0"));
    body["properties"]["distribute"][0]
        .as_object_mut()
        .expect("o")
        .remove("versioning");
    assert_eq!(
        create(&env, "it-explicit", body).await["status"],
        "Succeeded"
    );
    assert_eq!(run_to_end(&env, "it-explicit").await["status"], "Succeeded");
    assert_eq!(
        env.get(&format!("{def}/versions/5.0.0"), COMPUTE_API)
            .await
            .status,
        200
    );
    let st = run_to_end(&env, "it-explicit").await;
    assert_eq!(st["status"], "Failed", "the explicit version exists now");
    assert!(
        st["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already exists"),
        "{st}"
    );
}

/// Cancel moves Running → Canceling → Canceled; a second cancel, a run and a delete while
/// canceling are refused; afterwards delete works.
#[tokio::test]
async fn cancel_a_long_build() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    env.tune(|k| {
        k.aib.customizer = Duration::from_secs(36000);
        k.aib.cancel = Duration::from_secs(300);
    });
    let mut body = shell_template(&uai, &def, "long", "sleep 36000");
    body["properties"]["buildTimeoutInMinutes"] = json!(960);
    let run_aao = create_and_run(&env, "it-long", body).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = env
        .post(&format!("{}/cancel", tpl_path(&env, "it-long")), AIB_API)
        .await;
    assert_eq!(c.status, 202, "{}", c.body);
    let cancel_aao = c.header("azure-asyncoperation").expect("aao");
    assert_eq!(last_run(&env, "it-long").await["runState"], "Canceling");
    assert_eq!(
        env.post(&format!("{}/cancel", tpl_path(&env, "it-long")), AIB_API)
            .await
            .code(),
        "OperationNotAllowed"
    );
    assert_eq!(
        env.post(&format!("{}/run", tpl_path(&env, "it-long")), AIB_API)
            .await
            .code(),
        "OperationNotAllowed"
    );
    assert_eq!(
        env.delete(&tpl_path(&env, "it-long"), AIB_API).await.code(),
        "OperationNotAllowed"
    );
    assert_eq!(ended(&env, &cancel_aao).await["status"], "Succeeded");
    assert_eq!(
        env.wait_status(&run_aao, Duration::from_secs(5)).await["status"],
        "Canceled"
    );
    assert_eq!(last_run(&env, "it-long").await["runState"], "Canceled");
    let del = env.delete(&tpl_path(&env, "it-long"), AIB_API).await;
    assert_eq!(del.status, 202);
}

/// Knobs force a failure in a phase, a PartiallySucceeded end, and internal errors on template
/// reads during a run (which a client must retry).
#[tokio::test]
async fn knobs_force_failures_and_partial_success() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    assert_eq!(
        create(&env, "it-knobs", template(&uai, &def, json!([]))).await["status"],
        "Succeeded"
    );
    env.tune(|k| k.aib.fail_in = Some("Building".into()));
    let st = run_to_end(&env, "it-knobs").await;
    assert_eq!(st["status"], "Failed");
    assert_eq!(last_run(&env, "it-knobs").await["runSubState"], "Building");

    env.tune(|k| {
        k.aib.fail_in = None;
        k.aib.partially_succeed = true;
        k.aib.internal_error_rate = 0.5;
        k.aib.distribute = Duration::from_secs(1200);
    });
    let aao = start_run(&env, "it-knobs").await;
    let mut errors = 0;
    for _ in 0..40 {
        let a = env.get(&tpl_path(&env, "it-knobs"), AIB_API).await;
        if a.status == 500 {
            assert_eq!(a.code(), "InternalOperationError");
            errors += 1;
        }
    }
    assert!(errors > 0, "some reads during the run failed");
    assert_eq!(ended(&env, &aao).await["status"], "Succeeded");
    let mut t = env.get(&tpl_path(&env, "it-knobs"), AIB_API).await;
    while t.status == 500 {
        t = env.get(&tpl_path(&env, "it-knobs"), AIB_API).await;
    }
    assert_eq!(
        t.body["properties"]["lastRunStatus"]["runState"],
        "PartiallySucceeded"
    );
}

/// Deleting while the template is still being created is refused.
#[tokio::test]
async fn delete_while_creating_is_not_allowed() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    env.tune(|k| k.aib.create = Duration::from_secs(6000));
    let a = env
        .put(
            &tpl_path(&env, "it-new"),
            AIB_API,
            template(&uai, &def, json!([])),
        )
        .await;
    assert_eq!(a.status, 201);
    let d = env.delete(&tpl_path(&env, "it-new"), AIB_API).await;
    assert_eq!(d.status, 409);
    assert_eq!(d.code(), "OperationNotAllowed");
    assert!(d.message().contains("creating"), "{}", d.message());
}

/// A given staging group must be empty: a used one fails creation with BadStagingResourceGroup;
/// an empty one is used (tagged) and only emptied on delete; a missing one is created and
/// removed with the template.
#[tokio::test]
async fn given_staging_group_rules() {
    let env = start(false).await;
    let (uai, principal, def) = setup(&env).await;
    env.group("rg-stage-used").await;
    env.identity("rg-stage-used", "squatter").await;
    env.emu
        .grant(&principal, CONTRIBUTOR, &env.rg_id("rg-stage-used"));
    let mut body = template(&uai, &def, json!([]));
    body["properties"]["stagingResourceGroup"] = json!(env.rg_id("rg-stage-used"));
    let st = create(&env, "it-used", body).await;
    assert_eq!(st["status"], "Failed");
    assert_eq!(st["error"]["code"], "BadStagingResourceGroup");
    let t = env.get(&tpl_path(&env, "it-used"), AIB_API).await;
    assert_eq!(
        t.body["properties"]["provisioningError"]["provisioningErrorCode"],
        "BadStagingResourceGroup"
    );
    let del = env.delete(&tpl_path(&env, "it-used"), AIB_API).await;
    env.wait_location(
        &del.header("location").expect("Location"),
        Duration::from_secs(30),
    )
    .await;
    let squatter = env
        .get(
            &format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/squatter",
                env.rg_id("rg-stage-used")
            ),
            MSI_API,
        )
        .await;
    assert_eq!(
        squatter.status, 200,
        "a refused group is left alone on delete"
    );

    env.group("rg-stage").await;
    env.emu
        .grant(&principal, CONTRIBUTOR, &env.rg_id("rg-stage"));
    let mut body = template(&uai, &def, json!([]));
    body["properties"]["stagingResourceGroup"] = json!(env.rg_id("rg-stage"));
    assert_eq!(create(&env, "it-staged", body).await["status"], "Succeeded");
    let t = env.get(&tpl_path(&env, "it-staged"), AIB_API).await;
    assert!(
        t.body["properties"]["exactStagingResourceGroup"]
            .as_str()
            .unwrap_or("")
            .ends_with("/rg-stage")
    );
    let g = env.get(&env.rg_id("rg-stage"), RG_API).await;
    assert_eq!(g.body["tags"]["usedBy"], "AzureVMImageBuilder");
    let inside = env
        .get(&format!("{}/resources", env.rg_id("rg-stage")), RG_API)
        .await;
    assert_eq!(
        inside.body["value"][0]["type"],
        "Microsoft.Storage/storageAccounts"
    );
    let del = env.delete(&tpl_path(&env, "it-staged"), AIB_API).await;
    env.wait_location(
        &del.header("location").expect("Location"),
        Duration::from_secs(30),
    )
    .await;
    let g = env.get(&env.rg_id("rg-stage"), RG_API).await;
    assert_eq!(g.status, 200, "a given staging group stays");
    assert!(g.body["tags"].get("usedBy").is_none());
    let inside = env
        .get(&format!("{}/resources", env.rg_id("rg-stage")), RG_API)
        .await;
    assert_eq!(inside.body["value"], json!([]), "and is emptied");

    let mut body = template(&uai, &def, json!([]));
    body["properties"]["stagingResourceGroup"] = json!(env.rg_id("rg-stage-new"));
    assert_eq!(
        create(&env, "it-new-stage", body).await["status"],
        "Succeeded"
    );
    assert_eq!(
        env.get(&env.rg_id("rg-stage-new"), RG_API).await.status,
        200
    );
    let del = env.delete(&tpl_path(&env, "it-new-stage"), AIB_API).await;
    env.wait_location(
        &del.header("location").expect("Location"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        env.get(&env.rg_id("rg-stage-new"), RG_API).await.status,
        404,
        "created by Image Builder, removed with the template"
    );

    // Deleting the template's own group takes the template and its staging group along.
    let mut body = template(&uai, &def, json!([]));
    body["properties"]["stagingResourceGroup"] = json!(env.rg_id("rg-stage-orphan"));
    assert_eq!(create(&env, "it-orphan", body).await["status"], "Succeeded");
    let del = env.delete(&env.rg_id(RG), RG_API).await;
    assert_eq!(del.status, 202);
    env.wait_location(
        &del.header("location").expect("Location"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(env.get(&env.rg_id(RG), RG_API).await.status, 404);
    assert_eq!(
        env.get(&env.rg_id("rg-stage-orphan"), RG_API).await.status,
        404
    );
}

/// `autoRun: Enabled` builds once right after creation; ManagedImage and VHD distributors give
/// their run outputs next to the SharedImage one.
#[tokio::test]
async fn auto_run_and_other_distributors() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    let mut body = template(&uai, &def, json!([]));
    body["properties"]["autoRun"] = json!({"state": "Enabled"});
    let image_id = format!(
        "{}/providers/Microsoft.Compute/images/img-agent",
        env.rg_id(RG)
    );
    body["properties"]["distribute"]
        .as_array_mut()
        .expect("list")
        .extend([
            json!({"type": "ManagedImage", "runOutputName": "managed", "imageId": image_id, "location": "westeurope"}),
            json!({"type": "VHD", "runOutputName": "vhd"}),
        ]);
    assert_eq!(create(&env, "it-auto", body).await["status"], "Succeeded");
    let started = Instant::now();
    loop {
        let t = env.get(&tpl_path(&env, "it-auto"), AIB_API).await;
        let state = t.body["properties"]["lastRunStatus"]["runState"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if state == "Succeeded" {
            break;
        }
        assert!(state.is_empty() || state == "Running", "{state}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the automatic run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outs = run_outputs(&env, "it-auto", "").await;
    let mut all: Vec<Value> = outs.body["value"].as_array().cloned().unwrap_or_default();
    let mut next = outs.body["nextLink"].as_str().map(str::to_string);
    while let Some(link) = next {
        let page = env.call_url(reqwest::Method::GET, &link, None).await;
        all.extend(page.body["value"].as_array().cloned().unwrap_or_default());
        next = page.body["nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(all.len(), 3, "{all:?}");
    let by = |n: &str| {
        all.iter()
            .find(|o| o["name"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by("managed")["properties"]["artifactId"], image_id.as_str());
    assert!(
        by("vhd")["properties"]["artifactUri"]
            .as_str()
            .unwrap_or("")
            .ends_with(".vhd")
    );
    assert!(
        by("ubuntu-2204")["properties"]["artifactId"]
            .as_str()
            .unwrap_or("")
            .contains("/versions/")
    );
}

/// Without rights on the gallery the template identity cannot publish: the run fails in
/// Distributing with the authorization error; the caller needs assign rights on the identity.
#[tokio::test]
async fn identity_permissions_are_enforced() {
    let env = start(false).await;
    env.group(RG).await;
    let (uai, principal) = env.identity(RG, "id-aib").await;
    let def = env.gallery_with_image(RG, "gal_aib", "ubuntu-2204").await;
    // Contributor only on a group that is not the gallery's.
    env.group("rg-other").await;
    env.emu
        .grant(&principal, CONTRIBUTOR, &env.rg_id("rg-other"));
    assert_eq!(
        create(&env, "it-norights", template(&uai, &def, json!([]))).await["status"],
        "Succeeded"
    );
    let st = run_to_end(&env, "it-norights").await;
    assert_eq!(st["status"], "Failed");
    assert!(
        st["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("AuthorizationFailed"),
        "{st}"
    );

    // A caller who is Contributor of the template's group only may not use an identity elsewhere.
    env.group("rg-ids").await;
    let (far_uai, _) = env.identity("rg-ids", "id-far").await;
    let oid = env.emu.add_client("limited-app", "limited-secret");
    env.emu.grant(&oid, CONTRIBUTOR, &env.rg_id(RG));
    let r = env
        .http
        .post(format!(
            "{}{}/oauth2/v2.0/token",
            env.emu.url(),
            env.emu.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "limited-app"),
            ("client_secret", "limited-secret"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .expect("token");
    let limited: Value = r.json().await.expect("json");
    let limited = limited["access_token"].as_str().expect("token").to_string();
    let url = format!(
        "{}{}?api-version={AIB_API}",
        env.emu.url(),
        tpl_path(&env, "it-linked").trim_start_matches('/')
    );
    let r = env
        .http
        .put(url)
        .bearer_auth(limited)
        .json(&template(&far_uai, &def, json!([])))
        .send()
        .await
        .expect("put");
    let a = Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.json().await.unwrap_or(Value::Null),
    };
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.code(), "LinkedAuthorizationFailed");
}

/// The build VM shows in the staging group during a build and goes at its end, except after a
/// customizer failure with `errorHandling.onCustomizerError: abort`, which leaves it there.
#[tokio::test]
async fn build_vm_is_cleaned_up_unless_error_handling_aborts() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    let staging_types = |env_body: Value| -> Vec<String> {
        env_body["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["type"].as_str().map(str::to_string))
            .collect()
    };
    let failing = json!([{"type": "Shell", "name": "breaks", "inline": ["exit 2"]}]);
    for (name, handling, vm_left) in [
        ("it-cleanup", "cleanup", false),
        ("it-abort", "abort", true),
    ] {
        let mut body = template(&uai, &def, failing.clone());
        body["properties"]["errorHandling"] =
            json!({"onCustomizerError": handling, "onValidationError": "cleanup"});
        assert_eq!(create(&env, name, body).await["status"], "Succeeded");
        let st = run_to_end(&env, name).await;
        assert_eq!(st["status"], "Failed");
        let t = env.get(&tpl_path(&env, name), AIB_API).await;
        let staging = t.body["properties"]["exactStagingResourceGroup"]
            .as_str()
            .expect("staging")
            .to_string();
        let list = env.get(&format!("{staging}/resources"), RG_API).await;
        let mut types = staging_types(list.body.clone());
        let mut next = list.body["nextLink"].as_str().map(str::to_string);
        while let Some(link) = next {
            let page = env.call_url(reqwest::Method::GET, &link, None).await;
            types.extend(staging_types(page.body.clone()));
            next = page.body["nextLink"].as_str().map(str::to_string);
        }
        assert_eq!(
            types
                .iter()
                .any(|t| t == "Microsoft.Compute/virtualMachines"),
            vm_left,
            "{handling}: {types:?}"
        );
        assert!(
            types
                .iter()
                .any(|t| t == "Microsoft.Storage/storageAccounts")
        );
    }
}

/// With `stuck_canceling`, a canceled build stays `Canceling` (as users report), and the
/// template cannot be deleted meanwhile.
#[tokio::test]
async fn stuck_canceling_knob_keeps_the_run_canceling() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    env.tune(|k| {
        k.aib.customizer = Duration::from_secs(36000);
        k.aib.stuck_canceling = true;
    });
    let body = shell_template(&uai, &def, "long", "sleep 1");
    create_and_run(&env, "it-stuck", body).await;
    let c = env
        .post(&format!("{}/cancel", tpl_path(&env, "it-stuck")), AIB_API)
        .await;
    assert_eq!(c.status, 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(last_run(&env, "it-stuck").await["runState"], "Canceling");
    let aao = c.header("azure-asyncoperation").expect("aao");
    let st = env.call_url(reqwest::Method::GET, &aao, None).await;
    assert_eq!(st.body["status"], "InProgress");
    assert_eq!(
        env.delete(&tpl_path(&env, "it-stuck"), AIB_API)
            .await
            .code(),
        "OperationNotAllowed"
    );
}

/// Collects the distinct sub-states of a run until it ends; returns them and the final state.
async fn watch(env: &Env, name: &str) -> (Vec<String>, String) {
    let mut seen = Vec::<String>::new();
    let started = Instant::now();
    loop {
        let t = env.get(&tpl_path(env, name), AIB_API).await;
        let lrs = &t.body["properties"]["lastRunStatus"];
        let sub = lrs["runSubState"].as_str().unwrap_or("").to_string();
        if !sub.is_empty() && seen.last() != Some(&sub) {
            seen.push(sub);
        }
        let state = lrs["runState"].as_str().unwrap_or("").to_string();
        if !state.is_empty() && state != "Running" {
            return (seen, state);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "run did not end: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Optimizing and Validating appear only when configured; a failing validator fails the run in
/// Validating, and with continueDistributeOnFailure the image is still distributed.
#[tokio::test]
async fn optimize_and_validate_phases() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    env.tune(|k| {
        k.time_scale = 150.0;
        for d in [
            &mut k.aib.queue,
            &mut k.aib.build,
            &mut k.aib.optimize,
            &mut k.aib.validate,
            &mut k.aib.distribute,
        ] {
            *d = Duration::from_secs(120);
        }
        k.aib.customizer = Duration::from_secs(60);
    });
    let mut body = shell_template(&uai, &def, "a", "echo a");
    body["properties"]["optimize"] = json!({"vmBoot": {"state": "Enabled"}});
    body["properties"]["validate"] = json!({"inVMValidations": [{"type": "Shell", "name": "check", "inline": ["test -f /etc/os-release"]}]});
    create_and_run(&env, "it-full", body.clone()).await;
    let (seen, state) = watch(&env, "it-full").await;
    assert_eq!(
        seen,
        [
            "Queued",
            "Building",
            "Customizing",
            "Optimizing",
            "Validating",
            "Distributing"
        ]
    );
    assert_eq!(state, "Succeeded");

    env.tune(|k| k.time_scale = 600.0);
    body["properties"]["validate"]["inVMValidations"][0]["inline"] = json!(["exit 1"]);
    create_and_run(&env, "it-badcheck", body.clone()).await;
    let (seen, state) = watch(&env, "it-badcheck").await;
    assert_eq!(state, "Failed");
    assert_eq!(seen.last().map(String::as_str), Some("Validating"));
    let outs = run_outputs(&env, "it-badcheck", "").await;
    assert_eq!(outs.body["value"], json!([]), "nothing distributed");

    body["properties"]["validate"]["continueDistributeOnFailure"] = json!(true);
    create_and_run(&env, "it-badcheck-go", body).await;
    let (_, state) = watch(&env, "it-badcheck-go").await;
    assert_eq!(state, "Failed", "validation failure fails the run");
    let outs = run_outputs(&env, "it-badcheck-go", "").await;
    assert!(
        outs.body["value"][0]["properties"]["artifactId"]
            .as_str()
            .unwrap_or("")
            .contains("/versions/"),
        "but the image was distributed: {}",
        outs.body
    );
}

/// A SharedImageVersion source is resolved when the build starts: `latest` skips versions
/// excluded from latest and is reported as `exactVersion`; a missing version fails in Building.
#[tokio::test]
async fn shared_image_version_source_is_resolved() {
    let env = start(false).await;
    let (uai, _, def) = setup(&env).await;
    let base = env.gallery_with_image(RG, "gal_base", "base").await;
    let src = format!("{}/providers/Microsoft.Compute/images/src", env.rg_id(RG));
    for (v, exclude) in [("1.0.0", false), ("1.1.0", false), ("2.0.0", true)] {
        let body = json!({"location": "westeurope", "properties": {
            "publishingProfile": {"excludeFromLatest": exclude},
            "storageProfile": {"source": {"id": src}}}});
        let a = env
            .put(&format!("{base}/versions/{v}"), COMPUTE_API, body)
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        env.wait_status(
            &a.header("azure-asyncoperation").expect("aao"),
            Duration::from_secs(20),
        )
        .await;
    }
    let mut body = template(&uai, &def, json!([]));
    body["properties"]["source"] =
        json!({"type": "SharedImageVersion", "imageVersionId": format!("{base}/versions/latest")});
    body["properties"]["distribute"][0]["versioning"] = json!({"scheme": "Source"});
    assert_eq!(
        create(&env, "it-from-gallery", body).await["status"],
        "Succeeded"
    );
    let st = run_to_end(&env, "it-from-gallery").await;
    assert_eq!(st["status"], "Succeeded", "{st}");
    let t = env.get(&tpl_path(&env, "it-from-gallery"), AIB_API).await;
    assert_eq!(
        t.body["properties"]["source"]["exactVersion"],
        format!("{base}/versions/1.1.0"),
        "2.0.0 is excluded from latest"
    );
    let outs = run_outputs(&env, "it-from-gallery", "").await;
    assert_eq!(
        outs.body["value"][0]["properties"]["artifactId"],
        format!("{def}/versions/1.1.0"),
        "versioning Source takes the source's version"
    );

    let mut body = template(&uai, &def, json!([]));
    body["properties"]["source"] =
        json!({"type": "SharedImageVersion", "imageVersionId": format!("{base}/versions/9.9.9")});
    assert_eq!(
        create(&env, "it-no-source", body).await["status"],
        "Succeeded"
    );
    let st = run_to_end(&env, "it-no-source").await;
    assert_eq!(st["status"], "Failed");
    assert_eq!(st["error"]["code"], "BadSharedImageVersionSource");
    assert_eq!(
        last_run(&env, "it-no-source").await["runSubState"],
        "Building"
    );
}

/// A failing in-VM validation names validation.log, which exists next to customization.log and
/// ends with the validator's error.
#[tokio::test]
async fn failing_validator_writes_validation_log() {
    let env = start(true).await;
    let (uai, _, def) = setup(&env).await;
    let mut body = shell_template(&uai, &def, "a", "echo a");
    body["properties"]["validate"] = json!({"inVMValidations": [
        {"type": "Shell", "name": "check-agent", "inline": ["systemctl is-active agent", "exit 3"]}]});
    assert_eq!(create(&env, "it-vlog", body).await["status"], "Succeeded");
    let st = run_to_end(&env, "it-vlog").await;
    assert_eq!(st["status"], "Failed");
    assert_eq!(st["error"]["code"], "ValidationFailed");
    let msg = st["error"]["message"].as_str().unwrap_or("").to_string();
    let i = msg.find("packerlogs/").expect("log path");
    let rest = &msg[i..];
    let path =
        &rest[..rest.find("validation.log").expect("validation.log") + "validation.log".len()];
    let endpoint = staging_endpoint(&env, "it-vlog").await;
    let vlog = env
        .download(&format!("{endpoint}{path}"))
        .await
        .expect("validation.log");
    assert!(
        vlog.contains("(telemetry) Starting validator shell"),
        "{vlog}"
    );
    assert!(vlog.contains("systemctl is-active agent"));
    let last_start = &vlog[vlog.rfind("Starting validator").unwrap_or(0)..];
    assert!(last_start.contains("non-zero exit status: 3"), "{vlog}");
    let clog = env
        .download(&format!(
            "{endpoint}{}",
            path.replace("validation.log", "customization.log")
        ))
        .await
        .expect("customization.log");
    assert!(clog.contains("(telemetry) Finalizing."));
}
