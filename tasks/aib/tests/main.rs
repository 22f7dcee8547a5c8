//! Integration tests of the `aib` binary, run as a user would run it (one test binary).
//!
//! - `support`: runs the built `aib` from the repository root with a clean CI environment.
//! - `validate`: `aib validate` on the bundled files, the lookup flags, JSON output and help.
//! - `invalid_corpus`: every file of `tests/fixtures/invalid/` exits 2 at its expected
//!   `file:line:column`, parameter path and message.
//! - `whoami`: `aib whoami` against the emulator (kind and ids, never the secret; exit 2 when
//!   nothing is configured).

mod invalid_corpus;
mod support;
mod validate;
mod whoami;
