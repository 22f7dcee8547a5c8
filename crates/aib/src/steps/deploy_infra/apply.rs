//! Applying the plan: the writes in dependency order — providers, resource groups, then the
//! identity, the storage account and container, the gallery and image definition, and the
//! custom role side by side, then the role assignments — each with its own progress line.
//!
//! Before each operation the interrupt flag is checked; an operation already sent is always
//! followed to its end, so a stop never leaves a resource half-made. Resources marked
//! `unchanged` get no request at all.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::join_all;

use super::plan::{Names, Planned};
use super::{
    Action, DeployInfraError, Kind, Options, Outcome, Outputs, Resource, Status, preflight,
};
use crate::azure::arm::{ArmError, LroOptions, ProgressCallback};
use crate::azure::gallery::{self, Gallery, ImageDefinition};
use crate::azure::identity::{self, UserAssignedIdentity};
use crate::azure::rbac::{self, AssignOutcome};
use crate::azure::storage::{self, StorageAccount};
use crate::azure::{Azure, elapsed_text, groups};
use crate::report::{Reporter, Unit};

struct Run<'a> {
    reporter: Arc<dyn Reporter>,
    resources: &'a [Resource],
    status: Mutex<Vec<Status>>,
    options: &'a Options,
}

/// The marker error of an operation skipped because of Ctrl-C (lists are filled at the end).
fn interrupted() -> DeployInfraError {
    DeployInfraError::Interrupted {
        applied: Vec::new(),
        not_applied: Vec::new(),
    }
}

fn hint_for(resource: &Resource, error: &ArmError) -> Option<String> {
    if error.status() == Some(403) {
        let scope = match resource.kind {
            Kind::RoleAssignment => resource
                .id
                .split("/providers/Microsoft.Authorization/")
                .next()
                .unwrap_or_default()
                .to_owned(),
            _ => resource.id.clone(),
        };
        let action = match resource.kind {
            Kind::RoleAssignment => "Microsoft.Authorization/roleAssignments/write".to_owned(),
            Kind::RoleDefinition => "Microsoft.Authorization/roleDefinitions/write".to_owned(),
            Kind::Provider => format!("{}/register/action", resource.name),
            _ => return error.service().and_then(|s| s.hint()),
        };
        return Some(format!(
            "the signed-in principal needs {} on '{scope}'",
            preflight::roles_granting(&action)
        ));
    }
    error.service().and_then(|s| s.hint())
}

impl Run<'_> {
    fn set(&self, index: usize, status: Status) {
        if let Ok(mut s) = self.status.lock() {
            s[index] = status;
        }
    }

    /// Runs the write of `resources[index]` unless it is unchanged; `None` when nothing was sent.
    async fn op<T, F, Fut>(&self, index: usize, write: F) -> Result<Option<T>, DeployInfraError>
    where
        F: FnOnce(LroOptions) -> Fut,
        Fut: Future<Output = Result<T, ArmError>>,
    {
        let r = &self.resources[index];
        if r.action == Action::Unchanged {
            return Ok(None);
        }
        if self.options.interrupt.is_triggered() {
            self.set(index, Status::NotApplied);
            return Err(interrupted());
        }
        let (verb, done) = match (r.kind, r.action) {
            (Kind::Provider, _) => ("Registering", "registered"),
            (_, Action::Create) => ("Creating", "created"),
            _ => ("Updating", "updated"),
        };
        let id = self.reporter.progress_start(
            &format!("{verb} {} {}", r.kind.label(), r.name),
            Unit::Items,
        );
        let reporter = self.reporter.clone();
        let callback: ProgressCallback = Arc::new(move |p| {
            reporter.status(id, &format!("{}, {}", p.state, elapsed_text(p.elapsed)));
        });
        let started = Instant::now();
        let result = write(LroOptions {
            progress: Some(callback),
            timeout: None,
        })
        .await;
        match result {
            Ok(v) => {
                self.set(index, Status::Applied);
                self.reporter.progress_finish(
                    id,
                    &format!("{done} in {}", elapsed_text(started.elapsed())),
                );
                Ok(Some(v))
            }
            Err(source) => {
                self.set(index, Status::Failed);
                self.reporter.progress_finish(id, "failed");
                Err(DeployInfraError::Azure {
                    what: format!(
                        "{} {} '{}' failed",
                        verb.to_ascii_lowercase(),
                        r.kind.label(),
                        r.name
                    ),
                    hint: hint_for(r, &source),
                    source,
                })
            }
        }
    }

    fn finish(&self, outcome: &mut Outcome) -> (Vec<String>, Vec<String>) {
        let mut applied = Vec::new();
        let mut not_applied = Vec::new();
        if let Ok(mut status) = self.status.lock() {
            for (i, s) in status.iter_mut().enumerate() {
                if *s == Status::Planned {
                    *s = Status::NotApplied;
                }
                let r = &self.resources[i];
                let label = format!("{} {}", r.kind.label(), r.name);
                match s {
                    Status::Applied => applied.push(label),
                    Status::NotApplied | Status::Failed => not_applied.push(label),
                    _ => {}
                }
                if let Some(o) = outcome.resources.get_mut(i) {
                    o.status = *s;
                }
            }
        }
        (applied, not_applied)
    }
}

