//! `aib validate` end to end: the bundled files, the lookup flags, the JSON document, the CI
//! annotations and the help texts.

use std::fs;

use serde_json::Value;

use crate::support::{aib, aib_with_env, repo_root};

const BUNDLED: &[&str] = &[
    "parameters/dev.image.parameters.json",
    "parameters/dev.image.parameters.windows.json",
    "parameters/local.image.parameters.json",
    "parameters/prd.image.parameters.json",
    "parameters/prd.image.parameters.windows.json",
    "parameters/sbx.image.parameters.json",
    "parameters/sbx.image.parameters.windows.json",
];

/// With no arguments, every bundled file is valid and its summary names the resource group,
/// storage account, gallery, image definition, source image and each step.
#[test]
fn validate_without_arguments_checks_every_bundled_file_and_summarises_it() {
    let run = aib(&["validate"]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    for file in BUNDLED {
        assert!(
            out.contains(&format!("{file}: valid")),
            "{file} missing in:\n{out}"
        );
    }
    for fact in [
        "resource group    rg-aib-sbx",
        "identity          id-aib-sbx",
        "account staibscriptssbx, container scripts-linux",
        "gallery           gal_aib_sbx",
        "image definition  ubuntu-2204-agent (Linux, Generalized, V2, TrustedLaunchSupported",
        "Marketplace image Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
        "1. Shell \"Install PowerShell\": runs uploaded script Install-LinuxPowerShell.sh",
        "2. File \"Download the software installer\": copies uploaded file Initialize-LinuxSoftware.ps1 to /tmp/Initialize-LinuxSoftware.ps1",
        "3. Shell \"Install the software\": runs inline: pwsh",
        "Marketplace image MicrosoftWindowsServer:WindowsServer:2022-datacenter-azure-edition:latest",
        "runs uploaded script Install-WindowsPowerShell.ps1 (elevated)",
        "WindowsRestart \"Restart after PowerShell\"",
        "gal_aib_prd/ubuntu-2204-agent to westeurope (2 replicas, Standard_ZRS), northeurope (1 replica, Standard_LRS)",
        "7 valid, 0 invalid",
    ] {
        assert!(out.contains(fact), "\"{fact}\" missing in:\n{out}");
    }
}

/// `--env` with `--os` picks `<env>.image.parameters.<os>.json` and nothing else.
#[test]
fn env_and_os_select_the_os_variant_only() {
    let run = aib(&["validate", "--env", "prd", "--os", "windows"]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("parameters/prd.image.parameters.windows.json: valid"),
        "{out}"
    );
    assert!(out.contains("1 valid, 0 invalid"), "{out}");
}

/// An OS with no variant file falls back to `<env>.image.parameters.json`.
#[test]
fn os_without_a_variant_file_falls_back_to_the_plain_file() {
    let run = aib(&["validate", "-e", "local", "--os", "windows"]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("parameters/local.image.parameters.json: valid"),
        "{out}"
    );
}

/// `--env` alone picks the plain file only, not the OS variants.
#[test]
fn env_alone_picks_the_plain_file() {
    let run = aib(&["validate", "--env", "sbx"]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("parameters/sbx.image.parameters.json: valid"),
        "{out}"
    );
    assert!(!out.contains("windows.json"), "{out}");
}

/// An environment without a file is bad input (exit 2) and the error lists what was tried.
#[test]
fn unknown_environment_exits_2_listing_the_paths_tried() {
    let run = aib(&["validate", "--env", "qa", "--os", "linux"]);
    let out = run.all();
    assert_eq!(run.code, Some(2), "{out}");
    assert!(
        out.contains("parameters/qa.image.parameters.linux.json"),
        "{out}"
    );
    assert!(out.contains("parameters/qa.image.parameters.json"), "{out}");
}

/// An environment name that cannot be part of a file name is refused before any lookup.
#[test]
fn environment_with_a_path_separator_is_refused() {
    let run = aib(&["validate", "--env", "../sbx"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.all().contains("'../sbx' is not a valid name"),
        "{}",
        run.all()
    );
}

/// `--output json` prints one document whose outcome lists every file with its summary.
#[test]
fn json_output_is_one_document_with_every_summary() {
    let run = aib(&["validate", "--output", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let doc: Value = serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    let outcome = &doc["outcome"];
    assert_eq!(outcome["valid"], Value::Bool(true));
    let files = outcome["files"].as_array().expect("files is an array");
    assert_eq!(files.len(), BUNDLED.len());
    let sbx = files
        .iter()
        .find(|f| f["summary"]["file"] == "parameters/sbx.image.parameters.json")
        .expect("sbx is listed");
    assert_eq!(sbx["status"], "valid");
    assert_eq!(sbx["summary"]["resourceGroup"], "rg-aib-sbx");
    assert_eq!(sbx["summary"]["storageAccount"], "staibscriptssbx");
    assert_eq!(
        sbx["summary"]["imageDefinition"]["name"],
        "ubuntu-2204-agent"
    );
    assert_eq!(sbx["summary"]["steps"].as_array().map(Vec::len), Some(3));
}

/// In JSON, an invalid file's problems carry line, column, path, message and hint, and a
/// valid file next to it is still summarised.
#[test]
fn json_output_lists_problems_with_positions_next_to_valid_files() {
    let bad = "tests/fixtures/invalid/several-problems-at-once.json";
    let good = "tests/fixtures/valid/linux.json";
    let run = aib(&["validate", "-p", good, "-p", bad, "--output", "json"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let doc: Value = serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    let files = doc["outcome"]["files"].as_array().expect("files");
    assert_eq!(files[0]["status"], "valid");
    assert_eq!(files[1]["status"], "invalid");
    let problems = files[1]["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 3, "every problem at once: {problems:?}");
    let paths: Vec<&str> = problems.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "storageAccountName",
            "imageTemplate.customizationSteps[0].script",
            "imageTemplate.buildTimeoutInMinutes"
        ]
    );
    assert_eq!(problems[0]["line"], 9);
    assert_eq!(problems[0]["column"], 38);
    assert!(
        problems[1]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("setup.sh"))
    );
}

/// On GitHub Actions each problem becomes an `::error` annotation at its file, line and column.
#[test]
fn github_actions_get_error_annotations_at_the_position() {
    let file = "tests/fixtures/invalid/timeout-negative.json";
    let run = aib_with_env(&["validate", "-p", file], &[("GITHUB_ACTIONS", "true")]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stdout.contains(&format!(
            "::error file={file},line=41,col=34::imageTemplate.buildTimeoutInMinutes: expected a whole number from 0 to 960, found -5"
        )),
        "{}",
        run.stdout
    );
}

/// `--root` finds `parameters/` and the scripts folder in another checkout.
#[test]
fn root_flag_looks_up_files_in_another_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir(dir.path().join("parameters")).expect("mkdir");
    fs::copy(
        repo_root().join("tests/fixtures/valid/minimal.json"),
        dir.path().join("parameters/qa.image.parameters.json"),
    )
    .expect("copy");
    let root = dir.path().to_string_lossy().into_owned();
    let run = aib(&["validate", "--root", &root]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("qa.image.parameters.json: valid"), "{out}");
    assert!(out.contains("1 valid, 0 invalid"), "{out}");
}

/// A file that does not exist is bad input, reported with its name.
#[test]
fn missing_parameter_file_exits_2() {
    let run = aib(&["validate", "-p", "no/such/file.json"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.all()
            .contains("cannot read parameter file no/such/file.json"),
        "{}",
        run.all()
    );
}

/// `aib --help` and `aib validate --help` explain every flag with an example.
#[test]
fn help_explains_every_flag_with_an_example() {
    let top = aib(&["--help"]);
    assert_eq!(top.code, Some(0));
    for needle in [
        "validate",
        "schema",
        "Examples:",
        "aib validate --env prd --os windows",
    ] {
        assert!(
            top.stdout.contains(needle),
            "\"{needle}\" missing in:\n{}",
            top.stdout
        );
    }
    let sub = aib(&["validate", "--help"]);
    assert_eq!(sub.code, Some(0));
    // Help is wrapped to the terminal width: compare with whitespace collapsed.
    let text = sub.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "--env <ENV>",
        "--os <OS>",
        "--parameters <FILE>",
        "--root <DIR>",
        "--output <FORMAT>",
        "Example: `--env prd`",
        "Example: `--os windows`",
        "Example: `--output json`",
        "Example: `--parameters parameters/dev.image.parameters.json`",
        "Example: `--root ../images`",
        "aib validate --parameters a.json --parameters b.json --output json",
        "Exit status: 0 when every file is valid, 2",
    ] {
        assert!(
            text.contains(needle),
            "\"{needle}\" missing in:\n{}",
            sub.stdout
        );
    }
}

/// `aib schema` prints exactly the committed schema file.
#[test]
fn schema_command_prints_the_committed_schema() {
    let run = aib(&["schema"]);
    assert_eq!(run.code, Some(0));
    let committed = fs::read_to_string(repo_root().join("schema/image.parameters.schema.json"))
        .expect("committed schema");
    assert_eq!(run.stdout, committed);
}

/// On GitHub Actions the job summary gets one table row per file.
#[test]
fn github_job_summary_has_a_row_per_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("summary.md");
    let summary_path = summary.to_string_lossy().into_owned();
    let run = aib_with_env(
        &[
            "validate",
            "-p",
            "parameters/sbx.image.parameters.json",
            "-p",
            "tests/fixtures/invalid/timeout-negative.json",
        ],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", &summary_path),
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    let markdown = fs::read_to_string(&summary).expect("summary written");
    assert!(
        markdown.contains("### Parameter files: 1 valid, 1 invalid"),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "| `parameters/sbx.image.parameters.json` | valid | rg-aib-sbx | gal_aib_sbx/ubuntu-2204-agent |"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `tests/fixtures/invalid/timeout-negative.json` | 1 problem |"),
        "{markdown}"
    );
}
