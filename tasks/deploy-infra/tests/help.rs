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
    // Every flag's own text (from its line to the next flag or heading) carries an example.
    let mut flags: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let is_flag = line.starts_with(' ') && (t.starts_with("--") || t.starts_with('-'));
        if is_flag && t.len() > 1 && !t.starts_with("- ") {
            flags.push((t.to_owned(), String::new()));
        } else if !line.starts_with(' ') && !line.is_empty() {
            flags.push((String::new(), String::new()));
        } else if let Some(last) = flags.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    for (flag, text) in flags.iter().filter(|(f, _)| !f.is_empty()) {
        if flag.contains("--help") || flag.contains("--version") {
            continue;
        }
        assert!(text.contains("Example"), "no example for {flag}:\n{text}");
    }
    assert!(
        help.contains("Example: `--role-mode contributor`"),
        "{help}"
    );
    assert!(help.contains("deploy-infra --env sbx --what-if"), "{help}");
    assert!(help.contains("130 interrupted"), "{help}");
}
