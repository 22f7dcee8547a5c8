//! The plan: what the parameter file declares ([`Names`] and the desired bodies), what exists
//! (read with GETs and read-only POSTs only, in parallel), and per resource `create`, `update`
//! with the differing properties, or `unchanged`. Conflicts Azure would refuse are collected
//! here so the run can end before its first write.

use futures::future::join_all;

use super::{Action, Change, DeployInfraError, Kind, Resource, RoleMode, Status};
use crate::azure::arm::{ArmClient, ArmError};
use crate::azure::gallery::{
    self, Feature, Gallery, GalleryBody, GalleryProperties, ImageDefinition, ImageDefinitionBody,
    ImageDefinitionProperties, ImageIdentifier,
};
use crate::azure::groups::{self, Provider, ResourceGroup, ResourceGroupBody, Tags};
use crate::azure::identity::{self, IdentityBody, UserAssignedIdentity};
use crate::azure::rbac::{
    self, Permission, RoleAssignment, RoleDefinition, RoleDefinitionProperties, builtin,
};
use crate::azure::storage::{self, BlobContainer, StorageAccount, StorageAccountId};
use crate::config::{ImageParameters, ParameterFile, SecurityType};

/// The resource providers Image Builder and this step need registered.
pub const PROVIDERS: [&str; 7] = [
    "Microsoft.ManagedIdentity",
    "Microsoft.Storage",
    "Microsoft.Compute",
    "Microsoft.VirtualMachineImages",
    "Microsoft.Network",
    "Microsoft.KeyVault",
    "Microsoft.ContainerInstance",
];

/// The actions Image Builder's identity needs on the resource group to read the gallery and
/// distribute to it or to a managed image (REST contract §5.4).
pub const IMAGE_BUILDER_ACTIONS: [&str; 7] = [
    "Microsoft.Compute/galleries/read",
    "Microsoft.Compute/galleries/images/read",
    "Microsoft.Compute/galleries/images/versions/read",
    "Microsoft.Compute/galleries/images/versions/write",
    "Microsoft.Compute/images/write",
    "Microsoft.Compute/images/read",
    "Microsoft.Compute/images/delete",
];

/// Every name and id the deployment uses, derived once from the parameter file.
#[derive(Debug, Clone)]
pub struct Names {
    pub subscription: String,
    pub subscription_id: String,
    pub location: String,
    pub resource_group: String,
    pub group_id: String,
    pub tags: Tags,
    pub identity_name: String,
    pub identity_id: String,
    pub account_name: String,
    pub account_id: String,
    pub container_name: String,
    pub container_id: String,
    pub gallery_name: String,
    pub gallery_id: String,
    pub image_name: String,
    pub image_id: String,
    /// A user-given staging resource group: (name, id).
    pub staging: Option<(String, String)>,
    pub role_guid: String,
    pub role_name: String,
    pub role_mode: RoleMode,
}

