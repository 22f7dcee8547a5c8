//! Integration tests of the `wait-for-build` binary against `aib-emulator`'s Image Builder on a
//! fast clock (one emulator per test): success with the image version, a failing build, the
//! timeout leaving the build running and re-attaching, bad input; customization.log streamed
//! and its tail on failure; faults, short tokens and Retry-After during a long build.

mod support;

mod faults;
mod log;
mod wait;
