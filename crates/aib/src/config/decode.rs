//! From JSON-with-comments text to [`ImageParameters`], collecting every problem on the way.
//!
//! jsonc-parser builds the syntax tree with byte ranges; this module walks it by hand instead of
//! through serde, because serde stops at the first error and forgets where a value was. Each
//! value is checked where it is read (type, Azure naming rule, allowed fields with "did you
//! mean"), its position is remembered by parameter path, and the walk carries on, so a file's
//! problems all come out of one run. Nothing here touches the file system: whether a named
//! script exists is checked by the caller (`mod.rs`) from the [`ScriptRef`]s collected here.

use std::collections::{BTreeMap, BTreeSet};

use jsonc_parser::ast::{Array, Object, Value};
use jsonc_parser::common::Range;
use jsonc_parser::{CollectOptions, ParseOptions, parse_to_ast};

use super::error::{Position, Problem};
use super::model::*;
use super::rules::{self, Broken};
use super::text::LineIndex;

/// The parameter names a file may contain, in the order the documentation lists them.
pub const PARAMETER_NAMES: &[&str] = &[
    "location",
    "resourceGroupName",
    "identityName",
    "storageAccountName",
    "containerName",
    "galleryName",
    "imageDefinition",
    "imageTemplate",
    "scriptsFolder",
    "tags",
];

const REQUIRED_PARAMETERS: &[&str] = &[
    "location",
    "resourceGroupName",
    "identityName",
    "storageAccountName",
    "containerName",
    "galleryName",
    "imageDefinition",
    "imageTemplate",
];

/// A step's reference to a file of the scripts folder, kept with its path for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRef {
    /// The file name as written.
    pub name: String,
    /// Its parameter path, e.g. `imageTemplate.customizationSteps[0].script`.
    pub path: String,
    /// Where the name is written.
    pub position: Position,
}

/// Where every decoded value starts, by parameter path; later checks point at values with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(BTreeMap<String, Position>);

impl Positions {
    /// The position of the value at `path`, if the file has one there.
    pub fn get(&self, path: &str) -> Option<Position> {
        self.0.get(path).copied()
    }
}

/// Everything one walk of a file found: the model if it is complete, and every problem.
#[derive(Debug)]
pub(crate) struct Analysis {
    pub params: Option<ImageParameters>,
    pub positions: Positions,
    pub problems: Vec<Problem>,
    pub script_refs: Vec<ScriptRef>,
    /// The OS and scripts folder when they could be read (to check `script` names even when
    /// other parts of the file are broken).
    pub os: Option<OsType>,
    pub scripts_folder: Option<String>,
    /// `scriptsFolder` was written (even if its value was refused): then the default folder
    /// must not be used to look scripts up.
    pub scripts_folder_given: bool,
}

const NO_REGIONS_HINT: &str = "leave the field out to replicate to the location only";

/// Strictness: comments yes (the format's promise), everything else JSON proper, so a file
/// that aib accepts is also accepted by ARM and by editors.
fn parse_options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// Walks `text` (already UTF-8, BOM removed) and returns everything it found.
pub(crate) fn analyse(file: &str, text: &str) -> Analysis {
    let mut d = Decoder {
        file: file.to_string(),
        lines: LineIndex::new(text),
        problems: Vec::new(),
        positions: Positions::default(),
        script_refs: Vec::new(),
        os: None,
        scripts_folder: None,
        scripts_folder_given: false,
    };
    let params = match parse_to_ast(text, &CollectOptions::default(), &parse_options()) {
        Ok(result) => match result.value {
            Some(root) => d.envelope(&root),
            None => {
                d.problems.push(Problem {
                    file: d.file.clone(),
                    position: Position { line: 1, column: 1 },
                    path: String::new(),
                    message: "the file is empty; expected a deploymentParameters object".into(),
                    hint: Some(ENVELOPE_HINT.into()),
                });
                None
            }
        },
        Err(err) => {
            let kind = err.kind().to_string();
            let hint = syntax_hint(&kind);
            d.problems.push(Problem {
                file: d.file.clone(),
                position: Position {
                    line: err.line_display(),
                    column: err.column_display(),
                },
                path: String::new(),
                message: format!("invalid JSON: {}", lowercase_first(&kind)),
                hint,
            });
            None
        }
    };
    d.problems.sort_by_key(|a| a.position);
    let params = if d.problems.is_empty() { params } else { None };
    Analysis {
        params,
        positions: d.positions,
        problems: d.problems,
        script_refs: d.script_refs,
        os: d.os,
        scripts_folder: d.scripts_folder,
        scripts_folder_given: d.scripts_folder_given,
    }
}

const ENVELOPE_HINT: &str = "a parameter file looks like {\"$schema\": \"…\", \"contentVersion\": \"1.0.0.0\", \"parameters\": {\"location\": {\"value\": \"westeurope\"}, …}}; see docs/parameters.md";

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn syntax_hint(kind: &str) -> Option<String> {
    let hint = if kind.contains("Trailing comma") {
        "remove the comma before the closing bracket or brace"
    } else if kind.contains("comment block") {
        "close the /* comment with */"
    } else if kind.contains("Single-quoted") {
        "JSON strings use double quotes"
    } else if kind.contains("Expected comma") {
        "a comma is missing between two values or properties"
    } else if kind.contains("Unterminated") {
        "a closing bracket or brace is missing"
    } else if kind.contains("property") || kind.contains("Unexpected word") {
        "property names are written in double quotes"
    } else {
        "the file must be JSON; // and /* */ comments are allowed"
    };
    Some(hint.to_string())
}

/// The best "did you mean" among `candidates`: a case-insensitive match, else the closest by
/// Jaro-Winkler similarity above a threshold that keeps unrelated words out.
pub(crate) fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = word.to_lowercase();
    if let Some(exact) = candidates.iter().find(|c| c.to_lowercase() == lower) {
        return Some(exact);
    }
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::StringLit(_) => "a string",
        Value::NumberLit(_) => "a number",
        Value::BooleanLit(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::NullKeyword(_) => "null",
    }
}

