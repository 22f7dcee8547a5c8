//! aib: build custom VM images with Azure VM Image Builder from CI.
//!
//! This library holds everything the step binaries share, so that each binary under `tasks/` is
//! only argument parsing and an exit code. Modules (see `shared/design.md`):
//! `config` (parameter files), `azure` (the credential chain, the one ARM client, blobs and
//! typed resources), `steps` (one library function per pipeline step), `report` (the only way
//! anything reaches the user) and [`exit`] (the one mapping from outcomes to exit codes).
#![deny(missing_docs)]

pub mod azure;
pub mod cli;
pub mod config;
pub mod env_vars;
pub mod exit;
pub mod github;
pub mod pipeline;
pub mod report;
pub mod secret;
pub mod steps;
