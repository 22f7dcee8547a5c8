//! Azure Compute Galleries and their image definitions (Microsoft.Compute/galleries,
//! `…/images`): typed models and calls.
//!
//! Both PUTs are long-running (201/200 with `provisioningState: Creating|Updating` and an
//! `Azure-AsyncOperation` to poll); the ARM client follows them and reports progress through
//! the caller's [`LroOptions`]. An image definition's identity (`osType`, `osState`,
//! `hyperVGeneration`, `identifier`, `features`) cannot change once created:
//! [`ImageDefinitionProperties::immutable_differences`] names what differs so a step can refuse
//! before sending anything, and nothing here ever deletes a definition to "fix" it.

use serde::{Deserialize, Serialize};

use super::arm::{ArmClient, ArmError, LroOptions};
use super::groups::{Tags, tags_or_empty};

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{name}`.
pub fn gallery_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/galleries/{name}"
    )
}

/// `{gallery id}/images/{name}`.
pub fn image_definition_id(gallery_id: &str, name: &str) -> String {
    format!("{gallery_id}/images/{name}")
}

/// A gallery as ARM returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Gallery {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Region; immutable.
    #[serde(default)]
    pub location: String,
    /// Tags.
    #[serde(default, deserialize_with = "tags_or_empty")]
    pub tags: Tags,
    /// Description.
    #[serde(default)]
    pub properties: GalleryProperties,
}

/// A gallery's own properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GalleryProperties {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Properties aib does not manage (sharing, soft delete…), sent back as Azure has them so
    /// an update never drops them; read-only ones are removed with [`without_read_only`].
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `properties` without what Azure computes (`provisioningState`, the gallery's `identifier`
/// `uniqueName`…), for sending an existing resource's properties back in an update.
pub fn without_read_only(
    mut other: serde_json::Map<String, serde_json::Value>,
    read_only: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    other.remove("provisioningState");
    for key in read_only {
        other.remove(*key);
    }
    other
}

/// What a gallery PUT sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GalleryBody {
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: Tags,
    /// Description.
    pub properties: GalleryProperties,
}

/// An image definition as ARM returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageDefinition {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Region; immutable.
    #[serde(default)]
    pub location: String,
    /// Tags.
    #[serde(default, deserialize_with = "tags_or_empty")]
    pub tags: Tags,
    /// What the images are.
    pub properties: ImageDefinitionProperties,
}

/// The definition's properties (the subset aib declares; others are kept by Azure).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDefinitionProperties {
    /// `Linux` or `Windows`.
    pub os_type: String,
    /// `Generalized` or `Specialized`.
    pub os_state: String,
    /// `V1` or `V2`; always sent, because Azure's default (`V1`) is not aib's.
    #[serde(
        rename = "hyperVGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hyper_v_generation: Option<String>,
    /// Publisher, offer, SKU.
    pub identifier: ImageIdentifier,
    /// `x64` or `Arm64` (immutable; kept as Azure has it when updating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Features such as `SecurityType`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Properties aib does not manage (`recommended`, `endOfLifeDate`, `eula`…), sent back as
    /// Azure has them so an update never drops them.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The definition's identifier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageIdentifier {
    /// Publisher.
    pub publisher: String,
    /// Offer.
    pub offer: String,
    /// SKU.
    pub sku: String,
}

/// One `{name, value}` feature.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Feature {
    /// E.g. `SecurityType`.
    pub name: String,
    /// E.g. `TrustedLaunchSupported`.
    pub value: String,
}

/// One property that differs: (name, what Azure has, what was asked).
pub type Difference = (String, String, String);

impl ImageDefinitionProperties {
    /// The `SecurityType` feature's value, if any.
    pub fn security_type(&self) -> Option<&str> {
        self.features
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("SecurityType"))
            .map(|f| f.value.as_str())
    }

    /// The properties Azure refuses to change that differ between `self` (existing) and
    /// `wanted`, compared as Azure does (case-insensitively; a missing `hyperVGeneration` is
    /// Azure's `V1`, a missing or `Standard` security type is none).
    pub fn immutable_differences(&self, wanted: &ImageDefinitionProperties) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut check = |name: &str, have: &str, want: &str| {
            if !have.eq_ignore_ascii_case(want) {
                out.push((name.to_owned(), have.to_owned(), want.to_owned()));
            }
        };
        check("osType", &self.os_type, &wanted.os_type);
        check("osState", &self.os_state, &wanted.os_state);
        check(
            "hyperVGeneration",
            self.hyper_v_generation.as_deref().unwrap_or("V1"),
            wanted.hyper_v_generation.as_deref().unwrap_or("V1"),
        );
        check(
            "identifier.publisher",
            &self.identifier.publisher,
            &wanted.identifier.publisher,
        );
        check(
            "identifier.offer",
            &self.identifier.offer,
            &wanted.identifier.offer,
        );
        check(
            "identifier.sku",
            &self.identifier.sku,
            &wanted.identifier.sku,
        );
        let security = |p: &ImageDefinitionProperties| {
            p.security_type()
                .filter(|v| !v.eq_ignore_ascii_case("Standard"))
                .unwrap_or("Standard")
                .to_owned()
        };
        check("features.SecurityType", &security(self), &security(wanted));
        out
    }
}

/// What an image definition PUT sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageDefinitionBody {
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: Tags,
    /// Properties.
    pub properties: ImageDefinitionProperties,
}

/// The gallery, or `None`.
pub async fn get_gallery(arm: &ArmClient, id: &str) -> Result<Option<Gallery>, ArmError> {
    arm.get_optional(id).await
}

/// Creates or updates the gallery and waits until it is provisioned.
pub async fn put_gallery(
    arm: &ArmClient,
    id: &str,
    body: &GalleryBody,
    options: &LroOptions,
) -> Result<Gallery, ArmError> {
    arm.put_with(id, body, options).await
}

/// The image definition, or `None` (also when the gallery does not exist).
pub async fn get_image_definition(
    arm: &ArmClient,
    id: &str,
) -> Result<Option<ImageDefinition>, ArmError> {
    arm.get_optional(id).await
}

/// Creates or updates the image definition and waits until it is provisioned.
pub async fn put_image_definition(
    arm: &ArmClient,
    id: &str,
    body: &ImageDefinitionBody,
    options: &LroOptions,
) -> Result<ImageDefinition, ArmError> {
    arm.put_with(id, body, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(os: &str, gen_: Option<&str>, security: Option<&str>) -> ImageDefinitionProperties {
        ImageDefinitionProperties {
            os_type: os.into(),
            os_state: "Generalized".into(),
            hyper_v_generation: gen_.map(str::to_owned),
            identifier: ImageIdentifier {
                publisher: "aib".into(),
                offer: "o".into(),
                sku: "s".into(),
            },
            features: security
                .map(|v| Feature {
                    name: "SecurityType".into(),
                    value: v.into(),
                })
                .into_iter()
                .collect(),
            architecture: None,
            description: None,
            other: Default::default(),
        }
    }

    /// Differences are named with both values; Azure's defaults and casing do not count.
    #[test]
    fn immutable_differences_name_each_changed_property() {
        let have = props("Linux", None, None);
        assert!(
            have.immutable_differences(&props("linux", Some("V1"), Some("Standard")))
                .is_empty()
        );
        let diffs = have.immutable_differences(&props(
            "Windows",
            Some("V2"),
            Some("TrustedLaunchSupported"),
        ));
        let names: Vec<&str> = diffs.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(
            names,
            ["osType", "hyperVGeneration", "features.SecurityType"]
        );
        assert_eq!(
            diffs[0],
            ("osType".into(), "Linux".into(), "Windows".into())
        );
    }
}
