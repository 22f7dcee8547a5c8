//! The one table of api-versions: which version each resource provider (and type) is called
//! with. Steps pass resource paths; the client adds `api-version` from here.
//!
//! Versions follow `shared/reference/azure-rest-contract.md` section 0 (the "use" column: long
//! available in every region, supported by the emulator).

/// `(namespace, first resource type or "", api-version)`, lower-case; the most specific match
/// wins, `""` is the namespace default.
pub const API_VERSIONS: &[(&str, &str, &str)] = &[
    ("microsoft.resources", "", "2024-07-01"),
    ("microsoft.managedidentity", "", "2024-11-30"),
    ("microsoft.authorization", "", "2022-04-01"),
    ("microsoft.storage", "", "2025-01-01"),
    ("microsoft.compute", "galleries", "2024-03-03"),
    ("microsoft.compute", "", "2024-07-01"),
    ("microsoft.virtualmachineimages", "", "2024-02-01"),
];

/// The provider namespace and first type segment an ARM path addresses: the last
/// `/providers/{ns}/{type}` in it, or `Microsoft.Resources` for subscriptions, resource groups,
/// generic resource lists and provider registrations.
pub fn resource_type(path: &str) -> (String, String) {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let last_providers = segments
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"));
    if let Some(ns) = last_providers.and_then(|i| segments.get(i + 1).map(|ns| (i, ns))) {
        let (i, ns) = ns;
        let rest = &segments[i + 2..];
        // `/providers/{ns}` and `/providers/{ns}/register` are Microsoft.Resources calls.
        let is_registration =
            rest.is_empty() || (rest.len() == 1 && rest[0].eq_ignore_ascii_case("register"));
        if !is_registration {
            return (
                ns.to_ascii_lowercase(),
                rest.first()
                    .map(|t| t.to_ascii_lowercase())
                    .unwrap_or_default(),
            );
        }
    }
    ("microsoft.resources".to_owned(), String::new())
}

/// The api-version for a path, from [`API_VERSIONS`].
pub fn api_version_for(path: &str) -> Option<&'static str> {
    let (ns, ty) = resource_type(path);
    API_VERSIONS
        .iter()
        .find(|(n, t, _)| *n == ns && *t == ty)
        .or_else(|| {
            API_VERSIONS
                .iter()
                .find(|(n, t, _)| *n == ns && t.is_empty())
        })
        .map(|(_, _, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path shape the steps use maps to its provider's version, case-insensitively.
    #[test]
    fn paths_map_to_their_providers_version() {
        let sub = "/subscriptions/00000000-0000-0000-0000-000000000000";
        let cases = [
            (format!("{sub}/resourcegroups/rg"), "2024-07-01"),
            (format!("{sub}/resources?$filter=x"), "2024-07-01"),
            (
                format!("{sub}/providers/Microsoft.Compute/register"),
                "2024-07-01",
            ),
            (
                format!(
                    "{sub}/resourceGroups/rg/providers/Microsoft.VirtualMachineImages/imageTemplates/t/run"
                ),
                "2024-02-01",
            ),
            (
                format!(
                    "{sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/1.0.0"
                ),
                "2024-03-03",
            ),
            (
                format!(
                    "{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/roleAssignments/r"
                ),
                "2022-04-01",
            ),
            (
                format!(
                    "{sub}/resourceGroups/rg/providers/microsoft.managedidentity/userAssignedIdentities/id"
                ),
                "2024-11-30",
            ),
        ];
        for (path, version) in cases {
            assert_eq!(api_version_for(&path), Some(version), "{path}");
        }
        assert_eq!(
            api_version_for(&format!(
                "{sub}/resourceGroups/rg/providers/Microsoft.Web/sites/s"
            )),
            None
        );
    }
}
