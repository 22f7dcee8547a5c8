//! Azure's naming and value rules, as pure functions over one value each.
//!
//! Each rule is the one Azure applies (see `shared/reference/azure-rest-contract.md` §6–8), so a
//! name that passes here is not refused by ARM later, after half the infrastructure exists.
//! A rule returns what was expected and a hint; the decoder adds the place and the path.

/// What a value broke: the expectation (shown after the path) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// What was expected, e.g. "3–24 lowercase letters and digits".
    pub expected: String,
    /// What to do about it.
    pub hint: Option<String>,
}

fn broken(expected: impl Into<String>, hint: impl Into<String>) -> Result<(), Broken> {
    Err(Broken {
        expected: expected.into(),
        hint: Some(hint.into()),
    })
}

fn len(value: &str) -> usize {
    value.chars().count()
}

/// Resource group: 1–90 letters, digits, `-_.()`, not ending in `.`.
pub fn resource_group_name(value: &str) -> Result<(), Broken> {
    let expected =
        "a resource group name: 1–90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'";
    if len(value) == 0 || len(value) > 90 {
        return broken(expected, format!("it has {} characters", len(value)));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_alphanumeric() || "-_.()".contains(*c)))
    {
        return broken(expected, format!("remove the character {bad:?}"));
    }
    if value.ends_with('.') {
        return broken(expected, "remove the final '.'");
    }
    Ok(())
}

/// User-assigned managed identity: 3–128 letters, digits, `-` and `_`, starting with a letter
/// or digit.
pub fn identity_name(value: &str) -> Result<(), Broken> {
    let expected =
        "an identity name: 3–128 letters, digits, '-' or '_', starting with a letter or digit";
    if len(value) < 3 || len(value) > 128 {
        return broken(expected, format!("it has {} characters", len(value)));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return broken(expected, format!("remove the character {bad:?}"));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return broken(expected, "start with a letter or digit");
    }
    Ok(())
}

