//! `deploy-infra`: the image infrastructure an environment needs, brought to what its parameter
//! file declares — idempotent, least-privilege, and planned before anything changes.
//!
//! What it manages (in dependency order): the resource providers Image Builder needs (registered
//! when missing), the resource group (and a user-given staging resource group), the
//! user-assigned identity Image Builder runs as, the scripts storage account (StorageV2,
//! Standard_LRS, no public blob access, TLS 1.2, no shared keys, HTTPS only) and its private
//! container, the Compute Gallery and the image definition, a custom role with the actions of
//! the REST contract §5.4 (or Contributor on the subscription with [`RoleMode::Contributor`]),
//! and the identity's role assignments (that role on the resource group, Storage Blob Data
//! Reader on the account, Contributor on a given staging group).
//!
//! How ([`deploy_infra`]): [`plan`] reads what exists (GET/HEAD and read-only POSTs only) and
//! decides for each resource `create`, `update` (naming the properties that differ) or
//! `unchanged`; conflicts Azure would refuse (a location or an image definition's identity
//! that differs, a storage account name taken elsewhere) end the run before any change.
//! [`preflight`] checks that the caller's roles grant every write the plan needs. The plan is
//! printed; `what_if` stops there. [`apply`] then runs the writes (independent resources in
//! parallel), with progress per resource, and stops between operations when interrupted.
//! Nothing is ever deleted, and tags are merged (tags set by others are kept), so a re-run
//! right after a run sends no write at all.

mod apply;
mod plan;
mod preflight;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::azure::Azure;
use crate::azure::arm::ArmError;
use crate::azure::rbac::ConsistencyRetry;
use crate::config::ParameterFile;
use crate::exit::ExitStatus;
use crate::report::{Reporter, StepStatus};

/// The step's name, as the reporter and the summary show it.
pub const STEP: &str = "deploy-infra";

/// Which roles Image Builder's identity gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RoleMode {
    /// A custom role on the resource group with only the actions image creation and
    /// distribution need, plus Storage Blob Data Reader on the scripts account.
    #[default]
    LeastPrivilege,
    /// Contributor on the subscription, as the original pipeline granted (plus Storage Blob
    /// Data Reader, which Contributor does not include and Image Builder needs to read scripts).
    Contributor,
}

/// A flag the binary sets on Ctrl-C; the step stops before its next operation.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag that is not set.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the step to stop before its next operation.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How the step runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print the plan and change nothing.
    pub what_if: bool,
    /// Which roles the identity gets.
    pub role_mode: RoleMode,
    /// How long role assignments ride out Entra ID replication after the identity is created.
    pub consistency: ConsistencyRetry,
    /// Set on Ctrl-C.
    pub interrupt: Interrupt,
}

/// What kind of resource a plan entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A resource provider registration.
    Provider,
    /// A resource group.
    ResourceGroup,
    /// The user-assigned managed identity.
    Identity,
    /// The scripts storage account.
    StorageAccount,
    /// Its blob container.
    Container,
    /// The Compute Gallery.
    Gallery,
    /// The gallery image definition.
    ImageDefinition,
    /// aib's custom role.
    RoleDefinition,
    /// A role assignment of the identity.
    RoleAssignment,
}

impl Kind {
    /// How people call it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Provider => "resource provider",
            Kind::ResourceGroup => "resource group",
            Kind::Identity => "managed identity",
            Kind::StorageAccount => "storage account",
            Kind::Container => "blob container",
            Kind::Gallery => "gallery",
            Kind::ImageDefinition => "image definition",
            Kind::RoleDefinition => "custom role",
            Kind::RoleAssignment => "role assignment",
        }
    }
}

/// What the plan does with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// It does not exist (a provider: it is not registered).
    Create,
    /// It exists and some declared properties differ.
    Update,
    /// It is as declared.
    Unchanged,
}

impl Action {
    fn label(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
        }
    }
}

/// One property an update changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Change {
    /// The property (`tags.environment`, `minimumTlsVersion`, …).
    pub property: String,
    /// What Azure has (`None`: not set).
    pub from: Option<String>,
    /// What will be set.
    pub to: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{}: {from} -> {}", self.property, self.to),
            None => write!(f, "{}: (not set) -> {}", self.property, self.to),
        }
    }
}

