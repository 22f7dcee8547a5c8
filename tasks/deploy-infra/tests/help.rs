//! `deploy-infra --help` explains every flag of its own with an example, and the exit codes.

use std::process::Command;

/// The help names every flag, gives examples and the exit codes.
#[test]
fn help_explains_every_flag_with_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_deploy-infra"))
        .arg("--help")
        .output()
        .expect("deploy-infra runs");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--env",
        "--os",
        "--parameters",
        "--root",
        "--output",
        "--what-if",
        "--role-mode",
        "--auth",
        "--client-id",
        "--tenant-id",
        "--subscription-id",
        "--cloud",
        "--arm-endpoint",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(
        help.contains("Example: `--role-mode contributor`"),
        "{help}"
    );
    assert!(help.contains("deploy-infra --env sbx --what-if"), "{help}");
    assert!(help.contains("130 interrupted"), "{help}");
}
