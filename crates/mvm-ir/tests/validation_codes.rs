//! Every code `validate` can raise, triggered from JSON input through the
//! real reader, with the JSON pointer each finding must carry.

use std::collections::BTreeSet;

use mvm_ir::{Code, decode, validate};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "schema_version": "0.1",
        "id": "hello",
        "apps": [{
            "name": "hello-app",
            "source": {"kind": "local_path", "path": "."},
            "image": {"kind": "nix_packages", "packages": ["python312"]},
            "network": {"mode": "bridge", "egress": {"allowlist": [{"host": "pypi.org", "port": 443}]},
                        "dns": {"kind": "system"}},
            "env": {"MODEL_PATH": {"kind": "literal", "value": "/data/m.pt"},
                    "API_KEY": {"kind": "secret_ref", "name": "api-key"}},
            "entrypoints": [{"kind": "function", "name": "greet", "language": "python",
                             "module": "app", "function": "greet", "primary": true}],
            "hooks": {"before_start": [{"kind": "shell", "line": "export HELLO_BANNER='hi'"}],
                      "after_start": [{"kind": "argv", "argv": ["curl", "-fsS", "http://127.0.0.1:8080/health"]}]},
            "mounts": [{"target": "/data", "source": {"kind": "volume", "name": "data"}, "mode": "rw"}]
        }],
        "volumes": [{"name": "data", "size_mb": 64, "persist": true}]
    })
}

/// Decode `v` (which must pass the schema) and return every finding as (code, path).
fn findings(v: &Value) -> Vec<(Code, String)> {
    let w = decode::from_value(v).unwrap_or_else(|f| panic!("schema errors: {f:#?}"));
    let found = validate(&w);
    for f in &found {
        assert!(!f.message.is_empty() && !f.hint.is_empty(), "{f}");
    }
    found.into_iter().map(|f| (f.code, f.path)).collect()
}

fn patched(patch: impl FnOnce(&mut Value)) -> Value {
    let mut v = base();
    patch(&mut v);
    v
}

fn app(v: &mut Value) -> &mut Value {
    &mut v["apps"][0]
}

#[test]
fn base_workload_is_clean() {
    assert_eq!(findings(&base()), []);
}

