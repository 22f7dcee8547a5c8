//! Tests of the parameter-file module as a whole: parsing from strings, the bundled files, the
//! lookup rules, script references and the promise that no input makes the parser panic.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bundled() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo_root().join("parameters"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn valid_fixtures() -> Vec<PathBuf> {
    ["linux", "windows", "minimal"]
        .iter()
        .map(|n| repo_root().join(format!("tests/fixtures/valid/{n}.json")))
        .collect()
}

fn problems(text: &str) -> Vec<Problem> {
    match parse_str("p.json", text) {
        Ok(_) => Vec::new(),
        Err(err) => err.problems().to_vec(),
    }
}

const MINIMAL: &str = r#"{
  "parameters": {
    "location": { "value": "westeurope" },
    "resourceGroupName": { "value": "rg" },
    "identityName": { "value": "id-aib" },
    "storageAccountName": { "value": "staib" },
    "containerName": { "value": "scripts" },
    "galleryName": { "value": "gal" },
    "imageDefinition": { "value": { "name": "img", "osType": "Linux", "publisher": "p", "offer": "o", "sku": "s" } },
    "imageTemplate": { "value": {
      "namePrefix": "it",
      "imageSource": { "type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s" },
      "customizationSteps": [ { "type": "Shell", "script": "setup.sh" } ]
    } }
  }
}"#;

/// Every bundled parameter file (sbx, dev, prd, each OS, local) passes every check, including
/// that the scripts it names exist in scripts/uploads/<os>.
#[test]
fn every_bundled_parameter_file_is_valid() {
    let files = bundled();
    assert_eq!(files.len(), 7, "{files:?}");
    for file in files {
        if let Err(err) = load(&file, &repo_root()) {
            panic!("{err}");
        }
    }
}

/// The typed model gives back exactly what each file says (serialized with the same serde
/// attributes the schema is generated from), so decoder, model and schema agree on every name.
#[test]
fn decoded_model_serializes_back_to_the_files_values() {
    for file in bundled().into_iter().chain(valid_fixtures()) {
        let loaded = load(&file, &repo_root()).unwrap_or_else(|e| panic!("{e}"));
        let text = fs::read_to_string(&file).unwrap();
        let raw: serde_json::Value =
            jsonc_parser::parse_to_serde_value(&text, &Default::default()).unwrap();
        let mut expected = serde_json::Map::new();
        for (name, wrapper) in raw["parameters"].as_object().unwrap() {
            expected.insert(name.clone(), wrapper["value"].clone());
        }
        let actual = serde_json::to_value(&loaded.parameters).unwrap();
        assert_eq!(
            actual,
            serde_json::Value::Object(expected),
            "{}",
            file.display()
        );
    }
}

/// A minimal file parses from a string alone (no file system), with Azure's defaults applied
/// through the accessors and distribution to the location.
#[test]
fn minimal_file_parses_with_defaults() {
    let file = parse_str("p.json", MINIMAL).unwrap();
    let p = &file.parameters;
    assert_eq!(p.image_definition.os_state(), OsState::Generalized);
    assert_eq!(
        p.image_definition.hyper_v_generation(),
        HyperVGeneration::V2
    );
    assert_eq!(p.image_definition.security_type(), SecurityType::Standard);
    assert_eq!(p.scripts_folder(), "scripts/uploads/linux");
    let regions = p.image_template.distribution_regions(&p.location);
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0].name, "westeurope");
    assert_eq!(
        p.image_template.customization_steps[0].uploaded_file(),
        Some("setup.sh")
    );
    assert_eq!(
        file.positions.get("imageTemplate.namePrefix"),
        Some(Position {
            line: 11,
            column: 21
        })
    );
}

/// Comments of both kinds and a UTF-8 byte-order mark are accepted.
#[test]
fn comments_and_byte_order_mark_are_accepted() {
    let text = format!(
        "\u{feff}// line comment\n/* block\ncomment */{}",
        MINIMAL.replacen("\"location\"", "/* where */ \"location\" // inline\n", 1)
    );
    assert!(parse_str("p.json", &text).is_ok());
}

