//! Azure VM Image Builder templates (Microsoft.VirtualMachineImages/imageTemplates): the typed
//! model of what ARM returns and the list/get/delete/cancel calls.
//!
//! Templates are immutable and each build gets a new one, so the steps mostly read them (their
//! `provisioningState` and `lastRunStatus`) and remove old ones. Whether a template may be
//! deleted right now is decided here once ([`ImageTemplate::busy`]): Image Builder refuses a
//! DELETE while a build is `Running`/`Canceling` or while the template is `Creating`/`Deleting`
//! (contract section 8.8), and a step should say so instead of sending a request that fails.
//! States are kept as Azure spelled them and read case-insensitively, because the service's
//! casing is not consistent across API versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::arm::{ArmClient, ArmError, Idempotency, LroOptions};

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.VirtualMachineImages/imageTemplates`.
pub fn templates_path(subscription: &str, resource_group: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.VirtualMachineImages/imageTemplates"
    )
}

/// `{templates path}/{name}`.
pub fn template_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!("{}/{name}", templates_path(subscription, resource_group))
}

/// An image template as ARM returns it (the subset aib reads; the rest is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageTemplate {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Region.
    #[serde(default)]
    pub location: String,
    /// Tags (`None` when ARM sends none or `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Server-side state.
    #[serde(default)]
    pub properties: ImageTemplateProperties,
}

/// The template properties aib reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageTemplateProperties {
    /// `Creating | Updating | Succeeded | Failed | Deleting | Canceled`, as Azure spelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Why provisioning failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_error: Option<ProvisioningError>,
    /// The last build; absent until the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_status: Option<LastRunStatus>,
    /// The staging resource group the user asked for (an id), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_resource_group: Option<String>,
    /// The staging resource group actually in use (an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_staging_resource_group: Option<String>,
}

/// `properties.provisioningError`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningError {
    /// E.g. `BadStagingResourceGroup`.
    #[serde(default)]
    pub provisioning_error_code: String,
    /// The service's message.
    #[serde(default)]
    pub message: String,
}

/// `properties.lastRunStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRunStatus {
    /// RFC 3339 start of the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 end of the build (absent while running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// `Running | Canceling | Succeeded | PartiallySucceeded | Failed | Canceled`.
    #[serde(default)]
    pub run_state: String,
    /// `Queued | Building | Customizing | Optimizing | Validating | Distributing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_sub_state: Option<String>,
    /// The service's message (the failure reason, the log location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A build's state, read case-insensitively; states this crate does not know are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// A build is in progress.
    Running,
    /// A cancel was asked for and is in progress (users report hours).
    Canceling,
    /// Built and distributed.
    Succeeded,
    /// Built; some distribution targets failed.
    PartiallySucceeded,
    /// Failed.
    Failed,
    /// Canceled.
    Canceled,
    /// Something else, as Azure spelled it.
    Other(String),
}

impl RunState {
    /// Parses Azure's spelling.
    pub fn parse(value: &str) -> RunState {
        match value.to_ascii_lowercase().as_str() {
            "running" => RunState::Running,
            "canceling" | "cancelling" => RunState::Canceling,
            "succeeded" => RunState::Succeeded,
            "partiallysucceeded" => RunState::PartiallySucceeded,
            "failed" => RunState::Failed,
            "canceled" | "cancelled" => RunState::Canceled,
            _ => RunState::Other(value.to_owned()),
        }
    }

    /// Running or canceling: the template cannot be deleted or run again.
    pub fn in_progress(&self) -> bool {
        matches!(self, RunState::Running | RunState::Canceling)
    }
}

/// A template's provisioning state, read case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisioningState {
    /// Being submitted (validation, script download, staging group).
    Creating,
    /// Being patched.
    Updating,
    /// Ready to run.
    Succeeded,
    /// Submission failed; the template must be deleted before re-submitting.
    Failed,
    /// Being deleted.
    Deleting,
    /// Canceled.
    Canceled,
    /// Something else, as Azure spelled it.
    Other(String),
}

