//! One executable, every step: `aib` carries the five step programs, so a platform ships one
//! binary (one copy of the Azure SDK, TLS and runtime) instead of six near-identical ones.
//!
//! A step runs when `aib` is called by the step's name (a hard link, symlink or copy named
//! `upload-scripts` or `upload-scripts.exe`, as the release archives lay it out) or as
//! `aib upload-scripts …`. Either way it is the same function the step's own executable runs
//! (`upload_scripts::main_from`), so flags, help, output and exit codes cannot drift apart.
//! See docs/distribution.md for why and what it costs.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;

/// A step program carried by `aib`: the name of its executable and its entry point.
#[derive(Clone, Copy)]
pub struct Step {
    /// The executable's name (and `aib`'s subcommand).
    pub name: &'static str,
    /// The step's command line, given the full argument list (program name first).
    main: fn(Vec<OsString>) -> ExitCode,
}

impl Step {
    /// Runs the step with `args` as its process would get them (program name first).
    pub fn run(self, args: Vec<OsString>) -> ExitCode {
        (self.main)(args)
    }

    /// Runs `aib <step> args…`: usage and errors then name the program `aib <step>`.
    pub fn run_as_subcommand(self, args: Vec<OsString>) -> ExitCode {
        let mut full = Vec::with_capacity(args.len() + 1);
        full.push(OsString::from(format!("aib {}", self.name)));
        full.extend(args);
        self.run(full)
    }
}

/// `remove-templates`.
pub const REMOVE_TEMPLATES: Step = Step {
    name: "remove-templates",
    main: remove_templates::main_from,
};
/// `deploy-infra`.
pub const DEPLOY_INFRA: Step = Step {
    name: "deploy-infra",
    main: deploy_infra::main_from,
};
/// `upload-scripts`.
pub const UPLOAD_SCRIPTS: Step = Step {
    name: "upload-scripts",
    main: upload_scripts::main_from,
};
/// `trigger-build`.
pub const TRIGGER_BUILD: Step = Step {
    name: "trigger-build",
    main: trigger_build::main_from,
};
/// `wait-for-build`.
pub const WAIT_FOR_BUILD: Step = Step {
    name: "wait-for-build",
    main: wait_for_build::main_from,
};

/// Every step `aib` carries, in the pipeline's order.
pub const STEPS: [Step; 5] = [
    REMOVE_TEMPLATES,
    DEPLOY_INFRA,
    UPLOAD_SCRIPTS,
    TRIGGER_BUILD,
    WAIT_FOR_BUILD,
];

/// The step whose executable name this is (`upload-scripts`, `upload-scripts.exe`, in any
/// directory, any case of the extension), or `None` for `aib` itself and anything else.
pub fn step_for_program(program: &OsStr) -> Option<Step> {
    let path = Path::new(program);
    let name = match path.extension() {
        Some(ext) if ext.eq_ignore_ascii_case("exe") => path.file_stem()?,
        _ => path.file_name()?,
    };
    let name = name.to_str()?;
    STEPS.into_iter().find(|step| step.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program name selects a step whatever its folder or `.exe` case, and nothing else does.
    #[test]
    fn program_names_select_their_step_only() {
        for Step { name, .. } in STEPS {
            for program in [
                name.to_string(),
                format!("/opt/aib/bin/{name}"),
                format!("{name}.exe"),
                format!("/opt/aib/bin/{name}.EXE"),
            ] {
                assert!(
                    step_for_program(OsStr::new(&program)).is_some(),
                    "{program}"
                );
            }
        }
        for other in [
            "aib",
            "aib.exe",
            "/usr/bin/aib",
            "upload-scripts.sh",
            "upload",
            "Upload-Scripts",
        ] {
            assert!(step_for_program(OsStr::new(other)).is_none(), "{other}");
        }
    }
}
