//! `aib steps`: which steps a scope runs, one per line on stdout (or JSON), for pipeline YAML
//! that decides which jobs to run and for people who want to know before `aib run`.
//!
//! The answer is the library's (`aib::pipeline::Scope::steps`), the same function `aib run`
//! uses, so the two cannot disagree.

use std::io::Write;

use aib::cli::Output;
use aib::exit::ExitStatus;
use aib::pipeline::{Scope, Switches};

/// The closing text of the help: the scope table (generated) and examples.
fn after_help() -> String {
    format!(
        "Scopes (--scope):\n{}\n\nExamples:\n  \
aib steps --scope All --wait --remove-previous\n      \
remove-templates, deploy-infra, upload-scripts, trigger-build, wait-for-build (one per line)\n  \
aib steps --scope \"Only base\"\n      \
deploy-infra, upload-scripts\n  \
aib steps --scope \"Only image\" --wait --output json\n      \
{{\"scope\":\"Only image\",\"steps\":[\"trigger-build\",\"wait-for-build\"]}}\n\n\
Exit codes: 0 ok, 2 unknown scope (the message lists the valid ones).",
        aib::pipeline::scope::help_table()
    )
}

/// Print which steps a scope runs, in order (with --wait and --remove-previous as `aib run`
/// would add them).
#[derive(Debug, clap::Args)]
#[command(after_help = after_help(), after_long_help = after_help())]
pub struct Args {
    /// The scope (see the table below; case-insensitive). Example: `--scope "Only image"`.
    #[arg(long, value_name = "SCOPE", value_parser = Scope::parse)]
    pub scope: Scope,

    /// Count wait-for-build in, as `aib run --wait` does.
    #[arg(long)]
    pub wait: bool,

    /// Count remove-templates in, as `aib run --remove-previous` does.
    #[arg(long)]
    pub remove_previous: bool,

    /// `text`: one step per line; `json`: `{"scope": …, "steps": [...]}`.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Output::Text)]
    pub output: Output,
}

/// Prints the steps; a closed pipe is not an error worth a message.
pub fn run(args: &Args) -> ExitStatus {
    let steps = args.scope.steps(Switches {
        wait: args.wait,
        remove_previous: args.remove_previous,
    });
    let text = match args.output {
        Output::Text => steps.iter().map(|s| format!("{s}\n")).collect::<String>(),
        Output::Json => format!(
            "{}\n",
            serde_json::json!({"scope": args.scope, "steps": steps})
        ),
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitStatus::Success,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitStatus::Success,
        Err(err) => {
            eprintln!("error: cannot write the steps: {err}");
            ExitStatus::BadInput
        }
    }
}
