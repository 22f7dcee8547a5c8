//! The `wait-for-build` executable. Its command line lives in the library (`src/lib.rs`), which the
//! multi-call `aib` binary links too, so `wait-for-build …` and `aib wait-for-build …` are the same program.

fn main() -> std::process::ExitCode {
    wait_for_build::main_from(std::env::args_os())
}
