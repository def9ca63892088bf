//! Invoking real JavaScript functions through the real Node runner.

mod support;

use std::path::Path;

use serde_json::{Map, Value, json};
use support::{DevAgent, write, write_launch};

const APP: &str = r#"
export function greet(name, punctuation = "!") {
  console.log("a line for the log");
  return `hello ${name}${punctuation}`;
}
export const options = ({ a, b }) => ({ sum: a + b, pid: process.pid });
export async function later(x) {
  await new Promise((resolve) => setTimeout(resolve, 1));
  return [x, x];
}
export function boom() {
  throw new RangeError("out of range");
}
export function notJson() {
  return new Map();
}
"#;

fn setup(root: &Path) {
    let app = root.join("app");
    write(root, "app/app.mjs", APP);
    write(
        root,
        "app/typed.ts",
        "export function typed(n: number): number { return n * 2; }\n",
    );
    // Entrypoint names follow the IR's grammar (the agent reads launch.json
    // strictly); the function keeps its JavaScript name.
    let function = |function: &str, module: &str, primary: bool| {
        let name = if function == "notJson" {
            "not-json"
        } else {
            function
        };
        json!({"kind": "function", "name": name, "language": "node", "module": module, "function": function,
               "format": "json", "working_dir": app, "primary": primary})
    };
    let entrypoints = vec![
        function("greet", "app", true),
        function("options", "app", false),
        function("later", "app", false),
        function("boom", "app", false),
        function("notJson", "app", false),
        function("typed", "typed", false),
    ];
    write_launch(root, Value::Array(entrypoints), "greet");
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn named_arguments_map_to_parameters() {
    let agent = DevAgent::start(setup);
    let value = agent
        .client
        .invoke(None, args(json!({"name": "ari"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("hello ari!"));
    let value = agent
        .client
        .invoke(None, args(json!({"name": "bo", "punctuation": "?"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("hello bo?"));
    let error = agent
        .client
        .invoke(None, args(json!({"nom": "x"})), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, "TypeError", "{error}");
}

#[test]
fn destructured_options_async_and_warm() {
    let agent = DevAgent::start(setup);
    let first = agent
        .client
        .invoke(Some("options"), args(json!({"a": 1, "b": 2})), None)
        .unwrap()
        .unwrap();
    let second = agent
        .client
        .invoke(Some("options"), args(json!({"a": 3, "b": 4})), None)
        .unwrap()
        .unwrap();
    assert_eq!(
        (first["sum"].clone(), second["sum"].clone()),
        (json!(3), json!(7))
    );
    assert_eq!(first["pid"], second["pid"], "the runner should stay warm");
    let value = agent
        .client
        .invoke(Some("later"), args(json!({"x": "y"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!(["y", "y"]));
}

#[test]
fn errors_are_structured() {
    let agent = DevAgent::start(setup);
    let error = agent
        .client
        .invoke(Some("boom"), Map::new(), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("RangeError", "out of range")
    );
    assert!(error.traceback.unwrap().contains("boom"));
    let error = agent
        .client
        .invoke(Some("not-json"), Map::new(), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, "ResultNotSerializable", "{error}");
}

#[test]
fn typescript_runs_only_where_node_strips_types() {
    let agent = DevAgent::start(setup);
    let result = agent
        .client
        .invoke(Some("typed"), args(json!({"n": 21})), None)
        .unwrap();
    let version = std::process::Command::new("node")
        .arg("-p")
        .arg("process.features.typescript ? 1 : 0")
        .output()
        .unwrap();
    let plain_node_strips = String::from_utf8_lossy(&version.stdout).trim() == "1";
    match result {
        Ok(value) => assert_eq!(value, json!(42)),
        Err(error) => {
            assert!(!plain_node_strips);
            assert_eq!(error.kind, "TypeScriptUnsupported", "{error}");
            assert!(error.message.contains("22.6"), "{error}");
        }
    }
}
