//! What the integration tests of the step binaries (`tasks/*/tests`) share, so that each
//! step's `tests/support.rs` keeps only what is specific to that step.
//!
//! Every step test does the same few things: start an `aib-emulator` on a fast clock, sign in
//! to it as its Owner principal, seed the infrastructure an earlier step would have left (a
//! resource group, an identity, a gallery image, a storage account), write a parameter file into
//! a temp repository root, run the real binary with exactly a CI job's environment, and read
//! its exit code, streams and `--output json` outcome. Written once here, a change of any of
//! these (a new variable a CI job sets, a stricter parameter-file rule) is made in one place.
//!
//! - [`emulator`]: emulator settings for step tests, an ARM client signed in to it, and
//!   counts of the requests it logged.
//! - [`seed`]: the infrastructure, created through ARM as the steps would find it.
//! - [`params`]: a valid parameter file for that infrastructure and a repository root.
//! - [`run`]: the binary run as CI runs it, and what it printed.
//! - [`blob`]: the scripts container's data plane and content hashes.
//!
//! `env!("CARGO_BIN_EXE_<name>")` only works inside a package's own test crate, so every
//! function that starts a binary takes its path as an argument.

#![deny(missing_docs)]

pub mod blob;
pub mod emulator;
pub mod params;
pub mod run;
pub mod seed;

pub use blob::{container, md5, sha256_hex};
pub use emulator::{connect, count_requests, fast_knobs, secret_env, start, step_config};
pub use params::{Names, ParameterFile, TEST, repo_root, repository};
pub use run::{Run, step_command};
pub use seed::Seed;
