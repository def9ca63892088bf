//! The test workload: a Python module, hook scripts whose behaviour the
//! env selects, and a launch.json per test (the env is the knob).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub const TESTMOD: &str = r#"
import os


def greet(name):
    return f"hello {name}"


def add(a, b):
    return a + b


def boom():
    raise ValueError("boom on purpose")


def getenv(var):
    return os.environ.get(var)


def noop():
    return None
"#;

/// Every hook appends its phase to /tmp/hook-order (on the scratch layer).
pub const BEFORE_START: &str = r#"#!/bin/sh
set -eu
echo before_start >> /tmp/hook-order
if [ "${MVM_TEST_BEFORE_START_FAIL:-}" = 1 ]; then
  echo "before_start failing on purpose" >&2
  exit 3
fi
"#;

/// Fails its first MVM_TEST_READY_AFTER runs (or always, with "never").
pub const AFTER_START: &str = r#"#!/bin/sh
set -eu
echo after_start >> /tmp/hook-order
n=$(cat /tmp/probe-count 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > /tmp/probe-count
want="${MVM_TEST_READY_AFTER:-0}"
if [ "$want" = never ] || [ "$n" -le "$want" ]; then
  echo "probe $n: not ready yet"
  exit 1
fi
"#;

pub const BEFORE_STOP: &str = r#"#!/bin/sh
set -eu
if [ "${MVM_TEST_BEFORE_STOP_FAIL:-}" = 1 ]; then
  echo "before_stop failing on purpose"
  exit 4
fi
"#;

fn entrypoint(name: &str, function: &str, primary: bool) -> Value {
    json!({"kind": "function", "name": name, "language": "python", "module": "testmod",
           "function": function, "format": "json", "working_dir": "/app", "primary": primary})
}

/// launch.json as `mvmctl compile` writes it, with `env` as given.
pub fn launch(env: Value) -> Value {
    let hook_scripts: serde_json::Map<String, Value> =
        ["before_build", "before_start", "after_start", "before_stop"]
            .iter()
            .map(|p| (p.to_string(), json!(format!("hooks/{p}.sh"))))
            .collect();
    let hooks: serde_json::Map<String, Value> = hook_scripts
        .keys()
        .map(|p| (p.clone(), json!([])))
        .collect();
    json!({
        "launch_version": mvm_launch::LAUNCH_VERSION,
        "workload_id": "rt-test",
        "app_name": "rt-test",
        "ir_hash": "0".repeat(64),
        "schema_version": "0.1",
        "toolchain": {"mvmctl": "test"},
        "image": {"kind": "nix_packages", "packages": ["python3"]},
        "dependencies": {"kind": "none"},
        "resources": {"cpu_cores": 1, "memory_mib": 256, "rootfs_size_mib": 256},
        "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
        "env": env,
        "entrypoints": [
            entrypoint("greet", "greet", true),
            entrypoint("add", "add", false),
            entrypoint("boom", "boom", false),
            entrypoint("getenv", "getenv", false),
            entrypoint("noop", "noop", false),
        ],
        "primary_entrypoint": "greet",
        "hooks": hooks,
        "hook_scripts": hook_scripts,
        "mounts": [],
        "volumes": [],
        "threat_tier": "untrusted",
        "source": {"files": 0, "tree_hash": "0".repeat(64)},
    })
}

/// The root image (cached) with the module, hooks and a baked launch.json.
pub fn rootfs() -> PathBuf {
    let baked = serde_json::to_string(&launch(json!({}))).unwrap();
    super::rootfs::image(&[
        ("/app/testmod.py", TESTMOD, 0o644),
        ("/etc/mvm/launch.json", &baked, 0o644),
        ("/etc/mvm/hooks/before_build.sh", "#!/bin/sh\n", 0o755),
        ("/etc/mvm/hooks/before_start.sh", BEFORE_START, 0o755),
        ("/etc/mvm/hooks/after_start.sh", AFTER_START, 0o755),
        ("/etc/mvm/hooks/before_stop.sh", BEFORE_STOP, 0o755),
    ])
}

/// Writes a host-side launch.json with `env` into `dir`.
pub fn write_launch(dir: &Path, env: Value) -> PathBuf {
    let p = dir.join("launch.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&launch(env)).unwrap()).unwrap();
    p
}
