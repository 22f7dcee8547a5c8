//! Integration tests of the `aib` binary, run as a user would run it (one test binary).
//!
//! - `support`: runs the built `aib` from the repository root with a clean CI environment.
//! - `validate`: `aib validate` on the bundled files, the lookup flags, JSON output and help.
//! - `invalid_corpus`: every file of `tests/fixtures/invalid/` exits 2 at its expected
//!   `file:line:column`, parameter path and message.
//! - `whoami`: `aib whoami` against the emulator (kind and ids, never the secret; exit 2 when
//!   nothing is configured).
//! - `multicall`: `aib` linked under a step's name is that step; `aib <step> …` is the same.
//! - `emulated`: the end-to-end world of `aib run` (an emulator with Azurite per test, the
//!   binary with CI credentials, the request log and ARM state for assertions).
//! - `run_help`: `aib run --help` / `aib steps` teach and answer the scopes; a wrong one exits 2.
//! - `run_demo`: the demo flow (`--scope All --wait --remove-previous` twice) and the final state.
//! - `run_scopes`: every scope on a fresh environment and on existing infrastructure: only the
//!   selected steps send requests; `--what-if` writes nothing.
//! - `run_stages`: `--start-env sbx --through dev` deploys both in order; a failure in sbx stops
//!   before dev; a missing stage file is bad input before any request.

mod emulated;
mod invalid_corpus;
mod multicall;
mod run_demo;
mod run_help;
mod run_scopes;
mod run_stages;
mod support;
mod validate;
mod whoami;