/// Storage account: 3–24 lowercase letters and digits (globally unique, which only Azure knows).
pub fn storage_account_name(value: &str) -> Result<(), Broken> {
    let expected = "a storage account name: 3–24 lowercase letters and digits";
    if len(value) < 3 || len(value) > 24 {
        return broken(expected, format!("it has {} characters", len(value)));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
    {
        let hint = if bad.is_ascii_uppercase() {
            "use lowercase letters only".to_string()
        } else {
            format!("remove the character {bad:?} (no hyphens or dots in storage account names)")
        };
        return broken(expected, hint);
    }
    Ok(())
}

/// Blob container: 3–63 lowercase letters, digits and single hyphens, starting and ending with
/// a letter or digit.
pub fn container_name(value: &str) -> Result<(), Broken> {
    let expected = "a container name: 3–63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit";
    if len(value) < 3 || len(value) > 63 {
        return broken(expected, format!("it has {} characters", len(value)));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let hint = if bad.is_ascii_uppercase() {
            "use lowercase letters only".to_string()
        } else {
            format!("remove the character {bad:?}")
        };
        return broken(expected, hint);
    }
    if value.starts_with('-') || value.ends_with('-') {
        return broken(expected, "start and end with a letter or digit");
    }
    if value.contains("--") {
        return broken(expected, "replace '--' by a single '-'");
    }
    Ok(())
}

/// Compute Gallery: 1–80 letters, digits, `.` and `_`, not starting or ending with `.`.
pub fn gallery_name(value: &str) -> Result<(), Broken> {
    let expected =
        "a gallery name: 1–80 letters, digits, '.' or '_', not starting or ending with '.'";
    if len(value) == 0 || len(value) > 80 {
        return broken(expected, format!("it has {} characters", len(value)));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_'))
    {
        let hint = if bad == '-' {
            "gallery names cannot contain '-'; use '_' or '.'".to_string()
        } else {
            format!("remove the character {bad:?}")
        };
        return broken(expected, hint);
    }
    if value.starts_with('.') || value.ends_with('.') {
        return broken(expected, "remove the leading or trailing '.'");
    }
    Ok(())
}

/// Gallery image definition: 1–80 letters, digits, `-`, `_` and `.`.
pub fn image_definition_name(value: &str) -> Result<(), Broken> {
    let expected = "an image definition name: 1–80 letters, digits, '-', '_' or '.'";
    if len(value) == 0 || len(value) > 80 {
        return broken(expected, format!("it has {} characters", len(value)));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
    {
        return broken(expected, format!("remove the character {bad:?}"));
    }
    Ok(())
}

/// Length of the `-yyyy-MM-dd-HH-mm-ss` suffix trigger-build appends to the prefix.
pub const TEMPLATE_SUFFIX_LEN: usize = "-yyyy-MM-dd-HH-mm-ss".len();
/// Image Builder template names are at most 64 characters.
pub const TEMPLATE_NAME_MAX: usize = 64;

/// Template name prefix: prefix + `-yyyy-MM-dd-HH-mm-ss` must fit `^[A-Za-z0-9-_.]{1,64}$`.
pub fn template_name_prefix(value: &str) -> Result<(), Broken> {
    let max = TEMPLATE_NAME_MAX - TEMPLATE_SUFFIX_LEN;
    let expected = format!(
        "a template name prefix: 1–{max} letters, digits, '-', '_' or '.' (the build adds '-yyyy-MM-dd-HH-mm-ss' and template names are at most {TEMPLATE_NAME_MAX} characters)"
    );
    if len(value) == 0 || len(value) > max {
        return broken(
            expected,
            format!("it has {} characters; shorten it to {max}", len(value)),
        );
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
    {
        return broken(expected, format!("remove the character {bad:?}"));
    }
    Ok(())
}

/// Azure region name, e.g. `westeurope` (display names like `West Europe` are accepted too).
pub fn region(value: &str) -> Result<(), Broken> {
    let expected = "an Azure region name such as \"westeurope\"";
    if value.trim().is_empty() || len(value) > 64 {
        return broken(expected, "`az account list-locations -o table` lists them");
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == ' '))
    {
        return broken(expected, format!("remove the character {bad:?}"));
    }
    Ok(())
}

/// VM size, e.g. `Standard_D2ds_v4`.
pub fn vm_size(value: &str) -> Result<(), Broken> {
    let expected = "a VM size such as \"Standard_D2ds_v4\"";
    if value.is_empty()
        || len(value) > 64
        || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return broken(
            expected,
            "`az vm list-sizes -l <location> -o table` lists them",
        );
    }
    Ok(())
}

/// A tag name: 1–512 characters, none of `<>%&\?/`.
pub fn tag_name(value: &str) -> Result<(), Broken> {
    let expected = "a tag name: 1–512 characters without '<', '>', '%', '&', '\\', '?' or '/'";
    if len(value) == 0 || len(value) > 512 {
        return broken(expected, format!("it has {} characters", len(value)));
    }
    if let Some(bad) = value.chars().find(|c| "<>%&\\?/".contains(*c)) {
        return broken(expected, format!("remove the character {bad:?}"));
    }
    Ok(())
}

/// A tag value: at most 256 characters.
pub fn tag_value(value: &str) -> Result<(), Broken> {
    if len(value) > 256 {
        return broken(
            "a tag value of at most 256 characters",
            format!("it has {} characters", len(value)),
        );
    }
    Ok(())
}

/// An https URL (Image Builder downloads it when the template is created).
pub fn https_url(value: &str) -> Result<(), Broken> {
    let expected = "an https URL";
    match url::Url::parse(value) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(()),
        Ok(_) => broken(
            expected,
            "Image Builder downloads over https; or name a file of the scripts folder with `script`/`file`",
        ),
        Err(err) => broken(expected, format!("it does not parse as a URL ({err})")),
    }
}

/// A SHA-256 checksum: 64 lowercase hex digits.
pub fn sha256(value: &str) -> Result<(), Broken> {
    if value.len() == 64
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Ok(());
    }
    broken(
        "a SHA-256 checksum: 64 lowercase hexadecimal digits",
        "`sha256sum FILE` prints it",
    )
}

/// `restartTimeout`: a number and a unit, repeated (`5m`, `90s`, `1h30m`).
pub fn duration(value: &str) -> Result<(), Broken> {
    let mut digits = 0;
    let mut parts = 0;
    for c in value.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if "hms".contains(c) && digits > 0 {
            digits = 0;
            parts += 1;
        } else {
            digits = usize::MAX;
            break;
        }
    }
    if parts > 0 && digits == 0 {
        return Ok(());
    }
    broken(
        "a duration: a number and a unit h, m or s, e.g. \"5m\" or \"1h30m\"",
        "the default is \"5m\"",
    )
}

