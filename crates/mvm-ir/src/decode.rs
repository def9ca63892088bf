//! Strict reading of Workload IR from JSON.
//!
//! A hand-written walk over `serde_json::Value` rather than serde's derive, so
//! that every problem is reported (not just the first) and each finding names
//! the exact JSON pointer of the offending value.
//!
//! Decisions recorded here and in `docs/ir.md`:
//! - Omitted defaulted fields are filled in; writing always emits them.
//! - `schema_version` is checked (major 0, minor ≤ 1) but not kept: this crate
//!   is a 0.1 writer, so a decoded workload always carries `"0.1"`.
//! - Integers that cannot be represented at all (a port above 65535, a size
//!   above u32) are `E_SCHEMA`; representable values that are not allowed
//!   (port 0 where a real port is needed, resources out of range) are left to
//!   [`crate::validate`](mod@crate::validate), which reports them with their own codes.
//! - Duplicate object keys are `E_SCHEMA`: readers disagree on which one wins.

mod json_text;
pub mod part;
mod reader;

use serde_json::Value;

use crate::canonical::canonical_json;
use crate::codes::{Code, Finding};
use crate::types::*;
use reader::{Reader, Variant};

/// Decode IR from JSON text. Invalid JSON is one `E_SCHEMA` finding with
/// line:column in its message; otherwise see [`from_value`].
pub fn from_str(s: &str) -> Result<Workload, Vec<Finding>> {
    let value = json_text::parse(s).map_err(|f| vec![f])?;
    from_value(&value)
}

/// JSON text → value with the IR reader's strictness (one `E_SCHEMA`
/// finding for invalid JSON or a duplicate key), for the other untrusted
/// JSON formats (recordings) to read the same way.
pub fn parse_json(s: &str) -> Result<Value, Finding> {
    json_text::parse(s)
}

/// Decode IR from a parsed JSON value, collecting every schema and version
/// finding. Semantic checks are [`crate::validate::validate`]'s job.
pub fn from_value(v: &Value) -> Result<Workload, Vec<Finding>> {
    let mut r = Reader::default();
    let workload = workload(&mut r, v);
    match workload {
        Some(w) if r.findings.is_empty() => Ok(w),
        _ => {
            let mut findings = r.findings;
            findings.sort_by(|a, b| (&a.path, a.code).cmp(&(&b.path, b.code)));
            Err(findings)
        }
    }
}

const WORKLOAD_FIELDS: &[&str] = &["schema_version", "id", "apps", "volumes", "extensions"];

fn workload(r: &mut Reader, v: &Value) -> Option<Workload> {
    let o = r.object(v, "", "Workload", WORKLOAD_FIELDS)?;
    let version = r.required(&o, "schema_version", schema_version);
    let id = r.required(&o, "id", Reader::string);
    let apps = r.required(&o, "apps", |r, v, p| r.array(v, p, app));
    let volumes = r.defaulted(&o, "volumes", Vec::new, |r, v, p| r.array(v, p, volume));
    let extensions = r.defaulted(&o, "extensions", Default::default, |r, v, p| {
        r.map(v, p, |_, v, _| Some(canonical_value(v)))
    });
    version?;
    Some(Workload {
        schema_version: SCHEMA_VERSION.to_owned(),
        id: id?,
        apps: apps?,
        volumes: volumes?,
        extensions: extensions?,
    })
}

/// `v` as its canonical text reads back: `-0.0` becomes `0`, `2.0` becomes
/// `2`. Extensions are free-form, so this is what makes decoding idempotent:
/// decoding the canonical form of a decoded workload gives it back unchanged.
fn canonical_value(v: &Value) -> Value {
    serde_json::from_str(&canonical_json(v)).expect("canonical JSON reads back")
}

/// The highest minor version of major 0 this reader understands.
const MAX_MINOR: u64 = 1;

fn schema_version(r: &mut Reader, v: &Value, path: &str) -> Option<()> {
    let s = r.string(v, path)?;
    let parsed = s
        .split_once('.')
        .and_then(|(major, minor)| Some((number(major)?, number(minor)?)));
    match parsed {
        None => {
            r.findings.push(Finding::new(
                Code::EMalformedVersion,
                path,
                format!("schema_version \"{s}\" is not \"MAJOR.MINOR\""),
                format!("write \"{SCHEMA_VERSION}\""),
            ));
            None
        }
        Some((0, minor)) if minor <= MAX_MINOR => Some(()),
        Some(_) => {
            r.findings.push(Finding::new(
                Code::EUnsupportedVersion,
                path,
                format!("schema_version \"{s}\" is not supported (this reader accepts 0.0 to 0.{MAX_MINOR})"),
                format!("write IR version \"{SCHEMA_VERSION}\", or upgrade mvm to read newer IR"),
            ));
            None
        }
    }
}