impl ProvisioningState {
    /// Parses Azure's spelling.
    pub fn parse(value: &str) -> ProvisioningState {
        match value.to_ascii_lowercase().as_str() {
            "creating" => ProvisioningState::Creating,
            "updating" => ProvisioningState::Updating,
            "succeeded" => ProvisioningState::Succeeded,
            "failed" => ProvisioningState::Failed,
            "deleting" => ProvisioningState::Deleting,
            "canceled" | "cancelled" => ProvisioningState::Canceled,
            _ => ProvisioningState::Other(value.to_owned()),
        }
    }
}

/// Why a template cannot be deleted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// Its build is `Running` or `Canceling` (the state as Azure spelled it).
    Run(String),
    /// It is `Creating` or `Deleting` (as spelled).
    Provisioning(String),
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Busy::Run(state) => write!(f, "build {state}"),
            Busy::Provisioning(state) => write!(f, "template {state}"),
        }
    }
}

impl ImageTemplate {
    /// The provisioning state, if Azure sent one.
    pub fn provisioning_state(&self) -> Option<ProvisioningState> {
        self.properties
            .provisioning_state
            .as_deref()
            .map(ProvisioningState::parse)
    }

    /// The last build's state; `None` before the first run.
    pub fn run_state(&self) -> Option<RunState> {
        self.properties
            .last_run_status
            .as_ref()
            .filter(|s| !s.run_state.is_empty())
            .map(|s| RunState::parse(&s.run_state))
    }

    /// Why Image Builder would refuse to delete this template now, or `None` when it may go.
    pub fn busy(&self) -> Option<Busy> {
        if let Some(status) = &self.properties.last_run_status
            && RunState::parse(&status.run_state).in_progress()
        {
            return Some(Busy::Run(status.run_state.clone()));
        }
        match (
            self.provisioning_state(),
            &self.properties.provisioning_state,
        ) {
            (Some(ProvisioningState::Creating | ProvisioningState::Deleting), Some(raw)) => {
                Some(Busy::Provisioning(raw.clone()))
            }
            _ => None,
        }
    }

    /// The staging resource group in use: `exactStagingResourceGroup`, else the one asked for.
    pub fn staging_group_id(&self) -> Option<&str> {
        self.properties
            .exact_staging_resource_group
            .as_deref()
            .or(self.properties.staging_resource_group.as_deref())
            .filter(|s| !s.is_empty())
    }
}

