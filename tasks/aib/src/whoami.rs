//! `aib whoami`: which credential the environment selects, for which tenant, client and
//! subscription, and whether a token can be had with it. Never prints a secret.
//!
//! The choice and the token are the library's (`aib::azure`); this module reads the process
//! environment once, asks for one ARM token, and reports the public ids (from the plan, and
//! from the token's claims when the plan did not know them, e.g. for Azure CLI).

use std::sync::Arc;

use aib::azure::args::AzureArgs;
use aib::azure::auth::token_claims;
use aib::azure::{AzureError, ReporterObserver, connect};
use aib::cli::{Context, main_with, runtime, settings};
use aib::exit::ExitStatus;
use aib::report::{OutputFormat, report_error};

const EXAMPLES: &str = "\
Examples:
  aib whoami                       the credential the environment selects
  aib whoami --auth azure-cli      use the account `az login` signed in
  aib whoami --output json         the same as one JSON document

Exit status: 0 when a token was issued, 1 when the token request failed, 2 when no credential
is configured (the message lists every kind tried, why it was skipped and what to set).";

/// Show which Azure credential aib would use (kind, tenant, client, subscription) and check
/// that it gets a token.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub azure: AzureArgs,

    /// Only show the choice; do not ask for a token.
    #[arg(long)]
    pub no_token: bool,

    /// `text` for people (default) or `json` for scripts.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Output::Text)]
    pub output: Output,
}

/// How the outcome is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// Resolves, connects, asks for a token, reports.
pub fn run(args: &Args) -> ExitStatus {
    let format = match args.output {
        Output::Text => OutputFormat::Text,
        Output::Json => OutputFormat::Json,
    };
    main_with(format, |cx| whoami(args, cx))
}

fn whoami(args: &Args, cx: &Context) -> Result<ExitStatus, ExitStatus> {
    let reporter = &cx.reporter;
    let settings = settings(&args.azure, &cx.env, reporter.as_ref())?;
    let observer = Arc::new(ReporterObserver::new(reporter.clone()));
    let mut identity = settings.auth.identity();
    let cloud = &settings.cloud;
    let mut outcome = serde_json::json!({
        "cloud": cloud.name,
        "armEndpoint": cloud.arm_endpoint.as_str(),
        "authorityHost": cloud.authority_host.as_str(),
        "source": settings.auth.source_description(),
    });
    let mut token_line = String::from("not requested (--no-token)");
    let mut status = ExitStatus::Success;
    if !args.no_token {
        let runtime = runtime(reporter.as_ref())?;
        let scope = cloud.arm_scope();
        let result = runtime.block_on(async {
            let azure = connect(&settings, observer)?;
            azure.tokens.token(&scope).await.map_err(AzureError::from)
        });
        match result {
            Ok(token) => {
                token_line = format!("issued for {scope}");
                if let Some(claims) = token_claims(&token) {
                    let claim = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                    identity.tenant_id = identity.tenant_id.or_else(|| claim("tid"));
                    identity.client_id = identity
                        .client_id
                        .or_else(|| claim("appid"))
                        .or_else(|| claim("azp"))
                        .or_else(|| claim("upn"))
                        .or_else(|| claim("oid"));
                }
                outcome["token"] = serde_json::json!({"scope": scope, "issued": true});
            }
            Err(err) => {
                report_error(reporter.as_ref(), &err, None);
                token_line = "refused (see the error)".to_owned();
                outcome["token"] = serde_json::json!({"scope": scope, "issued": false});
                status = err.exit_status();
            }
        }
    }
    let how = if identity.detected {
        "detected from the environment"
    } else {
        "chosen with --auth / AIB_AUTH"
    };
    let unknown = |v: &Option<String>, name: &str| {
        v.clone()
            .unwrap_or_else(|| format!("(unknown: set {name})"))
    };
    reporter.info(&format!("credential:   {} ({how})", identity.kind));
    reporter.info(&format!(
        "source:       {}",
        settings.auth.source_description()
    ));
    reporter.info(&format!(
        "tenant:       {}",
        unknown(&identity.tenant_id, "AZURE_TENANT_ID")
    ));
    reporter.info(&format!(
        "client:       {}",
        unknown(&identity.client_id, "AZURE_CLIENT_ID")
    ));
    reporter.info(&format!(
        "subscription: {}",
        unknown(&identity.subscription_id, "AZURE_SUBSCRIPTION_ID")
    ));
    reporter.info(&format!(
        "cloud:        {} (ARM {}, login {})",
        cloud.name, cloud.arm_endpoint, cloud.authority_host
    ));
    reporter.info(&format!("token:        {token_line}"));
    let fields = serde_json::to_value(&identity).ok();
    if let (Some(o), Some(serde_json::Value::Object(fields))) = (outcome.as_object_mut(), fields) {
        o.extend(fields);
    }
    reporter.outcome(outcome);
    Ok(status)
}