/// Where a resource stands once the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Planned only (`--what-if`, or the run stopped before applying anything).
    Planned,
    /// Created or updated.
    Applied,
    /// Nothing to do.
    Unchanged,
    /// Not applied because the run was interrupted or an earlier operation failed.
    NotApplied,
    /// Its operation failed.
    Failed,
}

/// One resource of the plan and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// What it is.
    pub kind: Kind,
    /// Its name (for a role assignment: `role on target`).
    pub name: String,
    /// Its ARM id (or path), as far as it is known before applying.
    pub id: String,
    /// What the plan does.
    pub action: Action,
    /// For an update, the properties that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// What happened.
    pub status: Status,
}

/// The values later steps and people need, also written as step outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    /// Resource group name.
    pub resource_group: String,
    /// The identity's resource id.
    pub identity_id: String,
    /// The identity's client (application) id.
    pub identity_client_id: String,
    /// The identity's principal (object) id.
    pub identity_principal_id: String,
    /// Storage account name.
    pub storage_account: String,
    /// Its blob endpoint.
    pub storage_blob_endpoint: String,
    /// Container name.
    pub container: String,
    /// The gallery's resource id.
    pub gallery_id: String,
    /// The image definition's resource id.
    pub image_definition_id: String,
}

impl Outputs {
    /// `(output name, value)` pairs, in a stable order.
    pub fn pairs(&self) -> [(&'static str, &str); 9] {
        [
            ("resourceGroup", &self.resource_group),
            ("identityId", &self.identity_id),
            ("identityClientId", &self.identity_client_id),
            ("identityPrincipalId", &self.identity_principal_id),
            ("storageAccount", &self.storage_account),
            ("storageBlobEndpoint", &self.storage_blob_endpoint),
            ("container", &self.container),
            ("galleryId", &self.gallery_id),
            ("imageDefinitionId", &self.image_definition_id),
        ]
    }
}

/// The step's result: the plan, what became of each resource, and the outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The parameter file.
    pub file: String,
    /// The subscription.
    pub subscription_id: String,
    /// Only the plan was computed.
    pub what_if: bool,
    /// The roles chosen for the identity.
    pub role_mode: RoleMode,
    /// Every resource, in dependency order.
    pub resources: Vec<Resource>,
    /// Set once everything is in place (not with `what_if`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    /// The run stopped on Ctrl-C.
    pub interrupted: bool,
    /// Why the run failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    /// How many resources the plan creates, updates and leaves unchanged.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |a: Action| self.resources.iter().filter(|r| r.action == a).count();
        (
            count(Action::Create),
            count(Action::Update),
            count(Action::Unchanged),
        )
    }
}

/// Why deploy-infra stopped; every variant names the resource and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeployInfraError {
    /// No subscription was given.
    #[error(
        "no subscription: set AZURE_SUBSCRIPTION_ID or pass --subscription-id (deploy-infra creates resources in it)"
    )]
    NoSubscription,
    /// An ARM call failed.
    #[error("{what}")]
    Azure {
        /// What was being done, e.g. `creating storage account 'st' in rg`.
        what: String,
        /// The ARM failure.
        #[source]
        source: ArmError,
        /// What to do about it, when we know.
        hint: Option<String>,
    },
    /// The storage account name belongs to someone else (names are global).
    #[error(
        "storage account name '{name}' is not available: {message}; nothing was created. Choose another storageAccountName in {file} (3-24 lowercase letters and digits, unique across Azure)"
    )]
    StorageNameTaken {
        /// The name.
        name: String,
        /// Azure's reason.
        message: String,
        /// The parameter file.
        file: String,
    },
    /// Existing resources differ in ways Azure cannot change.
    #[error("{}", conflicts_text(.0))]
    Conflicts(Vec<String>),
    /// The caller lacks permissions the plan needs.
    #[error("{}", missing_text(.0))]
    MissingPermissions(Vec<MissingPermission>),
    /// Ctrl-C.
    #[error(
        "interrupted: applied {}; not applied {}. Run deploy-infra again to finish",
        list_or_none(.applied),
        list_or_none(.not_applied)
    )]
    Interrupted {
        /// What was applied before the stop.
        applied: Vec<String>,
        /// What was not.
        not_applied: Vec<String>,
    },
}

