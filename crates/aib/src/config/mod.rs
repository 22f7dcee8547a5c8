//! Parameter files: find them, parse them, check them against Azure's rules, summarise them.
//!
//! A parameter file is the ARM deploymentParameters envelope users of the original pipeline
//! already have (`{"$schema", "contentVersion", "parameters": {"<name>": {"value": …}}}`) with
//! `//` and `/* */` comments; `docs/parameters.md` describes every value. Everything is checked
//! here, before any call to Azure, and every problem of a file is reported at once with
//! `file:line:column`, the parameter path and a hint ([`ConfigError`], exit code 2).
//!
//! Pure parsing ([`parse_str`], [`parse_bytes`]) is split from file access ([`load`], which also
//! checks that the scripts named by `script`/`file` exist, and [`locate`], which applies the
//! lookup rules), so the parser is tested from strings and cannot touch the disk.
//!
//! ```
//! use aib::config::{Position, parse_str};
//!
//! let text = r#"{
//!   // a comment is fine; a storage account name with a hyphen is not
//!   "parameters": { "storageAccountName": { "value": "st-aib" } }
//! }"#;
//! let err = parse_str("p.json", text).unwrap_err();
//! // Every problem is listed at once: the missing required parameters are there too.
//! assert!(err.problems().iter().any(|p| p.path == "imageTemplate"));
//! let problem = err.problems().iter().find(|p| p.path == "storageAccountName").unwrap();
//! assert_eq!(problem.position, Position { line: 3, column: 52 });
//! assert!(problem.to_string().starts_with(
//!     "p.json:3:52: storageAccountName: expected a storage account name"
//! ));
//! ```

mod decode;
mod error;
mod model;
pub mod rules;
mod schema;
mod summary;
mod text;

use std::path::{Path, PathBuf};

pub use decode::{PARAMETER_NAMES, Positions, ScriptRef};
pub use error::{ConfigError, Position, Problem};
pub use model::*;
pub use schema::{schema, schema_text};
pub use summary::{
    DistributionSummary, FileOutcome, ImageDefinitionSummary, StepSummary, Summary, Validation,
};

/// The directory under the root that holds the bundled parameter files.
pub const PARAMETERS_DIR: &str = "parameters";

/// A parameter file that passed every check: its values and where each one was written.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterFile {
    /// The file as the user named it (used in every message about it).
    pub file: String,
    /// The values.
    pub parameters: ImageParameters,
    /// Where each value starts, by parameter path (e.g. `imageTemplate.namePrefix`), so that
    /// later steps can still point at the line that caused a failure.
    pub positions: Positions,
}

impl ParameterFile {
    /// The folder of uploadable scripts, resolved against the repository root.
    pub fn scripts_dir(&self, root: &Path) -> PathBuf {
        root.join(self.parameters.scripts_folder())
    }

    /// What this file would deploy where, as a value that renders as text or JSON.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.file, &self.parameters)
    }
}

/// Parses and checks a parameter file's text. Pure: `name` is only used in messages, and
/// whether the named scripts exist is not checked (see [`load`]).
pub fn parse_str(name: &str, text: &str) -> Result<ParameterFile, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let analysis = decode::analyse(name, text);
    finish(name, analysis, Vec::new())
}

/// Like [`parse_str`] for raw bytes: text that is not UTF-8 is a problem with a position,
/// never a panic.
pub fn parse_bytes(name: &str, bytes: &[u8]) -> Result<ParameterFile, ConfigError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(name, text),
        Err(err) => Err(not_utf8(name, bytes, err)),
    }
}

fn not_utf8(name: &str, bytes: &[u8], err: std::str::Utf8Error) -> ConfigError {
    let valid = &bytes[..err.valid_up_to()];
    // The prefix is valid UTF-8 by definition of valid_up_to.
    let prefix = std::str::from_utf8(valid).unwrap_or("");
    let position = text::LineIndex::new(prefix).position(prefix.len());
    ConfigError::Invalid {
        file: name.to_string(),
        problems: vec![Problem {
            file: name.to_string(),
            position,
            path: String::new(),
            message: "the file is not UTF-8 text".into(),
            hint: Some("save it as UTF-8 (editors offer this under \"encoding\")".into()),
        }],
    }
}

fn finish(
    name: &str,
    analysis: decode::Analysis,
    mut extra: Vec<Problem>,
) -> Result<ParameterFile, ConfigError> {
    let mut problems = analysis.problems;
    problems.append(&mut extra);
    problems.sort_by_key(|a| a.position);
    match analysis.params {
        Some(parameters) if problems.is_empty() => Ok(ParameterFile {
            file: name.to_string(),
            parameters,
            positions: analysis.positions,
        }),
        _ => Err(ConfigError::Invalid {
            file: name.to_string(),
            problems,
        }),
    }
}

/// Reads, parses and checks the file at `path`, including that every `script`/`file` a step
/// names exists in the scripts folder (resolved against `root`, the repository root).
pub fn load(path: &Path, root: &Path) -> Result<ParameterFile, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text.strip_prefix('\u{feff}').unwrap_or(text),
        Err(err) => return Err(not_utf8(&name, &bytes, err)),
    };
    let analysis = decode::analyse(&name, text);
    let extra = check_scripts(&name, &analysis, root);
    finish(&name, analysis, extra)
}

