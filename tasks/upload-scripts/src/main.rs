//! The `upload-scripts` executable. Its command line lives in the library (`src/lib.rs`), which the
//! multi-call `aib` binary links too, so `upload-scripts …` and `aib upload-scripts …` are the same program.

fn main() -> std::process::ExitCode {
    upload_scripts::main_from(std::env::args_os())
}
