//! `aib run`: the steps a scope selects, in order, for one environment or a walk of the stages
//! (sbx → dev → prd) — what the bundled pipelines do, from a terminal.
//!
//! Glue only: flags → every environment's parameter file loaded and validated (bad input exits
//! 2 before any call to Azure) → one session → `aib::pipeline::run`, with Ctrl-C/SIGTERM
//! turned into the pipeline's stop. Order, chaining, output and summary are the library's.

use std::time::Duration;

use aib::azure::args::AzureArgs;
use aib::cli::{
    Context, ParameterArgs, RunArgs, block_on_stoppable, load_parameters, provenance, runtime,
    session,
};
use aib::exit::ExitStatus;
use aib::pipeline::{self, Options, Scope, Stop, Switches, Target, environments};
use aib::report::{Reporter, report_error};
use aib::steps::deploy_infra::RoleMode;

/// The long help's closing text: the scope table (generated), the stages and examples.
pub fn after_help() -> String {
    format!(
        "Scopes (--scope):\n{table}\n\nStages: --start-env A --through B runs the environments {stages} from A\nthrough B in that order, each with every step of the scope, and stops at the first\nfailure (later environments are not started). Every parameter file is checked first.\n\n\
Examples:\n  \
aib run --env sbx --scope All --wait --remove-previous\n      \
the whole pipeline for sbx: remove old templates, infrastructure, scripts, build, wait\n  \
aib run --env sbx --scope \"Only image\" --wait\n      \
a new image from the scripts already uploaded\n  \
aib run --env prd --os windows --scope only-infrastructure --what-if\n      \
what deploy-infra and upload-scripts would change for prd (windows), changing nothing\n  \
aib run --start-env sbx --through prd --scope All --wait\n      \
sbx, then dev, then prd\n  \
aib run --env local --scope All --wait --output json\n      \
one JSON document: every step's outcome, the template and the image version\n\n\
Exit codes: 0 ok, 1 an Azure operation or the build failed, 2 bad input (nothing was sent),\n\
3 timeout, 130 interrupted (the first failing step's code).",
        table = pipeline::scope::help_table(),
        stages = environments::STAGES.join(" → "),
    )
}

/// Run the pipeline steps a scope selects, in order, for one environment (or several stages):
/// remove-templates, deploy-infra, upload-scripts, trigger-build, wait-for-build.
///
/// Each step's outputs feed the next in-process (deploy-infra's blob endpoint, trigger-build's
/// template name). --what-if is passed to every step.
#[derive(Debug, clap::Args)]
#[command(after_help = after_help(), after_long_help = after_help())]
pub struct Args {
    #[command(flatten)]
    pub parameters: ParameterArgs,

    /// First stage of a walk through sbx → dev → prd; needs --through.
    /// Example: `--start-env sbx --through dev`.
    #[arg(long, value_name = "ENV", requires = "through", conflicts_with_all = ["env", "parameters"])]
    pub start_env: Option<String>,

    /// Last stage of the walk (included). Example: `--through prd`.
    #[arg(long, value_name = "ENV", requires = "start_env")]
    pub through: Option<String>,

    /// Which steps run (see the table below; case-insensitive). Example: `--scope "Only image"`.
    #[arg(long, value_name = "SCOPE", value_parser = Scope::parse)]
    pub scope: Scope,

    /// Follow the build to its end (adds wait-for-build after trigger-build).
    #[arg(long)]
    pub wait: bool,

    /// Delete this image's earlier templates first (adds remove-templates before the rest).
    #[arg(long)]
    pub remove_previous: bool,

    /// Record each environment's build as a GitHub deployment: in progress when the build
    /// starts, then success with the image version id (and its portal link) or failure with
    /// the message. Needs GITHUB_TOKEN (with `deployments: write`) and GITHUB_REPOSITORY
    /// (env AIB_GITHUB_DEPLOYMENT). Example: `--github-deployment` in a workflow job.
    #[arg(long, env = aib::github::deployments::AIB_GITHUB_DEPLOYMENT)]
    pub github_deployment: bool,

    #[command(flatten)]
    pub run: RunArgs,

    /// deploy-infra: roles of Image Builder's identity, `least-privilege` (default) or
    /// `contributor`. Example: `--role-mode contributor`.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = RoleModeArg::LeastPrivilege)]
    pub role_mode: RoleModeArg,

    /// trigger-build: no new build when the newest image version already has these inputs.
    #[arg(long)]
    pub skip_if_unchanged: bool,

    /// trigger-build: start even when a build of the same image is running.
    #[arg(long)]
    pub allow_concurrent: bool,

    /// wait-for-build: seconds between polls once the build is under way. Example:
    /// `--poll-interval 30`.
    #[arg(long, value_name = "SECONDS", default_value = "15", value_parser = seconds)]
    pub poll_interval: Duration,