/// A write the caller may not do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingPermission {
    /// The ARM action.
    pub action: String,
    /// Where.
    pub scope: String,
    /// Built-in roles that grant it.
    pub roles: String,
}

fn conflicts_text(conflicts: &[String]) -> String {
    let mut text = String::from(
        "existing resources differ from the parameter file in ways Azure cannot change (nothing was changed or deleted):",
    );
    for c in conflicts {
        text.push_str("\n  - ");
        text.push_str(c);
    }
    text
}

fn missing_text(missing: &[MissingPermission]) -> String {
    let mut text = String::from(
        "the signed-in principal lacks permissions this deployment needs (checked before any change; nothing was changed):",
    );
    for m in missing {
        text.push_str(&format!(
            "\n  - '{}' on '{}': assign {}",
            m.action, m.scope, m.roles
        ));
    }
    text
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.join(", ")
    }
}

impl DeployInfraError {
    /// Exit status: a missing subscription is bad input, Ctrl-C is 130, an ARM deadline 3,
    /// everything else an Azure failure.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            DeployInfraError::NoSubscription => ExitStatus::BadInput,
            DeployInfraError::Azure { source, .. } => source.exit_status(),
            DeployInfraError::Interrupted { .. } => ExitStatus::Interrupted,
            _ => ExitStatus::AzureFailure,
        }
    }

    /// What to do about it, when there is more to say than the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            DeployInfraError::Azure { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

/// Plans, checks, prints the plan, and (unless `what_if`) applies it. The outcome — also on
/// failure, with `error` set — is reported through `reporter.outcome`, the outputs through
/// `reporter.output` and a summary table through `reporter.summary`.
pub async fn deploy_infra(
    parameters: &ParameterFile,
    azure: &Azure,
    reporter: Arc<dyn Reporter>,
    options: &Options,
) -> Result<Outcome, DeployInfraError> {
    reporter.step_start(STEP);
    let subscription = azure.identity.subscription_id.clone().unwrap_or_default();
    let mut outcome = Outcome {
        file: parameters.file.clone(),
        subscription_id: subscription.clone(),
        what_if: options.what_if,
        role_mode: options.role_mode,
        resources: Vec::new(),
        outputs: None,
        interrupted: false,
        error: None,
    };
    let result = run(parameters, azure, &reporter, options, &mut outcome).await;
    if let Err(e) = &result {
        outcome.error = Some(crate::report::error_text(e, e.hint().as_deref()));
        outcome.interrupted = matches!(e, DeployInfraError::Interrupted { .. });
    }
    if let Err(e) = reporter.summary(&summary_markdown(&outcome)) {
        reporter.annotate(&crate::report::Annotation::warning(format!(
            "job summary not written: {e}"
        )));
    }
    reporter.outcome(serde_json::to_value(&outcome).unwrap_or(serde_json::Value::Null));
    reporter.step_end(
        STEP,
        if result.is_ok() {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        },
    );
    result.map(|()| outcome)
}

async fn run(
    parameters: &ParameterFile,
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
    options: &Options,
    outcome: &mut Outcome,
) -> Result<(), DeployInfraError> {
    if outcome.subscription_id.is_empty() {
        return Err(DeployInfraError::NoSubscription);
    }
    let names = plan::Names::new(
        &parameters.parameters,
        &outcome.subscription_id,
        options.role_mode,
    );
    let planned = {
        let _group = reporter.group("Plan");
        reporter.info(&format!(
            "Reading what exists in subscription {} (resource group {}, {})",
            names.subscription, names.resource_group, names.location
        ));
        let planned = plan::plan(&azure.arm, parameters, &names).await?;
        outcome.resources = planned.resources.clone();
        print_plan(reporter.as_ref(), &planned.resources, &planned.conflicts);
        planned
    };
    if !planned.conflicts.is_empty() {
        return Err(DeployInfraError::Conflicts(planned.conflicts.clone()));
    }
    preflight::check_permissions(
        azure,
        reporter.as_ref(),
        &names,
        &planned.resources,
        options.what_if,
    )
    .await?;
    if options.what_if {
        reporter.info("--what-if: nothing was changed.");
        return Ok(());
    }
    let _group = reporter.group("Apply");
    let applied = apply::apply(azure, reporter, &names, planned, options, outcome).await?;
    for (name, value) in applied.pairs() {
        if let Err(e) = reporter.output(name, value) {
            reporter.annotate(&crate::report::Annotation::warning(format!(
                "output {name} not written: {e}"
            )));
        }
    }
    outcome.outputs = Some(applied);
    let (create, update, unchanged) = outcome.counts();
    reporter.info(&format!(
        "Done: {create} created, {update} updated, {unchanged} unchanged."
    ));
    Ok(())
}

