//! JSON Schema (draft 2020-12) of the Workload IR, generated from the types.
//!
//! The schema describes what the reader accepts: objects are closed
//! (`additionalProperties: false`), defaulted fields are optional and show
//! their default. Semantic rules (id patterns, ranges, one primary entrypoint)
//! are [`crate::validate`](mod@crate::validate)'s and are documented in `docs/ir.md`.
//! `docs/workload.schema.json` holds a copy; a test keeps it current.

use crate::types::Workload;

/// The schema of a `workload.json`.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Workload);
    schema.insert("title".into(), "mvm Workload IR 0.1".into());
    serde_json::to_value(schema).expect("a JSON Schema is JSON")
}

/// The text checked into `docs/workload.schema.json`: pretty JSON and a newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a JSON value serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn definition<'a>(schema: &'a Value, name: &str) -> &'a Value {
        &schema["$defs"][name]
    }

    #[test]
    fn objects_are_closed() {
        let schema = json_schema();
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        assert_eq!(
            definition(&schema, "App")["additionalProperties"],
            Value::Bool(false)
        );
        assert_eq!(
            definition(&schema, "Resources")["additionalProperties"],
            Value::Bool(false)
        );
    }

    #[test]
    fn required_and_defaulted_fields() {
        let schema = json_schema();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, ["schema_version", "id", "apps"]);
        let resources = definition(&schema, "Resources");
        assert_eq!(resources["properties"]["memory_mb"]["default"], 256);
        assert_eq!(
            definition(&schema, "App")["properties"]["threat_tier"]["default"],
            "untrusted"
        );
    }

    #[test]
    fn text_form_parses_back() {
        // The copy in docs must parse back to the same value it was written from.
        let reparsed: Value = serde_json::from_str(&json_schema_text()).unwrap();
        assert_eq!(reparsed, json_schema());
    }
}