impl Names {
    pub fn new(p: &ImageParameters, subscription: &str, role_mode: RoleMode) -> Names {
        let rg = &p.resource_group_name;
        let group_id = groups::group_id(subscription, rg);
        let account = StorageAccountId {
            subscription_id: subscription.to_owned(),
            resource_group: rg.to_owned(),
            name: p.storage_account_name.clone(),
        };
        let account_id = account.path();
        let gallery_id = gallery::gallery_id(subscription, rg, &p.gallery_name);
        let staging = p.image_template.staging_resource_group.as_ref().map(|g| {
            let parts: Vec<&str> = g.split('/').filter(|s| !s.is_empty()).collect();
            match parts.as_slice() {
                [s, sub, r, name, ..]
                    if s.eq_ignore_ascii_case("subscriptions")
                        && r.eq_ignore_ascii_case("resourceGroups") =>
                {
                    ((*name).to_owned(), groups::group_id(sub, name))
                }
                _ => (g.clone(), groups::group_id(subscription, g)),
            }
        });
        Names {
            subscription: subscription.to_owned(),
            subscription_id: format!("/subscriptions/{subscription}"),
            location: p.location.clone(),
            resource_group: rg.clone(),
            tags: p.tags.clone().unwrap_or_default(),
            identity_name: p.identity_name.clone(),
            identity_id: identity::identity_id(subscription, rg, &p.identity_name),
            account_name: p.storage_account_name.clone(),
            container_name: p.container_name.clone(),
            container_id: account.container_path(&p.container_name),
            account_id,
            gallery_name: p.gallery_name.clone(),
            image_name: p.image_definition.name.clone(),
            image_id: gallery::image_definition_id(&gallery_id, &p.image_definition.name),
            gallery_id,
            staging,
            role_guid: rbac::custom_role_guid(&format!("aib-image-builder|{group_id}")).to_string(),
            role_name: format!(
                "aib Image Builder {rg} ({})",
                subscription.chars().take(8).collect::<String>()
            ),
            group_id,
            role_mode,
        }
    }
}

/// A role assignment the identity must have.
#[derive(Debug, Clone)]
pub struct WantedAssignment {
    pub scope: String,
    pub role_guid: String,
    pub label: String,
    pub index: usize,
}

/// Where each resource sits in the plan's list.
#[derive(Debug, Clone, Default)]
pub struct Indexes {
    pub providers: Vec<usize>,
    pub group: usize,
    pub staging: Option<usize>,
    pub identity: usize,
    pub account: usize,
    pub container: usize,
    pub gallery: usize,
    pub image: usize,
    pub role: Option<usize>,
}

/// The plan with what applying it needs.
#[derive(Debug, Clone)]
pub struct Planned {
    pub resources: Vec<Resource>,
    pub conflicts: Vec<String>,
    pub at: Indexes,
    pub group_body: ResourceGroupBody,
    pub staging_body: Option<ResourceGroupBody>,
    pub identity_body: IdentityBody,
    pub identity: Option<UserAssignedIdentity>,
    /// PUT body when the account is created, PATCH body when it is updated.
    pub account_body: serde_json::Value,
    pub account: Option<StorageAccount>,
    pub gallery_body: GalleryBody,
    pub gallery: Option<Gallery>,
    pub image_body: ImageDefinitionBody,
    pub image: Option<ImageDefinition>,
    pub role_body: Option<RoleDefinitionProperties>,
    pub assignments: Vec<WantedAssignment>,
}

fn same_location(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace(' ', "").to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The tags to send (Azure's merged with the declared ones: others' tags are kept) and the
/// declared tags that differ.
pub fn merge_tags(current: &Tags, wanted: &Tags) -> (Tags, Vec<Change>) {
    let mut merged = current.clone();
    let mut changes = Vec::new();
    for (k, v) in wanted {
        let existing = current
            .iter()
            .find(|(ck, _)| ck.eq_ignore_ascii_case(k))
            .map(|(ck, cv)| (ck.clone(), cv.clone()));
        match existing {
            Some((_, cv)) if cv == *v => {}
            Some((ck, cv)) => {
                merged.remove(&ck);
                merged.insert(k.clone(), v.clone());
                changes.push(Change {
                    property: format!("tags.{k}"),
                    from: Some(cv),
                    to: v.clone(),
                });
            }
            None => {
                merged.insert(k.clone(), v.clone());
                changes.push(Change {
                    property: format!("tags.{k}"),
                    from: None,
                    to: v.clone(),
                });
            }
        }
    }
    (merged, changes)
}

fn action_of(exists: bool, changes: &[Change]) -> Action {
    if !exists {
        Action::Create
    } else if changes.is_empty() {
        Action::Unchanged
    } else {
        Action::Update
    }
}

fn read_error(what: String) -> impl FnOnce(ArmError) -> DeployInfraError {
    move |source| {
        DeployInfraError::Azure {
        hint: source
            .service()
            .and_then(|s| s.hint())
            .or_else(|| (source.status() == Some(403)).then(|| "the signed-in principal needs at least Reader on the subscription or resource group to plan".to_owned())),
        what,
        source,
    }
    }
}

struct Push<'a>(&'a mut Vec<Resource>);

