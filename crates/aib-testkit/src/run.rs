//! A step binary run as a CI job runs it, and what it printed.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use aib_emulator::Emulator;
use serde_json::Value;

/// The binary at `binary` (a test's `env!("CARGO_BIN_EXE_<name>")`) with the environment a CI
/// job signed in as the emulator's principal gives it, and nothing else: no variable of the
/// developer's shell leaks in, and `PATH` holds only the system's tools. It reads the `test`
/// environment's parameter file under `root`, then `args`.
pub fn step_command(
    binary: impl AsRef<OsStr>,
    emu: &Emulator,
    root: &Path,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env_clear();
    cmd.envs(emu.ci_env()).env("PATH", "/usr/bin:/bin");
    cmd.arg("--env")
        .arg("test")
        .arg("--root")
        .arg(root)
        .args(args);
    cmd
}

/// What one finished run printed and how it ended, decoded once.
pub struct Run {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Runs `cmd` to its end.
    pub fn of(cmd: &mut Command) -> Run {
        cmd.output().expect("the binary runs").into()
    }

    /// stdout and stderr together, for checks that do not care which stream.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts the exit code, showing both streams when it differs (a failing run's reason is
    /// in them).
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The whole `--output json` document (stdout is exactly one).
    pub fn document(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The `outcome` of the `--output json` document: what the step did.
    pub fn outcome(&self) -> Value {
        self.document()["outcome"].clone()
    }
}