struct Case {
    name: &'static str,
    patch: fn(&mut Value),
    expected: &'static [(Code, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "bad id",
        patch: |v| v["id"] = "Hello".into(),
        expected: &[(Code::EIdInvalid, "/id")],
    },
    Case {
        name: "bad names everywhere",
        patch: |v| {
            app(v)["name"] = "9app".into();
            app(v)["entrypoints"][0]["name"] = "greet_fn".into();
            v["volumes"][0]["name"] = "Data".into();
            app(v)["mounts"][0]["source"]["name"] = "Data".into();
        },
        expected: &[
            (Code::EIdInvalid, "/apps/0/entrypoints/0/name"),
            (Code::EIdInvalid, "/apps/0/name"),
            (Code::EIdInvalid, "/volumes/0/name"),
        ],
    },
    Case {
        name: "no apps",
        patch: |v| v["apps"] = json!([]),
        expected: &[(Code::EAppsCount, "/apps")],
    },
    Case {
        name: "two apps",
        patch: |v| {
            let a = app(v).clone();
            v["apps"].as_array_mut().unwrap().push(a);
        },
        expected: &[(Code::EAppsCount, "/apps")],
    },
    Case {
        name: "no primary",
        patch: |v| app(v)["entrypoints"][0]["primary"] = false.into(),
        expected: &[(Code::EPrimaryEntrypoint, "/apps/0/entrypoints")],
    },
    Case {
        name: "no entrypoints",
        patch: |v| app(v)["entrypoints"] = json!([]),
        expected: &[(Code::EPrimaryEntrypoint, "/apps/0/entrypoints")],
    },
    Case {
        name: "two primaries with one name",
        patch: |v| {
            let ep = json!({"kind": "command", "name": "greet", "command": ["python3", "-m", "app"], "primary": true});
            app(v)["entrypoints"].as_array_mut().unwrap().push(ep);
        },
        expected: &[
            (Code::EPrimaryEntrypoint, "/apps/0/entrypoints/1/name"),
            (Code::EPrimaryEntrypoint, "/apps/0/entrypoints/1/primary"),
        ],
    },
    Case {
        name: "resources out of range",
        patch: |v| {
            app(v)["resources"] = json!({"cpu_cores": 0, "memory_mb": 65537, "rootfs_size_mb": 63})
        },
        expected: &[
            (Code::EResourcesRange, "/apps/0/resources/cpu_cores"),
            (Code::EResourcesRange, "/apps/0/resources/memory_mb"),
            (Code::EResourcesRange, "/apps/0/resources/rootfs_size_mb"),
        ],
    },
    Case {
        name: "source above the declaration",
        patch: |v| app(v)["source"]["path"] = "../elsewhere".into(),
        expected: &[(Code::ESourceEscapes, "/apps/0/source/path")],
    },
    Case {
        name: "absolute source",
        patch: |v| app(v)["source"]["path"] = "/".into(),
        expected: &[(Code::ESourceEscapes, "/apps/0/source/path")],
    },
    Case {
        name: "home source",
        patch: |v| app(v)["source"]["path"] = "~".into(),
        expected: &[(Code::ESourceEscapes, "/apps/0/source/path")],
    },
    Case {
        name: "reserved oci_image source",
        patch: |v| app(v)["source"] = json!({"kind": "oci_image", "reference": "r", "digest": "d"}),
        expected: &[(Code::ESourceKindUnsupported, "/apps/0/source/kind")],
    },
    Case {
        name: "reserved nix_derivation source",
        patch: |v| app(v)["source"] = json!({"kind": "nix_derivation", "expr": "pkgs.hello"}),
        expected: &[(Code::ESourceKindUnsupported, "/apps/0/source/kind")],
    },
    Case {
        name: "wildcard egress",
        patch: |v| {
            app(v)["network"]["egress"]["allowlist"] = json!([
                {"host": "*.example.com", "port": 443}, {"host": "0.0.0.0", "port": 80},
                {"host": "::/0", "port": 80}, {"host": "10.0.0.0/8", "port": 80}
            ]);
        },
        expected: &[
            (
                Code::ENetworkWildcard,
                "/apps/0/network/egress/allowlist/0/host",
            ),
            (
                Code::ENetworkWildcard,
                "/apps/0/network/egress/allowlist/1/host",
            ),
            (
                Code::ENetworkWildcard,
                "/apps/0/network/egress/allowlist/2/host",
            ),
            (
                Code::ENetworkWildcard,
                "/apps/0/network/egress/allowlist/3/host",
            ),
        ],
    },
    Case {
        name: "private egress in every spelling",
        patch: |v| {
            app(v)["network"]["egress"]["allowlist"] = json!([
                {"host": "127.0.0.1", "port": 2375}, {"host": "2130706433", "port": 443},
                {"host": "0x7f.1", "port": 443}, {"host": "[::ffff:127.0.0.1]", "port": 443},
                {"host": "169.254.169.254", "port": 80}, {"host": "metadata.google.internal", "port": 80},
                {"host": "localhost", "port": 8080}, {"host": "10.1.2.3", "port": 443},
                {"host": "fd00::1", "port": 443}, {"host": "100.64.0.1", "port": 443},
                {"host": "pypi.org", "port": 443}
            ]);
        },
        expected: &[
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/0/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/1/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/2/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/3/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/4/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/5/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/6/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/7/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/8/host",
            ),
            (
                Code::EEgressPrivate,
                "/apps/0/network/egress/allowlist/9/host",
            ),
        ],
    },
    Case {
        name: "unspecified address in numeric spellings is a wildcard",
        patch: |v| {
            app(v)["network"]["egress"]["allowlist"] = json!([
                {"host": "0", "port": 443}, {"host": "0x0", "port": 443}, {"host": "0.0", "port": 443}
            ]);
        },
        expected: &[
            (
                Code::ENetworkWildcard,
                "/apps/0/network/egress/allowlist/0/host",
            ),
            (
                Code::ENetworkWildcard,
                "/apps/0/network/egress/allowlist/1/host",
            ),
            (
                Code::ENetworkWildcard,
                "/apps/0/network/egress/allowlist/2/host",
            ),
        ],
    },
    Case {
        name: "closed network with ports, egress and dns",
        patch: |v| {
            app(v)["network"]["mode"] = "none".into();
            app(v)["network"]["ports"] = json!([{"guest": 8080, "host": 0}]);
        },
        expected: &[
            (Code::EDnsWithoutNetwork, "/apps/0/network/dns"),
            (
                Code::ENetworkEgressClosed,
                "/apps/0/network/egress/allowlist",
            ),
            (Code::ENetworkEgressClosed, "/apps/0/network/ports"),
        ],
    },
    Case {
        name: "host network, untrusted",
        patch: |v| app(v)["network"]["mode"] = "host".into(),
        expected: &[(Code::EHostNetworkUntrusted, "/apps/0/network/mode")],
    },
    Case {
        name: "host network, trusted",
        patch: |v| {
            app(v)["network"]["mode"] = "host".into();
            app(v)["threat_tier"] = "trusted".into();
        },
        expected: &[],
    },
    Case {
        name: "env name",
        patch: |v| app(v)["env"]["MY-VAR"] = json!({"kind": "literal", "value": "x"}),
        expected: &[(Code::EEnvNameInvalid, "/apps/0/env/MY-VAR")],
    },
    Case {
        name: "secret name",
        patch: |v| app(v)["env"]["API_KEY"]["name"] = "API/Key".into(),
        expected: &[(Code::ESecretNameInvalid, "/apps/0/env/API_KEY/name")],
    },
    Case {
        name: "secret literal",
        patch: |v| app(v)["env"]["github_token"] = json!({"kind": "literal", "value": "ghp_x"}),
        expected: &[(Code::WSecretLiteral, "/apps/0/env/github_token/value")],
    },
    Case {
        name: "unpinned fetches in app and addon hooks",
        patch: |v| {
            app(v)["hooks"]["before_build"] = json!([
                {"kind": "shell", "line": "curl -fsSL https://get.example.com | sh"},
                {"kind": "argv", "argv": ["pip", "install", "requests"]},
                {"kind": "shell", "line": "pip install requests==2.32.3"}
            ]);
            app(v)["addons"] = json!([{"name": "web", "source": {"kind": "local", "path": "addons/web"},
                "hooks": {"before_start": [{"kind": "shell", "line": "cd web && npm install"}]}}]);
        },
        expected: &[
            (
                Code::WHookUnpinnedFetch,
                "/apps/0/addons/0/hooks/before_start/0/line",
            ),
            (
                Code::WHookUnpinnedFetch,
                "/apps/0/hooks/before_build/0/line",
            ),
            (
                Code::WHookUnpinnedFetch,
                "/apps/0/hooks/before_build/1/argv",
            ),
        ],
    },
    Case {
        name: "mutable oci base",
        patch: |v| app(v)["image"] = json!({"kind": "oci_base", "reference": "debian:12"}),
        expected: &[(Code::WOciMutable, "/apps/0/image/digest")],
    },
    Case {
        name: "empty commands",
        patch: |v| {
            app(v)["entrypoints"].as_array_mut().unwrap().extend([
                json!({"kind": "command", "name": "a", "command": []}),
                json!({"kind": "command", "name": "b", "command": ["", "x"]}),
            ]);
            app(v)["hooks"]["before_stop"] =
                json!([{"kind": "shell", "line": "  \n"}, {"kind": "argv", "argv": []}]);
        },
        expected: &[
            (Code::EEmptyCommand, "/apps/0/entrypoints/1/command"),
            (Code::EEmptyCommand, "/apps/0/entrypoints/2/command/0"),
            (Code::EEmptyCommand, "/apps/0/hooks/before_stop/0/line"),
            (Code::EEmptyCommand, "/apps/0/hooks/before_stop/1/argv"),
        ],
    },
    Case {
        name: "invalid values",
        patch: |v| {
            app(v)["image"] =
                json!({"kind": "oci_base", "reference": "debian:12", "digest": "sha256:abc"});
            app(v)["entrypoints"][0]["working_dir"] = "app".into();
            app(v)["entrypoints"][0]["module"] = "app/main".into();
            app(v)["entrypoints"][0]["function"] = "greet()".into();
            app(v)["mounts"] = json!([
                {"target": "data", "source": {"kind": "tmpfs", "size_mb": 16}, "mode": "rw"},
                {"target": "/cache", "source": {"kind": "volume", "name": "missing"}, "mode": "ro"}
            ]);
            app(v)["network"]["ports"] = json!([{"guest": 0, "host": 8080}]);
            app(v)["network"]["egress"]["allowlist"][0]["port"] = 0.into();
            app(v)["source"]["include"] = json!(["src/[a"]);
            app(v)["dependencies"] =
                json!({"kind": "python", "lockfile": "/uv.lock", "tool": "uv"});
        },
        expected: &[
            (Code::EInvalidValue, "/apps/0/dependencies/lockfile"),
            (Code::EInvalidValue, "/apps/0/entrypoints/0/function"),
            (Code::EInvalidValue, "/apps/0/entrypoints/0/module"),
            (Code::EInvalidValue, "/apps/0/entrypoints/0/working_dir"),
            (Code::EInvalidValue, "/apps/0/image/digest"),
            (Code::EInvalidValue, "/apps/0/mounts/0/target"),
            (Code::EInvalidValue, "/apps/0/mounts/1/source/name"),
            (
                Code::EInvalidValue,
                "/apps/0/network/egress/allowlist/0/port",
            ),
            (Code::EInvalidValue, "/apps/0/network/ports/0/guest"),
            (Code::EInvalidValue, "/apps/0/source/include/0"),
        ],
    },
    Case {
        name: "secret bindings that are fine",
        patch: |v| {
            app(v)["network"]["egress"]["allowlist"] = json!([
                {"host": "pypi.org", "port": 443},
                {"host": "api.openai.com", "port": 443}
            ]);
            app(v)["env"]["OPENAI_API_KEY"] = json!({"kind": "secret_ref", "name": "openai-api-key",
                "type": "bearer", "hosts": ["API.OpenAI.com."]});
            // Another header on the same host, and Authorization elsewhere.
            app(v)["env"]["ORG"] = json!({"kind": "secret_ref", "name": "org",
                "type": "header", "header": "OpenAI-Organization", "hosts": ["api.openai.com"]});
            app(v)["env"]["PYPI_TOKEN"] = json!({"kind": "secret_ref", "name": "pypi",
                "type": "basic", "hosts": ["pypi.org"]});
            app(v)["env"]["PLAIN"] = json!({"kind": "secret_ref", "name": "plain", "type": "token",
                "hosts": ["pypi.org"]});
        },
        expected: &[],
    },
    Case {
        name: "secret header rules",
        patch: |v| {
            let env = &mut app(v)["env"];
            env["A"] =
                json!({"kind": "secret_ref", "name": "a", "type": "header", "hosts": ["pypi.org"]});
            env["B"] = json!({"kind": "secret_ref", "name": "b", "type": "bearer", "header": "X-Key",
                "hosts": ["pypi.org"]});
            env["C"] = json!({"kind": "secret_ref", "name": "c", "type": "header", "header": "X Key",
                "hosts": ["pypi.org"]});
            env["D"] = json!({"kind": "secret_ref", "name": "d", "type": "header", "header": "Content-Length",
                "hosts": ["pypi.org"]});
            env["E"] = json!({"kind": "secret_ref", "name": "e", "type": "header", "header": "proxy-authorization",
                "hosts": ["pypi.org"]});
            env["F"] = json!({"kind": "secret_ref", "name": "f", "header": "X-Key", "hosts": ["pypi.org"]});
        },
        expected: &[
            (Code::ESecretHeaderInvalid, "/apps/0/env/A/header"),
            (Code::ESecretHeaderInvalid, "/apps/0/env/B/header"),
            (Code::ESecretHeaderInvalid, "/apps/0/env/C/header"),
            (Code::ESecretHeaderInvalid, "/apps/0/env/D/header"),
            (Code::ESecretHeaderInvalid, "/apps/0/env/E/header"),
            (Code::ESecretHeaderInvalid, "/apps/0/env/F/header"),
        ],
    },
    Case {
        name: "secret hosts",
        patch: |v| {
            app(v)["env"]["API_KEY"] = json!({"kind": "secret_ref", "name": "api-key",
                "hosts": ["", "pypi.org:443", "https://pypi.org", "pypi.org/simple", " pypi.org",
                          "*.pypi.org", "0.0.0.0", "files.pythonhosted.org", "PyPI.org"]});
        },
        expected: &[
            (Code::ESecretHostInvalid, "/apps/0/env/API_KEY/hosts/0"),
            (Code::ESecretHostInvalid, "/apps/0/env/API_KEY/hosts/1"),
            (Code::ESecretHostInvalid, "/apps/0/env/API_KEY/hosts/2"),
            (Code::ESecretHostInvalid, "/apps/0/env/API_KEY/hosts/3"),
            (Code::ESecretHostInvalid, "/apps/0/env/API_KEY/hosts/4"),
            (Code::ENetworkWildcard, "/apps/0/env/API_KEY/hosts/5"),
            (Code::ENetworkWildcard, "/apps/0/env/API_KEY/hosts/6"),
            (Code::ESecretHostNotGranted, "/apps/0/env/API_KEY/hosts/7"),
        ],
    },
    Case {
        name: "secret host with no network",
        patch: |v| {
            app(v)["network"] = json!({"mode": "none"});
            app(v)["env"]["API_KEY"] = json!({"kind": "secret_ref", "name": "api-key",
                "type": "bearer", "hosts": ["pypi.org"]});
        },
        expected: &[(Code::ESecretHostNotGranted, "/apps/0/env/API_KEY/hosts/0")],
    },
    Case {
        name: "secret without hosts",
        patch: |v| {
            let env = &mut app(v)["env"];
            env["A"] = json!({"kind": "secret_ref", "name": "a", "type": "bearer"});
            env["B"] =
                json!({"kind": "secret_ref", "name": "b", "type": "header", "header": "X-Key"});
        },
        expected: &[
            (Code::WSecretUnbound, "/apps/0/env/A/hosts"),
            (Code::WSecretUnbound, "/apps/0/env/B/hosts"),
        ],
    },
    Case {
        name: "secret binding conflicts",
        patch: |v| {
            app(v)["network"]["egress"]["allowlist"] = json!([
                {"host": "pypi.org", "port": 443},
                {"host": "api.example.com", "port": 443}
            ]);
            let env = &mut app(v)["env"];
            // bearer and basic both set Authorization on pypi.org.
            env["A"] =
                json!({"kind": "secret_ref", "name": "a", "type": "bearer", "hosts": ["pypi.org"]});
            env["B"] = json!({"kind": "secret_ref", "name": "b", "type": "basic",
                "hosts": ["api.example.com", "PYPI.ORG"]});
            // Header names compare case-insensitively.
            env["C"] = json!({"kind": "secret_ref", "name": "c", "type": "header", "header": "X-Key",
                "hosts": ["api.example.com"]});
            env["D"] = json!({"kind": "secret_ref", "name": "d", "type": "header", "header": "x-key",
                "hosts": ["api.example.com"]});
            // Authorization as a named header, unbound (every grant): clashes with A.
            env["E"] = json!({"kind": "secret_ref", "name": "e", "type": "header",
                "header": "authorization"});
            // Same header, disjoint hosts: fine.
            env["F"] = json!({"kind": "secret_ref", "name": "f", "type": "header", "header": "X-Key",
                "hosts": ["pypi.org"]});
        },
        expected: &[
            (Code::ESecretBindingConflict, "/apps/0/env/B/type"),
            (Code::ESecretBindingConflict, "/apps/0/env/D/header"),
            (Code::ESecretBindingConflict, "/apps/0/env/E/header"),
            (Code::WSecretUnbound, "/apps/0/env/E/hosts"),
        ],
    },
    Case {
        name: "nix package name",
        patch: |v| app(v)["image"]["packages"] = json!(["python312", "1bad", "a b"]),
        expected: &[
            (Code::EInvalidValue, "/apps/0/image/packages/1"),
            (Code::EInvalidValue, "/apps/0/image/packages/2"),
        ],
    },
];