impl Push<'_> {
    fn add(
        &mut self,
        kind: Kind,
        name: &str,
        id: &str,
        action: Action,
        mut changes: Vec<Change>,
    ) -> usize {
        // What does not exist yet has no "from": only a provider's registration is shown.
        if action == Action::Create && kind != Kind::Provider {
            changes.clear();
        }
        self.0.push(Resource {
            kind,
            name: name.to_owned(),
            id: id.to_owned(),
            status: if action == Action::Unchanged {
                Status::Unchanged
            } else {
                Status::Planned
            },
            action,
            changes,
        });
        self.0.len() - 1
    }
}

/// Reads the current state and computes the plan.
pub async fn plan(
    arm: &ArmClient,
    file: &ParameterFile,
    n: &Names,
) -> Result<Planned, DeployInfraError> {
    let p = &file.parameters;
    let providers = join_all(
        PROVIDERS
            .iter()
            .map(|ns| groups::get_provider(arm, &n.subscription, ns)),
    );
    let staging_get = async {
        match &n.staging {
            Some((name, id)) => {
                let sub = id.split('/').nth(2).unwrap_or(&n.subscription).to_owned();
                groups::get_group(arm, &sub, name).await
            }
            None => Ok(None),
        }
    };
    let role_get = async {
        match n.role_mode {
            RoleMode::LeastPrivilege => {
                rbac::get_role_definition(arm, &n.group_id, &n.role_guid).await
            }
            RoleMode::Contributor => Ok(None),
        }
    };
    let (providers, group, staging, ident, account, container, gallery_now, image_now, role) = futures::join!(
        providers,
        groups::get_group(arm, &n.subscription, &n.resource_group),
        staging_get,
        identity::get_identity(arm, &n.identity_id),
        arm.get_optional::<StorageAccount>(&n.account_id),
        storage::get_container(arm, &n.container_id),
        gallery::get_gallery(arm, &n.gallery_id),
        gallery::get_image_definition(arm, &n.image_id),
        role_get,
    );
    let group = group.map_err(read_error(format!(
        "reading resource group '{}'",
        n.resource_group
    )))?;
    let staging = staging.map_err(read_error("reading the staging resource group".to_owned()))?;
    let ident = ident.map_err(read_error(format!(
        "reading managed identity '{}'",
        n.identity_name
    )))?;
    let account: Option<StorageAccount> = account.map_err(read_error(format!(
        "reading storage account '{}'",
        n.account_name
    )))?;
    let container: Option<BlobContainer> = container.map_err(read_error(format!(
        "reading container '{}'",
        n.container_name
    )))?;
    let gallery_now =
        gallery_now.map_err(read_error(format!("reading gallery '{}'", n.gallery_name)))?;
    let image_now = image_now.map_err(read_error(format!(
        "reading image definition '{}'",
        n.image_name
    )))?;
    let role: Option<RoleDefinition> =
        role.map_err(read_error(format!("reading custom role '{}'", n.role_name)))?;

    if account.is_none() {
        let answer = storage::check_name(arm, &n.subscription, &n.account_name)
            .await
            .map_err(read_error(format!(
                "checking whether storage account name '{}' is available",
                n.account_name
            )))?;
        if !answer.name_available {
            return Err(DeployInfraError::StorageNameTaken {
                name: n.account_name.clone(),
                message: answer
                    .message
                    .or(answer.reason)
                    .unwrap_or_else(|| "it is taken".to_owned()),
                file: file.file.clone(),
            });
        }
    }

    let mut resources = Vec::new();
    let mut conflicts = Vec::new();
    let mut at = Indexes::default();
    let mut push = Push(&mut resources);

    for (ns, answer) in PROVIDERS.iter().zip(providers) {
        let provider: Provider =
            answer.map_err(read_error(format!("reading resource provider {ns}")))?;
        let action = if provider.is_registered() {
            Action::Unchanged
        } else {
            Action::Create
        };
        let changes = if action == Action::Create {
            vec![Change {
                property: "registrationState".into(),
                from: Some(provider.registration_state.clone()),
                to: "Registered".into(),
            }]
        } else {
            Vec::new()
        };
        at.providers.push(push.add(
            Kind::Provider,
            ns,
            &format!("{}/providers/{ns}", n.subscription_id),
            action,
            changes,
        ));
    }

    // Resource groups.
    let location_conflict = |kind: Kind, name: &str, have: &str| -> Option<String> {
        (!have.is_empty() && !same_location(have, &n.location)).then(|| {
            format!(
                "{} '{name}' is in '{have}', the parameter file says '{}': a location cannot change; set location back to '{have}' or choose another name",
                kind.label(),
                n.location
            )
        })
    };
    let group_plan = |current: Option<&ResourceGroup>| {
        let (tags, changes) = merge_tags(current.map(|g| &g.tags).unwrap_or(&Tags::new()), &n.tags);
        (
            ResourceGroupBody {
                location: current
                    .map(|g| g.location.clone())
                    .unwrap_or_else(|| n.location.clone()),
                tags,
            },
            changes,
        )
    };
    if let Some(g) = &group {
        conflicts.extend(location_conflict(
            Kind::ResourceGroup,
            &n.resource_group,
            &g.location,
        ));
    }
    let (group_body, changes) = group_plan(group.as_ref());
    at.group = push.add(
        Kind::ResourceGroup,
        &n.resource_group,
        &n.group_id,
        action_of(group.is_some(), &changes),
        changes,
    );
    let mut staging_body = None;
    if let Some((name, id)) = &n.staging {
        if let Some(g) = &staging {
            conflicts.extend(location_conflict(Kind::ResourceGroup, name, &g.location));
        }
        let (body, changes) = group_plan(staging.as_ref());
        at.staging = Some(push.add(
            Kind::ResourceGroup,
            name,
            id,
            action_of(staging.is_some(), &changes),
            changes,
        ));
        staging_body = Some(body);
    }

    // Identity.
    if let Some(i) = &ident {
        conflicts.extend(location_conflict(
            Kind::Identity,
            &n.identity_name,
            &i.location,
        ));
    }
    let (tags, changes) = merge_tags(
        ident.as_ref().map(|i| &i.tags).unwrap_or(&Tags::new()),
        &n.tags,
    );
    let identity_body = IdentityBody {
        location: ident
            .as_ref()
            .map(|i| i.location.clone())
            .unwrap_or_else(|| n.location.clone()),
        tags,
    };
    at.identity = push.add(
        Kind::Identity,
        &n.identity_name,
        &n.identity_id,
        action_of(ident.is_some(), &changes),
        changes,
    );

    // Storage account and container.
    let account_body;
    match &account {
        None => {
            account_body = serde_json::json!({
                "location": n.location,
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "tags": n.tags,
                "properties": {
                    "allowBlobPublicAccess": false,
                    "minimumTlsVersion": "TLS1_2",
                    "allowSharedKeyAccess": false,
                    "supportsHttpsTrafficOnly": true,
                    "defaultToOAuthAuthentication": true,
                },
            });
            at.account = push.add(
                Kind::StorageAccount,
                &n.account_name,
                &n.account_id,
                Action::Create,
                Vec::new(),
            );
        }
        Some(a) => {
            conflicts.extend(location_conflict(
                Kind::StorageAccount,
                &n.account_name,
                &a.location,
            ));
            let (tags, mut changes) = merge_tags(a.tags.as_ref().unwrap_or(&Tags::new()), &n.tags);
            let pr = &a.properties;
            let mut setting = |name: &str, have: Option<String>, want: &str| {
                if have.as_deref() != Some(want) {
                    changes.push(Change {
                        property: name.to_owned(),
                        from: have,
                        to: want.to_owned(),
                    });
                }
            };
            setting(
                "allowBlobPublicAccess",
                pr.allow_blob_public_access.map(|b| b.to_string()),
                "false",
            );
            setting(
                "minimumTlsVersion",
                pr.minimum_tls_version.clone(),
                "TLS1_2",
            );
            setting(
                "allowSharedKeyAccess",
                Some(pr.allow_shared_key_access.unwrap_or(true).to_string()),
                "false",
            );
            setting(
                "supportsHttpsTrafficOnly",
                pr.supports_https_traffic_only.map(|b| b.to_string()),
                "true",
            );
            account_body = serde_json::json!({
                "tags": tags,
                "properties": {
                    "allowBlobPublicAccess": false,
                    "minimumTlsVersion": "TLS1_2",
                    "allowSharedKeyAccess": false,
                    "supportsHttpsTrafficOnly": true,
                },
            });
            at.account = push.add(
                Kind::StorageAccount,
                &n.account_name,
                &n.account_id,
                action_of(true, &changes),
                changes,
            );
        }
    }
    let container_changes: Vec<Change> = match &container {
        Some(c) if c.properties.public_access.as_deref().unwrap_or("None") != "None" => {
            vec![Change {
                property: "publicAccess".into(),
                from: c.properties.public_access.clone(),
                to: "None".into(),
            }]
        }
        _ => Vec::new(),
    };
    at.container = push.add(
        Kind::Container,
        &n.container_name,
        &n.container_id,
        action_of(container.is_some(), &container_changes),
        container_changes,
    );

    // Gallery and image definition.
    if let Some(g) = &gallery_now {
        conflicts.extend(location_conflict(
            Kind::Gallery,
            &n.gallery_name,
            &g.location,
        ));
    }
    let (tags, changes) = merge_tags(
        gallery_now
            .as_ref()
            .map(|g| &g.tags)
            .unwrap_or(&Tags::new()),
        &n.tags,
    );
    let gallery_body = GalleryBody {
        location: gallery_now
            .as_ref()
            .map(|g| g.location.clone())
            .unwrap_or_else(|| n.location.clone()),
        tags,
        properties: gallery_now
            .as_ref()
            .map(|g| GalleryProperties {
                description: g.properties.description.clone(),
                other: gallery::without_read_only(g.properties.other.clone(), &["identifier"]),
            })
            .unwrap_or_else(|| GalleryProperties {
                description: Some("Images built with Azure VM Image Builder by aib".to_owned()),
                other: Default::default(),
            }),
    };
    at.gallery = push.add(
        Kind::Gallery,
        &n.gallery_name,
        &n.gallery_id,
        action_of(gallery_now.is_some(), &changes),
        changes,
    );

    let def = &p.image_definition;
    let wanted = ImageDefinitionProperties {
        os_type: def.os_type.as_str().to_owned(),
        os_state: def.os_state().as_str().to_owned(),
        hyper_v_generation: Some(def.hyper_v_generation().as_str().to_owned()),
        identifier: ImageIdentifier {
            publisher: def.publisher.clone(),
            offer: def.offer.clone(),
            sku: def.sku.clone(),
        },
        architecture: None,
        other: Default::default(),
        features: match def.security_type() {
            SecurityType::Standard => Vec::new(),
            other => vec![Feature {
                name: "SecurityType".into(),
                value: other.as_str().to_owned(),
            }],
        },
        description: def.description.clone(),
    };
    let image_body = match &image_now {
        None => ImageDefinitionBody {
            location: n.location.clone(),
            tags: n.tags.clone(),
            properties: wanted,
        },
        Some(i) => {
            conflicts.extend(location_conflict(
                Kind::ImageDefinition,
                &n.image_name,
                &i.location,
            ));
            let diffs = i.properties.immutable_differences(&wanted);
            if !diffs.is_empty() {
                let list: Vec<String> = diffs
                    .iter()
                    .map(|(prop, have, want)| {
                        format!("{prop} is '{have}' in Azure, '{want}' in the parameter file")
                    })
                    .collect();
                conflicts.push(format!(
                    "image definition '{}' in gallery '{}': {}. These cannot change after creation and aib never deletes a definition: give imageDefinition another name (a new definition), or put the file's values back",
                    n.image_name,
                    n.gallery_name,
                    list.join("; ")
                ));
            }
            let mut props = i.properties.clone();
            props.other = gallery::without_read_only(props.other, &[]);
            let mut changes = Vec::new();
            if let Some(d) = &wanted.description
                && i.properties.description.as_ref() != Some(d)
            {
                changes.push(Change {
                    property: "description".into(),
                    from: i.properties.description.clone(),
                    to: d.clone(),
                });
                props.description = Some(d.clone());
            }
            let (tags, tag_changes) = merge_tags(&i.tags, &n.tags);
            changes.extend(tag_changes);
            push.0.push(Resource {
                kind: Kind::ImageDefinition,
                name: n.image_name.clone(),
                id: n.image_id.clone(),
                action: Action::Unchanged,
                changes,
                status: Status::Unchanged,
            });
            ImageDefinitionBody {
                location: i.location.clone(),
                tags,
                properties: props,
            }
        }
    };
    at.image = match &image_now {
        None => push.add(
            Kind::ImageDefinition,
            &n.image_name,
            &n.image_id,
            Action::Create,
            Vec::new(),
        ),
        Some(_) => {
            let i = push.0.len() - 1;
            let r = &mut push.0[i];
            if !r.changes.is_empty() {
                r.action = Action::Update;
                r.status = Status::Planned;
            }
            i
        }
    };

    // Custom role.
    let mut role_body = None;
    if n.role_mode == RoleMode::LeastPrivilege {
        let mut props = RoleDefinitionProperties {
            role_name: n.role_name.clone(),
            description: format!(
                "Azure VM Image Builder's identity: read the gallery and publish image versions and managed images in resource group {} (managed by aib deploy-infra)",
                n.resource_group
            ),
            role_type: "CustomRole".into(),
            permissions: vec![Permission {
                actions: IMAGE_BUILDER_ACTIONS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                ..Permission::default()
            }],
            assignable_scopes: vec![n.group_id.clone()],
        };
        let mut changes = Vec::new();
        if let Some(r) = &role {
            let mut have: Vec<String> = r
                .properties
                .permissions
                .iter()
                .flat_map(|p| p.actions.iter().map(|a| a.to_ascii_lowercase()))
                .collect();
            let mut want: Vec<String> = IMAGE_BUILDER_ACTIONS
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect();
            have.sort();
            have.dedup();
            want.sort();
            if have != want {
                changes.push(Change {
                    property: "permissions.actions".into(),
                    from: Some(have.join(", ")),
                    to: want.join(", "),
                });
            }
            let scopes = &r.properties.assignable_scopes;
            if !scopes.iter().any(|s| s.eq_ignore_ascii_case(&n.group_id)) {
                changes.push(Change {
                    property: "assignableScopes".into(),
                    from: Some(scopes.join(", ")),
                    to: n.group_id.clone(),
                });
            }
            let mut all = scopes.clone();
            if !all.iter().any(|s| s.eq_ignore_ascii_case(&n.group_id)) {
                all.push(n.group_id.clone());
            }
            props.assignable_scopes = all;
            props.role_name = r.properties.role_name.clone();
        }
        at.role = Some(push.add(
            Kind::RoleDefinition,
            &props.role_name.clone(),
            &rbac::role_definition_path(&n.group_id, &n.role_guid),
            action_of(role.is_some(), &changes),
            changes,
        ));
        role_body = Some(props);
    }

    // Role assignments of the identity.
    let mut wanted_assignments: Vec<(String, String, String)> = Vec::new();
    match n.role_mode {
        RoleMode::LeastPrivilege => wanted_assignments.push((
            n.group_id.clone(),
            n.role_guid.clone(),
            format!("{} on resource group {}", n.role_name, n.resource_group),
        )),
        RoleMode::Contributor => wanted_assignments.push((
            n.subscription_id.clone(),
            builtin::CONTRIBUTOR.to_owned(),
            format!("Contributor on subscription {}", n.subscription),
        )),
    }
    wanted_assignments.push((
        n.account_id.clone(),
        builtin::STORAGE_BLOB_DATA_READER.to_owned(),
        format!(
            "Storage Blob Data Reader on storage account {}",
            n.account_name
        ),
    ));
    if let (Some((name, id)), RoleMode::LeastPrivilege) = (&n.staging, n.role_mode) {
        wanted_assignments.push((
            id.clone(),
            builtin::CONTRIBUTOR.to_owned(),
            format!("Contributor on staging resource group {name}"),
        ));
    }
    let mut existing: Vec<RoleAssignment> = Vec::new();
    if let Some(i) = &ident {
        let principal = &i.properties.principal_id;
        existing = rbac::list_assignments_of(arm, &n.group_id, principal)
            .await
            .map_err(read_error(format!(
                "listing the role assignments of identity '{}'",
                n.identity_name
            )))?;
        if let (Some((_, id)), Some(_)) = (&n.staging, &staging) {
            existing.extend(
                rbac::list_assignments_of(arm, id, principal)
                    .await
                    .map_err(read_error(format!(
                        "listing the role assignments of identity '{}'",
                        n.identity_name
                    )))?,
            );
        }
    }
    let mut assignments = Vec::new();
    for (scope, role_guid, label) in wanted_assignments {
        let exists = ident.is_some()
            && existing.iter().any(|a| {
                rbac::role_guid_of(&a.properties.role_definition_id)
                    == role_guid.to_ascii_lowercase()
                    && rbac::scope_covers(&a.properties.scope, &scope)
            });
        let id = match &ident {
            Some(i) => rbac::assignment_path(
                &scope,
                &rbac::assignment_name(&scope, &i.properties.principal_id, &role_guid),
            ),
            None => format!("{scope}/providers/Microsoft.Authorization/roleAssignments"),
        };
        let index = push.add(
            Kind::RoleAssignment,
            &label,
            &id,
            action_of(exists, &[]),
            Vec::new(),
        );
        assignments.push(WantedAssignment {
            scope,
            role_guid,
            label,
            index,
        });
    }

    Ok(Planned {
        resources,
        conflicts,
        at,
        group_body,
        staging_body,
        identity_body,
        identity: ident,
        account_body,
        account,
        gallery_body,
        gallery: gallery_now,
        image_body,
        image: image_now,
        role_body,
        assignments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Declared tags win, others' tags stay, and only declared differences are changes.
    #[test]
    fn merged_tags_keep_foreign_tags_and_name_each_difference() {
        let current: Tags = [("Environment", "dev"), ("owner", "team-a")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let wanted: Tags = [("environment", "prd"), ("managedBy", "aib")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (merged, changes) = merge_tags(&current, &wanted);
        assert_eq!(merged.get("owner").map(String::as_str), Some("team-a"));
        assert_eq!(merged.get("environment").map(String::as_str), Some("prd"));
        assert!(!merged.contains_key("Environment"));
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "tags.environment: dev -> prd",
                "tags.managedBy: (not set) -> aib"
            ]
        );
        assert!(merge_tags(&merged, &wanted).1.is_empty());
    }
}