fn print_plan(reporter: &dyn Reporter, resources: &[Resource], conflicts: &[String]) {
    for r in resources {
        let sign = match r.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Unchanged => "=",
        };
        let mut line = format!(
            "{sign} {:<9} {} {}",
            r.action.label(),
            r.kind.label(),
            r.name
        );
        if !r.changes.is_empty() {
            let changes: Vec<String> = r.changes.iter().map(ToString::to_string).collect();
            line.push_str(&format!(" ({})", changes.join("; ")));
        }
        reporter.info(&line);
    }
    for c in conflicts {
        reporter.info(&format!("! conflict  {c}"));
    }
    let count = |a: Action| resources.iter().filter(|r| r.action == a).count();
    reporter.info(&format!(
        "Plan: {} to create, {} to update, {} unchanged.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Unchanged)
    ));
}

/// The job summary: one table row per resource with the plan and the result.
pub fn summary_markdown(outcome: &Outcome) -> String {
    let mut md = format!(
        "### deploy-infra{}\n\n| Resource | Name | Plan | Result |\n|---|---|---|---|\n",
        if outcome.what_if { " (what-if)" } else { "" }
    );
    for r in &outcome.resources {
        let plan = if r.changes.is_empty() {
            r.action.label().to_owned()
        } else {
            let props: Vec<&str> = r.changes.iter().map(|c| c.property.as_str()).collect();
            format!("{} ({})", r.action.label(), props.join(", "))
        };
        let result = match r.status {
            Status::Planned => "planned",
            Status::Applied => "done",
            Status::Unchanged => "unchanged",
            Status::NotApplied => "not applied",
            Status::Failed => "failed",
        };
        md.push_str(&format!(
            "| {} | `{}` | {plan} | {result} |\n",
            r.kind.label(),
            r.name.replace('|', "\\|")
        ));
    }
    if let Some(e) = &outcome.error {
        md.push_str(&format!(
            "\n**Failed:** {}\n",
            e.lines().next().unwrap_or_default()
        ));
    }
    md
}

/// The JSON Schema of [`Outcome`] (what `--output json` prints as `outcome`).
pub fn outcome_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Outcome)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome's JSON format is reviewed like code: any change shows in this snapshot.
    #[test]
    fn outcome_schema_is_stable() {
        insta::assert_json_snapshot!(outcome_schema());
    }

    /// The summary has a row per resource with the properties an update changes.
    #[test]
    fn summary_lists_each_resource_with_its_plan_and_result() {
        let outcome = Outcome {
            file: "p.json".into(),
            subscription_id: "s".into(),
            what_if: false,
            role_mode: RoleMode::LeastPrivilege,
            resources: vec![Resource {
                kind: Kind::StorageAccount,
                name: "st".into(),
                id: "/x".into(),
                action: Action::Update,
                changes: vec![Change {
                    property: "minimumTlsVersion".into(),
                    from: Some("TLS1_0".into()),
                    to: "TLS1_2".into(),
                }],
                status: Status::Applied,
            }],
            outputs: None,
            interrupted: false,
            error: None,
        };
        assert_eq!(
            summary_markdown(&outcome),
            "### deploy-infra\n\n| Resource | Name | Plan | Result |\n|---|---|---|---|\n\
             | storage account | `st` | update (minimumTlsVersion) | done |\n"
        );
    }
}