/// A decimal version component: ASCII digits only, no sign or spaces.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More digits than a u64 holds is still well formed, just unsupported.
    Some(s.parse().unwrap_or(u64::MAX))
}

const APP_FIELDS: &[&str] = &[
    "name",
    "source",
    "image",
    "resources",
    "dependencies",
    "network",
    "env",
    "entrypoints",
    "hooks",
    "addons",
    "mounts",
    "threat_tier",
];

fn app(r: &mut Reader, v: &Value, path: &str) -> Option<App> {
    let o = r.object(v, path, "App", APP_FIELDS)?;
    let name = r.required(&o, "name", Reader::string);
    let source = r.required(&o, "source", source);
    let image = r.required(&o, "image", image);
    let resources = r.defaulted(&o, "resources", Resources::default, resources);
    let dependencies = r.defaulted(&o, "dependencies", Dependencies::default, dependencies);
    let network = r.defaulted(&o, "network", Network::default, network);
    let env = r.defaulted(&o, "env", Default::default, |r, v, p| {
        r.map(v, p, env_value)
    });
    let entrypoints = r.required(&o, "entrypoints", |r, v, p| r.array(v, p, entrypoint));
    let hooks = r.defaulted(&o, "hooks", Hooks::default, hooks);
    let addons = r.defaulted(&o, "addons", Vec::new, |r, v, p| r.array(v, p, addon));
    let mounts = r.defaulted(&o, "mounts", Vec::new, |r, v, p| r.array(v, p, mount));
    let threat_tier = r.defaulted(&o, "threat_tier", ThreatTier::default, |r, v, p| {
        r.choice(
            v,
            p,
            &[
                ("untrusted", ThreatTier::Untrusted),
                ("trusted", ThreatTier::Trusted),
            ],
        )
    });
    Some(App {
        name: name?,
        source: source?,
        image: image?,
        resources: resources?,
        dependencies: dependencies?,
        network: network?,
        env: env?,
        entrypoints: entrypoints?,
        hooks: hooks?,
        addons: addons?,
        mounts: mounts?,
        threat_tier: threat_tier?,
    })
}

const SOURCE_VARIANTS: &[Variant] = &[
    Variant {
        kind: "local_path",
        fields: &["path", "include", "exclude"],
    },
    Variant {
        kind: "oci_image",
        fields: &["reference", "digest"],
    },
    Variant {
        kind: "nix_derivation",
        fields: &["expr"],
    },
];

fn source(r: &mut Reader, v: &Value, path: &str) -> Option<Source> {
    let (kind, o) = r.tagged(v, path, "Source", SOURCE_VARIANTS)?;
    match kind {
        "local_path" => {
            let p = r.required(&o, "path", Reader::string);
            let include = r.defaulted(&o, "include", default_include, Reader::strings);
            let exclude = r.defaulted(&o, "exclude", Vec::new, Reader::strings);
            Some(Source::LocalPath {
                path: p?,
                include: include?,
                exclude: exclude?,
            })
        }
        "oci_image" => {
            let reference = r.required(&o, "reference", Reader::string);
            let digest = r.required(&o, "digest", Reader::string);
            Some(Source::OciImage {
                reference: reference?,
                digest: digest?,
            })
        }
        _ => Some(Source::NixDerivation {
            expr: r.required(&o, "expr", Reader::string)?,
        }),
    }
}

const IMAGE_VARIANTS: &[Variant] = &[
    Variant {
        kind: "nix_packages",
        fields: &["packages"],
    },
    Variant {
        kind: "oci_base",
        fields: &["reference", "digest"],
    },
];

