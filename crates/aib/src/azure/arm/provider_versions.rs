//! Api-versions for resource types aib does not manage itself, read from the provider's
//! registration, as `az resource delete --ids` does.
//!
//! Why: the [`api_versions`](super::api_versions) table covers the types aib creates, mostly by
//! namespace. A staging group can hold anything a failed build left behind (build VMs, disks,
//! NICs, virtual networks, network security groups, key vaults…), from namespaces the table
//! does not list, or with a version line of their own inside a listed namespace (Compute disks
//! are not versioned like virtual machines). Removing such a leftover needs the version its
//! provider accepts for that type: `GET /subscriptions/{s}/providers/{ns}` lists every type
//! with its `apiVersions`; the newest stable one is taken (a preview only when the type has no
//! stable version). Each namespace is read once per [`ProviderVersions`] (one per step run),
//! however many leftovers of it there are and however many ask at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{ArmClient, ArmError, api_versions};

/// One namespace's registration: its resource types (lower-case) and their api-versions.
#[derive(Debug, Default)]
struct Registration {
    types: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderBody {
    #[serde(default)]
    resource_types: Vec<ResourceTypeBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceTypeBody {
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    api_versions: Vec<String>,
}

/// A per-run cache of provider registrations, for calling resources of any type.
#[derive(Debug, Default)]
pub struct ProviderVersions {
    registrations: Mutex<HashMap<String, Arc<OnceCell<Arc<Registration>>>>>,
}

/// The subscription, provider namespace and full resource type (`virtualNetworks/subnets`) a
/// resource id addresses: the last `/providers/{ns}/…` in it, types being every other segment.
pub fn resource_type_of(id: &str) -> Option<(String, String, String)> {
    let path = id.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let subscription = match segments.as_slice() {
        [first, sub, ..] if first.eq_ignore_ascii_case("subscriptions") => (*sub).to_owned(),
        _ => return None,
    };
    let at = segments
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))?;
    let namespace = segments.get(at + 1)?;
    let rest = &segments[at + 2..];
    if rest.is_empty() {
        return None;
    }
    let types: Vec<&str> = rest.iter().step_by(2).copied().collect();
    Some((subscription, (*namespace).to_owned(), types.join("/")))
}

/// The newest stable version (`yyyy-mm-dd`), else the newest of any kind (a preview).
pub fn newest_stable<S: AsRef<str>>(versions: &[S]) -> Option<&str> {
    let stable = |v: &str| {
        v.len() == 10
            && v.char_indices().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            })
    };
    let all = versions.iter().map(AsRef::as_ref);
    all.clone()
        .filter(|v| stable(v))
        .max()
        .or_else(|| all.max())
}

impl ProviderVersions {
    /// An empty cache.
    pub fn new() -> ProviderVersions {
        ProviderVersions::default()
    }

    /// The api-version to call the resource `id` with: the table's when it names the type
    /// itself; otherwise the newest stable version the provider's registration lists for the
    /// type; failing that, the table's namespace default. An error when none of them knows.
    pub async fn api_version(&self, arm: &ArmClient, id: &str) -> Result<String, ArmError> {
        let bad = |why: String| ArmError::BadPath {
            path: id.to_owned(),
            why,
        };
        let (first_ns, first_type) = api_versions::resource_type(id);
        if !first_type.is_empty()
            && let Some((_, _, v)) = api_versions::API_VERSIONS
                .iter()
                .find(|(n, t, _)| *n == first_ns && *t == first_type)
        {
            return Ok((*v).to_owned());
        }
        let Some((subscription, namespace, full_type)) = resource_type_of(id) else {
            return api_versions::api_version_for(id)
                .map(str::to_owned)
                .ok_or_else(|| bad("not a resource id of a provider's type".into()));
        };
        let fallback = api_versions::api_version_for(id);
        let registration = match self.registration(arm, &subscription, &namespace).await {
            Ok(r) => r,
            Err(e) => {
                return match fallback {
                    Some(v) => Ok(v.to_owned()),
                    None => Err(e),
                };
            }
        };
        registration
            .types
            .get(&full_type.to_ascii_lowercase())
            .and_then(|versions| newest_stable(versions))
            .or(fallback)
            .map(str::to_owned)
            .ok_or_else(|| {
                bad(format!(
                    "the registration of {namespace} lists no api-version for the type '{full_type}'"
                ))
            })
    }

    /// `id` with the `api-version` query [`api_version`](Self::api_version) finds, ready for the
    /// client's `get`/`delete`.
    pub async fn versioned(&self, arm: &ArmClient, id: &str) -> Result<String, ArmError> {
        let version = self.api_version(arm, id).await?;
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("api-version", &version)
            .finish();
        Ok(format!(
            "{}?{query}",
            id.split('?').next().unwrap_or_default()
        ))
    }

    /// The namespace's registration, read once; a failed read is not kept, so a later call
    /// tries again.
    async fn registration(
        &self,
        arm: &ArmClient,
        subscription: &str,
        namespace: &str,
    ) -> Result<Arc<Registration>, ArmError> {
        let key = format!(
            "{}/{}",
            subscription.to_ascii_lowercase(),
            namespace.to_ascii_lowercase()
        );
        let cell = match self.registrations.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            // A poisoned map only loses the cache, not the answer.
            Err(_) => Arc::new(OnceCell::new()),
        };
        cell.get_or_try_init(|| async {
            let body: ProviderBody = arm
                .get(&format!(
                    "/subscriptions/{subscription}/providers/{namespace}"
                ))
                .await?;
            let types = body
                .resource_types
                .into_iter()
                .filter(|t| !t.resource_type.is_empty())
                .map(|t| (t.resource_type.to_ascii_lowercase(), t.api_versions))
                .collect();
            Ok(Arc::new(Registration { types }))
        })
        .await
        .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested types keep every type segment; extension resources take the last provider.
    #[test]
    fn resource_types_are_read_from_ids() {
        let sub = "/subscriptions/s1/resourceGroups/rg/providers";
        assert_eq!(
            resource_type_of(&format!(
                "{sub}/Microsoft.Network/networkSecurityGroups/nsg"
            )),
            Some((
                "s1".into(),
                "Microsoft.Network".into(),
                "networkSecurityGroups".into()
            ))
        );
        assert_eq!(
            resource_type_of(&format!(
                "{sub}/Microsoft.Network/virtualNetworks/v/subnets/default"
            ))
            .map(|t| t.2),
            Some("virtualNetworks/subnets".into())
        );
        assert_eq!(
            resource_type_of(&format!(
                "{sub}/Microsoft.Compute/disks/d/providers/Microsoft.Authorization/locks/l"
            ))
            .map(|t| (t.1, t.2)),
            Some(("Microsoft.Authorization".into(), "locks".into()))
        );
        assert_eq!(
            resource_type_of("/subscriptions/s1/resourceGroups/rg"),
            None
        );
        assert_eq!(resource_type_of("/providers/Microsoft.Network"), None);
    }

    /// The newest stable version wins over newer previews; a preview only when nothing else.
    #[test]
    fn newest_stable_version_is_chosen() {
        let versions = [
            "2023-09-01",
            "2025-01-01-preview",
            "2024-05-01",
            "2019-02-01",
        ];
        assert_eq!(newest_stable(&versions), Some("2024-05-01"));
        assert_eq!(
            newest_stable(&["2024-01-01-preview", "2025-02-01-beta"]),
            Some("2025-02-01-beta")
        );
        assert_eq!(newest_stable::<&str>(&[]), None);
    }
}
