//! `aib schema`: prints the JSON Schema of parameter files, generated from the library's types.
//!
//! The committed `schema/image.parameters.schema.json` must equal this output (a library test
//! checks it); redirecting this command into that file is how it is regenerated.

use std::io::Write;

use aib::exit::ExitStatus;

/// Print the JSON Schema of image parameter files (draft-07).
///
/// Regenerate the committed copy with:
///   aib schema > schema/image.parameters.schema.json
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  aib schema > schema/image.parameters.schema.json")]
pub struct Args {}

/// Writes the schema to stdout; a closed pipe is not an error worth a message.
pub fn run(_args: &Args) -> ExitStatus {
    let text = aib::config::schema_text();
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitStatus::Success,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitStatus::Success,
        Err(err) => {
            eprintln!("error: cannot write the schema: {err}");
            ExitStatus::BadInput
        }
    }
}