fn image(r: &mut Reader, v: &Value, path: &str) -> Option<Image> {
    let (kind, o) = r.tagged(v, path, "Image", IMAGE_VARIANTS)?;
    match kind {
        "nix_packages" => Some(Image::NixPackages {
            packages: r.required(&o, "packages", Reader::strings)?,
        }),
        _ => {
            let reference = r.required(&o, "reference", Reader::string);
            // null and absent both mean "no digest" (W_OCI_MUTABLE).
            let digest = r.defaulted(
                &o,
                "digest",
                || None,
                |r, v, p| match v {
                    Value::Null => Some(None),
                    _ => r.string(v, p).map(Some),
                },
            );
            Some(Image::OciBase {
                reference: reference?,
                digest: digest?,
            })
        }
    }
}

fn resources(r: &mut Reader, v: &Value, path: &str) -> Option<Resources> {
    let o = r.object(
        v,
        path,
        "Resources",
        &["cpu_cores", "memory_mb", "rootfs_size_mb"],
    )?;
    let d = Resources::default();
    let cpu_cores = r.defaulted(&o, "cpu_cores", || d.cpu_cores, Reader::uint);
    let memory_mb = r.defaulted(&o, "memory_mb", || d.memory_mb, Reader::uint);
    let rootfs_size_mb = r.defaulted(&o, "rootfs_size_mb", || d.rootfs_size_mb, Reader::uint);
    Some(Resources {
        cpu_cores: cpu_cores?,
        memory_mb: memory_mb?,
        rootfs_size_mb: rootfs_size_mb?,
    })
}

const DEPENDENCY_VARIANTS: &[Variant] = &[
    Variant {
        kind: "none",
        fields: &[],
    },
    Variant {
        kind: "python",
        fields: &["lockfile", "tool"],
    },
    Variant {
        kind: "node",
        fields: &["lockfile", "tool"],
    },
];

fn dependencies(r: &mut Reader, v: &Value, path: &str) -> Option<Dependencies> {
    let (kind, o) = r.tagged(v, path, "Dependencies", DEPENDENCY_VARIANTS)?;
    match kind {
        "none" => Some(Dependencies::None),
        "python" => {
            let lockfile = r.required(&o, "lockfile", Reader::string);
            let tool = r.required(&o, "tool", |r, v, p| {
                r.choice(
                    v,
                    p,
                    &[("uv", PythonTool::Uv), ("pip_tools", PythonTool::PipTools)],
                )
            });
            Some(Dependencies::Python {
                lockfile: lockfile?,
                tool: tool?,
            })
        }
        _ => {
            let lockfile = r.required(&o, "lockfile", Reader::string);
            let tool = r.required(&o, "tool", |r, v, p| {
                r.choice(
                    v,
                    p,
                    &[
                        ("npm", NodeTool::Npm),
                        ("pnpm", NodeTool::Pnpm),
                        ("yarn", NodeTool::Yarn),
                    ],
                )
            });
            Some(Dependencies::Node {
                lockfile: lockfile?,
                tool: tool?,
            })
        }
    }
}

fn network(r: &mut Reader, v: &Value, path: &str) -> Option<Network> {
    let o = r.object(v, path, "Network", &["mode", "ports", "egress", "dns"])?;
    let mode = r.defaulted(&o, "mode", NetworkMode::default, |r, v, p| {
        r.choice(
            v,
            p,
            &[
                ("none", NetworkMode::None),
                ("bridge", NetworkMode::Bridge),
                ("host", NetworkMode::Host),
            ],
        )
    });
    let ports = r.defaulted(&o, "ports", Vec::new, |r, v, p| r.array(v, p, port_forward));
    let egress = r.defaulted(&o, "egress", Egress::default, egress);
    let dns = r.defaulted(&o, "dns", Dns::default, dns);
    Some(Network {
        mode: mode?,
        ports: ports?,
        egress: egress?,
        dns: dns?,
    })
}

fn port_forward(r: &mut Reader, v: &Value, path: &str) -> Option<PortForward> {
    let o = r.object(v, path, "PortForward", &["guest", "host", "proto"])?;
    let guest = r.required(&o, "guest", Reader::port);
    let host = r.required(&o, "host", Reader::port);
    let proto = r.defaulted(&o, "proto", Proto::default, |r, v, p| {
        r.choice(v, p, &[("tcp", Proto::Tcp), ("udp", Proto::Udp)])
    });
    Some(PortForward {
        guest: guest?,
        host: host?,
        proto: proto?,
    })
}

