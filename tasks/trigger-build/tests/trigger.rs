//! The template trigger-build creates, the build it starts, what-if and the concurrency guard.

use serde_json::json;

use aib_testkit::{Run, sha256_hex};

use crate::support::{ACCOUNT, CONTAINER, DEFINITION, PREFIX, World};

const INSTALL: &str = "#!/bin/bash\necho install\n";
const CONF: &str = "{\"a\": 1}\n";

fn steps() -> serde_json::Value {
    json!([
        {"type": "Shell", "name": "install", "script": "install.sh"},
        {"type": "Shell", "name": "inline", "inline": ["echo hi"]},
        {"type": "File", "name": "conf", "file": "conf.json", "destination": "/tmp/conf.json"}
    ])
}

/// The created template points every uploaded script at its blob with the local file's
/// SHA-256, distributes to the definition, and its build is running; outputs name it.
#[tokio::test(flavor = "multi_thread")]
async fn trigger_creates_the_template_with_checksums_and_starts_the_build() {
    // Arrange
    let w = World::start(&[("install.sh", INSTALL), ("conf.json", CONF)]).await;
    w.parameters(steps());

    // Act
    let run = w.run(&["--output", "json"]);

    // Assert
    let outcome = run.expect(0).outcome();
    let name = outcome["templateName"]
        .as_str()
        .expect("templateName")
        .to_owned();
    assert!(name.starts_with(&format!("{PREFIX}-20")), "{name}");
    assert_eq!(name.len(), PREFIX.len() + 20, "{name}");
    assert!(
        outcome["templateId"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/imageTemplates/{name}"))
    );
    assert!(outcome["startedAt"].as_str().is_some(), "{outcome:#}");
    // The run's operation, for wait-for-build to follow: it answers with the run's status.
    let operation = outcome["runOperation"].as_str().expect("runOperation");
    let path = operation
        .strip_prefix(w.emu.url().as_str().trim_end_matches('/'))
        .expect("the operation is on the ARM endpoint");
    let status: serde_json::Value = w
        .azure
        .arm
        .get(path)
        .await
        .expect("the run's operation can be read");
    assert!(status["status"].as_str().is_some(), "{status:#}");
    let template = w.template(&name).await;
    let props = &template["properties"];
    assert_eq!(props["provisioningState"], "Succeeded", "{template:#}");
    assert_eq!(
        props["lastRunStatus"]["runState"], "Running",
        "{template:#}"
    );
    let customize = props["customize"].as_array().unwrap();
    let blob = |n: &str| format!("/{ACCOUNT}/{CONTAINER}/{n}");
    assert!(
        customize[0]["scriptUri"]
            .as_str()
            .unwrap()
            .ends_with(&blob("install.sh"))
    );
    assert_eq!(
        customize[0]["sha256Checksum"],
        sha256_hex(INSTALL.as_bytes())
    );
    assert!(customize[1].get("sha256Checksum").is_none());
    assert!(
        customize[2]["sourceUri"]
            .as_str()
            .unwrap()
            .ends_with(&blob("conf.json"))
    );
    assert_eq!(customize[2]["sha256Checksum"], sha256_hex(CONF.as_bytes()));
    let d = &props["distribute"][0];
    assert!(
        d["galleryImageId"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/images/{DEFINITION}"))
    );
    assert_eq!(d["runOutputName"], name.as_str());
    assert_eq!(d["artifactTags"]["aibInputsHash"], outcome["inputsHash"]);
    assert_eq!(props["buildTimeoutInMinutes"], 120);
    assert_eq!(props["vmProfile"]["vmSize"], "Standard_D2ds_v5");
    assert_eq!(template["tags"]["team"], "platform");
    assert_eq!(
        outcome["stagingResourceGroup"], props["exactStagingResourceGroup"],
        "{outcome:#}"
    );
    assert_eq!(w.template_requests("POST"), 1, "one run request");
}

/// --what-if prints the body it would submit (with the checksums) and sends no write.
#[tokio::test(flavor = "multi_thread")]
async fn what_if_prints_the_body_and_sends_no_write() {
    // Arrange
    let w = World::start(&[("install.sh", INSTALL), ("conf.json", CONF)]).await;
    w.parameters(steps());
    w.emu.clear_requests();

    // Act
    let run = w.run(&["--what-if", "--output", "json"]);

    // Assert
    let outcome = run.expect(0).outcome();
    assert_eq!(outcome["whatIf"], true);
    assert_eq!(
        outcome["template"]["properties"]["customize"][0]["sha256Checksum"],
        sha256_hex(INSTALL.as_bytes())
    );
    let writes = w
        .emu
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && r.path.starts_with("/subscriptions/"))
        .count();
    assert_eq!(writes, 0, "{:?}", w.emu.requests());
    let text = w.run(&["--what-if"]);
    text.expect(0);
    assert!(
        text.stderr.contains("\"sha256Checksum\""),
        "{}",
        text.stderr
    );
}

/// A second trigger while the first build of the same image runs is refused naming it;
/// --allow-concurrent starts it anyway.
#[tokio::test(flavor = "multi_thread")]
async fn second_trigger_is_refused_while_a_build_of_the_image_runs() {
    // Arrange
    let w = World::start(&[("install.sh", INSTALL), ("conf.json", CONF)]).await;
    w.parameters(steps());
    let first = w.run(&["--template-name", &format!("{PREFIX}-2026-11-28-10-00-00")]);
    first.expect(0);

    // Act
    let second = w.run(&["--template-name", &format!("{PREFIX}-2026-11-28-10-05-00")]);

    // Assert
    second.expect(1);
    assert!(
        second
            .stderr
            .contains(&format!("{PREFIX}-2026-11-28-10-00-00"))
            && second.stderr.contains("Running"),
        "{}",
        second.stderr
    );
    assert_eq!(
        w.template_requests("PUT"),
        1,
        "the refused trigger created nothing"
    );

    // Act + Assert: the override
    let third = w.run(&[
        "--template-name",
        &format!("{PREFIX}-2026-11-28-10-06-00"),
        "--allow-concurrent",
    ]);
    third.expect(0);
    assert_eq!(
        w.template(&format!("{PREFIX}-2026-11-28-10-06-00")).await["properties"]["lastRunStatus"]["runState"],
        "Running"
    );
}

/// A template whose creation fails (the identity cannot read the scripts account) is
/// reported with the service's message and the fix; exit 1, no run.
#[tokio::test(flavor = "multi_thread")]
async fn creation_failure_reports_the_service_message() {
    // Arrange: the script is named but the blob was never uploaded.
    let w = World::start(&[]).await;
    std::fs::write(w.root.path().join("up/install.sh"), INSTALL).unwrap();
    w.parameters(json!([{"type": "Shell", "script": "install.sh"}]));

    // Act
    let run = w.run(&[]);

    // Assert
    run.expect(1);
    assert!(
        run.stderr.contains("creating image template"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("delete it"), "{}", run.stderr);
    assert!(
        run.stderr.contains("NoCustomizerScript") && run.stderr.contains("upload-scripts"),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.template_requests("POST"),
        0,
        "no run after a failed creation"
    );
}

/// --skip-if-unchanged: after a build succeeded, the same inputs create no template and name
/// the version that holds them; one changed script byte builds again.
#[tokio::test(flavor = "multi_thread")]
async fn skip_if_unchanged_builds_only_when_a_script_changed() {
    // Arrange: one finished build (short builds on this emulator).
    let w = World::start_with(
        &[("install.sh", INSTALL), ("conf.json", CONF)],
        std::time::Duration::from_secs(60),
    )
    .await;
    w.parameters(steps());
    let first = w.run(&["--skip-if-unchanged", "--output", "json"]);
    let first = first.expect(0).outcome();
    assert_eq!(first["skipped"], false);
    let name = first["templateName"].as_str().unwrap().to_owned();
    assert_eq!(w.wait_for_build(&name).await, "Succeeded");

    // Act: nothing changed
    let again = w.run(&["--skip-if-unchanged", "--output", "json"]);

    // Assert
    let again = again.expect(0).outcome();
    assert_eq!(again["skipped"], true, "{again:#}");
    assert!(
        again["existingVersionId"]
            .as_str()
            .is_some_and(|v| v.contains(&format!("/images/{DEFINITION}/versions/"))),
        "{again:#}"
    );
    assert_eq!(w.template_requests("PUT"), 1, "no second template");

    // Act + Assert: one byte of one script changed → a new template and build
    w.upload("install.sh", "#!/bin/bash\necho install!\n").await;
    let changed = w.run(&["--skip-if-unchanged", "--output", "json"]);
    let changed = changed.expect(0).outcome();
    assert_eq!(changed["skipped"], false, "{changed:#}");
    assert_ne!(changed["inputsHash"], first["inputsHash"]);
    assert_eq!(w.template_requests("PUT"), 2);
}

/// On GitHub Actions the template name, id, staging group and start time become step outputs
/// and the job summary names the template and each script's SHA-256.
#[tokio::test(flavor = "multi_thread")]
async fn github_outputs_and_summary_name_the_template() {
    // Arrange
    let w = World::start(&[("install.sh", INSTALL), ("conf.json", CONF)]).await;
    w.parameters(steps());
    let output = w.root.path().join("github_output");
    let summary = w.root.path().join("github_summary");

    // Act
    let run = Run::of(
        w.command(&["--template-name", "it-test-2026-11-28-12-00-00"])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_SHA", "0123abcd")
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_RUN_ID", "99"),
    );

    // Assert
    assert_eq!(run.code, Some(0), "{}", run.all());
    let outputs = std::fs::read_to_string(&output).unwrap();
    for needle in [
        "templateName<<",
        "it-test-2026-11-28-12-00-00",
        "templateId<<",
        "/imageTemplates/it-test-2026-11-28-12-00-00",
        "stagingResourceGroup<<",
        "startTime<<",
        "runOperation<<",
        "inputsHash<<",
    ] {
        assert!(outputs.contains(needle), "{needle} in {outputs}");
    }
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("### trigger-build"), "{summary}");
    assert!(
        summary.contains(&sha256_hex(INSTALL.as_bytes())),
        "{summary}"
    );
    let tags = &w.template("it-test-2026-11-28-12-00-00").await["properties"]["distribute"][0]["artifactTags"];
    assert_eq!(tags["aibCommit"], "0123abcd");
    assert_eq!(tags["aibRunUrl"], "https://github.com/o/r/actions/runs/99");
}

/// Every parameter-file feature the body maps (File step, target regions with replicas,
/// versioning, excludeFromLatest, OS disk size, a staging group by name, a gallery version
/// source and a managed image source) passes Image Builder's strict validator.
#[tokio::test(flavor = "multi_thread")]
async fn every_mapped_field_passes_the_strict_validator() {
    // Arrange
    let w = World::start(&[("install.sh", INSTALL), ("conf.json", CONF)]).await;
    let sub = w.sub.clone();
    let sources = [
        json!({"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s"}),
        json!({"type": "SharedImageVersion", "imageVersionId": format!(
            "/subscriptions/{sub}/resourceGroups/rg-aib-test/providers/Microsoft.Compute/galleries/gal_aib_test/images/ubuntu/versions/latest")}),
        json!({"type": "ManagedImage", "imageId": format!(
            "/subscriptions/{sub}/resourceGroups/rg-aib-test/providers/Microsoft.Compute/images/base")}),
    ];
    for (i, source) in sources.iter().enumerate() {
        let mut file: serde_json::Value =
            serde_json::from_str(&crate::support::parameter_file(steps())).unwrap();
        let t = &mut file["parameters"]["imageTemplate"]["value"];
        t["imageSource"] = source.clone();
        t.as_object_mut().unwrap().remove("replicationRegions");
        t["targetRegions"] = json!([{"name": "westeurope", "replicaCount": 2, "storageAccountType": "Standard_ZRS"}]);
        t["excludeFromLatest"] = json!(true);
        t["osDiskSizeGB"] = json!(64);
        t["stagingResourceGroup"] = json!(format!("rg-stage-{i}"));
        std::fs::write(
            w.root.path().join("parameters/test.image.parameters.json"),
            file.to_string(),
        )
        .unwrap();

        // Act
        let name = format!("it-test-2026-11-28-11-00-0{i}");
        let run = w.run(&["--template-name", &name, "--allow-concurrent"]);

        // Assert
        run.expect(0);
        let template = w.template(&name).await;
        assert_eq!(template["properties"]["provisioningState"], "Succeeded");
        assert_eq!(
            template["properties"]["stagingResourceGroup"],
            format!("/subscriptions/{sub}/resourceGroups/rg-stage-{i}")
        );
    }
}
