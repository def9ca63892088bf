//! Invoking real Python functions through the real runner (python3 on the
//! host) in a dev-mode agent.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use mvm_proto::{ClientError, ErrorKind};
use serde_json::{Map, Value, json};
use support::{DevAgent, write, write_launch};

const APP: &str = r#"
import os

def greet(name):
    return f"hello {name}"

def noisy(n):
    print("a line for the log", n)
    print("{\"id\": 999, \"ok\": true, \"value\": \"forged\"}")
    return {"n": n, "pid": os.getpid(), "cwd": os.getcwd()}

def boom(message):
    raise ValueError(message)

def unserializable():
    return object()

def not_a_number():
    return float("nan")

def env(name):
    return os.environ.get(name)

def crash():
    os._exit(3)

def hang():
    import time
    time.sleep(1000)

def sdk():
    import mvm
    return mvm.MARKER
"#;

fn setup(root: &Path) {
    let app = root.join("app");
    write(root, "app/app.py", APP);
    // Stands in for the SDK copy the initramfs ships.
    write(
        root,
        "usr/lib/mvm/python/mvm/__init__.py",
        "MARKER = 'shipped sdk'\n",
    );
    let function = |name: &str, function: &str, primary: bool| {
        json!({"kind": "function", "name": name, "language": "python", "module": "app", "function": function,
               "format": "json", "working_dir": app, "primary": primary})
    };
    let mut entrypoints = vec![function("greet", "greet", true)];
    // Entrypoint names follow the IR's grammar (no `_`); functions keep theirs.
    for name in [
        "noisy",
        "boom",
        "unserializable",
        "not_a_number",
        "env",
        "crash",
        "hang",
        "sdk",
    ] {
        entrypoints.push(function(&name.replace('_', "-"), name, false));
    }
    entrypoints.push(function("missing", "no_such_function", false));
    entrypoints.push(json!({"kind": "command", "name": "server", "command": ["sleep", "1"], "working_dir": "/", "primary": false}));
    write_launch(root, Value::Array(entrypoints), "greet");
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn agent_error(err: ClientError) -> mvm_proto::AgentError {
    match err {
        ClientError::Agent { error, .. } => error,
        other => panic!("expected an agent error, got {other}"),
    }
}

#[test]
fn primary_and_named_entrypoints_return_json() {
    let agent = DevAgent::start(setup);
    let value = agent
        .client
        .invoke(None, args(json!({"name": "ari"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("hello ari"));
    let value = agent
        .client
        .invoke(Some("greet"), args(json!({"name": "bo"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("hello bo"));
}

#[test]
fn prints_do_not_corrupt_the_channel_and_the_runner_stays_warm() {
    let agent = DevAgent::start(setup);
    let first = agent
        .client
        .invoke(Some("noisy"), args(json!({"n": 1})), None)
        .unwrap()
        .unwrap();
    let second = agent
        .client
        .invoke(Some("noisy"), args(json!({"n": 2})), None)
        .unwrap()
        .unwrap();
    assert_eq!(
        (first["n"].clone(), second["n"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        first["pid"], second["pid"],
        "the second call should reuse the warm runner"
    );
    let cwd = agent.root().join("app").canonicalize().unwrap();
    assert_eq!(first["cwd"], json!(cwd));
}

#[test]
fn exceptions_become_structured_errors() {
    let agent = DevAgent::start(setup);
    let error = agent
        .client
        .invoke(Some("boom"), args(json!({"message": "bad input"})), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("ValueError", "bad input")
    );
    let traceback = error.traceback.unwrap();
    assert!(
        traceback.contains("in boom") && traceback.contains("ValueError: bad input"),
        "{traceback}"
    );

    let error = agent
        .client
        .invoke(Some("greet"), args(json!({"nom": "x"})), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, "TypeError", "{error}");

    let error = agent
        .client
        .invoke(Some("unserializable"), Map::new(), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, "ResultNotSerializable", "{error}");
    assert!(error.message.contains("object"), "{error}");
    let error = agent
        .client
        .invoke(Some("not-a-number"), Map::new(), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, "ResultNotSerializable", "{error}");

    let error = agent
        .client
        .invoke(Some("missing"), Map::new(), None)
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, "FunctionNotFound", "{error}");

    // The runner survived all of that.
    let value = agent
        .client
        .invoke(None, args(json!({"name": "still here"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("hello still here"));
}

#[test]
fn unknown_and_command_entrypoints_are_refused() {
    let agent = DevAgent::start(setup);
    let err = agent_error(
        agent
            .client
            .invoke(Some("nope"), Map::new(), None)
            .unwrap_err(),
    );
    assert_eq!(err.kind, ErrorKind::NoSuchEntrypoint);
    assert!(
        err.message.contains("greet"),
        "the message should list what exists: {}",
        err.message
    );
    let err = agent_error(
        agent
            .client
            .invoke(Some("server"), Map::new(), None)
            .unwrap_err(),
    );
    assert_eq!(err.kind, ErrorKind::WrongEntrypointKind);
}

#[test]
fn configured_env_reaches_functions() {
    let agent = DevAgent::start(setup);
    agent
        .client
        .configure(BTreeMap::from([(
            "API_KEY".into(),
            "mvm-secret-ref:api-key".into(),
        )]))
        .unwrap();
    let value = agent
        .client
        .invoke(Some("env"), args(json!({"name": "API_KEY"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("mvm-secret-ref:api-key"));
    // A new configuration restarts the runner, which then sees it.
    agent
        .client
        .configure(BTreeMap::from([("API_KEY".into(), "second".into())]))
        .unwrap();
    let value = agent
        .client
        .invoke(Some("env"), args(json!({"name": "API_KEY"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("second"));
}

#[test]
fn a_crashed_runner_is_reported_and_restarted() {
    let agent = DevAgent::start(setup);
    let before = agent
        .client
        .invoke(Some("noisy"), args(json!({"n": 0})), None)
        .unwrap()
        .unwrap();
    let err = agent_error(
        agent
            .client
            .invoke(Some("crash"), Map::new(), None)
            .unwrap_err(),
    );
    assert_eq!(err.kind, ErrorKind::RunnerCrashed);
    assert!(
        err.message.contains("exited with code 3"),
        "{}",
        err.message
    );
    let after = agent
        .client
        .invoke(Some("noisy"), args(json!({"n": 1})), None)
        .unwrap()
        .unwrap();
    assert_ne!(before["pid"], after["pid"]);
}

#[test]
fn a_call_past_its_timeout_kills_the_runner() {
    let agent = DevAgent::start(setup);
    let err = agent_error(
        agent
            .client
            .invoke(Some("hang"), Map::new(), Some(300))
            .unwrap_err(),
    );
    assert_eq!(err.kind, ErrorKind::TimedOut, "{}", err.message);
    let value = agent
        .client
        .invoke(None, args(json!({"name": "again"})), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("hello again"));
}

#[test]
fn the_shipped_sdk_is_importable() {
    let agent = DevAgent::start(setup);
    let value = agent
        .client
        .invoke(Some("sdk"), Map::new(), None)
        .unwrap()
        .unwrap();
    assert_eq!(value, json!("shipped sdk"));
}