/// A file name inside the scripts folder: relative, no `..`, no absolute path or drive.
pub fn uploaded_file_name(value: &str) -> Result<(), Broken> {
    let expected = "a file name inside the scripts folder, e.g. \"Install-LinuxPowerShell.sh\"";
    if value.is_empty() {
        return broken(expected, "name one of the files of the scripts folder");
    }
    if value.starts_with('/') || value.starts_with('\\') || value.contains(':') {
        return broken(
            expected,
            "give the name relative to the scripts folder (set `scriptsFolder` to use another folder)",
        );
    }
    if value
        .split(['/', '\\'])
        .any(|part| part == ".." || part.is_empty())
    {
        return broken(expected, "'..' and empty path segments are not allowed");
    }
    Ok(())
}

/// A File step destination: an absolute path for the image's OS.
pub fn destination(value: &str, windows: bool) -> Result<(), Broken> {
    if windows {
        let bytes = value.as_bytes();
        let absolute = bytes.len() >= 3
            && bytes[0].is_ascii_alphabetic()
            && bytes[1] == b':'
            && (bytes[2] == b'\\' || bytes[2] == b'/');
        if !absolute {
            return broken(
                "an absolute Windows path such as \"C:\\\\BuildArtifacts\\\\setup.ps1\"",
                "the parent folder must exist on the build VM",
            );
        }
    } else if !value.starts_with('/') || value.len() < 2 {
        return broken(
            "an absolute Linux path such as \"/tmp/setup.ps1\"",
            "on Linux build VMs only /tmp is writable by the File step",
        );
    }
    Ok(())
}

fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_version(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && p.parse::<i32>().is_ok()
        })
}

/// Matches `value` against a resource id pattern: literal segments compare case-insensitively
/// (ARM does), `{…}` segments are checked by the caller-supplied test for that position.
fn id_segments<'v>(value: &'v str, pattern: &[&str]) -> Option<Vec<&'v str>> {
    let rest = value.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() != pattern.len() {
        return None;
    }
    let mut holes = Vec::new();
    for (seg, pat) in segments.iter().zip(pattern) {
        if pat.starts_with('{') {
            if seg.is_empty() {
                return None;
            }
            holes.push(*seg);
        } else if !seg.eq_ignore_ascii_case(pat) {
            return None;
        }
    }
    Some(holes)
}

/// A gallery image version id:
/// `/subscriptions/{guid}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{gallery}/images/{image}/versions/{x.y.z|latest}`.
pub fn image_version_id(value: &str) -> Result<(), Broken> {
    let expected = "a gallery image version id: /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{gallery}/images/{image}/versions/{major.minor.patch|latest}";
    let pattern = [
        "subscriptions",
        "{sub}",
        "resourceGroups",
        "{rg}",
        "providers",
        "Microsoft.Compute",
        "galleries",
        "{gallery}",
        "images",
        "{image}",
        "versions",
        "{version}",
    ];
    let Some(holes) = id_segments(value, &pattern) else {
        return broken(
            expected,
            "`az sig image-version show … --query id` prints it",
        );
    };
    if !is_guid(holes[0]) {
        return broken(expected, "the subscription must be a GUID");
    }
    if resource_group_name(holes[1]).is_err()
        || gallery_name(holes[2]).is_err()
        || image_definition_name(holes[3]).is_err()
    {
        return broken(
            expected,
            "a resource group, gallery or image name in it breaks Azure's naming rules",
        );
    }
    if !(holes[4].eq_ignore_ascii_case("latest") || is_version(holes[4])) {
        return broken(expected, "the version is three numbers (1.0.0) or 'latest'");
    }
    Ok(())
}

/// A managed image id:
/// `/subscriptions/{guid}/resourceGroups/{rg}/providers/Microsoft.Compute/images/{name}`.
pub fn managed_image_id(value: &str) -> Result<(), Broken> {
    let expected = "a managed image id: /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/images/{name}";
    let pattern = [
        "subscriptions",
        "{sub}",
        "resourceGroups",
        "{rg}",
        "providers",
        "Microsoft.Compute",
        "images",
        "{name}",
    ];
    match id_segments(value, &pattern) {
        Some(holes) if is_guid(holes[0]) && resource_group_name(holes[1]).is_ok() => Ok(()),
        _ => broken(expected, "`az image show … --query id` prints it"),
    }
}

