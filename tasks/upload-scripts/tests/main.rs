//! Integration tests of the `upload-scripts` binary, against `aib-emulator`'s HTTPS blob front
//! and Azurite, with bearer tokens from the emulator (one emulator per test).
//!
//! - `upload`: change detection across runs, content types, CRLF warning, outputs, prune and
//!   what-if, connection strings.
//! - `faults`: injected storage failures are retried; a missing data role names the role; a
//!   file changed during a staged upload commits nothing.
//! - `bad_input`: exit 2 before any request.
//! - `scale`: 1,000 small files and one 256 MiB file in bounded memory.
//! - `streamed`: large files hashed while they are sent (one streamed Put Blob, or blocks with
//!   a second reader), retried, and never committed when the file changed.

mod support;

mod bad_input;
mod faults;
mod scale;
mod streamed;
mod upload;
