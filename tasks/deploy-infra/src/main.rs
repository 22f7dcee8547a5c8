//! The `deploy-infra` executable. Its command line lives in the library (`src/lib.rs`), which the
//! multi-call `aib` binary links too, so `deploy-infra …` and `aib deploy-infra …` are the same program.

fn main() -> std::process::ExitCode {
    deploy_infra::main_from(std::env::args_os())
}
