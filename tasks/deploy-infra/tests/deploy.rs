//! deploy-infra against the emulator: the whole infrastructure from nothing, idempotent
//! re-runs, drift put back with one update, what-if, both role modes, the principal replication
//! window, and throttling and server errors.

use std::time::Duration;

use aib_emulator::KnobValues;

use crate::support::*;

const READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

/// The role GUIDs assigned to `principal` at exactly `scope`.
async fn roles_at(emu: &aib_emulator::Emulator, scope: &str, principal: &str) -> Vec<String> {
    let list = get(
        emu,
        &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()"),
    )
    .await;
    list["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["properties"]["principalId"] == principal
                && a["properties"]["scope"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(scope))
        })
        .filter_map(|a| {
            a["properties"]["roleDefinitionId"]
                .as_str()
                .and_then(|id| id.rsplit('/').next())
                .map(str::to_ascii_lowercase)
        })
        .collect()
}

/// From an empty subscription everything is created as the file declares, the outputs name it,
/// and a second run reports every resource unchanged and sends no write at all.
#[tokio::test]
async fn from_nothing_everything_is_created_and_a_rerun_sends_no_write() {
    let emu = emulator().await;
    let params = Params::local(&[]);

    let first = deploy_infra(&params, &["--output", "json"], ci_env(&emu)).await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    let doc = first.document();
    let outcome = &doc["outcome"];
    assert!(
        statuses(outcome)
            .iter()
            .all(|s| s.ends_with("create/applied") || s.starts_with("provider ")),
        "{:#?}",
        statuses(outcome)
    );

    let rg = rg_id(&emu);
    let group = get(&emu, &rg).await;
    assert_eq!(group["location"], "westeurope");
    assert_eq!(group["tags"]["environment"], "local");
    assert_eq!(group["tags"]["managedBy"], "aib");

    let identity_id =
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-aib-local");
    let identity = get(&emu, &identity_id).await;
    let principal = identity["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(doc["outputs"]["identityPrincipalId"], principal.as_str());
    assert_eq!(
        doc["outputs"]["identityClientId"],
        identity["properties"]["clientId"]
    );
    assert!(
        doc["outputs"]["identityId"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&identity_id)
    );

    let account_id = format!("{rg}/providers/Microsoft.Storage/storageAccounts/staibscriptslocal");
    let account = get(&emu, &account_id).await;
    let p = &account["properties"];
    assert_eq!(account["kind"], "StorageV2");
    assert_eq!(account["sku"]["name"], "Standard_LRS");
    assert_eq!(p["allowBlobPublicAccess"], false);
    assert_eq!(p["minimumTlsVersion"], "TLS1_2");
    assert_eq!(p["allowSharedKeyAccess"], false);
    assert_eq!(p["supportsHttpsTrafficOnly"], true);
    assert_eq!(doc["outputs"]["storageAccount"], "staibscriptslocal");
    assert_eq!(
        doc["outputs"]["storageBlobEndpoint"],
        p["primaryEndpoints"]["blob"]
    );
    let container = get(
        &emu,
        &format!("{account_id}/blobServices/default/containers/scripts-linux"),
    )
    .await;
    assert_eq!(container["properties"]["publicAccess"], "None");
    assert_eq!(doc["outputs"]["container"], "scripts-linux");

    let gallery_id = format!("{rg}/providers/Microsoft.Compute/galleries/gal_aib_local");
    let image = get(&emu, &format!("{gallery_id}/images/ubuntu-2204-agent")).await;
    let ip = &image["properties"];
    assert_eq!(ip["osType"], "Linux");
    assert_eq!(ip["osState"], "Generalized");
    assert_eq!(ip["hyperVGeneration"], "V2");
    assert_eq!(ip["identifier"]["publisher"], "aib");
    assert_eq!(ip["identifier"]["offer"], "ci-agent");
    assert_eq!(ip["identifier"]["sku"], "ubuntu-2204-gen2");
    assert_eq!(ip["features"][0]["name"], "SecurityType");
    assert_eq!(ip["features"][0]["value"], "TrustedLaunchSupported");
    assert_eq!(doc["outputs"]["galleryId"], gallery_id.as_str());
    assert_eq!(
        doc["outputs"]["imageDefinitionId"],
        format!("{gallery_id}/images/ubuntu-2204-agent").as_str()
    );

    // Least privilege: the custom role (with the §5.4 actions) on the group, the data reader
    // on the account, nothing on the subscription.
    let on_group = roles_at(&emu, &rg, &principal).await;
    assert_eq!(on_group.len(), 1, "{on_group:?}");
    let role = get(
        &emu,
        &format!(
            "{rg}/providers/Microsoft.Authorization/roleDefinitions/{}",
            on_group[0]
        ),
    )
    .await;
    assert_eq!(role["properties"]["type"], "CustomRole");
    let actions = role["properties"]["permissions"][0]["actions"].to_string();
    assert!(
        actions.contains("Microsoft.Compute/galleries/images/versions/write"),
        "{actions}"
    );
    assert!(!actions.contains('*'), "{actions}");
    assert_eq!(roles_at(&emu, &account_id, &principal).await, [READER]);
    let sub = format!("/subscriptions/{}", emu.subscription_id());
    assert!(roles_at(&emu, &sub, &principal).await.is_empty());

    emu.clear_requests();
    let second = deploy_infra(&params, &["--output", "json"], ci_env(&emu)).await;
    assert_eq!(second.code, Some(0), "{}", second.all());
    let statuses = statuses(&second.document()["outcome"]);
    assert!(
        statuses.iter().all(|s| s.ends_with("unchanged/unchanged")),
        "{statuses:#?}"
    );
    let log = emu.requests();
    assert_eq!(writes(&log), Vec::<String>::new());
    assert_eq!(write_posts(&log), Vec::<String>::new());
    assert_eq!(
        second.document()["outputs"]["identityPrincipalId"],
        principal.as_str()
    );
}

/// The text plan says what would happen; a second run says every resource is unchanged.
#[tokio::test]
async fn the_text_plan_lists_creates_then_all_unchanged() {
    let emu = emulator().await;
    let params = Params::local(&[]);
    let first = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    assert!(
        first
            .stderr
            .contains("+ create    resource group rg-aib-local"),
        "{}",
        first.stderr
    );
    assert!(
        first
            .stderr
            .contains("+ create    storage account staibscriptslocal"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("Plan: "), "{}", first.stderr);
    let second = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_run(
        &second,
        0,
        &[
            "Plan: 0 to create, 0 to update, ",
            "= unchanged gallery gal_aib_local",
        ],
    );
}

/// A tag changed in Azure on one resource is put back with one update of that resource; no
/// other resource gets a request that writes.
#[tokio::test]
async fn a_drifted_tag_is_one_update_and_nothing_else_is_touched() {
    let emu = emulator().await;
    let params = Params::local(&[]);
    let first = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    let account_id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/staibscriptslocal",
        rg_id(&emu)
    );
    let _: serde_json::Value = azure(&emu)
        .arm
        .patch(
            &account_id,
            &serde_json::json!({"tags": {"environment": "changed", "owner": "someone"}}),
        )
        .await
        .expect("tag changed");

    emu.clear_requests();
    let run = deploy_infra(&params, &["--output", "json"], ci_env(&emu)).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let doc = run.document();
    let updated: Vec<&serde_json::Value> = doc["outcome"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .collect();
    assert_eq!(updated.len(), 1, "{updated:#?}");
    assert_eq!(updated[0]["kind"], "storageAccount");
    assert_eq!(updated[0]["changes"][0]["property"], "tags.environment");
    assert_eq!(updated[0]["changes"][0]["from"], "changed");
    assert_eq!(updated[0]["changes"][0]["to"], "local");
    assert_eq!(
        writes(&emu.requests()).len(),
        1,
        "{:?}",
        writes(&emu.requests())
    );
    assert!(writes(&emu.requests())[0].starts_with("PATCH "));
    let account = get(&emu, &account_id).await;
    assert_eq!(account["tags"]["environment"], "local");
    assert_eq!(
        account["tags"]["owner"], "someone",
        "tags set by others are kept"
    );
}

/// `--what-if` prints the plan and sends nothing that writes: only GETs, token requests and
/// the read-only checkNameAvailability.
#[tokio::test]
async fn what_if_prints_the_plan_and_sends_no_write() {
    let emu = emulator().await;
    let params = Params::local(&[]);
    let run = deploy_infra(&params, &["--what-if"], ci_env(&emu)).await;
    assert_run(
        &run,
        0,
        &[
            "+ create    managed identity id-aib-local",
            "--what-if: nothing was changed.",
        ],
    );
    let log = emu.requests();
    assert_eq!(writes(&log), Vec::<String>::new());
    assert_eq!(write_posts(&log), Vec::<String>::new());
    assert!(
        log.iter()
            .all(|r| matches!(r.method.as_str(), "GET" | "HEAD" | "POST"))
    );
    let group = azure(&emu)
        .arm
        .get_optional::<serde_json::Value>(&rg_id(&emu))
        .await
        .expect("read");
    assert!(group.is_none(), "nothing was created");
}

/// With `--role-mode contributor` the identity gets Contributor on the subscription (and the
/// data reader role), and no custom role is made.
#[tokio::test]
async fn contributor_mode_grants_contributor_on_the_subscription() {
    let emu = emulator().await;
    let params = Params::local(&[]);
    let run = deploy_infra(
        &params,
        &["--role-mode", "contributor", "--output", "json"],
        ci_env(&emu),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let principal = run.document()["outputs"]["identityPrincipalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let sub = format!("/subscriptions/{}", emu.subscription_id());
    assert_eq!(roles_at(&emu, &sub, &principal).await, [CONTRIBUTOR]);
    assert!(roles_at(&emu, &rg_id(&emu), &principal).await.is_empty());
    let statuses = statuses(&run.document()["outcome"]);
    assert!(
        !statuses.iter().any(|s| s.starts_with("roleDefinition")),
        "{statuses:#?}"
    );
}

/// When Entra has not replicated the new identity yet and ARM does not honour
/// `principalType`, the assignment is refused with PrincipalNotFound, retried, and succeeds.
#[tokio::test]
async fn role_assignments_wait_out_the_principal_replication_window() {
    let emu = emulator_with(KnobValues {
        principal_type_bypass: false,
        principal_visibility_delay: Duration::from_secs(14),
        ..KnobValues::default()
    })
    .await;
    let params = Params::local(&[]);
    let run = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let log = emu.requests();
    let assignment_puts: Vec<u16> = log
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/roleAssignments/"))
        .map(|r| r.status)
        .collect();
    assert!(
        assignment_puts.contains(&400),
        "refused at first: {assignment_puts:?}"
    );
    assert_eq!(
        assignment_puts.iter().filter(|s| **s == 201).count(),
        2,
        "{assignment_puts:?}"
    );
}

/// With 429s (Retry-After) and 500/503s injected, the run still succeeds, and a clean re-run
/// finds everything in place.
#[tokio::test]
async fn throttling_and_server_errors_are_ridden_out() {
    let emu = emulator().await;
    emu.knobs().set_throttle_rate(0.15, 1);
    emu.knobs().set_server_error_rate(0.1);
    let params = Params::local(&[]);
    let run = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let faults = emu
        .requests()
        .iter()
        .filter(|r| matches!(r.status, 429 | 500 | 503))
        .count();
    assert!(faults > 0, "faults were injected");
    emu.knobs().set_throttle_rate(0.0, 1);
    emu.knobs().set_server_error_rate(0.0);
    emu.clear_requests();
    let again = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_nothing_written(&emu);
}

/// A staging resource group named in the file is created empty in the same region, and the
/// identity gets Contributor on it (what Image Builder requires of a given staging group).
#[tokio::test]
async fn a_given_staging_group_is_created_with_contributor_for_the_identity() {
    let emu = emulator().await;
    let params = Params::local(&[(
        "\"buildTimeoutInMinutes\": 120,",
        "\"buildTimeoutInMinutes\": 120, \"stagingResourceGroup\": \"rg-aib-local-staging\",",
    )]);
    let run = deploy_infra(&params, &["--output", "json"], ci_env(&emu)).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let principal = run.document()["outputs"]["identityPrincipalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let staging = format!(
        "/subscriptions/{}/resourceGroups/rg-aib-local-staging",
        emu.subscription_id()
    );
    assert_eq!(get(&emu, &staging).await["location"], "westeurope");
    assert_eq!(roles_at(&emu, &staging, &principal).await, [CONTRIBUTOR]);
    emu.clear_requests();
    let again = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_nothing_written(&emu);
}

/// On GitHub Actions the outputs go to `$GITHUB_OUTPUT` and the plan and result to the job
/// summary as a table.
#[tokio::test]
async fn github_actions_gets_outputs_and_a_summary_table() {
    let emu = emulator().await;
    let params = Params::local(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("output");
    let summary = dir.path().join("summary");
    let mut env = ci_env(&emu);
    env.push(("GITHUB_ACTIONS".into(), "true".into()));
    env.push(("GITHUB_OUTPUT".into(), output.display().to_string()));
    env.push(("GITHUB_STEP_SUMMARY".into(), summary.display().to_string()));
    let run = deploy_infra(&params, &[], env).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let outputs = std::fs::read_to_string(&output).expect("outputs written");
    for name in [
        "resourceGroup",
        "identityId",
        "identityClientId",
        "identityPrincipalId",
        "storageAccount",
        "storageBlobEndpoint",
        "container",
        "galleryId",
        "imageDefinitionId",
    ] {
        assert!(outputs.contains(&format!("{name}<<")), "{name}: {outputs}");
    }
    let summary = std::fs::read_to_string(&summary).expect("summary written");
    assert!(
        summary.contains("| Resource | Name | Plan | Result |"),
        "{summary}"
    );
    assert!(
        summary.contains("| storage account | `staibscriptslocal` | create | done |"),
        "{summary}"
    );
}

/// Ctrl-C stops before the next operation: what was in flight finishes, the rest is listed as
/// not applied, the exit code is 130, and a re-run finishes the job.
#[tokio::test]
async fn ctrl_c_stops_between_operations_and_a_rerun_finishes() {
    let emu = emulator_with(KnobValues {
        lro_duration: Duration::from_secs(4),
        ..KnobValues::default()
    })
    .await;
    let params = Params::local(&[]);
    let child = spawn_deploy_infra(&params, &[], ci_env(&emu));
    let pid = child.id();
    let arm = azure(&emu).arm;
    let gallery = format!(
        "{}/providers/Microsoft.Compute/galleries/gal_aib_local",
        rg_id(&emu)
    );
    for _ in 0..200 {
        if arm
            .get_optional::<serde_json::Value>(&gallery)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let run = finish(child).await;
    assert_run(&run, 130, &["interrupted: applied"]);
    assert!(
        run.stderr.contains("not applied")
            && run.stderr.contains("image definition ubuntu-2204-agent"),
        "{}",
        run.stderr
    );
    let again = deploy_infra(&params, &["--output", "json"], ci_env(&emu)).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    let statuses = statuses(&again.document()["outcome"]);
    assert!(
        statuses
            .iter()
            .any(|s| s == "imageDefinition ubuntu-2204-agent: create/applied"),
        "{statuses:#?}"
    );
}

/// An image definition whose tag drifted is updated in place, and what aib does not manage on
/// it (here `recommended`) is kept, not dropped by the PUT.
#[tokio::test]
async fn an_image_definition_update_keeps_properties_aib_does_not_manage() {
    let emu = emulator().await;
    let params = Params::local(&[]);
    let first = deploy_infra(&params, &[], ci_env(&emu)).await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    let image_id = format!(
        "{}/providers/Microsoft.Compute/galleries/gal_aib_local/images/ubuntu-2204-agent",
        rg_id(&emu)
    );
    let mut image = get(&emu, &image_id).await;
    image["tags"]["environment"] = "changed".into();
    image["properties"]["recommended"] = serde_json::json!({"vCPUs": {"min": 2, "max": 16}});
    let _: serde_json::Value = azure(&emu).arm.put(&image_id, &image).await.expect("drift");

    emu.clear_requests();
    let run = deploy_infra(&params, &["--output", "json"], ci_env(&emu)).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let statuses = statuses(&run.document()["outcome"]);
    let changed: Vec<&String> = statuses
        .iter()
        .filter(|s| !s.ends_with("unchanged/unchanged"))
        .collect();
    assert_eq!(
        changed,
        ["imageDefinition ubuntu-2204-agent: update/applied"],
        "{statuses:#?}"
    );
    let after = get(&emu, &image_id).await;
    assert_eq!(after["tags"]["environment"], "local");
    assert_eq!(after["properties"]["recommended"]["vCPUs"]["max"], 16);
    assert_eq!(after["properties"]["osType"], "Linux");
    assert_eq!(writes(&emu.requests()).len(), 1);
}
