//! The `trigger-build` executable. Its command line lives in the library (`src/lib.rs`), which the
//! multi-call `aib` binary links too, so `trigger-build …` and `aib trigger-build …` are the same program.

fn main() -> std::process::ExitCode {
    trigger_build::main_from(std::env::args_os())
}
