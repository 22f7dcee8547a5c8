//! `deploy-infra`: glue between clap, the environment and `aib::steps::deploy_infra`.
//!
//! It parses the flags, maps them to the step's `Options` and turns Ctrl-C into a stop between
//! operations (the step must not be dropped mid-write). Reading the environment, loading and
//! validating the parameter file (bad input exits 2 before any call to Azure), connecting and
//! mapping the step's end to an [`ExitStatus`] are `aib::cli`'s shared glue; everything else —
//! the plan, the writes, the output — is the library's.

use std::ffi::OsString;
use std::process::ExitCode;

use aib::azure::args::AzureArgs;
use aib::cli::{
    Context, ParameterArgs, RunArgs, block_on_stoppable, connect, load_parameters, main_with,
    runtime, step_status,
};
use aib::exit::ExitStatus;
use aib::steps::deploy_infra::{Interrupt, Options, RoleMode, deploy_infra};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  deploy-infra --env sbx --what-if            show what would be created or changed, change nothing
  deploy-infra --env sbx                      create or update the sbx infrastructure
  deploy-infra --env prd --os windows         use parameters/prd.image.parameters.windows.json
  deploy-infra --parameters my.json --role-mode contributor --output json

What it manages: the resource providers Image Builder needs, the resource group (and a given
staging resource group), the user-assigned identity Image Builder runs as, its role assignments,
the scripts storage account (no public access, TLS 1.2, no shared keys, HTTPS only) and
container, the Compute Gallery and the image definition. It never deletes anything; running it
again right away changes nothing.

Outputs (GitHub step outputs / Azure Pipelines output variables, and --output json):
resourceGroup, identityId, identityClientId, identityPrincipalId, storageAccount,
storageBlobEndpoint, container, galleryId, imageDefinitionId.

Exit codes: 0 ok (or the plan was shown), 1 Azure refused or a resource conflicts, 2 bad input,
3 timeout, 130 interrupted (Ctrl-C stops after the operation in flight).";

/// Create or update the infrastructure Azure VM Image Builder needs for one environment, from
/// its parameter file: plan first, then apply.
///
/// The plan lists every resource as create, update (with the properties that differ) or
/// unchanged, and is printed before anything is changed. Conflicts Azure would refuse (a
/// different location, an image definition whose OS type, generation or identifier differs, a
/// storage account name taken elsewhere) and missing permissions of the signed-in principal end
/// the run before the first change.
#[derive(Debug, Parser)]
#[command(name = "deploy-infra", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    parameters: ParameterArgs,

    #[command(flatten)]
    run: RunArgs,

    /// Roles for Image Builder's identity: `least-privilege` (default: a custom role on the
    /// resource group with only the gallery and image actions Image Builder needs) or
    /// `contributor` (Contributor on the subscription, as the original pipeline did). Both add
    /// Storage Blob Data Reader on the scripts account. Example: `--role-mode contributor`.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = RoleModeArg::LeastPrivilege)]
    role_mode: RoleModeArg,

    #[command(flatten)]
    azure: AzureArgs,
}

/// The `--role-mode` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RoleModeArg {
    /// A custom role with the actions of image creation and distribution, on the resource group.
    LeastPrivilege,
    /// Contributor on the subscription.
    Contributor,
}

/// Runs `deploy-infra` with `args` (the first is the name it was called by, as in `std::env::args_os`).
///
/// Public so that one multi-call `aib` binary can carry every step: the `deploy-infra` executable
/// and `aib deploy-infra …` (or `aib` linked under the name `deploy-infra`) run this same function.
pub fn main_from(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    main_with(cli.run.output, |cx| run(&cli, cx)).into()
}

fn run(cli: &Cli, cx: &Context) -> Result<ExitStatus, ExitStatus> {
    let reporter = &cx.reporter;
    let file = load_parameters(&cli.parameters, reporter.as_ref())?;
    let azure = connect(&cli.azure, &cx.env, reporter)?;
    let runtime = runtime(reporter.as_ref())?;
    let options = Options {
        what_if: cli.run.what_if,
        role_mode: match cli.role_mode {
            RoleModeArg::LeastPrivilege => RoleMode::LeastPrivilege,
            RoleModeArg::Contributor => RoleMode::Contributor,
        },
        interrupt: Interrupt::new(),
        ..Options::default()
    };
    let interrupt = options.interrupt.clone();
    let result = block_on_stoppable(
        &runtime,
        reporter,
        "Interrupted: stopping after the operation in flight.",
        move || interrupt.trigger(),
        deploy_infra(&file, &azure, reporter.clone(), &options),
    );
    Ok(step_status(reporter.as_ref(), result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The clap definition is consistent and every flag has help text.
    #[test]
    fn every_flag_is_documented() {
        Cli::command().debug_assert();
        for arg in Cli::command().get_arguments() {
            assert!(
                arg.get_help().is_some() || arg.get_long_help().is_some(),
                "--{} has no help",
                arg.get_id()
            );
        }
    }

    /// `--role-mode` takes both spellings and defaults to least privilege.
    #[test]
    fn role_mode_defaults_to_least_privilege() {
        let cli = Cli::try_parse_from(["deploy-infra", "--env", "sbx"]).unwrap();
        assert_eq!(cli.role_mode, RoleModeArg::LeastPrivilege);
        let cli =
            Cli::try_parse_from(["deploy-infra", "--env", "sbx", "--role-mode", "contributor"])
                .unwrap();
        assert_eq!(cli.role_mode, RoleModeArg::Contributor);
        assert!(Cli::try_parse_from(["deploy-infra", "--role-mode", "owner"]).is_err());
    }
}
