//! Integration tests of `crates/aib` against `aib-emulator` (one test binary; modules below).
//!
//! - `azure::support`: starts an emulator per test and builds settings/clients for it.
//! - `azure::credentials`: every credential kind gets a token the emulator accepts.
//! - `azure::retries`: throttling, 5xx, terminal 4xx, the deadline, non-idempotent POSTs.
//! - `azure::lro`: long-running operations in each header style, to the end or to a failure.
//! - `azure::tokens`: long waits with short-lived tokens never send an expired one.
//! - `azure::secrets`: a sentinel client secret never shows in output or errors.

mod azure;