#[test]
fn each_case_gives_exactly_its_findings() {
    for case in CASES {
        let found = findings(&patched(case.patch));
        let expected: Vec<(Code, String)> = case
            .expected
            .iter()
            .map(|(c, p)| (*c, p.to_string()))
            .collect();
        assert_eq!(found, expected, "case {:?}", case.name);
    }
}

#[test]
fn every_validation_code_is_exercised() {
    // Codes validate() cannot raise: schema/version belong to decode, the
    // lockfile check needs the bundle, the image checks need the package
    // table (mvm-compile), the rest belong to front ends.
    let elsewhere = [
        Code::ESchema,
        Code::EUnsupportedVersion,
        Code::EMalformedVersion,
        Code::ELockfileMissing,
        Code::ESyntax,
        Code::ENoDeclaration,
        Code::EHelperUnknown,
        Code::EKwargUnknown,
        Code::EKwargType,
        Code::EKwargConflict,
        Code::ENotLiteral,
        Code::ESecretVarMismatch,
        Code::ESourceUnreadable,
        Code::ESourceTooLarge,
        Code::WSourcePrivateFile,
        Code::WImageUnbuildable,
        Code::ELockfileNeedsProject,
        Code::EImageNoRuntime,
        Code::EDeclTooDeep,
        Code::EHostRunRefused,
        Code::EOutput,
    ];
    let covered: BTreeSet<Code> = CASES
        .iter()
        .flat_map(|c| c.expected.iter().map(|(code, _)| *code))
        .collect();
    let missing: Vec<&Code> = Code::ALL
        .iter()
        .filter(|c| !covered.contains(c) && !elsewhere.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "validation codes without a case: {missing:?}"
    );
}

#[test]
fn findings_are_sorted_by_path_then_code() {
    let v = patched(|v| {
        v["id"] = "X".into();
        app(v)["network"]["mode"] = "none".into();
        app(v)["env"]["TOKEN"] = json!({"kind": "literal", "value": "t"});
    });
    let found = findings(&v);
    let mut sorted = found.clone();
    sorted.sort_by(|(ca, pa), (cb, pb)| (pa, ca).cmp(&(pb, cb)));
    assert_eq!(found, sorted);
    assert_eq!(found.len(), 4);
}