fn range_of(value: &Value) -> Range {
    match value {
        Value::StringLit(v) => v.range,
        Value::NumberLit(v) => v.range,
        Value::BooleanLit(v) => v.range,
        Value::Object(v) => v.range,
        Value::Array(v) => v.range,
        Value::NullKeyword(v) => v.range,
    }
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Decoder<'t> {
    file: String,
    lines: LineIndex<'t>,
    problems: Vec<Problem>,
    positions: Positions,
    script_refs: Vec<ScriptRef>,
    os: Option<OsType>,
    scripts_folder: Option<String>,
    scripts_folder_given: bool,
}

/// An object being read: which fields were asked for, to report the others as unknown.
struct Fields<'a, 'b> {
    object: &'b Object<'a>,
    path: String,
}

impl<'a, 'b> Fields<'a, 'b> {
    fn get(&self, name: &str) -> Option<(&'b Value<'a>, String)> {
        self.object
            .properties
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| (&p.value, join(&self.path, name)))
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn key_range(&self, name: &str) -> Option<Range> {
        self.object
            .properties
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.range)
    }
}

impl<'t> Decoder<'t> {
    fn position(&self, range: Range) -> Position {
        self.lines.position(range.start)
    }

    fn report(
        &mut self,
        range: Range,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let position = self.position(range);
        self.problems.push(Problem {
            file: self.file.clone(),
            position,
            path: path.to_string(),
            message: message.into(),
            hint,
        });
    }

    fn record(&mut self, path: &str, range: Range) {
        let position = self.position(range);
        self.positions.0.insert(path.to_string(), position);
    }

    fn wrong_type(&mut self, value: &Value, path: &str, expected: &str, hint: Option<String>) {
        let message = format!("expected {expected}, found {}", describe(value));
        self.report(range_of(value), path, message, hint);
    }

