//! Scopes: which of the five steps a pipeline run executes, named as the original pipeline
//! named them, and the one place that turns a scope and two switches into an ordered step list.
//!
//! Everything that shows scopes to people (`aib run --help`, `aib steps`, the error for a
//! wrong name) is generated from [`Scope::ALL`] and [`Scope::base_steps`], so the help cannot
//! drift from what runs. Names match case-insensitively, with `-`/`_` read as spaces and `and`
//! as `&`, so `--scope only-image` works without shell quoting.

use std::fmt;

use serde::Serialize;

use crate::exit::ExitStatus;

/// One pipeline step, in the order a run executes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Delete earlier image templates of this image.
    RemoveTemplates,
    /// Resource group, identity, roles, storage, gallery and image definition.
    DeployInfra,
    /// Upload the customization scripts that changed.
    UploadScripts,
    /// Create a new image template and start its build.
    TriggerBuild,
    /// Follow the build to its end.
    WaitForBuild,
}

impl Step {
    /// Every step, in run order.
    pub const ORDER: [Step; 5] = [
        Step::RemoveTemplates,
        Step::DeployInfra,
        Step::UploadScripts,
        Step::TriggerBuild,
        Step::WaitForBuild,
    ];

    /// The step's binary name, as logs, outputs and `aib steps` show it.
    pub fn name(self) -> &'static str {
        match self {
            Step::RemoveTemplates => "remove-templates",
            Step::DeployInfra => "deploy-infra",
            Step::UploadScripts => "upload-scripts",
            Step::TriggerBuild => "trigger-build",
            Step::WaitForBuild => "wait-for-build",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What part of the pipeline a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Scope {
    /// Infrastructure, scripts and a new image.
    #[serde(rename = "All")]
    All,
    /// Only delete earlier templates.
    #[serde(rename = "Only removal")]
    OnlyRemoval,
    /// Infrastructure and scripts, no image (alias `Only base`).
    #[serde(rename = "Only infrastructure")]
    OnlyInfrastructure,
    /// Scripts and a new image on existing infrastructure (alias `Only assets & image`).
    #[serde(rename = "Only storage & image")]
    OnlyStorageAndImage,
    /// A new image from the scripts already uploaded.
    #[serde(rename = "Only image")]
    OnlyImage,
}

/// The two switches that add steps around a scope's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Switches {
    /// Follow the build to its end (adds wait-for-build after trigger-build).
    pub wait: bool,
    /// Delete earlier templates first (adds remove-templates before the rest).
    pub remove_previous: bool,
}

impl Scope {
    /// Every scope, in the order the original pipeline listed them.
    pub const ALL: [Scope; 5] = [
        Scope::All,
        Scope::OnlyRemoval,
        Scope::OnlyInfrastructure,
        Scope::OnlyStorageAndImage,
        Scope::OnlyImage,
    ];

    /// The name the original pipeline used (what `aib steps` and outputs print).
    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "All",
            Scope::OnlyRemoval => "Only removal",
            Scope::OnlyInfrastructure => "Only infrastructure",
            Scope::OnlyStorageAndImage => "Only storage & image",
            Scope::OnlyImage => "Only image",
        }
    }

    /// The newer names that mean the same scope.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Scope::OnlyInfrastructure => &["Only base"],
            Scope::OnlyStorageAndImage => &["Only assets & image"],
            _ => &[],
        }
    }

    /// The steps the scope itself selects, before the switches add theirs.
    pub fn base_steps(self) -> &'static [Step] {
        match self {
            Scope::All => &[Step::DeployInfra, Step::UploadScripts, Step::TriggerBuild],
            Scope::OnlyRemoval => &[Step::RemoveTemplates],
            Scope::OnlyInfrastructure => &[Step::DeployInfra, Step::UploadScripts],
            Scope::OnlyStorageAndImage => &[Step::UploadScripts, Step::TriggerBuild],
            Scope::OnlyImage => &[Step::TriggerBuild],
        }
    }

    /// The steps a run executes, in order: remove-templates first when `remove_previous` (or
    /// alone for `Only removal`), the scope's own steps, then wait-for-build when `wait` and the
    /// scope starts a build.
    pub fn steps(self, switches: Switches) -> Vec<Step> {
        let mut steps = Vec::new();
        if switches.remove_previous && self != Scope::OnlyRemoval {
            steps.push(Step::RemoveTemplates);
        }
        steps.extend_from_slice(self.base_steps());
        if switches.wait && steps.contains(&Step::TriggerBuild) {
            steps.push(Step::WaitForBuild);
        }
        steps
    }

    /// Finds the scope `text` names: its name or an alias, case-insensitively, `-`/`_` as
    /// spaces and `and` as `&`.
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        let wanted = normalize(text);
        Scope::ALL
            .into_iter()
            .find(|s| {
                std::iter::once(s.name())
                    .chain(s.aliases().iter().copied())
                    .any(|n| normalize(n) == wanted)
            })
            .ok_or_else(|| ScopeError::Unknown {
                given: text.to_owned(),
                suggestion: suggest(&wanted),
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Scope, ScopeError> {
        Scope::parse(s)
    }
}

/// A scope name that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Not a scope name nor an alias.
    #[error("unknown scope '{given}'{}; valid scopes: {}", suggestion.map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default(), valid_names())]
    Unknown {
        /// What was given.
        given: String,
        /// The closest name, when one is close.
        suggestion: Option<&'static str>,
    },
}

impl ScopeError {
    /// A wrong scope is bad input (2), found before any call to Azure.
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::BadInput
    }
}

