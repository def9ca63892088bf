//! Invoking real Python functions through the real runner (python3 on the
//! host) in a dev-mode agent.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use mvm_proto::{ClientError, ErrorKind, HookPhase};
use serde_json::{Map, Value, json};
use support::{DevAgent, wait_dead, write, write_launch};

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

// --- Prewarm: a runner started before any user code, kept through Configure.

/// Records every import of the module (by pid) beside itself, so a test can
/// tell whether the prewarmed runner imported user code.
const WARM: &str = r#"
import os
import sys

# Before this module imports anything of its own: was the SDK preloaded?
MVM_AT_IMPORT = "mvm" in sys.modules

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imports.log"), "a") as log:
    log.write(f"{os.getpid()}\n")

def env(name):
    return os.environ.get(name)

def pid():
    return os.getpid()

def environ():
    return dict(os.environ)

def preloaded():
    import mvm
    return {"before": MVM_AT_IMPORT, "marker": mvm.MARKER}
"#;

const WARM_BEFORE_START: &str = "#!/bin/sh\nset -eu\nexport WARM_BANNER=\"hi ${API_KEY-nobody}\"\n";

/// Python functions from `warm.py`, a `before_start` that exports
/// `WARM_BANNER`, and optionally a Node function beside them.
fn setup_warm(root: &Path, with_node: bool) {
    write(root, "app/warm.py", WARM);
    write(root, "etc/mvm/hooks/before_start.sh", WARM_BEFORE_START);
    let app = root.join("app");
    let mut entrypoints: Vec<Value> = ["env", "pid", "environ", "preloaded"]
        .iter()
        .map(|f| {
            json!({"kind": "function", "name": f, "language": "python", "module": "warm", "function": f,
                   "format": "json", "working_dir": app, "primary": *f == "env"})
        })
        .collect();
    if with_node {
        entrypoints.push(node_function(&app, false));
    }
    write_launch(root, Value::Array(entrypoints), "env");
}

fn node_function(app: &Path, primary: bool) -> Value {
    json!({"kind": "function", "name": "js", "language": "node", "module": "app", "function": "f",
           "format": "json", "working_dir": app, "primary": primary})
}

/// The agent's live children as (pid, command line): its runners, in dev
/// mode, where nothing else runs between requests.
fn children(agent: &DevAgent) -> Vec<(u32, String)> {
    let parent = agent.child.id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the parenthesised name: state, then the parent's pid.
        let mut rest = stat.rsplit(')').next().unwrap_or("").split_whitespace();
        let (state, ppid) = (rest.next(), rest.next().and_then(|p| p.parse::<u32>().ok()));
        if ppid == Some(parent) && state != Some("Z") {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// Prewarms and returns the pid of the one runner that started.
fn prewarm(agent: &DevAgent) -> u32 {
    agent.client.prewarm().unwrap();
    let runners = children(agent);
    assert_eq!(runners.len(), 1, "one runner after prewarm: {runners:?}");
    assert!(runners[0].1.contains("python_runner.py"), "{runners:?}");
    runners[0].0
}

fn imports(agent: &DevAgent) -> Option<String> {
    std::fs::read_to_string(agent.root().join("app/imports.log")).ok()
}

fn call(agent: &DevAgent, entrypoint: &str, args: Value) -> Value {
    agent
        .client
        .invoke(Some(entrypoint), args.as_object().unwrap().clone(), None)
        .unwrap()
        .unwrap()
}

fn runner_pid(agent: &DevAgent) -> u32 {
    call(agent, "pid", json!({})).as_u64().unwrap() as u32
}

/// The environment `exec` children get: `agent.env()`, exactly what a
/// runner started now would be given.
fn exec_environ(agent: &DevAgent) -> Value {
    let out = agent
        .client
        .exec_output(mvm_proto::ExecRequest::new(["env", "-0"]))
        .unwrap();
    assert!(out.exit.success(), "{out:?}");
    let mut env = Map::new();
    for pair in String::from_utf8(out.stdout).unwrap().split('\0') {
        if let Some((name, value)) = pair.split_once('=') {
            env.insert(name.into(), json!(value));
        }
    }
    Value::Object(env)
}

fn tokens(api_key: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("API_KEY".into(), api_key.into()),
        ("MODE".into(), "warm".into()),
    ])
}

/// Prewarm imports the SDK mvm ships (platform code) and nothing of the
/// app's; an app that brings its own `mvm` gets its own.
#[test]
fn prewarm_preloads_the_shipped_sdk_unless_the_app_has_its_own() {
    let shipped = |root: &Path| {
        setup_warm(root, false);
        write(
            root,
            "usr/lib/mvm/python/mvm/__init__.py",
            "MARKER = 'shipped sdk'\n",
        );
    };
    let agent = DevAgent::start(shipped);
    prewarm(&agent);
    assert_eq!(imports(&agent), None, "no user module at prewarm");
    assert_eq!(
        call(&agent, "preloaded", json!({})),
        json!({"before": true, "marker": "shipped sdk"})
    );

    let own = |root: &Path| {
        shipped(root);
        write(root, "app/mvm.py", "MARKER = \"the app's own\"\n");
    };
    let agent = DevAgent::start(own);
    prewarm(&agent);
    assert_eq!(
        call(&agent, "preloaded", json!({})),
        json!({"before": false, "marker": "the app's own"})
    );
}