    /// Opens an object and reports every field not in `known` (with "did you mean") and every
    /// field written twice.
    fn object<'a, 'b>(
        &mut self,
        value: &'b Value<'a>,
        path: &str,
        known: &[&str],
        what: &str,
    ) -> Option<Fields<'a, 'b>> {
        let Value::Object(object) = value else {
            self.wrong_type(value, path, &format!("{what} (an object)"), None);
            return None;
        };
        self.record(path, object.range);
        let mut seen = BTreeSet::new();
        for prop in &object.properties {
            let name = prop.name.as_str();
            let field_path = join(path, name);
            if !seen.insert(name) {
                self.report(
                    prop.range,
                    &field_path,
                    format!("\"{name}\" is given twice"),
                    Some("keep one; JSON readers disagree about which one wins".into()),
                );
                continue;
            }
            if !known.contains(&name) {
                let hint = match suggest(name, known) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!("allowed here: {}", quote_list(known)),
                };
                self.report(
                    prop.range,
                    &field_path,
                    format!("unknown field \"{name}\" in {what}"),
                    Some(hint),
                );
            }
        }
        Some(Fields {
            object,
            path: path.to_string(),
        })
    }

    fn missing(&mut self, fields: &Fields, name: &str, expected: &str, hint: Option<String>) {
        let path = join(&fields.path, name);
        self.report(
            fields.object.range,
            &path,
            format!("missing required field \"{name}\": expected {expected}"),
            hint,
        );
    }

    fn string(&mut self, value: &Value, path: &str, expected: &str) -> Option<String> {
        match value {
            Value::StringLit(s) => {
                self.record(path, s.range);
                Some(s.value.to_string())
            }
            other => {
                self.wrong_type(other, path, expected, None);
                None
            }
        }
    }

    /// A string that must be non-empty.
    fn text(&mut self, value: &Value, path: &str, expected: &str) -> Option<String> {
        let s = self.string(value, path, expected)?;
        if s.trim().is_empty() {
            self.report(
                range_of(value),
                path,
                format!("expected {expected}, found an empty string"),
                None,
            );
            return None;
        }
        Some(s)
    }

    /// A string checked by one of the [`rules`].
    fn named(
        &mut self,
        value: &Value,
        path: &str,
        rule: fn(&str) -> Result<(), Broken>,
        what: &str,
    ) -> Option<String> {
        let s = self.string(value, path, what)?;
        match rule(&s) {
            Ok(()) => Some(s),
            Err(broken) => {
                self.report(
                    range_of(value),
                    path,
                    format!("expected {}, found \"{s}\"", broken.expected),
                    broken.hint,
                );
                None
            }
        }
    }

    fn integer(&mut self, value: &Value, path: &str, min: i64, max: i64) -> Option<i64> {
        let expected = format!("a whole number from {min} to {max}");
        let Value::NumberLit(n) = value else {
            self.wrong_type(value, path, &expected, None);
            return None;
        };
        self.record(path, n.range);
        let parsed = n.value.parse::<i64>().ok().or_else(|| {
            n.value
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        });
        match parsed {
            Some(i) if (min..=max).contains(&i) => Some(i),
            _ => {
                self.report(
                    n.range,
                    path,
                    format!("expected {expected}, found {}", n.value),
                    None,
                );
                None
            }
        }
    }

    fn unsigned(&mut self, value: &Value, path: &str, max: u32) -> Option<u32> {
        self.integer(value, path, 0, i64::from(max))
            .and_then(|i| u32::try_from(i).ok())
    }

    fn boolean(&mut self, value: &Value, path: &str) -> Option<bool> {
        match value {
            Value::BooleanLit(b) => {
                self.record(path, b.range);
                Some(b.value)
            }
            other => {
                let hint = match other {
                    Value::StringLit(s) if s.value == "true" || s.value == "false" => {
                        Some(format!("write {} without quotes", s.value))
                    }
                    _ => None,
                };
                self.wrong_type(other, path, "true or false", hint);
                None
            }
        }
    }

    fn array<'a, 'b>(
        &mut self,
        value: &'b Value<'a>,
        path: &str,
        what: &str,
    ) -> Option<&'b Array<'a>> {
        match value {
            Value::Array(a) => {
                self.record(path, a.range);
                Some(a)
            }
            other => {
                self.wrong_type(other, path, &format!("{what} (an array)"), None);
                None
            }
        }
    }

    /// An array with at least one element.
    fn non_empty<'a, 'b>(
        &mut self,
        value: &'b Value<'a>,
        path: &str,
        what: &str,
        hint: Option<&str>,
    ) -> Option<&'b Array<'a>> {
        let array = self.array(value, path, what)?;
        if array.elements.is_empty() {
            self.report(
                array.range,
                path,
                format!("expected {what} with at least one entry, found an empty array"),
                hint.map(str::to_string),
            );
            return None;
        }
        Some(array)
    }

    fn strings(
        &mut self,
        value: &Value,
        path: &str,
        what: &str,
        non_empty: bool,
    ) -> Option<Vec<String>> {
        let array = if non_empty {
            self.non_empty(value, path, what, None)?
        } else {
            self.array(value, path, what)?
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, element) in array.elements.iter().enumerate() {
            match self.string(element, &format!("{path}[{i}]"), "a string") {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// One of a fixed set of spellings; a near miss gets "did you mean".
    fn choice<T: Copy>(&mut self, value: &Value, path: &str, options: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let expected = format!("one of {}", quote_list(&names));
        let s = self.string(value, path, &expected)?;
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == s) {
            return Some(*t);
        }
        let hint = suggest(&s, &names).map(|n| format!("did you mean \"{n}\"?"));
        self.report(
            range_of(value),
            path,
            format!("expected {expected}, found \"{s}\""),
            hint,
        );
        None
    }

    // --- the envelope --------------------------------------------------------------------

    fn envelope(&mut self, root: &Value) -> Option<ImageParameters> {
        let Value::Object(_) = root else {
            self.wrong_type(
                root,
                "",
                "a deploymentParameters object",
                Some(ENVELOPE_HINT.into()),
            );
            return None;
        };
        let fields = self.object(
            root,
            "",
            &["$schema", "contentVersion", "parameters"],
            "the file (a deploymentParameters envelope)",
        )?;
        if let Some((v, path)) = fields.get("$schema") {
            // Any value is fine: users have the ARM URL, bundled files point at our schema.
            self.string(v, &path, "a schema URL or path");
        }
        if let Some((v, path)) = fields.get("contentVersion") {
            self.named(
                v,
                &path,
                content_version,
                "a content version such as \"1.0.0.0\"",
            );
        }
        let Some((parameters, _)) = fields.get("parameters") else {
            self.report(
                fields.object.range,
                "parameters",
                "missing \"parameters\": the values live in parameters.<name>.value",
                Some(ENVELOPE_HINT.into()),
            );
            return None;
        };
        let Value::Object(object) = parameters else {
            self.wrong_type(
                parameters,
                "parameters",
                "an object of parameters",
                Some(ENVELOPE_HINT.into()),
            );
            return None;
        };

        // Unwrap each `{"value": …}`; unknown names get "did you mean".
        let mut values: BTreeMap<&str, &Value> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        // A misspelt required parameter is reported once, as unknown with "did you mean".
        let mut suggested = BTreeSet::new();
        for prop in &object.properties {
            let name = prop.name.as_str();
            if !seen.insert(name) {
                self.report(
                    prop.range,
                    name,
                    format!("parameter \"{name}\" is given twice"),
                    Some("keep one".into()),
                );
                continue;
            }
            if !PARAMETER_NAMES.contains(&name) {
                let hint = match suggest(name, PARAMETER_NAMES) {
                    Some(s) => {
                        suggested.insert(s);
                        format!("did you mean \"{s}\"?")
                    }
                    None => format!("known parameters: {}", quote_list(PARAMETER_NAMES)),
                };
                self.report(
                    prop.range,
                    name,
                    format!("unknown parameter \"{name}\""),
                    Some(hint),
                );
                continue;
            }
            let Some(wrapper) = self.object(
                &prop.value,
                name,
                &["value", "metadata", "reference"],
                "a parameter (an object with \"value\")",
            ) else {
                continue;
            };
            if wrapper.has("reference") {
                let range = wrapper.key_range("reference").unwrap_or(prop.range);
                self.report(
                    range,
                    name,
                    "Key Vault references are not supported in aib parameter files",
                    Some(
                        "put the value itself under \"value\"; these values are not secrets".into(),
                    ),
                );
                continue;
            }
            match wrapper.get("value") {
                Some((value, _)) => {
                    values.insert(name, value);
                }
                None => self.report(
                    range_of(&prop.value),
                    name,
                    format!("parameter \"{name}\" has no \"value\""),
                    Some(format!("write \"{name}\": {{\"value\": …}}")),
                ),
            }
        }
        for required in REQUIRED_PARAMETERS {
            if !seen.contains(required) && !suggested.contains(required) {
                self.report(
                    object.range,
                    required,
                    format!("missing required parameter \"{required}\""),
                    Some("docs/parameters.md lists every parameter with an example".into()),
                );
            }
        }

        // The plain names: each read as a string under its own key and checked by its rule.
        let mut name = |key: &str, rule: fn(&str) -> Result<(), Broken>, what: &str| {
            values.get(key).and_then(|v| self.named(v, key, rule, what))
        };
        let location = name("location", rules::region, "an Azure region");
        let resource_group_name = name(
            "resourceGroupName",
            rules::resource_group_name,
            "a resource group name",
        );
        let identity_name = name("identityName", rules::identity_name, "an identity name");
        let storage_account_name = name(
            "storageAccountName",
            rules::storage_account_name,
            "a storage account name",
        );
        let container_name = name("containerName", rules::container_name, "a container name");
        let gallery_name = name("galleryName", rules::gallery_name, "a gallery name");
        let image_definition = values
            .get("imageDefinition")
            .and_then(|v| self.image_definition(v));
        let image_template = values
            .get("imageTemplate")
            .and_then(|v| self.image_template(v));
        let scripts_folder = match values.get("scriptsFolder") {
            Some(v) => {
                self.scripts_folder_given = true;
                let folder = self.text(
                    v,
                    "scriptsFolder",
                    "a folder relative to the repository root",
                );
                self.scripts_folder.clone_from(&folder);
                folder.map(Some)
            }
            None => Some(None),
        };
        let tags = match values.get("tags") {
            Some(v) => self.tags(v, "tags").map(Some),
            None => Some(None),
        };

        Some(ImageParameters {
            location: location?,
            resource_group_name: resource_group_name?,
            identity_name: identity_name?,
            storage_account_name: storage_account_name?,
            container_name: container_name?,
            gallery_name: gallery_name?,
            image_definition: image_definition?,
            image_template: image_template?,
            scripts_folder: scripts_folder?,
            tags: tags?,
        })
    }

    fn tags(&mut self, value: &Value, path: &str) -> Option<BTreeMap<String, String>> {
        let Value::Object(object) = value else {
            self.wrong_type(
                value,
                path,
                "an object of tag names and string values",
                None,
            );
            return None;
        };
        self.record(path, object.range);
        let mut tags = BTreeMap::new();
        let mut ok = true;
        for prop in &object.properties {
            let name = prop.name.as_str();
            let tag_path = join(path, name);
            if let Err(broken) = rules::tag_name(name) {
                self.report(
                    prop.range,
                    &tag_path,
                    format!("expected {}", broken.expected),
                    broken.hint,
                );
                ok = false;
                continue;
            }
            match self.named(
                &prop.value,
                &tag_path,
                rules::tag_value,
                "a string tag value",
            ) {
                Some(v) => {
                    tags.insert(name.to_string(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(tags)
    }

    // --- imageDefinition -----------------------------------------------------------------

    fn image_definition(&mut self, value: &Value) -> Option<ImageDefinition> {
        let path = "imageDefinition";
        let f = self.object(
            value,
            path,
            &[
                "name",
                "osType",
                "osState",
                "hyperVGeneration",
                "publisher",
                "offer",
                "sku",
                "securityType",
                "description",
            ],
            "imageDefinition",
        )?;
        let name = self.required(&f, "name", "an image definition name", |d, v, p| {
            d.named(
                v,
                p,
                rules::image_definition_name,
                "an image definition name",
            )
        });
        let os_type = self.required(&f, "osType", "\"Linux\" or \"Windows\"", |d, v, p| {
            d.choice(
                v,
                p,
                &[("Linux", OsType::Linux), ("Windows", OsType::Windows)],
            )
        });
        self.os = os_type;
        let os_state = self.optional(&f, "osState", |d, v, p| {
            d.choice(
                v,
                p,
                &[
                    ("Generalized", OsState::Generalized),
                    ("Specialized", OsState::Specialized),
                ],
            )
        });
        let generation = self.optional(&f, "hyperVGeneration", |d, v, p| {
            d.choice(
                v,
                p,
                &[("V1", HyperVGeneration::V1), ("V2", HyperVGeneration::V2)],
            )
        });
        let publisher = self.required(&f, "publisher", "the identifier publisher", |d, v, p| {
            d.text(v, p, "the identifier publisher (a non-empty string)")
        });
        let offer = self.required(&f, "offer", "the identifier offer", |d, v, p| {
            d.text(v, p, "the identifier offer (a non-empty string)")
        });
        let sku = self.required(&f, "sku", "the identifier SKU", |d, v, p| {
            d.text(v, p, "the identifier SKU (a non-empty string)")
        });
        let security_type = self.optional(&f, "securityType", |d, v, p| d.security_type(v, p));
        let description = self.optional(&f, "description", |d, v, p| d.string(v, p, "a string"));

        if let (
            Some(Some(
                SecurityType::TrustedLaunchSupported
                | SecurityType::ConfidentialVmSupported
                | SecurityType::TrustedLaunchAndConfidentialVmSupported,
            )),
            Some(Some(HyperVGeneration::V1)),
        ) = (security_type, generation)
            && let Some((v, p)) = f.get("securityType")
        {
            self.report(
                range_of(v),
                &p,
                "Trusted Launch and confidential VMs need a generation 2 image, but hyperVGeneration is \"V1\"",
                Some("use \"hyperVGeneration\": \"V2\" with a Gen2 source image, or \"securityType\": \"Standard\"".into()),
            );
        }

        Some(ImageDefinition {
            name: name?,
            os_type: os_type?,
            os_state: os_state?,
            hyper_v_generation: generation?,
            publisher: publisher?,
            offer: offer?,
            sku: sku?,
            security_type: security_type?,
            description: description?,
        })
    }

    fn security_type(&mut self, value: &Value, path: &str) -> Option<SecurityType> {
        if let Value::StringLit(s) = value
            && (s.value == "TrustedLaunch" || s.value == "ConfidentialVM")
        {
            self.report(
                s.range,
                path,
                format!(
                    "Image Builder cannot build into a \"{}\" image definition",
                    s.value
                ),
                Some(format!("use \"{}Supported\"", s.value)),
            );
            return None;
        }
        self.choice(
            value,
            path,
            &[
                ("Standard", SecurityType::Standard),
                (
                    "TrustedLaunchSupported",
                    SecurityType::TrustedLaunchSupported,
                ),
                (
                    "ConfidentialVMSupported",
                    SecurityType::ConfidentialVmSupported,
                ),
                (
                    "TrustedLaunchAndConfidentialVmSupported",
                    SecurityType::TrustedLaunchAndConfidentialVmSupported,
                ),
            ],
        )
    }

    /// A required field: missing is reported at the object; `Some(value)` when decoded.
    fn required<T>(
        &mut self,
        f: &Fields,
        name: &str,
        expected: &str,
        read: impl FnOnce(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<T> {
        match f.get(name) {
            Some((v, p)) => read(self, v, &p),
            None => {
                self.missing(f, name, expected, None);
                None
            }
        }
    }

    /// An optional field: `Some(None)` when absent, `Some(Some(v))` when decoded, `None` when
    /// present but wrong (already reported).
    fn optional<T>(
        &mut self,
        f: &Fields,
        name: &str,
        read: impl FnOnce(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Option<T>> {
        match f.get(name) {
            Some((v, p)) => read(self, v, &p).map(Some),
            None => Some(None),
        }
    }

    // --- imageTemplate -------------------------------------------------------------------

    fn image_template(&mut self, value: &Value) -> Option<ImageTemplate> {
        let path = "imageTemplate";
        let f = self.object(
            value,
            path,
            &[
                "namePrefix",
                "imageSource",
                "customizationSteps",
                "vmSize",
                "osDiskSizeGB",
                "buildTimeoutInMinutes",
                "stagingResourceGroup",
                "replicationRegions",
                "targetRegions",
                "storageAccountType",
                "versioning",
                "excludeFromLatest",
            ],
            "imageTemplate",
        )?;
        let name_prefix = self.required(&f, "namePrefix", "a template name prefix", |d, v, p| {
            d.named(v, p, rules::template_name_prefix, "a template name prefix")
        });
        let image_source =
            self.required(&f, "imageSource", "the image to start from", |d, v, p| {
                d.image_source(v, p)
            });
        let steps = self.required(&f, "customizationSteps", "an array of steps", |d, v, p| {
            d.steps(v, p)
        });
        let vm_size = self.optional(&f, "vmSize", |d, v, p| {
            d.named(v, p, rules::vm_size, "a VM size")
        });
        let os_disk = self.optional(&f, "osDiskSizeGB", |d, v, p| d.unsigned(v, p, 4095));
        let timeout = self.optional(&f, "buildTimeoutInMinutes", |d, v, p| {
            let t = d.unsigned(v, p, 960);
            if t.is_none() {
                // Add what the numbers mean (the integer check already said the range).
                if let Some(last) = d.problems.last_mut()
                    && last.path == p
                {
                    last.hint = Some("0 means Image Builder's default of 240 minutes; 960 (16 hours) is its maximum".into());
                }
            }
            t
        });
        let staging = self.optional(&f, "stagingResourceGroup", |d, v, p| {
            d.named(v, p, rules::staging_resource_group, "a resource group name")
        });
        let replication = self.optional(&f, "replicationRegions", |d, v, p| d.regions(v, p));
        let targets = self.optional(&f, "targetRegions", |d, v, p| d.target_regions(v, p));
        if f.has("replicationRegions") && f.has("targetRegions") {
            let range = f.key_range("targetRegions").unwrap_or(f.object.range);
            self.report(
                range,
                &join(path, "targetRegions"),
                "\"replicationRegions\" and \"targetRegions\" are both given; use one",
                Some(
                    "targetRegions (with replica counts) replaces the older replicationRegions"
                        .into(),
                ),
            );
        }
        let storage_type = self.optional(&f, "storageAccountType", |d, v, p| d.storage_type(v, p));
        if f.has("storageAccountType") && f.has("targetRegions") {
            let range = f.key_range("storageAccountType").unwrap_or(f.object.range);
            self.report(
                range,
                &join(path, "storageAccountType"),
                "\"storageAccountType\" applies to replicationRegions only",
                Some("with targetRegions, set storageAccountType per region".into()),
            );
        }
        let versioning = self.optional(&f, "versioning", |d, v, p| d.versioning(v, p));
        let exclude = self.optional(&f, "excludeFromLatest", |d, v, p| d.boolean(v, p));

        Some(ImageTemplate {
            name_prefix: name_prefix?,
            image_source: image_source?,
            customization_steps: steps?,
            vm_size: vm_size?,
            os_disk_size_gb: os_disk?,
            build_timeout_in_minutes: timeout?,
            staging_resource_group: staging?,
            replication_regions: replication?,
            target_regions: targets?,
            storage_account_type: storage_type?,
            versioning: versioning?,
            exclude_from_latest: exclude?,
        })
    }

    fn storage_type(&mut self, value: &Value, path: &str) -> Option<StorageAccountType> {
        self.choice(
            value,
            path,
            &[
                ("Standard_LRS", StorageAccountType::StandardLrs),
                ("Standard_ZRS", StorageAccountType::StandardZrs),
                ("Premium_LRS", StorageAccountType::PremiumLrs),
            ],
        )
    }

    fn regions(&mut self, value: &Value, path: &str) -> Option<Vec<String>> {
        let array = self.non_empty(value, path, "a list of regions", Some(NO_REGIONS_HINT))?;
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, element) in array.elements.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match self.named(element, &p, rules::region, "an Azure region") {
                Some(r) if out.iter().any(|o| o.eq_ignore_ascii_case(&r)) => {
                    self.report(
                        range_of(element),
                        &p,
                        format!("region \"{r}\" is listed twice"),
                        None,
                    );
                    ok = false;
                }
                Some(r) => out.push(r),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn target_regions(&mut self, value: &Value, path: &str) -> Option<Vec<TargetRegion>> {
        let array = self.non_empty(
            value,
            path,
            "a list of target regions",
            Some(NO_REGIONS_HINT),
        )?;
        let mut out: Vec<TargetRegion> = Vec::new();
        let mut ok = true;
        for (i, element) in array.elements.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(f) = self.object(
                element,
                &p,
                &["name", "replicaCount", "storageAccountType"],
                "a target region",
            ) else {
                ok = false;
                continue;
            };
            let name = self.required(&f, "name", "an Azure region", |d, v, p| {
                d.named(v, p, rules::region, "an Azure region")
            });
            let count = self.optional(&f, "replicaCount", |d, v, p| {
                d.integer(v, p, 1, 100).and_then(|i| u32::try_from(i).ok())
            });
            let storage = self.optional(&f, "storageAccountType", |d, v, p| d.storage_type(v, p));
            match (name, count, storage) {
                (Some(name), Some(replica_count), Some(storage_account_type)) => {
                    if out.iter().any(|o| o.name.eq_ignore_ascii_case(&name)) {
                        self.report(
                            range_of(element),
                            &p,
                            format!("region \"{name}\" is listed twice"),
                            None,
                        );
                        ok = false;
                    }
                    out.push(TargetRegion {
                        name,
                        replica_count,
                        storage_account_type,
                    });
                }
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn versioning(&mut self, value: &Value, path: &str) -> Option<Versioning> {
        let f = self.object(value, path, &["scheme", "major"], "versioning")?;
        let scheme = self.required(&f, "scheme", "\"Latest\" or \"Source\"", |d, v, p| {
            d.choice(v, p, &[("Latest", true), ("Source", false)])
        })?;
        if scheme {
            let major = self.optional(&f, "major", |d, v, p| {
                d.integer(v, p, -1, i64::from(i32::MAX))
            })?;
            Some(Versioning::Latest { major })
        } else {
            if let Some((v, p)) = f.get("major") {
                self.report(
                    range_of(v),
                    &p,
                    "\"major\" applies to the \"Latest\" scheme only",
                    Some("remove it, or use \"scheme\": \"Latest\"".into()),
                );
                return None;
            }
            Some(Versioning::Source)
        }
    }

    fn image_source(&mut self, value: &Value, path: &str) -> Option<ImageSource> {
        const TYPES: &[&str] = &["PlatformImage", "SharedImageVersion", "ManagedImage"];
        let Value::Object(object) = value else {
            self.wrong_type(
                value,
                path,
                "the image to start from (an object with \"type\")",
                None,
            );
            return None;
        };
        let ty = self.discriminator(object, path, TYPES, "an image source")?;
        match ty {
            "PlatformImage" => {
                let f = self.object(
                    value,
                    path,
                    &["type", "publisher", "offer", "sku", "version", "planInfo"],
                    "a PlatformImage source",
                )?;
                let publisher = self.required(
                    &f,
                    "publisher",
                    "the Marketplace publisher, e.g. \"Canonical\"",
                    |d, v, p| d.text(v, p, "the Marketplace publisher (a non-empty string)"),
                );
                let offer = self.required(&f, "offer", "the Marketplace offer", |d, v, p| {
                    d.text(v, p, "the Marketplace offer (a non-empty string)")
                });
                let sku = self.required(&f, "sku", "the Marketplace SKU", |d, v, p| {
                    d.text(v, p, "the Marketplace SKU (a non-empty string)")
                });
                let version = self.optional(&f, "version", |d, v, p| {
                    d.named(v, p, platform_version, "an image version")
                });
                let plan_info = self.optional(&f, "planInfo", |d, v, p| d.plan_info(v, p));
                Some(ImageSource::PlatformImage {
                    publisher: publisher?,
                    offer: offer?,
                    sku: sku?,
                    version: version?,
                    plan_info: plan_info?,
                })
            }
            "SharedImageVersion" => {
                let f = self.object(
                    value,
                    path,
                    &["type", "imageVersionId"],
                    "a SharedImageVersion source",
                )?;
                let id = self.required(
                    &f,
                    "imageVersionId",
                    "a gallery image version id",
                    |d, v, p| d.named(v, p, rules::image_version_id, "a gallery image version id"),
                )?;
                Some(ImageSource::SharedImageVersion {
                    image_version_id: id,
                })
            }
            _ => {
                let f = self.object(value, path, &["type", "imageId"], "a ManagedImage source")?;
                let id = self.required(&f, "imageId", "a managed image id", |d, v, p| {
                    d.named(v, p, rules::managed_image_id, "a managed image id")
                })?;
                Some(ImageSource::ManagedImage { image_id: id })
            }
        }
    }

    fn plan_info(&mut self, value: &Value, path: &str) -> Option<PlanInfo> {
        let f = self.object(
            value,
            path,
            &["planName", "planProduct", "planPublisher"],
            "planInfo",
        )?;
        let name = self.required(&f, "planName", "the plan name", |d, v, p| {
            d.text(v, p, "a plan name")
        });
        let product = self.required(&f, "planProduct", "the plan product", |d, v, p| {
            d.text(v, p, "a plan product")
        });
        let publisher = self.required(&f, "planPublisher", "the plan publisher", |d, v, p| {
            d.text(v, p, "a plan publisher")
        });
        Some(PlanInfo {
            plan_name: name?,
            plan_product: product?,
            plan_publisher: publisher?,
        })
    }

    /// Reads the `type` field of a tagged object; `None` (reported) when absent or unknown.
    fn discriminator<'s>(
        &mut self,
        object: &Object,
        path: &str,
        types: &[&'s str],
        what: &str,
    ) -> Option<&'s str> {
        let type_path = join(path, "type");
        let Some(prop) = object.properties.iter().find(|p| p.name.as_str() == "type") else {
            self.report(
                object.range,
                &type_path,
                format!(
                    "missing required field \"type\" of {what}: expected one of {}",
                    quote_list(types)
                ),
                None,
            );
            return None;
        };
        let options: Vec<(&str, &'s str)> = types.iter().map(|t| (*t, *t)).collect();
        self.choice(&prop.value, &type_path, &options)
    }

    // --- customizationSteps --------------------------------------------------------------

    fn steps(&mut self, value: &Value, path: &str) -> Option<Vec<CustomizationStep>> {
        let array = self.array(value, path, "a list of customization steps")?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, element) in array.elements.iter().enumerate() {
            match self.step(element, &format!("{path}[{i}]")) {
                Some(step) => out.push(step),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn step(&mut self, value: &Value, path: &str) -> Option<CustomizationStep> {
        const TYPES: &[&str] = &[
            "Shell",
            "PowerShell",
            "File",
            "WindowsRestart",
            "WindowsUpdate",
        ];
        let Value::Object(object) = value else {
            self.wrong_type(
                value,
                path,
                "a customization step (an object with \"type\")",
                None,
            );
            return None;
        };
        let ty = self.discriminator(object, path, TYPES, "a customization step")?;
        self.step_os_check(object, path, ty);
        match ty {
            "Shell" => {
                let f = self.object(
                    value,
                    path,
                    &[
                        "type",
                        "name",
                        "scriptUri",
                        "inline",
                        "script",
                        "sha256Checksum",
                    ],
                    "a Shell step",
                )?;
                let name = self.optional(&f, "name", |d, v, p| d.string(v, p, "a step name"));
                let run = self.script_source(&f, ty);
                let checksum = self.checksum(&f, "script");
                Some(CustomizationStep::Shell {
                    name: name?,
                    run: run?,
                    sha256_checksum: checksum?,
                })
            }
            "PowerShell" => {
                let f = self.object(
                    value,
                    path,
                    &[
                        "type",
                        "name",
                        "scriptUri",
                        "inline",
                        "script",
                        "sha256Checksum",
                        "runElevated",
                        "runAsSystem",
                        "validExitCodes",
                    ],
                    "a PowerShell step",
                )?;
                let name = self.optional(&f, "name", |d, v, p| d.string(v, p, "a step name"));
                let run = self.script_source(&f, ty);
                let checksum = self.checksum(&f, "script");
                let elevated = self.optional(&f, "runElevated", |d, v, p| d.boolean(v, p));
                let system = self.optional(&f, "runAsSystem", |d, v, p| d.boolean(v, p));
                if let (Some(Some(true)), Some(elevated)) = (system, elevated)
                    && elevated != Some(true)
                    && let Some((v, p)) = f.get("runAsSystem")
                {
                    self.report(
                        range_of(v),
                        &p,
                        "\"runAsSystem\" needs \"runElevated\": true",
                        Some("add \"runElevated\": true to this step".into()),
                    );
                }
                let codes = self.optional(&f, "validExitCodes", |d, v, p| {
                    let array = d.array(v, p, "a list of exit codes")?;
                    let mut codes = Vec::new();
                    let mut ok = true;
                    for (i, e) in array.elements.iter().enumerate() {
                        match d.integer(
                            e,
                            &format!("{p}[{i}]"),
                            i64::from(i32::MIN),
                            i64::from(u32::MAX),
                        ) {
                            Some(c) => codes.push(c),
                            None => ok = false,
                        }
                    }
                    ok.then_some(codes)
                });
                Some(CustomizationStep::PowerShell {
                    name: name?,
                    run: run?,
                    sha256_checksum: checksum?,
                    run_elevated: elevated?,
                    run_as_system: system?,
                    valid_exit_codes: codes?,
                })
            }
            "File" => {
                let f = self.object(
                    value,
                    path,
                    &[
                        "type",
                        "name",
                        "sourceUri",
                        "file",
                        "destination",
                        "sha256Checksum",
                    ],
                    "a File step",
                )?;
                let name = self.optional(&f, "name", |d, v, p| d.string(v, p, "a step name"));
                let source = self.file_source(&f);
                let windows = self.os == Some(OsType::Windows);
                let known_os = self.os.is_some();
                let destination = self.required(
                    &f,
                    "destination",
                    "the absolute path on the build VM",
                    |d, v, p| {
                        let s = d.text(v, p, "the absolute path on the build VM")?;
                        if known_os && let Err(broken) = rules::destination(&s, windows) {
                            d.report(
                                range_of(v),
                                p,
                                format!("expected {}, found \"{s}\"", broken.expected),
                                broken.hint,
                            );
                            return None;
                        }
                        Some(s)
                    },
                );
                let checksum = self.checksum(&f, "file");
                Some(CustomizationStep::File {
                    name: name?,
                    source: source?,
                    destination: destination?,
                    sha256_checksum: checksum?,
                })
            }
            "WindowsRestart" => {
                let f = self.object(
                    value,
                    path,
                    &[
                        "type",
                        "name",
                        "restartCommand",
                        "restartCheckCommand",
                        "restartTimeout",
                    ],
                    "a WindowsRestart step",
                )?;
                let name = self.optional(&f, "name", |d, v, p| d.string(v, p, "a step name"));
                let command =
                    self.optional(&f, "restartCommand", |d, v, p| d.text(v, p, "a command"));
                let check = self.optional(&f, "restartCheckCommand", |d, v, p| {
                    d.string(v, p, "a command")
                });
                let timeout = self.optional(&f, "restartTimeout", |d, v, p| {
                    d.named(v, p, rules::duration, "a duration")
                });
                Some(CustomizationStep::WindowsRestart {
                    name: name?,
                    restart_command: command?,
                    restart_check_command: check?,
                    restart_timeout: timeout?,
                })
            }
            _ => {
                let f = self.object(
                    value,
                    path,
                    &["type", "name", "searchCriteria", "filters", "updateLimit"],
                    "a WindowsUpdate step",
                )?;
                let name = self.optional(&f, "name", |d, v, p| d.string(v, p, "a step name"));
                let criteria = self.optional(&f, "searchCriteria", |d, v, p| {
                    d.string(v, p, "a search criteria string")
                });
                let filters = self.optional(&f, "filters", |d, v, p| {
                    d.strings(v, p, "a list of filters", false)
                });
                let limit = self.optional(&f, "updateLimit", |d, v, p| d.unsigned(v, p, 1000));
                Some(CustomizationStep::WindowsUpdate {
                    name: name?,
                    search_criteria: criteria?,
                    filters: filters?,
                    update_limit: limit?,
                })
            }
        }
    }

    /// A step type that cannot run on the image's OS is reported at its `type`.
    fn step_os_check(&mut self, object: &Object, path: &str, ty: &str) {
        let Some(os) = self.os else { return };
        let (allowed, hint) = match (ty, os) {
            ("Shell", OsType::Windows) => (false, "on Windows use a PowerShell step"),
            ("PowerShell", OsType::Linux) => (
                false,
                "on Linux use a Shell step, e.g. \"inline\": [\"pwsh -File /tmp/script.ps1\"] after installing PowerShell",
            ),
            ("WindowsRestart" | "WindowsUpdate", OsType::Linux) => (
                false,
                "Linux images have no restart or update step; use a Shell step",
            ),
            _ => (true, ""),
        };
        if !allowed && let Some(prop) = object.properties.iter().find(|p| p.name.as_str() == "type")
        {
            let range = range_of(&prop.value);
            self.report(
                range,
                &join(path, "type"),
                format!(
                    "a {ty} step cannot run on a {} image (imageDefinition.osType)",
                    os.as_str()
                ),
                Some(hint.to_string()),
            );
        }
    }

    /// Exactly one of `scriptUri`, `inline`, `script`.
    fn script_source(&mut self, f: &Fields, ty: &str) -> Option<ScriptSource> {
        let given: Vec<&str> = ["scriptUri", "inline", "script"]
            .into_iter()
            .filter(|k| f.has(k))
            .collect();
        match given.as_slice() {
            [] => {
                self.report(
                    f.object.range,
                    &f.path,
                    format!("a {ty} step needs exactly one of \"scriptUri\", \"inline\" or \"script\", found none"),
                    Some("\"script\" names a file of the scripts folder, \"inline\" lists commands, \"scriptUri\" is an https URL".into()),
                );
                None
            }
            [one] => {
                let (v, p) = f.get(one)?;
                match *one {
                    "scriptUri" => self
                        .named(v, &p, rules::https_url, "an https URL")
                        .map(|script_uri| ScriptSource::Uri { script_uri }),
                    "inline" => self
                        .strings(v, &p, "a list of commands", true)
                        .map(|inline| ScriptSource::Inline { inline }),
                    _ => self
                        .uploaded(v, &p)
                        .map(|script| ScriptSource::Uploaded { script }),
                }
            }
            [first, second, ..] => {
                let range = f.key_range(second).unwrap_or(f.object.range);
                self.report(
                    range,
                    &join(&f.path, second),
                    format!("\"{first}\" and \"{second}\" are both given; a {ty} step runs exactly one of \"scriptUri\", \"inline\" or \"script\""),
                    Some("split it into two steps, or remove one".into()),
                );
                None
            }
        }
    }

    /// Exactly one of `sourceUri`, `file`.
    fn file_source(&mut self, f: &Fields) -> Option<FileSource> {
        match (f.get("sourceUri"), f.get("file")) {
            (None, None) => {
                self.report(
                    f.object.range,
                    &f.path,
                    "a File step needs one of \"sourceUri\" or \"file\", found none",
                    Some("\"file\" names a file of the scripts folder, \"sourceUri\" is an https URL".into()),
                );
                None
            }
            (Some(_), Some(_)) => {
                let range = f.key_range("file").unwrap_or(f.object.range);
                self.report(
                    range,
                    &join(&f.path, "file"),
                    "\"sourceUri\" and \"file\" are both given; a File step copies exactly one",
                    Some("remove one of them".into()),
                );
                None
            }
            (Some((v, p)), None) => self
                .named(v, &p, rules::https_url, "an https URL")
                .map(|source_uri| FileSource::Uri { source_uri }),
            (None, Some((v, p))) => self
                .uploaded(v, &p)
                .map(|file| FileSource::Uploaded { file }),
        }
    }

    fn uploaded(&mut self, value: &Value, path: &str) -> Option<String> {
        let name = self.named(value, path, rules::uploaded_file_name, "a file name")?;
        let position = self.position(range_of(value));
        self.script_refs.push(ScriptRef {
            name: name.clone(),
            path: path.to_string(),
            position,
        });
        Some(name)
    }

    /// `sha256Checksum`: a checksum for URLs; not allowed with an uploaded file (aib computes it).
    fn checksum(&mut self, f: &Fields, uploaded_key: &str) -> Option<Option<String>> {
        let Some((v, p)) = f.get("sha256Checksum") else {
            return Some(None);
        };
        if f.has(uploaded_key) {
            self.report(
                range_of(v),
                &p,
                format!("\"sha256Checksum\" cannot be given with \"{uploaded_key}\""),
                Some("aib computes the checksum of uploaded files; remove this field".into()),
            );
            return None;
        }
        self.named(v, &p, rules::sha256, "a SHA-256 checksum")
            .map(Some)
    }
}

/// ARM's `contentVersion` pattern: four dot-separated numbers.
fn content_version(value: &str) -> Result<(), Broken> {
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Ok(());
    }
    Err(Broken {
        expected: "a content version of four numbers such as \"1.0.0.0\"".into(),
        hint: Some("ARM parameter files use \"1.0.0.0\"".into()),
    })
}

/// A Marketplace image version: `latest` or dot-separated numbers.
fn platform_version(value: &str) -> Result<(), Broken> {
    if value == "latest"
        || (!value.is_empty()
            && value
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
    {
        return Ok(());
    }
    Err(Broken {
        expected: "\"latest\" or a version such as \"22.04.202411010\"".into(),
        hint: Some(
            "`az vm image list --all -p <publisher> -f <offer> -s <sku>` lists versions".into(),
        ),
    })
}
