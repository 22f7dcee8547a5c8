//! Integration tests of the `deploy-infra` binary against `aib-emulator` (one test binary).
//!
//! - `support`: an emulator per test, a temp repository root with the parameter file under
//!   test, the binary run with exactly the environment a CI job would give it.
//! - `deploy`: from an empty subscription, re-runs, changed tags, what-if, role modes, the
//!   principal replication window, injected throttling and failures.
//! - `refusals`: a taken storage account name, a conflicting image definition or region, missing
//!   permissions — each a clear error, exit 1, nothing half-created.
//! - `providers`: unregistered resource providers, registered or explained.
//! - `help`: every flag explained with an example.

mod deploy;
mod help;
mod providers;
mod refusals;
mod support;