#[test]
fn prewarm_is_announced_and_idempotent() {
    let agent = DevAgent::start(|root| setup_warm(root, false));
    assert!(
        agent
            .client
            .hello()
            .capabilities
            .iter()
            .any(|c| c == "prewarm"),
        "{:?}",
        agent.client.hello().capabilities
    );
    let first = prewarm(&agent);
    assert_eq!(prewarm(&agent), first, "a second prewarm keeps the runner");
}

#[test]
fn a_prewarmed_runner_takes_configure_and_before_start_in_place() {
    let agent = DevAgent::start(|root| setup_warm(root, false));
    let warm = prewarm(&agent);
    assert_eq!(imports(&agent), None, "prewarm must not import user code");

    agent.client.configure(tokens("tok-1")).unwrap();
    let hook = agent.client.run_hook(HookPhase::BeforeStart, None).unwrap();
    assert_eq!(hook.exit.map(|e| e.success()), Some(true), "{hook:?}");

    assert_eq!(
        call(&agent, "env", json!({"name": "API_KEY"})),
        json!("tok-1")
    );
    assert_eq!(
        call(&agent, "env", json!({"name": "WARM_BANNER"})),
        json!("hi tok-1")
    );
    assert_eq!(runner_pid(&agent), warm, "the prewarmed runner was kept");
    assert_eq!(
        imports(&agent),
        Some(format!("{warm}\n")),
        "the module was imported once, by the prewarmed runner, at the first call"
    );
    let environ = call(&agent, "environ", json!({}));
    assert_eq!(environ, exec_environ(&agent), "exactly agent.env()");

    // A runner started cold after the same steps sees the same.
    let cold = DevAgent::start(|root| setup_warm(root, false));
    cold.client.configure(tokens("tok-1")).unwrap();
    cold.client.run_hook(HookPhase::BeforeStart, None).unwrap();
    assert_eq!(call(&cold, "environ", json!({})), environ);
}

#[test]
fn a_second_configure_before_any_call_replaces_the_first_in_place() {
    let agent = DevAgent::start(|root| setup_warm(root, false));
    let warm = prewarm(&agent);
    agent.client.configure(tokens("tok-1")).unwrap();
    agent.client.run_hook(HookPhase::BeforeStart, None).unwrap();
    // Nothing of the first configuration may survive: not its variables,
    // not what before_start exported from it.
    agent
        .client
        .configure(BTreeMap::from([("OTHER".into(), "2".into())]))
        .unwrap();
    let environ = call(&agent, "environ", json!({}));
    assert_eq!(environ["OTHER"], json!("2"));
    assert_eq!(environ.get("API_KEY"), None, "{environ}");
    assert_eq!(environ.get("WARM_BANNER"), None, "{environ}");
    assert_eq!(environ, exec_environ(&agent));
    assert_eq!(runner_pid(&agent), warm);
}

#[test]
fn before_start_exports_after_prewarm_reach_the_first_invoke() {
    let agent = DevAgent::start(|root| setup_warm(root, false));
    let warm = prewarm(&agent);
    // No configure at all: the hook alone changes the environment.
    let hook = agent.client.run_hook(HookPhase::BeforeStart, None).unwrap();
    assert_eq!(hook.exit.map(|e| e.success()), Some(true), "{hook:?}");
    assert_eq!(
        call(&agent, "env", json!({"name": "WARM_BANNER"})),
        json!("hi nobody")
    );
    assert_eq!(runner_pid(&agent), warm);
}

#[test]
fn a_start_up_variable_after_prewarm_restarts_the_runner() {
    let agent = DevAgent::start(|root| setup_warm(root, false));
    let warm = prewarm(&agent);
    agent
        .client
        .configure(BTreeMap::from([("PYTHONHASHSEED".into(), "7".into())]))
        .unwrap();
    assert!(wait_dead(warm), "the prewarmed runner should be stopped");
    assert_ne!(runner_pid(&agent), warm);
    assert_eq!(
        call(&agent, "env", json!({"name": "PYTHONHASHSEED"})),
        json!("7")
    );
}

#[test]
fn configure_after_a_call_restarts_the_prewarmed_runner() {
    let agent = DevAgent::start(|root| setup_warm(root, false));
    let warm = prewarm(&agent);
    assert_eq!(runner_pid(&agent), warm);
    agent.client.configure(tokens("tok-2")).unwrap();
    assert!(wait_dead(warm), "a runner that served a call is restarted");
    let now = runner_pid(&agent);
    assert_ne!(now, warm);
    assert_eq!(
        call(&agent, "env", json!({"name": "API_KEY"})),
        json!("tok-2")
    );
    assert_eq!(imports(&agent), Some(format!("{warm}\n{now}\n")));
}

#[test]
fn prewarm_leaves_node_alone() {
    // Only a Node function: nothing starts.
    let agent = DevAgent::start(|root| {
        let app = root.join("app");
        write(root, "app/app.mjs", "export function f() { return 1; }\n");
        write_launch(root, json!([node_function(&app, true)]), "js");
    });
    agent.client.prewarm().unwrap();
    assert_eq!(children(&agent), vec![], "no runner for a Node-only image");

    // Python beside Node: only Python starts.
    let agent = DevAgent::start(|root| setup_warm(root, true));
    prewarm(&agent);

    // No function entrypoints at all: nothing to do.
    let agent = DevAgent::start(|root| {
        write_launch(
            root,
            json!([{"kind": "command", "name": "server", "command": ["sleep", "1"], "working_dir": "/", "primary": true}]),
            "server",
        );
    });
    agent.client.prewarm().unwrap();
    assert_eq!(children(&agent), vec![]);
}