fn first_error(errors: Vec<DeployInfraError>) -> Option<DeployInfraError> {
    let mut interrupted_seen = None;
    for e in errors {
        match e {
            DeployInfraError::Interrupted { .. } => interrupted_seen = Some(e),
            other => return Some(other),
        }
    }
    interrupted_seen
}

/// Applies `planned`; returns the outputs once everything is in place.
pub async fn apply(
    azure: &Azure,
    reporter: &Arc<dyn Reporter>,
    n: &Names,
    planned: Planned,
    options: &Options,
    outcome: &mut Outcome,
) -> Result<Outputs, DeployInfraError> {
    let run = Run {
        reporter: reporter.clone(),
        resources: &planned.resources,
        status: Mutex::new(planned.resources.iter().map(|r| r.status).collect()),
        options,
    };
    let result = apply_all(azure, &run, n, &planned).await;
    let (applied, not_applied) = run.finish(outcome);
    match result {
        Ok(outputs) => Ok(outputs),
        Err(DeployInfraError::Interrupted { .. }) => Err(DeployInfraError::Interrupted {
            applied,
            not_applied,
        }),
        Err(e) => Err(e),
    }
}

async fn apply_all(
    azure: &Azure,
    run: &Run<'_>,
    n: &Names,
    planned: &Planned,
) -> Result<Outputs, DeployInfraError> {
    let arm = &azure.arm;
    let at = &planned.at;
    for &i in &at.providers {
        let ns = planned.resources[i].name.clone();
        run.op(i, |_| {
            preflight::register_provider(arm, &n.subscription, &ns)
        })
        .await?;
    }
    run.op(at.group, |lro| async move {
        groups::put_group(
            arm,
            &n.subscription,
            &n.resource_group,
            &planned.group_body,
            &lro,
        )
        .await
    })
    .await?;
    if let (Some(i), Some(body)) = (at.staging, &planned.staging_body) {
        let id = planned.resources[i].id.clone();
        let sub = id.split('/').nth(2).unwrap_or(&n.subscription).to_owned();
        let name = planned.resources[i].name.clone();
        run.op(i, |lro| async move {
            groups::put_group(arm, &sub, &name, body, &lro).await
        })
        .await?;
    }

    let identity_chain = async {
        let made = run
            .op(at.identity, |lro| async move {
                identity::put_identity(arm, &n.identity_id, &planned.identity_body, &lro).await
            })
            .await?;
        Ok::<Option<UserAssignedIdentity>, DeployInfraError>(
            made.or_else(|| planned.identity.clone()),
        )
    };
    let storage_chain = async {
        let account_action = planned.resources[at.account].action;
        let made = run
            .op(at.account, |lro| async move {
                if account_action == Action::Create {
                    storage::put_account_body(arm, &n.account_id, &planned.account_body, &lro).await
                } else {
                    storage::patch_account(arm, &n.account_id, &planned.account_body, &lro).await
                }
            })
            .await?;
        run.op(at.container, |lro| async move {
            storage::put_private_container(arm, &n.container_id, &lro).await
        })
        .await?;
        Ok::<Option<StorageAccount>, DeployInfraError>(made.or_else(|| planned.account.clone()))
    };
    let gallery_chain = async {
        let made = run
            .op(at.gallery, |lro| async move {
                gallery::put_gallery(arm, &n.gallery_id, &planned.gallery_body, &lro).await
            })
            .await?;
        let image = run
            .op(at.image, |lro| async move {
                gallery::put_image_definition(arm, &n.image_id, &planned.image_body, &lro).await
            })
            .await?;
        Ok::<(Option<Gallery>, Option<ImageDefinition>), DeployInfraError>((
            made.or_else(|| planned.gallery.clone()),
            image.or_else(|| planned.image.clone()),
        ))
    };
    let role_chain = async {
        if let (Some(i), Some(body)) = (at.role, &planned.role_body) {
            run.op(i, |_| {
                rbac::put_role_definition(arm, &n.group_id, &n.role_guid, body)
            })
            .await?;
        }
        Ok::<(), DeployInfraError>(())
    };
    let (ident, account, gallery, role) =
        futures::join!(identity_chain, storage_chain, gallery_chain, role_chain);
    let mut errors = Vec::new();
    let ident = ident.map_err(|e| errors.push(e)).ok().flatten();
    let account = account.map_err(|e| errors.push(e)).ok().flatten();
    let gallery = gallery.map_err(|e| errors.push(e)).ok();
    let _ = role.map_err(|e| errors.push(e));
    if let Some(e) = first_error(errors) {
        return Err(e);
    }

    let principal = ident
        .as_ref()
        .map(|i| i.properties.principal_id.clone())
        .unwrap_or_default();
    let results = join_all(planned.assignments.iter().map(|w| {
        let principal = principal.clone();
        run.op(w.index, move |_| async move {
            rbac::assign_role(
                arm,
                &n.subscription,
                &w.scope,
                &w.role_guid,
                &principal,
                &format!("aib deploy-infra: {}", w.label),
                &run.options.consistency,
            )
            .await
            .map(|o| matches!(o, AssignOutcome::Created(_)))
        })
    }))
    .await;
    let errors: Vec<DeployInfraError> = results.into_iter().filter_map(Result::err).collect();
    if let Some(e) = first_error(errors) {
        return Err(e);
    }

    let ident = ident.unwrap_or_else(|| UserAssignedIdentity {
        id: n.identity_id.clone(),
        name: n.identity_name.clone(),
        location: n.location.clone(),
        tags: Default::default(),
        properties: Default::default(),
    });
    let blob = account
        .and_then(|a| a.properties.primary_endpoints.and_then(|e| e.blob))
        .unwrap_or_default();
    let (gallery, image) = gallery.unwrap_or((None, None));
    Ok(Outputs {
        resource_group: n.resource_group.clone(),
        identity_id: if ident.id.is_empty() {
            n.identity_id.clone()
        } else {
            ident.id.clone()
        },
        identity_client_id: ident.properties.client_id.clone(),
        identity_principal_id: ident.properties.principal_id.clone(),
        storage_account: n.account_name.clone(),
        storage_blob_endpoint: blob,
        container: n.container_name.clone(),
        gallery_id: gallery
            .map(|g| g.id)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| n.gallery_id.clone()),
        image_definition_id: image
            .map(|i| i.id)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| n.image_id.clone()),
    })
}