/// Every `script`/`file` name must be a file of the scripts folder.
fn check_scripts(name: &str, analysis: &decode::Analysis, root: &Path) -> Vec<Problem> {
    let folder = match (&analysis.scripts_folder, analysis.os) {
        (Some(folder), _) => folder.clone(),
        // A refused `scriptsFolder` is already reported; guessing another folder would only
        // add confusing "not found" problems.
        (None, _) if analysis.scripts_folder_given => return Vec::new(),
        (None, Some(os)) => model::default_scripts_folder(os),
        // Without the OS the folder is unknown; the missing osType is already reported.
        (None, None) => return Vec::new(),
    };
    if analysis.script_refs.is_empty() {
        return Vec::new();
    }
    let dir = root.join(&folder);
    let available: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect(),
        Err(_) => {
            let position = analysis
                .positions
                .get("scriptsFolder")
                .unwrap_or(analysis.script_refs[0].position);
            let path = if analysis.scripts_folder.is_some() {
                "scriptsFolder".to_string()
            } else {
                analysis.script_refs[0].path.clone()
            };
            return vec![Problem {
                file: name.to_string(),
                position,
                path,
                message: format!(
                    "the scripts folder \"{folder}\" does not exist under {}",
                    root.display()
                ),
                hint: Some(
                    "run from the repository root, pass --root, or set \"scriptsFolder\"".into(),
                ),
            }];
        }
    };
    let mut problems = Vec::new();
    for r in &analysis.script_refs {
        if dir.join(&r.name).is_file() {
            continue;
        }
        let candidates: Vec<&str> = available.iter().map(String::as_str).collect();
        let hint = match decode::suggest(&r.name, &candidates) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None if candidates.is_empty() => format!("\"{folder}\" has no files"),
            None => {
                let mut sorted = candidates.clone();
                sorted.sort_unstable();
                format!("files in \"{folder}\": {}", sorted.join(", "))
            }
        };
        problems.push(Problem {
            file: name.to_string(),
            position: r.position,
            path: r.path.clone(),
            message: format!(
                "\"{}\" is not a file of the scripts folder \"{folder}\"",
                r.name
            ),
            hint: Some(hint),
        });
    }
    problems
}

/// Checks that an environment or OS name can be part of a file name.
fn selector(what: &'static str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadSelector {
            what,
            value: value.to_string(),
        })
    }
}

/// The parameter files to use, by the lookup rules:
/// 1. `explicit` files (`--parameters`) win, as given;
/// 2. with an environment: `parameters/<env>.image.parameters.<os>.json` when an OS is given,
///    then `parameters/<env>.image.parameters.json`, under `root`; the first that exists;
/// 3. with no environment: the same rule for every environment that has a file under
///    `root/parameters` (every bundled file when no OS is given either).
pub fn locate(
    root: &Path,
    env: Option<&str>,
    os: Option<&str>,
    explicit: &[PathBuf],
) -> Result<Vec<PathBuf>, ConfigError> {
    if !explicit.is_empty() {
        return Ok(explicit.to_vec());
    }
    if let Some(env) = env {
        selector("environment", env)?;
    }
    if let Some(os) = os {
        selector("os", os)?;
    }
    let dir = if root == Path::new(".") {
        PathBuf::from(PARAMETERS_DIR)
    } else {
        root.join(PARAMETERS_DIR)
    };
    let envs: Vec<String> = match env {
        Some(env) => vec![env.to_string()],
        None => bundled_files(&dir)
            .iter()
            .map(|(env, _)| env.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    if envs.is_empty() {
        return Err(ConfigError::NotFound {
            tried: vec![dir.join("<env>.image.parameters[.<os>].json")],
        });
    }
    let env_given = env.is_some();
    let mut files = Vec::new();
    for env in &envs {
        match os {
            Some(os) => {
                let tried = [
                    dir.join(format!("{env}.image.parameters.{os}.json")),
                    dir.join(format!("{env}.image.parameters.json")),
                ];
                match tried.iter().find(|p| p.is_file()) {
                    Some(found) => files.push(found.clone()),
                    None => {
                        return Err(ConfigError::NotFound {
                            tried: tried.to_vec(),
                        });
                    }
                }
            }
            None if env_given => {
                let path = dir.join(format!("{env}.image.parameters.json"));
                if !path.is_file() {
                    return Err(ConfigError::NotFound { tried: vec![path] });
                }
                files.push(path);
            }
            None => files.extend(
                bundled_files(&dir)
                    .into_iter()
                    .filter(|(e, _)| e == env)
                    .map(|(_, p)| p),
            ),
        }
    }
    Ok(files)
}

/// `(environment, path)` of every `<env>.image.parameters[.<os>].json` in `dir`, sorted.
fn bundled_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let (env, rest) = name.split_once(".image.parameters")?;
            let valid = rest == ".json"
                || rest
                    .strip_prefix('.')
                    .and_then(|r| r.strip_suffix(".json"))
                    .is_some_and(|os| !os.is_empty() && !os.contains('.'));
            (valid && !env.is_empty()).then(|| (env.to_string(), dir.join(&name)))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests;
