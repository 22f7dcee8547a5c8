//! The `remove-templates` executable. Its command line lives in the library (`src/lib.rs`), which the
//! multi-call `aib` binary links too, so `remove-templates …` and `aib remove-templates …` are the same program.

fn main() -> std::process::ExitCode {
    remove_templates::main_from(std::env::args_os())
}