/// Every problem of a file comes out of one run, in file order, each with its own path.
#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let text = MINIMAL
        .replace("\"rg\"", "\"rg.\"")
        .replace("\"staib\"", "\"St\"")
        .replace("\"gal\"", "\"gal-x\"")
        .replace("\"Canonical\"", "42")
        .replace("\"it\"", "\"it ubuntu\"");
    let found = problems(&text);
    let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "resourceGroupName",
            "storageAccountName",
            "galleryName",
            "imageTemplate.namePrefix",
            "imageTemplate.imageSource.publisher"
        ]
    );
    let mut sorted = found.clone();
    sorted.sort_by_key(|p| p.position);
    assert_eq!(found, sorted);
}

/// A problem points at the value's own line and column (columns count characters).
#[test]
fn problem_points_at_the_offending_value() {
    // The comment before the value holds a two-byte character: columns count characters.
    let text = MINIMAL.replace(
        "\"storageAccountName\": { \"value\": \"staib\" }",
        "\"storageAccountName\": /* ü */ { \"value\": \"stäib\" }",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].file, "p.json");
    assert_eq!(found[0].path, "storageAccountName");
    assert_eq!(
        found[0].position,
        Position {
            line: 6,
            column: 46
        }
    );
    assert!(
        found[0].message.contains("\"stäib\""),
        "{}",
        found[0].message
    );
}

/// An unknown field deep in the tree is reported with "did you mean" the close name.
#[test]
fn unknown_nested_field_suggests_the_close_name() {
    let text = MINIMAL.replace("\"namePrefix\"", "\"nameprefix\"");
    let found = problems(&text);
    let unknown = found
        .iter()
        .find(|p| p.path == "imageTemplate.nameprefix")
        .unwrap();
    assert_eq!(
        unknown.hint.as_deref(),
        Some("did you mean \"namePrefix\"?")
    );
}

/// Syntax errors carry jsonc-parser's position and a hint.
#[test]
fn syntax_error_reports_position_and_hint() {
    let found = problems("{\n  \"parameters\": {\n    /* never closed\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].position, Position { line: 3, column: 5 });
    assert!(found[0].message.contains("unterminated comment block"));
    assert!(found[0].hint.is_some());
}

/// JSON proper is required beside comments: trailing commas and single quotes are refused, so
/// every accepted file is also accepted by ARM tooling.
#[test]
fn trailing_commas_and_single_quotes_are_refused() {
    assert!(!problems(&MINIMAL.replacen("\"rg\" }", "\"rg\", }", 1)).is_empty());
    assert!(!problems(&MINIMAL.replace("\"rg\"", "'rg'")).is_empty());
}

/// Bytes that are not UTF-8 are a problem with the position of the first bad byte.
#[test]
fn non_utf8_bytes_are_a_problem_not_a_panic() {
    let err = parse_bytes("p.json", b"{\n  \"a\": \"\xff\"\n}").unwrap_err();
    let found = err.problems();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].position, Position { line: 2, column: 9 });
}

/// Every configuration error maps to exit code 2 (bad input).
#[test]
fn invalid_file_error_is_bad_input() {
    let err = parse_str("p.json", "{}").unwrap_err();
    assert_eq!(err.exit_status(), crate::exit::ExitStatus::BadInput);
    let text = err.to_string();
    assert!(text.starts_with("p.json: 1 problem\n"), "{text}");
    assert!(
        text.contains("p.json:1:1: parameters: missing \"parameters\""),
        "{text}"
    );
}

/// A named script that is not in the scripts folder is reported at the name, with the closest
/// existing file suggested; the parse itself (no file system) accepts the name.
#[test]
fn script_missing_from_the_scripts_folder_is_reported_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("scripts/uploads/linux")).unwrap();
    fs::write(dir.path().join("scripts/uploads/linux/Setup.sh"), "echo\n").unwrap();
    let path = dir.path().join("p.json");
    fs::write(&path, MINIMAL).unwrap();
    assert!(parse_str("p.json", MINIMAL).is_ok());
    let err = load(&path, dir.path()).unwrap_err();
    let found = err.problems();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "imageTemplate.customizationSteps[0].script");
    assert_eq!(
        found[0].position,
        Position {
            line: 13,
            column: 60
        }
    );
    assert_eq!(found[0].hint.as_deref(), Some("did you mean \"Setup.sh\"?"));
    fs::rename(
        dir.path().join("scripts/uploads/linux/Setup.sh"),
        dir.path().join("scripts/uploads/linux/setup.sh"),
    )
    .unwrap();
    assert!(load(&path, dir.path()).is_ok());
}

fn touch(dir: &Path, name: &str) {
    fs::write(dir.join("parameters").join(name), "{}").unwrap();
}