fn egress(r: &mut Reader, v: &Value, path: &str) -> Option<Egress> {
    let o = r.object(v, path, "Egress", &["allowlist"])?;
    let allowlist = r.defaulted(&o, "allowlist", Vec::new, |r, v, p| {
        r.array(v, p, host_port)
    })?;
    Some(Egress { allowlist })
}

fn host_port(r: &mut Reader, v: &Value, path: &str) -> Option<HostPort> {
    let o = r.object(v, path, "HostPort", &["host", "port"])?;
    let host = r.required(&o, "host", Reader::string);
    let port = r.required(&o, "port", Reader::port);
    Some(HostPort {
        host: host?,
        port: port?,
    })
}

const DNS_VARIANTS: &[Variant] = &[
    Variant {
        kind: "none",
        fields: &[],
    },
    Variant {
        kind: "system",
        fields: &[],
    },
    Variant {
        kind: "resolver",
        fields: &["host", "port"],
    },
];

fn dns(r: &mut Reader, v: &Value, path: &str) -> Option<Dns> {
    let (kind, o) = r.tagged(v, path, "Dns", DNS_VARIANTS)?;
    match kind {
        "none" => Some(Dns::None),
        "system" => Some(Dns::System),
        _ => {
            let host = r.required(&o, "host", Reader::string);
            let port = r.required(&o, "port", Reader::port);
            Some(Dns::Resolver {
                host: host?,
                port: port?,
            })
        }
    }
}

const ENV_VARIANTS: &[Variant] = &[
    Variant {
        kind: "literal",
        fields: &["value"],
    },
    Variant {
        kind: "secret_ref",
        fields: &["name", "type", "header", "hosts"],
    },
];

fn env_value(r: &mut Reader, v: &Value, path: &str) -> Option<EnvValue> {
    let (kind, o) = r.tagged(v, path, "EnvValue", ENV_VARIANTS)?;
    match kind {
        "literal" => Some(EnvValue::Literal {
            value: r.required(&o, "value", Reader::string)?,
        }),
        _ => {
            let name = r.required(&o, "name", Reader::string);
            let auth = r.defaulted(&o, "type", SecretAuth::default, |r, v, p| {
                r.choice(
                    v,
                    p,
                    &[
                        ("token", SecretAuth::Token),
                        ("bearer", SecretAuth::Bearer),
                        ("basic", SecretAuth::Basic),
                        ("header", SecretAuth::Header),
                    ],
                )
            });
            // null and absent both mean "no header".
            let header = r.defaulted(
                &o,
                "header",
                || None,
                |r, v, p| match v {
                    Value::Null => Some(None),
                    _ => r.string(v, p).map(Some),
                },
            );
            let hosts = r.defaulted(&o, "hosts", Vec::new, Reader::strings);
            Some(EnvValue::SecretRef {
                name: name?,
                auth: auth?,
                header: header?,
                hosts: hosts?,
            })
        }
    }
}

const ENTRYPOINT_VARIANTS: &[Variant] = &[
    Variant {
        kind: "function",
        fields: &[
            "name",
            "language",
            "module",
            "function",
            "format",
            "working_dir",
            "primary",
        ],
    },
    Variant {
        kind: "command",
        fields: &["name", "command", "working_dir", "primary"],
    },
];

fn entrypoint(r: &mut Reader, v: &Value, path: &str) -> Option<Entrypoint> {
    let (kind, o) = r.tagged(v, path, "Entrypoint", ENTRYPOINT_VARIANTS)?;
    let name = r.required(&o, "name", Reader::string);
    let working_dir = r.defaulted(&o, "working_dir", default_working_dir, Reader::string);
    let primary = r.defaulted(&o, "primary", || false, Reader::boolean);
    match kind {
        "function" => {
            let language = r.required(&o, "language", |r, v, p| {
                r.choice(
                    v,
                    p,
                    &[("python", Language::Python), ("node", Language::Node)],
                )
            });
            let module = r.required(&o, "module", Reader::string);
            let function = r.required(&o, "function", Reader::string);
            let format = r.defaulted(&o, "format", Format::default, |r, v, p| {
                r.choice(v, p, &[("json", Format::Json)])
            });
            Some(Entrypoint::Function {
                name: name?,
                language: language?,
                module: module?,
                function: function?,
                format: format?,
                working_dir: working_dir?,
                primary: primary?,
            })
        }
        _ => {
            let command = r.required(&o, "command", Reader::strings);
            Some(Entrypoint::Command {
                name: name?,
                command: command?,
                working_dir: working_dir?,
                primary: primary?,
            })
        }
    }
}