/// A staging resource group: a name (same rules as a resource group) or its full id
/// `/subscriptions/{guid}/resourceGroups/{name}`.
pub fn staging_resource_group(value: &str) -> Result<(), Broken> {
    if value.starts_with('/') {
        return match id_segments(value, &["subscriptions", "{sub}", "resourceGroups", "{rg}"]) {
            Some(holes) if is_guid(holes[0]) && resource_group_name(holes[1]).is_ok() => Ok(()),
            _ => broken(
                "a resource group name, or its id /subscriptions/{subscription}/resourceGroups/{name}",
                "a plain name is enough: aib adds the subscription",
            ),
        };
    }
    resource_group_name(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `rule` accepts every value of `good` and refuses every value of `bad`,
    /// naming the value it got wrong, so each rule's edges read as one table.
    fn holds(rule: impl Fn(&str) -> Result<(), Broken>, good: &[&str], bad: &[&str]) {
        for value in good {
            assert!(rule(value).is_ok(), "refused {value:?}");
        }
        for value in bad {
            assert!(rule(value).is_err(), "accepted {value:?}");
        }
    }

    /// Each rule accepts names Azure accepts and refuses the ones it refuses, at the edges.
    #[test]
    fn naming_rules_follow_azure_at_the_boundaries() {
        holds(
            resource_group_name,
            &["rg-aib_(prod).1", &"r".repeat(90)],
            &[&"r".repeat(91), "rg.", "rg/x", ""],
        );
        holds(
            storage_account_name,
            &["abc"],
            &["ab", &"a".repeat(25), "aibScripts", "aib-scripts"],
        );
        holds(
            container_name,
            &["scripts-1"],
            &["ab", "-scripts", "scripts-", "scr--ipts", "Scripts"],
        );
        holds(
            gallery_name,
            &["gal_aib.sbx"],
            &["gal-aib", ".gal", "gal.", &"g".repeat(81)],
        );
        holds(
            image_definition_name,
            &["ubuntu-22.04_gen2"],
            &["ubuntu 22"],
        );
        holds(identity_name, &["id-aib"], &["id", "-id"]);
    }

    /// The template prefix leaves room for the 20-character timestamp suffix within 64.
    #[test]
    fn template_prefix_leaves_room_for_the_timestamp() {
        assert_eq!(TEMPLATE_SUFFIX_LEN, 20);
        holds(
            template_name_prefix,
            &[&"p".repeat(44), "it-ubuntu"],
            &[&"p".repeat(45), "it ubuntu"],
        );
    }

    /// Resource ids are checked segment by segment; keywords ignore case as ARM does.
    #[test]
    fn resource_ids_are_checked_by_segment() {
        let ok = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/galleries/gal/images/img/versions/1.0.0";
        holds(
            image_version_id,
            &[
                ok,
                &ok.replace("1.0.0", "latest"),
                &ok.replace("resourceGroups", "resourcegroups"),
            ],
            &[
                &ok.replace("1.0.0", "1.0"),
                &ok.replace("00000000-0000", "not-a-guid"),
                "/subscriptions/x",
            ],
        );
        holds(
            managed_image_id,
            &[
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/images/img",
            ],
            &[],
        );
        holds(
            staging_resource_group,
            &[
                "rg-staging",
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-staging",
            ],
            &["/subscriptions/x/resourceGroups/rg"],
        );
    }

    /// Small value rules: checksums, durations, URLs, file names and destinations.
    #[test]
    fn value_rules_accept_and_refuse() {
        holds(sha256, &[&"a".repeat(64)], &[&"A".repeat(64)]);
        holds(duration, &["5m", "1h30m"], &["5", "m"]);
        holds(
            https_url,
            &["https://example.com/x.sh"],
            &["http://example.com/x.sh", "x.sh"],
        );
        holds(
            uploaded_file_name,
            &["x.sh", "sub/x.sh"],
            &["../x.sh", "/x.sh"],
        );
        holds(|v| destination(v, false), &["/tmp/x"], &["tmp/x"]);
        holds(|v| destination(v, true), &["C:\\x"], &["/tmp/x"]);
        holds(region, &["westeurope"], &["west-europe"]);
        holds(tag_name, &["owner"], &["a/b"]);
    }
}