    /// wait-for-build: minutes to wait for the build (default: its build timeout plus 30).
    /// Example: `--timeout 90`.
    #[arg(long, value_name = "MINUTES", value_parser = minutes)]
    pub timeout: Option<Duration>,

    /// remove-templates: keep the newest N finished templates. Example: `--keep 2`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep: u32,

    #[command(flatten)]
    pub azure: AzureArgs,
}

/// The `--role-mode` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleModeArg {
    /// A custom role with the actions of image creation and distribution, on the resource group.
    LeastPrivilege,
    /// Contributor on the subscription.
    Contributor,
}

fn positive(text: &str, unit: f64) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number"))?;
    Duration::try_from_secs_f64(value * unit)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("'{text}' must be a positive number"))
}

fn seconds(text: &str) -> Result<Duration, String> {
    positive(text, 1.0)
}

fn minutes(text: &str) -> Result<Duration, String> {
    positive(text, 60.0)
}

/// The environment a file is for by its name (`dev.image.parameters.windows.json` → `dev`), else
/// the file name: what step lines and the outcome call it.
fn environment_of(file: &std::path::Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    match name.find(".image.parameters") {
        Some(i) if i > 0 => name[..i].to_owned(),
        _ => name,
    }
}

/// Loads every environment, connects, runs the pipeline, maps its end to the exit status.
pub fn run(args: &Args) -> ExitStatus {
    // With AIB_GITHUB_DEPLOYMENT=true each environment's build is recorded as a GitHub
    // deployment (in progress, then success with the image version, or failure).
    Context::from_process(args.run.output.into())
        .wrap_reporter(|reporter, env| {
            aib::github::deployments::wrap_when(
                args.github_deployment,
                reporter,
                env,
                args.parameters.env.clone(),
            )
        })
        .run(|cx| execute(args, cx))
}

/// Every environment's parameter file, loaded and validated, or the status after reporting why.
fn targets(args: &Args, reporter: &dyn Reporter) -> Result<Vec<Target>, ExitStatus> {
    let selections: Vec<(String, ParameterArgs)> = match (&args.start_env, &args.through) {
        (Some(start), Some(through)) => environments::walk(start, through)
            .map_err(|err| {
                report_error(reporter, &err, None);
                err.exit_status()
            })?
            .into_iter()
            .map(|env| {
                let selection = ParameterArgs {
                    env: Some(env.clone()),
                    ..args.parameters.clone()
                };
                (env, selection)
            })
            .collect(),
        _ => {
            let name = match (&args.parameters.env, &args.parameters.parameters) {
                (Some(env), _) => env.clone(),
                (None, Some(file)) => environment_of(file),
                (None, None) => String::new(),
            };
            vec![(name, args.parameters.clone())]
        }
    };
    let mut targets = Vec::new();
    let mut bad = false;
    for (environment, selection) in selections {
        match load_parameters(&selection, reporter) {
            Ok(parameters) => targets.push(Target {
                environment,
                parameters,
            }),
            Err(_) => bad = true,
        }
    }
    if bad {
        return Err(ExitStatus::BadInput);
    }
    Ok(targets)
}

fn execute(args: &Args, cx: &Context) -> Result<ExitStatus, ExitStatus> {
    let reporter = &cx.reporter;
    let targets = targets(args, reporter.as_ref())?;
    let session = session(&args.azure, &cx.env, reporter)?;
    let mut options = Options::new(args.scope);
    options.switches = Switches {
        wait: args.wait,
        remove_previous: args.remove_previous,
    };
    options.what_if = args.run.what_if;
    options.root = args.parameters.root.clone();
    options.deploy_infra.role_mode = match args.role_mode {
        RoleModeArg::LeastPrivilege => RoleMode::LeastPrivilege,
        RoleModeArg::Contributor => RoleMode::Contributor,
    };
    options.upload_scripts.line_per_file = !cx.interactive_terminal();
    let (commit, run_url) = provenance(&cx.env);
    options.trigger_build.commit = commit;
    options.trigger_build.run_url = run_url;
    options.trigger_build.skip_if_unchanged = args.skip_if_unchanged;
    options.trigger_build.allow_concurrent = args.allow_concurrent;
    options.wait_for_build.poll_interval = args.poll_interval;
    options.wait_for_build.timeout = args.timeout;
    options.remove_templates.keep = args.keep as usize;
    let stop = Stop::new();
    options.stop = stop.clone();

    let runtime = runtime(reporter.as_ref())?;
    // The pipeline reports each failure itself (step lines, summary); its error only carries
    // the status.
    let result = block_on_stoppable(
        &runtime,
        reporter,
        "Interrupted: stopping (deploy-infra after the operation in flight).",
        move || stop.trigger(),
        pipeline::run(&targets, &options, &session, reporter),
    );
    Ok(match result {
        Ok(_) => ExitStatus::Success,
        Err(err) => err.exit_status(),
    })
}