fn hooks(r: &mut Reader, v: &Value, path: &str) -> Option<Hooks> {
    let phases: Vec<&str> = HookPhase::ALL.iter().map(|p| p.as_str()).collect();
    let o = r.object(v, path, "Hooks", &phases)?;
    let mut hooks = Hooks::default();
    let mut ok = true;
    for phase in HookPhase::ALL {
        match r.defaulted(&o, phase.as_str(), Vec::new, |r, v, p| {
            r.array(v, p, hook_cmd)
        }) {
            Some(cmds) => *hooks.phase_mut(phase) = cmds,
            None => ok = false,
        }
    }
    ok.then_some(hooks)
}

const HOOK_VARIANTS: &[Variant] = &[
    Variant {
        kind: "shell",
        fields: &["line"],
    },
    Variant {
        kind: "argv",
        fields: &["argv"],
    },
];

fn hook_cmd(r: &mut Reader, v: &Value, path: &str) -> Option<HookCmd> {
    let (kind, o) = r.tagged(v, path, "HookCmd", HOOK_VARIANTS)?;
    match kind {
        "shell" => Some(HookCmd::Shell {
            line: r.required(&o, "line", Reader::string)?,
        }),
        _ => Some(HookCmd::Argv {
            argv: r.required(&o, "argv", Reader::strings)?,
        }),
    }
}

fn addon(r: &mut Reader, v: &Value, path: &str) -> Option<AddonUse> {
    let o = r.object(v, path, "AddonUse", &["name", "source", "hooks"])?;
    let name = r.required(&o, "name", Reader::string);
    let source = r.required(&o, "source", addon_source);
    let hooks = r.defaulted(&o, "hooks", Hooks::default, hooks);
    Some(AddonUse {
        name: name?,
        source: source?,
        hooks: hooks?,
    })
}

fn addon_source(r: &mut Reader, v: &Value, path: &str) -> Option<AddonSource> {
    let (_, o) = r.tagged(
        v,
        path,
        "AddonSource",
        &[Variant {
            kind: "local",
            fields: &["path"],
        }],
    )?;
    Some(AddonSource::Local {
        path: r.required(&o, "path", Reader::string)?,
    })
}

fn mount(r: &mut Reader, v: &Value, path: &str) -> Option<Mount> {
    let o = r.object(v, path, "Mount", &["target", "source", "mode"])?;
    let target = r.required(&o, "target", Reader::string);
    let source = r.required(&o, "source", mount_source);
    let mode = r.required(&o, "mode", |r, v, p| {
        r.choice(v, p, &[("ro", MountMode::Ro), ("rw", MountMode::Rw)])
    });
    Some(Mount {
        target: target?,
        source: source?,
        mode: mode?,
    })
}

const MOUNT_SOURCE_VARIANTS: &[Variant] = &[
    Variant {
        kind: "tmpfs",
        fields: &["size_mb"],
    },
    Variant {
        kind: "volume",
        fields: &["name"],
    },
];

fn mount_source(r: &mut Reader, v: &Value, path: &str) -> Option<MountSource> {
    let (kind, o) = r.tagged(v, path, "MountSource", MOUNT_SOURCE_VARIANTS)?;
    match kind {
        "tmpfs" => Some(MountSource::Tmpfs {
            size_mb: r.required(&o, "size_mb", Reader::size_u32)?,
        }),
        _ => Some(MountSource::Volume {
            name: r.required(&o, "name", Reader::string)?,
        }),
    }
}