/// Every template in a resource group (all pages); an absent group is an empty list.
pub async fn list_templates(
    arm: &ArmClient,
    subscription: &str,
    resource_group: &str,
) -> Result<Vec<ImageTemplate>, ArmError> {
    match arm
        .list(&templates_path(subscription, resource_group))
        .await
    {
        Ok(items) => Ok(items),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The template, or `None`.
pub async fn get_template(arm: &ArmClient, id: &str) -> Result<Option<ImageTemplate>, ArmError> {
    arm.get_optional(id).await
}

/// Deletes the template and waits until it is gone (Image Builder removes its staging group or
/// the resources in a user-given one); an absent template is fine.
pub async fn delete_template(
    arm: &ArmClient,
    id: &str,
    options: &LroOptions,
) -> Result<(), ArmError> {
    arm.delete_with(id, options).await
}

/// Asks Image Builder to cancel the running build and follows the cancel operation to its end.
/// The build's `runState` may still read `Canceling` afterwards; callers that need `Canceled`
/// poll [`get_template`]. Not re-sent after a failure that may have reached Azure.
pub async fn cancel_run(arm: &ArmClient, id: &str, options: &LroOptions) -> Result<(), ArmError> {
    let started = arm
        .begin(
            reqwest::Method::POST,
            &format!("{id}/cancel"),
            None::<&()>,
            Idempotency::NotIdempotent,
        )
        .await?;
    arm.wait(started, options).await.map(|_| ())
}

/// Creates a template from `body` (its PUT body) and follows the creation to its end: Image
/// Builder validates it, checks the identity, downloads the scripts and creates the staging
/// group before it says `Succeeded`. A failure leaves a `Failed` template that must be deleted
/// before a template of that name can be submitted again (contract 8.8).
pub async fn create_template<B: Serialize + ?Sized>(
    arm: &ArmClient,
    id: &str,
    body: &B,
    options: &LroOptions,
) -> Result<ImageTemplate, ArmError> {
    arm.put_with(id, body, options).await
}

/// Starts a build (`POST …/run`) and returns once Image Builder accepted it, without following
/// the run's operation (it lasts as long as the build; wait-for-build follows it). Not re-sent
/// after a failure that may have reached Azure: a second run request would be refused anyway.
/// Returns the run's operation URL (`Azure-AsyncOperation`, else `Location`) when Azure gave
/// one, so the waiter can follow the run's own status and error code.
pub async fn start_run(arm: &ArmClient, id: &str) -> Result<Option<String>, ArmError> {
    let response = arm
        .send(
            reqwest::Method::POST,
            &format!("{id}/run"),
            None::<&()>,
            Idempotency::NotIdempotent,
        )
        .await?;
    Ok(["azure-asyncoperation", "location"]
        .iter()
        .find_map(|h| response.headers.get(*h)?.to_str().ok())
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(provisioning: &str, run: Option<&str>) -> ImageTemplate {
        let mut body = serde_json::json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.VirtualMachineImages/imageTemplates/t",
            "name": "t",
            "location": "westeurope",
            "properties": {"provisioningState": provisioning},
        });
        if let Some(run) = run {
            body["properties"]["lastRunStatus"] =
                serde_json::json!({"runState": run, "runSubState": "Building"});
        }
        serde_json::from_value(body).unwrap()
    }

    /// A running or canceling build, or a template being created or deleted, blocks a delete;
    /// finished builds and never-run templates do not; casing does not matter.
    #[test]
    fn busy_names_the_state_that_blocks_a_delete() {
        assert_eq!(
            template("Succeeded", Some("Running")).busy(),
            Some(Busy::Run("Running".into()))
        );
        assert_eq!(
            template("Succeeded", Some("canceling")).busy(),
            Some(Busy::Run("canceling".into()))
        );
        assert_eq!(
            template("Creating", None).busy(),
            Some(Busy::Provisioning("Creating".into()))
        );
        assert_eq!(
            template("deleting", None).busy(),
            Some(Busy::Provisioning("deleting".into()))
        );
        assert_eq!(template("Succeeded", Some("Succeeded")).busy(), None);
        assert_eq!(template("Succeeded", Some("Failed")).busy(), None);
        assert_eq!(template("Failed", None).busy(), None);
        assert_eq!(template("Succeeded", None).busy(), None);
        assert_eq!(
            template("Succeeded", Some("Running"))
                .busy()
                .unwrap()
                .to_string(),
            "build Running"
        );
    }

    /// Unknown states are kept as spelled instead of failing the decode.
    #[test]
    fn unknown_states_are_kept() {
        let t = template("Migrating", Some("Paused"));
        assert_eq!(
            t.provisioning_state(),
            Some(ProvisioningState::Other("Migrating".into()))
        );
        assert_eq!(t.run_state(), Some(RunState::Other("Paused".into())));
        assert_eq!(t.busy(), None);
    }

    /// The staging group in use is the exact one when Azure reports it.
    #[test]
    fn staging_group_prefers_the_exact_one() {
        let mut t = template("Succeeded", None);
        assert_eq!(t.staging_group_id(), None);
        t.properties.staging_resource_group = Some("/subscriptions/s/resourceGroups/mine".into());
        assert_eq!(
            t.staging_group_id(),
            Some("/subscriptions/s/resourceGroups/mine")
        );
        t.properties.exact_staging_resource_group =
            Some("/subscriptions/s/resourceGroups/IT_x".into());
        assert_eq!(
            t.staging_group_id(),
            Some("/subscriptions/s/resourceGroups/IT_x")
        );
    }
}
