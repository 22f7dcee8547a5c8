//! The pipeline steps as library functions: each takes (parameters, options, a connected Azure
//! session, a reporter) and returns a typed, serializable outcome.
//!
//! Steps plan first, then apply; they never print (everything goes through `report`), never build
//! an ARM URL or retry on their own (that is `azure::arm`), and never read the environment (the
//! binaries do, once). That keeps each step testable in-process against the emulator and lets the
//! umbrella `aib run` chain them, feeding one step's outcome to the next.
pub mod deploy_infra;
pub mod remove_templates;
pub mod trigger_build;
pub mod upload_scripts;
pub mod wait_for_build;