fn volume(r: &mut Reader, v: &Value, path: &str) -> Option<Volume> {
    let o = r.object(v, path, "Volume", &["name", "size_mb", "persist"])?;
    let name = r.required(&o, "name", Reader::string);
    let size_mb = r.required(&o, "size_mb", Reader::size_u32);
    let persist = r.required(&o, "persist", Reader::boolean);
    Some(Volume {
        name: name?,
        size_mb: size_mb?,
        persist: persist?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::to_canonical_string;

    const MINIMAL: &str = r#"{
        "schema_version": "0.1",
        "id": "hello",
        "apps": [{
            "name": "hello-app",
            "source": {"kind": "local_path", "path": "."},
            "image": {"kind": "nix_packages", "packages": ["python312"]},
            "entrypoints": [{"kind": "function", "name": "greet", "language": "python",
                             "module": "app", "function": "greet", "primary": true}]
        }]
    }"#;

    fn errors(text: &str) -> Vec<(Code, String)> {
        from_str(text)
            .unwrap_err()
            .into_iter()
            .map(|f| (f.code, f.path))
            .collect()
    }

    fn with(patch: impl FnOnce(&mut Value)) -> String {
        let mut v: Value = serde_json::from_str(MINIMAL).unwrap();
        patch(&mut v);
        v.to_string()
    }

    #[test]
    fn minimal_ir_gets_every_default() {
        let w = from_str(MINIMAL).unwrap();
        let app = &w.apps[0];
        assert_eq!(w.schema_version, "0.1");
        assert!(w.volumes.is_empty() && w.extensions.is_empty());
        assert_eq!(
            app.resources,
            Resources {
                cpu_cores: 1,
                memory_mb: 256,
                rootfs_size_mb: 512
            }
        );
        assert_eq!(app.dependencies, Dependencies::None);
        assert_eq!(app.network, Network::default());
        assert_eq!(app.hooks, Hooks::default());
        assert_eq!(app.threat_tier, ThreatTier::Untrusted);
        assert_eq!(
            app.source,
            Source::LocalPath {
                path: ".".into(),
                include: vec!["**".into()],
                exclude: vec![]
            }
        );
        assert_eq!(
            app.entrypoints[0],
            Entrypoint::Function {
                name: "greet".into(),
                language: Language::Python,
                module: "app".into(),
                function: "greet".into(),
                format: Format::Json,
                working_dir: "/app".into(),
                primary: true,
            }
        );
    }

    #[test]
    fn canonical_output_decodes_to_the_same_workload() {
        let w = from_str(MINIMAL).unwrap();
        let text = to_canonical_string(&w);
        let again = from_str(&text).unwrap();
        assert_eq!(again, w);
        assert_eq!(to_canonical_string(&again), text);
        assert!(text.contains(r#""threat_tier":"untrusted""#), "{text}");
    }

    #[test]
    fn reports_every_schema_error_with_its_pointer() {
        let text = with(|v| {
            v["bogus"] = 1.into();
            let app = &mut v["apps"][0];
            app.as_object_mut().unwrap().remove("image");
            app["resources"] = serde_json::json!({"cpu_cores": "two", "memroy_mb": 1});
            app["entrypoints"][0]["primary"] = "yes".into();
            app["env"] = serde_json::json!({"A/B": {"kind": "plain", "value": "x"}});
        });
        assert_eq!(
            errors(&text),
            [
                (Code::ESchema, "/apps/0/entrypoints/0/primary".to_owned()),
                (Code::ESchema, "/apps/0/env/A~1B/kind".to_owned()),
                (Code::ESchema, "/apps/0/image".to_owned()),
                (Code::ESchema, "/apps/0/resources/cpu_cores".to_owned()),
                (Code::ESchema, "/apps/0/resources/memroy_mb".to_owned()),
                (Code::ESchema, "/bogus".to_owned()),
            ]
        );
    }

    #[test]
    fn unknown_field_hint_lists_allowed_fields() {
        let f = from_str(&with(|v| v["apps"][0]["threat_teir"] = "trusted".into())).unwrap_err();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/apps/0/threat_teir");
        assert!(f[0].message.contains("\"threat_teir\""), "{}", f[0].message);
        assert!(
            f[0].hint.contains("did you mean \"threat_tier\"?"),
            "{}",
            f[0].hint
        );
        assert!(f[0].hint.contains("\"entrypoints\""), "{}", f[0].hint);
    }

    #[test]
    fn unknown_kind_lists_known_kinds() {
        let f = from_str(&with(|v| v["apps"][0]["source"]["kind"] = "git".into())).unwrap_err();
        assert_eq!(f[0].path, "/apps/0/source/kind");
        assert!(f[0].message.contains("\"git\""), "{}", f[0].message);
        assert!(
            f[0].hint
                .contains("\"local_path\", \"oci_image\", \"nix_derivation\""),
            "{}",
            f[0].hint
        );
    }

    #[test]
    fn fields_of_another_variant_are_unknown() {
        let f = from_str(&with(|v| v["apps"][0]["source"]["expr"] = "x".into())).unwrap_err();
        assert_eq!(f[0].path, "/apps/0/source/expr");
        assert!(
            f[0].message.contains("Source \"local_path\""),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn reserved_source_kinds_decode() {
        let text = with(|v| {
            v["apps"][0]["source"] =
                serde_json::json!({"kind": "nix_derivation", "expr": "pkgs.hello"})
        });
        assert_eq!(
            from_str(&text).unwrap().apps[0].source,
            Source::NixDerivation {
                expr: "pkgs.hello".into()
            }
        );
    }

    #[test]
    fn schema_versions() {
        for ok in ["0.1", "0.0", "00.01"] {
            let text = with(|v| v["schema_version"] = ok.into());
            assert_eq!(from_str(&text).unwrap().schema_version, "0.1", "{ok}");
        }
        for (bad, code) in [
            ("0.2", Code::EUnsupportedVersion),
            ("1.0", Code::EUnsupportedVersion),
            ("0.99999999999999999999999", Code::EUnsupportedVersion),
            ("0", Code::EMalformedVersion),
            ("0.1.0", Code::EMalformedVersion),
            ("v0.1", Code::EMalformedVersion),
            (" 0.1", Code::EMalformedVersion),
            ("0.+1", Code::EMalformedVersion),
            ("", Code::EMalformedVersion),
        ] {
            let text = with(|v| v["schema_version"] = bad.into());
            assert_eq!(
                errors(&text),
                [(code, "/schema_version".to_owned())],
                "{bad:?}"
            );
        }
        let text = with(|v| v["schema_version"] = 0.1.into());
        assert_eq!(
            errors(&text),
            [(Code::ESchema, "/schema_version".to_owned())]
        );
    }

    #[test]
    fn unrepresentable_integers_are_schema_errors() {
        let text = with(|v| {
            v["apps"][0]["network"] = serde_json::json!({
                "mode": "bridge",
                "ports": [{"guest": 65536, "host": -1}],
                "egress": {"allowlist": [{"host": "example.com", "port": 1.5}]}
            });
            v["volumes"] =
                serde_json::json!([{"name": "v", "size_mb": 4294967296u64, "persist": true}]);
        });
        assert_eq!(
            errors(&text),
            [
                (
                    Code::ESchema,
                    "/apps/0/network/egress/allowlist/0/port".to_owned()
                ),
                (Code::ESchema, "/apps/0/network/ports/0/guest".to_owned()),
                (Code::ESchema, "/apps/0/network/ports/0/host".to_owned()),
                (Code::ESchema, "/volumes/0/size_mb".to_owned()),
            ]
        );
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let f = from_str("{\n\"id\": }").unwrap_err();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, Code::ESchema);
        assert!(f[0].message.contains("2:"), "{}", f[0].message);
    }

    #[test]
    fn root_must_be_an_object() {
        assert_eq!(errors("[]"), [(Code::ESchema, String::new())]);
    }

    #[test]
    fn oci_base_digest_may_be_null_or_absent() {
        for digest in [Some(Value::Null), None] {
            let text = with(|v| {
                let mut image = serde_json::json!({"kind": "oci_base", "reference": "debian:12"});
                if let Some(d) = digest {
                    image["digest"] = d;
                }
                v["apps"][0]["image"] = image;
            });
            let w = from_str(&text).unwrap();
            assert_eq!(
                w.apps[0].image,
                Image::OciBase {
                    reference: "debian:12".into(),
                    digest: None
                }
            );
            assert!(to_canonical_string(&w).contains(r#""digest":null"#));
        }
    }

    #[test]
    fn extensions_are_kept_verbatim() {
        let text =
            with(|v| v["extensions"] = serde_json::json!({"x.tool": {"n": [1.5, null, "s"]}}));
        let w = from_str(&text).unwrap();
        assert_eq!(
            w.extensions["x.tool"],
            serde_json::json!({"n": [1.5, null, "s"]})
        );
    }

    #[test]
    fn extension_numbers_read_as_their_canonical_form() {
        let text = with(|v| {
            v["extensions"] = serde_json::from_str(r#"{"n": [-0.0, 2.0, 1e21, 0.1]}"#).unwrap()
        });
        let w = from_str(&text).unwrap();
        assert_eq!(w.extensions["n"], serde_json::json!([0, 2, 1e21, 0.1]));
        assert_eq!(from_str(&to_canonical_string(&w)).unwrap(), w);
    }
}