/// `All, Only removal, Only infrastructure (or Only base), …`.
pub fn valid_names() -> String {
    Scope::ALL
        .iter()
        .map(|s| match s.aliases() {
            [] => s.name().to_owned(),
            aliases => format!("{} (or {})", s.name(), aliases.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn normalize(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c == '-' || c == '_' { ' ' } else { c })
        .collect::<String>()
        .to_lowercase();
    spaced
        .split_whitespace()
        .map(|w| if w == "and" { "&" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn suggest(wanted: &str) -> Option<&'static str> {
    Scope::ALL
        .iter()
        .flat_map(|s| std::iter::once(s.name()).chain(s.aliases().iter().copied()))
        .map(|n| (strsim::jaro_winkler(&normalize(n), wanted), n))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

/// The scope table of `aib run --help` and `aib steps --help`: each scope, its aliases and the
/// steps it runs, generated from the definitions above.
pub fn help_table() -> String {
    let rows: Vec<(String, String)> = Scope::ALL
        .iter()
        .map(|s| {
            let mut name = format!("\"{}\"", s.name());
            for a in s.aliases() {
                name.push_str(&format!(" / \"{a}\""));
            }
            let steps: Vec<&str> = s.base_steps().iter().map(|st| st.name()).collect();
            (name, steps.join(" → "))
        })
        .collect();
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!("  {:<width$}  steps\n", "scope");
    for (name, steps) in rows {
        let pad = width - name.chars().count();
        text.push_str(&format!("  {name}{}  {steps}\n", " ".repeat(pad)));
    }
    text.push_str(
        "\n  --remove-previous  runs remove-templates first (Only removal runs it alone)\n  \
         --wait             runs wait-for-build after trigger-build\n\n  \
         Names match case-insensitively; '-' or '_' may stand for spaces and 'and' for '&'\n  \
         (--scope only-image, --scope \"only storage and image\").",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names and aliases match whatever the case, and shell-friendly spellings work too.
    #[test]
    fn scopes_parse_case_insensitively_with_aliases() {
        assert_eq!(Scope::parse("All").unwrap(), Scope::All);
        assert_eq!(Scope::parse("all").unwrap(), Scope::All);
        assert_eq!(Scope::parse("ONLY REMOVAL").unwrap(), Scope::OnlyRemoval);
        assert_eq!(
            Scope::parse("Only base").unwrap(),
            Scope::OnlyInfrastructure
        );
        assert_eq!(
            Scope::parse("only-infrastructure").unwrap(),
            Scope::OnlyInfrastructure
        );
        assert_eq!(
            Scope::parse("Only assets & image").unwrap(),
            Scope::OnlyStorageAndImage
        );
        assert_eq!(
            Scope::parse("only storage and image").unwrap(),
            Scope::OnlyStorageAndImage
        );
        assert_eq!(Scope::parse("  only_image ").unwrap(), Scope::OnlyImage);
    }

    /// A wrong name lists every valid one (with aliases), suggests the nearest, and is bad input.
    #[test]
    fn unknown_scope_lists_the_valid_ones() {
        let err = Scope::parse("Only imgae").unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(text.starts_with("unknown scope 'Only imgae' (did you mean 'Only image'?)"));
        assert!(
            text.ends_with(
                "valid scopes: All, Only removal, Only infrastructure (or Only base), Only storage & image (or Only assets & image), Only image"
            ),
            "{text}"
        );
        let far = Scope::parse("everything").unwrap_err().to_string();
        assert!(!far.contains("did you mean"), "{far}");
    }

    /// Each scope selects the design's steps; the switches add removal first and the wait last.
    #[test]
    fn scopes_select_the_steps_of_the_design_table() {
        use Step::*;
        let plain = Switches::default();
        let both = Switches {
            wait: true,
            remove_previous: true,
        };
        assert_eq!(
            Scope::All.steps(plain),
            [DeployInfra, UploadScripts, TriggerBuild]
        );
        assert_eq!(
            Scope::All.steps(both),
            [
                RemoveTemplates,
                DeployInfra,
                UploadScripts,
                TriggerBuild,
                WaitForBuild
            ]
        );
        assert_eq!(Scope::OnlyRemoval.steps(plain), [RemoveTemplates]);
        assert_eq!(Scope::OnlyRemoval.steps(both), [RemoveTemplates]);
        assert_eq!(
            Scope::OnlyInfrastructure.steps(both),
            [RemoveTemplates, DeployInfra, UploadScripts]
        );
        assert_eq!(
            Scope::OnlyStorageAndImage.steps(plain),
            [UploadScripts, TriggerBuild]
        );
        assert_eq!(
            Scope::OnlyImage.steps(Switches {
                wait: true,
                remove_previous: false
            }),
            [TriggerBuild, WaitForBuild]
        );
        for scope in Scope::ALL {
            let steps = scope.steps(both);
            let mut sorted = steps.clone();
            sorted.sort();
            assert_eq!(steps, sorted, "{scope}: steps run in pipeline order");
        }
    }

    /// The help table names every scope, alias and step list.
    #[test]
    fn help_table_names_every_scope_and_alias() {
        let table = help_table();
        for scope in Scope::ALL {
            assert!(table.contains(&format!("\"{}\"", scope.name())), "{table}");
            for a in scope.aliases() {
                assert!(table.contains(a), "{table}");
            }
        }
        assert!(table.contains("deploy-infra → upload-scripts → trigger-build"));
    }
}
