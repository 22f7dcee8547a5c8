//! Runs the built `aib` binary the way a person does: from the repository root, outside any CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (two levels above this package).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// What one run of `aib` printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for checks that do not care which stream.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

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
    let output: Output = Command::new(program)
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
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
