//! Integration tests of the `remove-templates` binary against `aib-emulator` (Image Builder on a
//! fast clock), one emulator per test.
//!
//! - `remove`: exact prefix matching, busy templates skipped, retention, what-if, cancel,
//!   staging group, many templates in parallel, injected throttling and server errors.
//! - `bad_input`: exit 2 before any request.

mod support;

mod bad_input;
mod remove;
