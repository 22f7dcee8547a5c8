//! The Azure layer (`aib::azure`) against the emulator.

mod credentials;
mod headers;
mod lro;
mod retries;
mod secrets;
mod support;
mod tokens;