/// The lookup rules: explicit files win; `<env>.image.parameters.<os>.json` before
/// `<env>.image.parameters.json`; no environment means every environment's file(s).
#[test]
fn locate_follows_the_lookup_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("parameters")).unwrap();
    for name in [
        "sbx.image.parameters.json",
        "sbx.image.parameters.windows.json",
        "dev.image.parameters.json",
        "notes.json",
    ] {
        touch(root, name);
    }
    let p = |name: &str| root.join("parameters").join(name);

    let explicit = vec![PathBuf::from("x.json")];
    assert_eq!(
        locate(root, Some("sbx"), None, &explicit).unwrap(),
        explicit
    );
    assert_eq!(
        locate(root, Some("sbx"), Some("windows"), &[]).unwrap(),
        [p("sbx.image.parameters.windows.json")]
    );
    assert_eq!(
        locate(root, Some("sbx"), Some("linux"), &[]).unwrap(),
        [p("sbx.image.parameters.json")]
    );
    assert_eq!(
        locate(root, Some("sbx"), None, &[]).unwrap(),
        [p("sbx.image.parameters.json")]
    );
    assert_eq!(
        locate(root, None, None, &[]).unwrap(),
        [
            p("dev.image.parameters.json"),
            p("sbx.image.parameters.json"),
            p("sbx.image.parameters.windows.json")
        ]
    );
    assert_eq!(
        locate(root, None, Some("windows"), &[]).unwrap(),
        [
            p("dev.image.parameters.json"),
            p("sbx.image.parameters.windows.json")
        ]
    );
    match locate(root, Some("prd"), Some("windows"), &[]) {
        Err(ConfigError::NotFound { tried }) => assert_eq!(
            tried,
            [
                p("prd.image.parameters.windows.json"),
                p("prd.image.parameters.json")
            ]
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        locate(root, Some("../sbx"), None, &[]),
        Err(ConfigError::BadSelector { .. })
    ));
    assert!(matches!(
        locate(&root.join("nowhere"), None, None, &[]),
        Err(ConfigError::NotFound { .. })
    ));
}

/// The summary names what the issue asks for: resource group, storage account, gallery, image
/// definition, source image, each step and the distribution.
#[test]
fn summary_names_resources_source_steps_and_distribution() {
    let file = load(
        &repo_root().join("parameters/sbx.image.parameters.json"),
        &repo_root(),
    )
    .unwrap();
    let text = file.summary().to_string();
    for fact in [
        "rg-aib-sbx",
        "staibscriptssbx",
        "gal_aib_sbx",
        "ubuntu-2204-agent",
        "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2",
        "Install-LinuxPowerShell.sh",
        "Initialize-LinuxSoftware.ps1",
        "pwsh",
        "westeurope (1 replica, Standard_LRS)",
    ] {
        assert!(text.contains(fact), "{fact} missing in:\n{text}");
    }
    let md = Validation::of_files(
        &[repo_root().join("parameters/sbx.image.parameters.json")],
        &repo_root(),
    )
    .markdown();
    assert!(
        md.contains("| valid | rg-aib-sbx | gal_aib_sbx/ubuntu-2204-agent |"),
        "{md}"
    );
}

fn sbx_text() -> &'static str {
    include_str!("../../../../parameters/sbx.image.parameters.json")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No byte sequence makes the parser panic: it returns a file or problems.
    #[test]
    fn no_byte_sequence_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes("fuzz.json", &bytes);
    }

    /// No string (JSON-looking or not) makes the parser panic.
    #[test]
    fn no_string_makes_the_parser_panic(text in "[\\[\\]{}\":,/*\\\\a-z0-9 \n\\-.éü\u{feff}]{0,256}") {
        let _ = parse_str("fuzz.json", &text);
    }

    /// Random edits of a real file (which reach deep into the decoder) never panic, and every
    /// problem they cause has a position inside the file.
    #[test]
    fn edits_of_a_real_file_never_panic(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), "[\\[\\]{}\":,/*\\\\0-9a-zA-Z .\\-]{0,3}"), 1..4)
    ) {
        let mut text = sbx_text().to_string();
        for (at, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let end = (i + 2).min(text.len());
            let end = if text.is_char_boundary(end) { end } else { i };
            text.replace_range(i..end, &insert);
        }
        if let Err(err) = parse_str("fuzz.json", &text) {
            let lines = text.lines().count().max(1) + 1;
            for p in err.problems() {
                prop_assert!(p.position.line >= 1 && p.position.line <= lines, "{p}");
                prop_assert!(p.position.column >= 1, "{p}");
            }
        }
    }
}

