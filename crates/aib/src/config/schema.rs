//! The JSON Schema of a parameter file, generated from the model's types.
//!
//! schemars describes [`ImageParameters`]; this module wraps each of its properties in the ARM
//! envelope (`parameters.<name>.value`), so the schema follows the Rust types by construction.
//! The result is committed at `schema/image.parameters.schema.json` (a test compares it with
//! this output; `aib schema` prints it), and bundled files point at it in `$schema` so editors
//! complete and check them. It is draft-07, the draft editors support best.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::model::ImageParameters;

/// The schema as a JSON value.
pub fn schema() -> Value {
    let generated = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ImageParameters>();
    let mut inner = generated.to_value();
    tighten(&mut inner);
    let object = inner
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let properties = object
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required = object.get("required").cloned().unwrap_or(json!([]));
    let definitions = object.get("definitions").cloned().unwrap_or(json!({}));

    let mut parameters = Map::new();
    for (name, value_schema) in properties {
        let description = value_schema.get("description").cloned();
        let mut wrapper = Map::new();
        wrapper.insert("type".into(), json!("object"));
        if let Some(description) = description {
            wrapper.insert("description".into(), description);
        }
        wrapper.insert(
            "properties".into(),
            json!({
                "value": value_schema,
                "metadata": { "description": "Ignored by aib (ARM allows it)." }
            }),
        );
        wrapper.insert("required".into(), json!(["value"]));
        wrapper.insert("additionalProperties".into(), json!(false));
        parameters.insert(name, Value::Object(wrapper));
    }

    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "aib image parameters",
        "description": "Parameters of one aib image build: an ARM deploymentParameters file whose values describe the resources, the image template and its distribution. See docs/parameters.md.",
        "type": "object",
        "properties": {
            "$schema": {
                "description": "Any schema reference; the ARM deploymentParameters URL and this schema's path are both fine.",
                "type": "string"
            },
            "contentVersion": {
                "description": "ARM content version, e.g. 1.0.0.0.",
                "type": "string",
                "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$"
            },
            "parameters": {
                "type": "object",
                "properties": parameters,
                "required": required,
                "additionalProperties": false
            }
        },
        "required": ["parameters"],
        "additionalProperties": false,
        "definitions": definitions
    })
}

/// Makes the generated schema as strict as the decoder, so editors flag what aib refuses:
/// - `Option` fields are optional, not nullable (aib refuses `null`): drop the null branches;
/// - a flattened "exactly one of" source (`scriptUri` | `inline` | `script`) becomes plain
///   properties plus `oneOf` over which one is required;
/// - objects with declared properties refuse unknown ones (`additionalProperties: false`);
/// - doc comments wrapped over several lines read as one line.
fn tighten(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(branches)) = map.get("anyOf") {
                let kept: Vec<Value> = branches
                    .iter()
                    .filter(|b| b.get("type") != Some(&json!("null")))
                    .cloned()
                    .collect();
                if kept.len() == 1 && kept.len() != branches.len() {
                    map.remove("anyOf");
                    if let Value::Object(only) = &kept[0] {
                        for (k, v) in only {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            flatten_exactly_one(map);
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), json!(false));
            }
            if let Some(Value::String(text)) = map.get_mut("description") {
                *text = text.replace('\n', " ");
            }
            for child in map.values_mut() {
                tighten(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tighten),
        _ => {}
    }
}

/// `properties` + `anyOf: [{properties: {a}, required: [a]}, …]` (serde `flatten` of an untagged
/// enum) → all properties on the object and `oneOf: [{required: [a]}, …]`.
fn flatten_exactly_one(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.get("anyOf") else {
        return;
    };
    let flattened = !branches.is_empty()
        && map.contains_key("properties")
        && branches
            .iter()
            .all(|b| b.get("properties").is_some() && b.get("required").is_some());
    if !flattened {
        return;
    }
    let branches = branches.clone();
    map.remove("anyOf");
    let mut one_of = Vec::new();
    for branch in branches {
        if let (Some(Value::Object(props)), Some(required)) =
            (branch.get("properties"), branch.get("required"))
        {
            if let Some(Value::Object(own)) = map.get_mut("properties") {
                for (k, v) in props {
                    own.insert(k.clone(), v.clone());
                }
            }
            one_of.push(json!({ "required": required }));
        }
    }
    map.insert("oneOf".into(), Value::Array(one_of));
}

/// The schema as committed: pretty-printed with a final newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema file is exactly what the types generate; set
    /// `AIB_UPDATE_SCHEMA=1` (or run `aib schema > schema/image.parameters.schema.json`) to
    /// regenerate it after changing the model.
    #[test]
    fn committed_schema_matches_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schema/image.parameters.schema.json");
        let generated = schema_text();
        if std::env::var_os("AIB_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date: run `AIB_UPDATE_SCHEMA=1 cargo test -p aib committed_schema` or `aib schema > schema/image.parameters.schema.json`",
            path.display()
        );
    }

    /// Every parameter the decoder knows is described by the schema, and nothing else.
    #[test]
    fn schema_lists_exactly_the_decoders_parameters() {
        let schema = schema();
        let names: Vec<&str> = schema["properties"]["parameters"]["properties"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(names, super::super::PARAMETER_NAMES);
    }
}
