//! Integration tests of the `trigger-build` binary against `aib-emulator` (ARM, Entra ID and
//! Image Builder) with Azurite behind its HTTPS blob front (one emulator per test).
//!
//! - `trigger`: the template created from the parameter file (blob URLs with SHA-256, the
//!   distribution), the build started, outputs; what-if sends no write; concurrency refusal.
//! - `bad_input`: exit 2 before any request.

mod support;

mod bad_input;
mod trigger;
