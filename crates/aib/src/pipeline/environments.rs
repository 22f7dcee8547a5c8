//! The environment stages (sbx → dev → prd) that `aib run --start-env A --through B` walks, in
//! the order the bundled pipelines run their stages.
//!
//! Only the walk is here; the parameter file of each environment is found by the usual lookup
//! (`config::locate`), and every file is loaded before the first environment starts, so a bad
//! `prd` file stops the run before `sbx` changes anything.

use crate::exit::ExitStatus;

/// The stages, in order.
pub const STAGES: [&str; 3] = ["sbx", "dev", "prd"];

/// A walk that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// Not one of the stages.
    #[error("'{0}' is not a stage environment; --start-env and --through take {stages} (in that order); use --env for any other environment", stages = STAGES.join(", "))]
    NotAStage(String),
    /// `--through` comes before `--start-env`.
    #[error(
        "--through {through} comes before --start-env {start}; stages run in the order {}",
        STAGES.join(" → ")
    )]
    Backwards {
        /// The first stage asked for.
        start: String,
        /// The last stage asked for.
        through: String,
    },
}

impl WalkError {
    /// Bad input (2), before any call to Azure.
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::BadInput
    }
}

/// The stages from `start` through `through`, both included (case-insensitive names).
pub fn walk(start: &str, through: &str) -> Result<Vec<String>, WalkError> {
    let index = |name: &str| {
        STAGES
            .iter()
            .position(|s| s.eq_ignore_ascii_case(name))
            .ok_or_else(|| WalkError::NotAStage(name.to_owned()))
    };
    let (from, to) = (index(start)?, index(through)?);
    if to < from {
        return Err(WalkError::Backwards {
            start: start.to_owned(),
            through: through.to_owned(),
        });
    }
    Ok(STAGES[from..=to].iter().map(|s| (*s).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk includes both ends, in stage order, whatever the case.
    #[test]
    fn walk_goes_from_start_through_the_last_stage_in_order() {
        assert_eq!(walk("sbx", "prd").unwrap(), ["sbx", "dev", "prd"]);
        assert_eq!(walk("SBX", "dev").unwrap(), ["sbx", "dev"]);
        assert_eq!(walk("prd", "prd").unwrap(), ["prd"]);
    }

    /// A backwards walk or an unknown stage is bad input naming the stages.
    #[test]
    fn backwards_or_unknown_stages_are_refused() {
        let back = walk("prd", "sbx").unwrap_err();
        assert_eq!(back.exit_status(), ExitStatus::BadInput);
        assert!(back.to_string().contains("sbx → dev → prd"), "{back}");
        let unknown = walk("local", "dev").unwrap_err();
        assert!(unknown.to_string().contains("sbx, dev, prd"), "{unknown}");
    }
}
