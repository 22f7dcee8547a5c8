//! Runs the built `aib` binary the way a person does: from the repository root, outside any CI.
//! The run's output and the repository root are `aib_testkit`'s, shared with the steps' tests.

use std::path::Path;
use std::process::Command;

pub use aib_testkit::{Run, repo_root};

/// Runs `aib <args>` in the repository root. CI variables are removed so the terminal
/// reporter (plain lines, since the output is not a terminal) is the one under test.
pub fn aib(args: &[&str]) -> Run {
    aib_with_env(args, &[])
}

/// Like [`aib`], with extra environment variables (e.g. to pose as a CI).
pub fn aib_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_program(Path::new(env!("CARGO_BIN_EXE_aib")), args, env)
}

/// Runs `program <args>` (the built `aib`, or a link to it under another name) as [`aib`] does.
pub fn run_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("TF_BUILD")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("aib runs");
    Run::from(output)
}
