//! The contract's reader: what it accepts, and each way it refuses, with
//! the JSON path in the message.

use mvm_launch::{LAUNCH_VERSION, LaunchError, parse};
use serde_json::{Value, json};

fn valid() -> Value {
    let phases = ["before_build", "before_start", "after_start", "before_stop"];
    json!({
        "launch_version": LAUNCH_VERSION, "workload_id": "hello", "app_name": "hello",
        "ir_hash": "a".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "0.1.0"},
        "image": {"kind": "oci_base", "reference": "debian:trixie", "digest": null},
        "dependencies": {"kind": "python", "lockfile": "requirements.txt", "tool": "uv"},
        "resources": {"cpu_cores": 2, "memory_mib": 512, "rootfs_size_mib": 1024},
        "network": {"mode": "bridge", "ports": [{"guest": 80, "host": 8080, "proto": "tcp"}],
                    "egress": {"allowlist": [{"host": "pypi.org", "port": 443}]},
                    "dns": {"kind": "resolver", "host": "1.1.1.1", "port": 53}},
        "env": {"MODEL": {"kind": "literal", "value": "m"}, "API_KEY": {"kind": "secret_ref", "name": "api-key", "type": "bearer", "header": null, "hosts": ["api.example"]}},
        "entrypoints": [
            {"kind": "function", "name": "greet", "language": "python", "module": "app",
             "function": "greet", "format": "json", "working_dir": "/app", "primary": true},
            {"kind": "command", "name": "main", "command": ["sleep", "1"], "working_dir": "/app", "primary": false}
        ],
        "primary_entrypoint": "greet",
        "hooks": phases.iter().map(|p| (p.to_string(), json!([{"kind": "shell", "line": "true"}]))).collect::<serde_json::Map<_, _>>(),
        "hook_scripts": phases.iter().map(|p| (p.to_string(), json!(format!("hooks/{p}.sh")))).collect::<serde_json::Map<_, _>>(),
        "mounts": [{"target": "/data", "source": {"kind": "volume", "name": "cache"}, "mode": "rw"},
                   {"target": "/tmp", "source": {"kind": "tmpfs", "size_mib": 64}, "mode": "rw"}],
        "volumes": [{"name": "cache", "size_mib": 128, "persist": true}],
        "threat_tier": "untrusted",
        "source": {"files": 3, "tree_hash": "b".repeat(64)},
    })
}

fn refused(v: &Value) -> String {
    match parse(v.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {v}"),
        Err(e) => e.to_string(),
    }
}

fn edited(f: impl FnOnce(&mut Value)) -> String {
    let mut v = valid();
    f(&mut v);
    refused(&v)
}

#[test]
fn the_full_shape_round_trips() {
    let launch = parse(valid().to_string().as_bytes()).unwrap();
    assert_eq!(launch.resources.memory_mib, 512);
    assert_eq!(launch.primary().unwrap().name(), "greet");
    assert_eq!(launch.dependencies.tool_name(), "uv");
    assert_eq!(launch.to_value(), valid());
}

#[test]
fn another_version_says_so_before_anything_else() {
    let e = parse(
        json!({"launch_version": 1, "resources": {"memory_mb": 256}})
            .to_string()
            .as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(e, LaunchError::Version { .. }));
    assert_eq!(
        e.to_string(),
        format!("launch_version: 1 is not {LAUNCH_VERSION}, the version this mvm reads")
    );
    assert!(
        e.hint().contains("compile the declaration again"),
        "{}",
        e.hint()
    );
    assert!(refused(&json!({})).contains("launch_version: missing"));
    assert!(refused(&json!({"launch_version": "2"})).contains("launch_version: \"2\" is not"));
    assert!(refused(&json!("x")).contains("invalid type"));
}

#[test]
fn unknown_fields_and_strings_for_enums_are_refused_at_their_path() {
    assert!(edited(|v| v["surprise"] = true.into()).contains("unknown field `surprise`"));
    let e = edited(|v| v["resources"]["memory_mb"] = 256.into());
    assert!(
        e.starts_with("resources.memory_mb: unknown field `memory_mb`"),
        "{e}"
    );
    let e = edited(|v| v["entrypoints"][0]["language"] = "ruby".into());
    assert!(e.starts_with("entrypoints[0]"), "{e}");
    assert!(e.contains("unknown variant `ruby`"), "{e}");
    let e = edited(|v| v["network"]["mode"] = "overlay".into());
    assert!(
        e.starts_with("network.mode: unknown variant `overlay`"),
        "{e}"
    );
    let e = edited(|v| v["hooks"]["../x"] = json!([]));
    assert!(e.contains("unknown variant `../x`"), "{e}");
}

