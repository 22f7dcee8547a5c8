//! `aib run --help`, `aib steps --help` and `aib steps`: the scopes are taught and answered
//! from the same definitions `aib run` executes; a wrong scope is bad input listing the valid
//! ones. No emulator needed.

use crate::support::aib;

/// Both long helps carry the scope table (every name, alias and step list) and the switches.
#[test]
fn run_and_steps_help_teach_every_scope() {
    for command in ["run", "steps"] {
        let help = aib(&[command, "--help"]);
        assert_eq!(help.code, Some(0), "{}", help.all());
        let text = help.stdout;
        for line in [
            "\"All\"",
            "deploy-infra → upload-scripts → trigger-build",
            "\"Only removal\"",
            "\"Only infrastructure\" / \"Only base\"",
            "\"Only storage & image\" / \"Only assets & image\"",
            "upload-scripts → trigger-build",
            "\"Only image\"",
            "--remove-previous  runs remove-templates first",
            "--wait             runs wait-for-build after trigger-build",
        ] {
            assert!(
                text.contains(line),
                "aib {command} --help lacks {line:?}:\n{text}"
            );
        }
    }
    let run = aib(&["run", "--help"]).stdout;
    assert!(run.contains("--start-env"), "{run}");
    assert!(run.contains("sbx → dev → prd"), "{run}");
}

/// `aib steps` prints one step per line in run order, adding the switches' steps; JSON too.
#[test]
fn steps_prints_what_a_scope_runs() {
    let all = aib(&["steps", "--scope", "All", "--wait", "--remove-previous"]);
    assert_eq!(all.code, Some(0), "{}", all.all());
    assert_eq!(
        all.stdout,
        "remove-templates\ndeploy-infra\nupload-scripts\ntrigger-build\nwait-for-build\n"
    );
    let base = aib(&["steps", "--scope", "only base"]);
    assert_eq!(base.stdout, "deploy-infra\nupload-scripts\n");
    let json = aib(&[
        "steps",
        "--scope",
        "Only assets & image",
        "--output",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        value,
        serde_json::json!({"scope": "Only storage & image", "steps": ["upload-scripts", "trigger-build"]})
    );
}

/// A wrong scope exits 2 before anything runs, suggests the nearest name and lists them all.
#[test]
fn unknown_scope_exits_2_listing_the_valid_ones() {
    for command in [
        vec!["steps", "--scope", "Only imgae"],
        vec!["run", "--env", "local", "--scope", "Only imgae"],
    ] {
        let run = aib(&command);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr.contains("did you mean 'Only image'?"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(
                "valid scopes: All, Only removal, Only infrastructure (or Only base), Only storage & image (or Only assets & image), Only image"
            ),
            "{}",
            run.stderr
        );
    }
}
