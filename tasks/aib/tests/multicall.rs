//! The multi-call `aib`: linked under a step's name it is that step, and `aib <step> …` runs the
//! same program, so the one binary a platform ships answers every step's name.

use std::path::{Path, PathBuf};

use crate::support::{Run, aib, run_program};

const STEPS: [&str; 5] = [
    "remove-templates",
    "deploy-infra",
    "upload-scripts",
    "trigger-build",
    "wait-for-build",
];

/// `aib` hard-linked (copied where links are refused) into `dir` under `name`, as the release
/// archives lay the steps out.
fn linked_as(dir: &Path, name: &str) -> PathBuf {
    let link = dir.join(name);
    let aib = Path::new(env!("CARGO_BIN_EXE_aib"));
    if std::fs::hard_link(aib, &link).is_err() {
        std::fs::copy(aib, &link).expect("copy aib");
    }
    link
}

/// Runs `program args` in the repository root with no CI variables.
fn run(program: &Path, args: &[&str]) -> Run {
    run_program(program, args, &[])
}

/// Under each step's name, `--version` and `--help` are the step's own, not `aib`'s.
#[test]
fn linked_under_a_step_name_aib_is_that_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    for step in STEPS {
        let program = linked_as(dir.path(), step);
        let version = run(&program, &["--version"]);
        assert_eq!(version.code, Some(0), "{}", version.all());
        assert_eq!(
            version.stdout.trim(),
            format!("{step} {}", env!("CARGO_PKG_VERSION"))
        );
        let help = run(&program, &["--help"]);
        assert_eq!(help.code, Some(0), "{}", help.all());
        assert!(
            help.stdout.contains(&format!("Usage: {step} [OPTIONS]")),
            "{}",
            help.stdout
        );
        assert!(help.stdout.contains("--env"), "{step}: {}", help.stdout);
        assert!(
            !help.stdout.contains("Commands:"),
            "{step} shows aib's help:\n{}",
            help.stdout
        );
    }
}

/// `aib <step> --help` is the step's help under the name `aib <step>`, and `aib --help` lists
/// the five steps.
#[test]
fn aib_step_subcommands_pass_their_arguments_to_the_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let top = aib(&["--help"]);
    for step in STEPS {
        assert!(
            top.stdout.contains(&format!("  {step} ")),
            "{step} missing:\n{}",
            top.stdout
        );
        let via_aib = aib(&[step, "--help"]);
        assert_eq!(via_aib.code, Some(0), "{}", via_aib.all());
        let direct = run(&linked_as(dir.path(), step), &["--help"]);
        assert_eq!(
            via_aib.stdout.replace(&format!("aib {step}"), step),
            direct.stdout,
            "aib {step} --help differs from {step} --help"
        );
    }
}

/// Bad input through either form is the step's bad input: exit 2, before any request, with the
/// program name the user typed.
#[test]
fn bad_input_through_either_form_exits_2_naming_the_program() {
    let dir = tempfile::tempdir().expect("temp dir");
    let linked = run(
        &linked_as(dir.path(), "upload-scripts"),
        &["--concurency", "4"],
    );
    assert_eq!(linked.code, Some(2), "{}", linked.all());
    assert!(
        linked.stderr.contains("Usage: upload-scripts"),
        "{}",
        linked.stderr
    );
    assert!(
        linked.stderr.contains("--concurrency"),
        "no suggestion: {}",
        linked.stderr
    );

    let via_aib = aib(&["trigger-build", "--env", "nosuch"]);
    assert_eq!(via_aib.code, Some(2), "{}", via_aib.all());
    assert!(via_aib.all().contains("nosuch"), "{}", via_aib.all());
}