#[test]
fn ranges_are_checked_again_where_read() {
    for (field, bad) in [
        ("cpu_cores", 0u64),
        ("cpu_cores", 65),
        ("memory_mib", 63),
        ("memory_mib", 65537),
        ("rootfs_size_mib", 2_000_000),
    ] {
        let e = edited(|v| v["resources"][field] = bad.into());
        assert!(
            e.starts_with(&format!("resources.{field}: {bad} is outside")),
            "{e}"
        );
    }
    let e = edited(|v| v["resources"]["memory_mib"] = 5_000_000_000u64.into());
    assert!(e.starts_with("resources.memory_mib"), "{e}");
}

#[test]
fn names_paths_and_references_are_checked() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["app_name"] = "../../escape".into()),
            "app_name: `../../escape` is not a workload name",
        ),
        (Box::new(|v| v["workload_id"] = "A".into()), "workload_id:"),
        (
            Box::new(|v| v["ir_hash"] = "xyz".into()),
            "ir_hash: not a sha256",
        ),
        (
            Box::new(|v| v["source"]["tree_hash"] = "".into()),
            "source.tree_hash: not a sha256",
        ),
        (
            Box::new(|v| v["toolchain"]["mvmctl"] = "\u{1b}[2J".into()),
            "toolchain.mvmctl: not printable",
        ),
        (
            Box::new(|v| v["dependencies"]["lockfile"] = "../../etc/shadow".into()),
            "dependencies.lockfile: the path has a `..`",
        ),
        (
            Box::new(|v| v["dependencies"]["lockfile"] = "/etc/shadow".into()),
            "dependencies.lockfile: the path is absolute",
        ),
        (
            Box::new(|v| v["env"]["1BAD"] = json!({"kind": "literal", "value": ""})),
            "env.1BAD: not an environment",
        ),
        (
            Box::new(
                |v| v["env"]["K"] = json!({"kind": "secret_ref", "name": "../k", "type": "token", "header": null, "hosts": []}),
            ),
            "env.K.name: not a secret name",
        ),
        (
            Box::new(
                |v| v["env"]["K"] = json!({"kind": "secret_ref", "name": "k", "type": "header", "header": null, "hosts": []}),
            ),
            "env.K.header: not a header name",
        ),
        (
            Box::new(
                |v| v["env"]["K"] = json!({"kind": "secret_ref", "name": "k", "type": "header", "header": "Content-Length", "hosts": []}),
            ),
            "env.K.header: not a header name",
        ),
        (
            Box::new(
                |v| v["env"]["K"] = json!({"kind": "secret_ref", "name": "k", "type": "bearer", "header": "X-Key", "hosts": []}),
            ),
            "env.K.header: only for type \"header\"",
        ),
        (
            Box::new(
                |v| v["env"]["K"] = json!({"kind": "secret_ref", "name": "k", "type": "token", "header": null, "hosts": ["a.example/path"]}),
            ),
            "env.K.hosts[0]: not a host name",
        ),
        (
            Box::new(|v| v["entrypoints"][1]["name"] = "greet".into()),
            "entrypoints[1].name: `greet` is used twice",
        ),
        (
            Box::new(|v| v["entrypoints"][1]["name"] = "Main".into()),
            "entrypoints[1].name: not an entrypoint name",
        ),
        (
            Box::new(|v| v["entrypoints"][0]["working_dir"] = "app".into()),
            "entrypoints[0].working_dir: the path is not absolute",
        ),
        (
            Box::new(|v| v["primary_entrypoint"] = "main".into()),
            "primary_entrypoint: `main` is not the one entrypoint marked primary",
        ),
        (
            Box::new(|v| v["entrypoints"][1]["primary"] = true.into()),
            "primary_entrypoint:",
        ),
        (
            Box::new(|v| v["hook_scripts"]["before_start"] = "/etc/shadow".into()),
            "hook_scripts.before_start: `/etc/shadow` is not `hooks/before_start.sh`",
        ),
        (
            Box::new(|v| {
                v["hooks"].as_object_mut().unwrap().remove("after_start");
            }),
            "hooks.after_start: missing",
        ),
        (
            Box::new(|v| v["mounts"][0]["source"]["name"] = "other".into()),
            "mounts[0].source.name: names no volume",
        ),
        (
            Box::new(|v| v["mounts"][1]["target"] = "/a/../..".into()),
            "mounts[1].target: the path has a `..`",
        ),
        (
            Box::new(|v| v["mounts"][1]["source"]["size_mib"] = 0.into()),
            "mounts[1].source.size_mib: 0 MiB",
        ),
        (
            Box::new(|v| v["volumes"][0]["size_mib"] = 0.into()),
            "volumes[0].size_mib: 0 MiB",
        ),
    ];
    for (edit, expected) in cases {
        let e = edited(edit);
        assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
    }
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let big = vec![b' '; mvm_launch::MAX_BYTES as usize + 1];
    assert!(parse(&big).unwrap_err().to_string().contains("more than"));
}