/// The complete example in docs/parameters.md is the bundled sbx file, word for word, so the
/// documentation shows a file that validates.
#[test]
fn documented_example_is_the_bundled_sbx_file() {
    let doc = fs::read_to_string(repo_root().join("docs/parameters.md")).unwrap();
    let section = doc.split("## A complete example").nth(1).unwrap();
    let example = section
        .split("```jsonc\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap();
    assert_eq!(example, sbx_text());
}

fn jsonc_value(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap();
    jsonc_parser::parse_to_serde_value(&text, &Default::default()).unwrap()
}

fn schema_validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).unwrap()
}

/// The schema editors use accepts every bundled file and every valid fixture, so a correct
/// file never shows a squiggle.
#[test]
fn schema_accepts_every_valid_file() {
    let validator = schema_validator();
    for file in bundled().into_iter().chain(valid_fixtures()) {
        let errors: Vec<String> = validator
            .iter_errors(&jsonc_value(&file))
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
}

/// The schema flags in the editor what aib refuses by type, name rule, range, unknown name and
/// "exactly one of" (the checks that need the file system or two fields stay aib's own).
#[test]
fn schema_refuses_invalid_files_an_editor_can_flag() {
    let validator = schema_validator();
    for name in [
        "unknown-parameter",
        "unknown-field-nested",
        "unknown-step-field",
        "envelope-bare-value",
        "envelope-content-version",
        "missing-required-parameter",
        "type-location-number",
        "type-boolean-as-string",
        "type-null-vm-size",
        "name-storage-uppercase",
        "name-container-double-hyphen",
        "name-gallery-hyphen",
        "name-resource-group-trailing-dot",
        "name-template-prefix-too-long",
        "definition-security-trusted-launch",
        "source-type-unknown",
        "source-platform-missing-sku",
        "step-type-unknown",
        "step-shell-nothing-to-run",
        "step-shell-uri-and-inline",
        "step-file-missing-destination",
        "step-inline-empty",
        "timeout-negative",
        "timeout-too-long",
        "regions-empty",
        "target-region-replicas-zero",
        "versioning-unknown-scheme",
    ] {
        let path = repo_root().join(format!("tests/fixtures/invalid/{name}.json"));
        assert!(
            !validator.is_valid(&jsonc_value(&path)),
            "the schema accepts {name}.json"
        );
    }
}

/// Template names are the prefix plus a UTC timestamp, and only such names count as this
/// image's templates (not another image whose prefix starts the same way).
#[test]
fn template_names_are_prefix_and_utc_timestamp() {
    let file = parse_str("p.json", MINIMAL).unwrap();
    let template = &file.parameters.image_template;
    let at = time::macros::datetime!(2026-11-28 13:05:09 +01:00);
    assert_eq!(template.template_name(at), "it-2026-11-28-12-05-09");
    assert!(template.is_own_template("it-2026-11-28-12-05-09"));
    assert!(!template.is_own_template("it-other-2026-11-28-12-05-09"));
    assert!(!template.is_own_template("it-2026-11-28"));
    assert!(!template.is_own_template("other-2026-11-28-12-05-09"));
    assert_eq!(
        template.template_name(at).len(),
        template.name_prefix.len() + rules::TEMPLATE_SUFFIX_LEN
    );
}

/// The uploaded files a file needs are listed once each, in step order.
#[test]
fn uploaded_files_lists_each_named_file_once() {
    let file = load(
        &repo_root().join("parameters/sbx.image.parameters.windows.json"),
        &repo_root(),
    )
    .unwrap();
    assert_eq!(
        file.parameters.uploaded_files(),
        [
            "Install-WindowsPowerShell.ps1",
            "Initialize-WindowsSoftware.ps1"
        ]
    );
}

/// A refused `scriptsFolder` is reported once; scripts are not then looked up in the default
/// folder (which would add misleading "not found" problems).
#[test]
fn refused_scripts_folder_does_not_fall_back_to_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    let text = MINIMAL.replace(
        "\"imageTemplate\"",
        "\"scriptsFolder\": { \"value\": \"\" },\n    \"imageTemplate\"",
    );
    fs::write(&path, text).unwrap();
    let err = load(&path, dir.path()).unwrap_err();
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["scriptsFolder"]);
}
