//! Property: any workload the types can hold survives canonical write → strict
//! read → canonical write byte-identically, and its hash is stable.

use std::collections::BTreeMap;

use mvm_ir::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

/// Any string, control characters and non-BMP characters included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z][a-z0-9-]{0,20}", "\\PC{0,12}"]
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            btree_map(text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        (text(), strings(), strings()).prop_map(|(path, include, exclude)| Source::LocalPath {
            path,
            include,
            exclude
        }),
        (text(), text()).prop_map(|(reference, digest)| Source::OciImage { reference, digest }),
        text().prop_map(|expr| Source::NixDerivation { expr }),
    ]
}

fn image() -> impl Strategy<Value = Image> {
    prop_oneof![
        strings().prop_map(|packages| Image::NixPackages { packages }),
        (text(), option::of(text()))
            .prop_map(|(reference, digest)| Image::OciBase { reference, digest }),
    ]
}

fn dependencies() -> impl Strategy<Value = Dependencies> {
    let python = prop_oneof![Just(PythonTool::Uv), Just(PythonTool::PipTools)];
    let node = prop_oneof![
        Just(NodeTool::Npm),
        Just(NodeTool::Pnpm),
        Just(NodeTool::Yarn)
    ];
    prop_oneof![
        Just(Dependencies::None),
        (text(), python).prop_map(|(lockfile, tool)| Dependencies::Python { lockfile, tool }),
        (text(), node).prop_map(|(lockfile, tool)| Dependencies::Node { lockfile, tool }),
    ]
}

fn network() -> impl Strategy<Value = Network> {
    let mode = prop_oneof![
        Just(NetworkMode::None),
        Just(NetworkMode::Bridge),
        Just(NetworkMode::Host)
    ];
    let proto = prop_oneof![Just(Proto::Tcp), Just(Proto::Udp)];
    let port = (any::<u16>(), any::<u16>(), proto).prop_map(|(guest, host, proto)| PortForward {
        guest,
        host,
        proto,
    });
    let host_port = (text(), any::<u16>()).prop_map(|(host, port)| HostPort { host, port });
    let dns = prop_oneof![
        Just(Dns::None),
        Just(Dns::System),
        (text(), any::<u16>()).prop_map(|(host, port)| Dns::Resolver { host, port }),
    ];
    (mode, vec(port, 0..3), vec(host_port, 0..3), dns).prop_map(|(mode, ports, allowlist, dns)| {
        Network {
            mode,
            ports,
            egress: Egress { allowlist },
            dns,
        }
    })
}

fn env() -> impl Strategy<Value = BTreeMap<String, EnvValue>> {
    let value = prop_oneof![
        text().prop_map(|value| EnvValue::Literal { value }),
        (
            text(),
            prop_oneof![
                Just(SecretAuth::Token),
                Just(SecretAuth::Bearer),
                Just(SecretAuth::Basic),
                Just(SecretAuth::Header),
            ],
            option::of(text()),
            vec(text(), 0..3),
        )
            .prop_map(|(name, auth, header, hosts)| EnvValue::SecretRef {
                name,
                auth,
                header,
                hosts
            }),
    ];
    btree_map(text(), value, 0..4)
}

fn entrypoint() -> impl Strategy<Value = Entrypoint> {
    let language = prop_oneof![Just(Language::Python), Just(Language::Node)];
    prop_oneof![
        (text(), language, text(), text(), text(), any::<bool>()).prop_map(
            |(name, language, module, function, working_dir, primary)| Entrypoint::Function {
                name,
                language,
                module,
                function,
                format: Format::Json,
                working_dir,
                primary,
            }
        ),
        (text(), strings(), text(), any::<bool>()).prop_map(
            |(name, command, working_dir, primary)| {
                Entrypoint::Command {
                    name,
                    command,
                    working_dir,
                    primary,
                }
            }
        ),
    ]
}

fn hooks() -> impl Strategy<Value = Hooks> {
    let cmd = prop_oneof![
        text().prop_map(|line| HookCmd::Shell { line }),
        strings().prop_map(|argv| HookCmd::Argv { argv })
    ];
    vec(vec(cmd, 0..3), 4).prop_map(|mut phases| Hooks {
        before_stop: phases.pop().unwrap(),
        after_start: phases.pop().unwrap(),
        before_start: phases.pop().unwrap(),
        before_build: phases.pop().unwrap(),
    })
}

fn mount() -> impl Strategy<Value = Mount> {
    let source = prop_oneof![
        (0..=u64::from(u32::MAX)).prop_map(|size_mb| MountSource::Tmpfs { size_mb }),
        text().prop_map(|name| MountSource::Volume { name }),
    ];
    let mode = prop_oneof![Just(MountMode::Ro), Just(MountMode::Rw)];
    (text(), source, mode).prop_map(|(target, source, mode)| Mount {
        target,
        source,
        mode,
    })
}

fn app() -> impl Strategy<Value = App> {
    let resources = (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(cpu_cores, memory_mb, rootfs_size_mb)| Resources {
            cpu_cores,
            memory_mb,
            rootfs_size_mb,
        },
    );
    let addon = (text(), text(), hooks()).prop_map(|(name, path, hooks)| AddonUse {
        name,
        source: AddonSource::Local { path },
        hooks,
    });
    let tier = prop_oneof![Just(ThreatTier::Untrusted), Just(ThreatTier::Trusted)];
    (
        (
            text(),
            source(),
            image(),
            resources,
            dependencies(),
            network(),
        ),
        (
            env(),
            vec(entrypoint(), 0..3),
            hooks(),
            vec(addon, 0..2),
            vec(mount(), 0..3),
            tier,
        ),
    )
        .prop_map(
            |(
                (name, source, image, resources, dependencies, network),
                (env, entrypoints, hooks, addons, mounts, threat_tier),
            )| App {
                name,
                source,
                image,
                resources,
                dependencies,
                network,
                env,
                entrypoints,
                hooks,
                addons,
                mounts,
                threat_tier,
            },
        )
}

fn workload() -> impl Strategy<Value = Workload> {
    let volume =
        (text(), 0..=u64::from(u32::MAX), any::<bool>()).prop_map(|(name, size_mb, persist)| {
            Volume {
                name,
                size_mb,
                persist,
            }
        });
    (
        text(),
        vec(app(), 0..3),
        vec(volume, 0..3),
        btree_map(text(), json_value(), 0..3),
    )
        .prop_map(|(id, apps, volumes, extensions)| Workload {
            schema_version: SCHEMA_VERSION.to_owned(),
            id,
            apps,
            volumes,
            extensions,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonical_round_trip_is_byte_identical(w in workload()) {
        let first = to_canonical_string(&w);
        let decoded = decode::from_str(&first).map_err(|f| TestCaseError::fail(format!("{f:#?}\n{first}")))?;
        let second = to_canonical_string(&decoded);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(ir_hash(&w), ir_hash(&decoded));
        // Extensions may hold -0.0 or 2.0, which read back as the integers 0 and 2;
        // everything else decodes to the very same value, and decoding is idempotent.
        let again = decode::from_str(&second).map_err(|f| TestCaseError::fail(format!("{f:#?}")))?;
        prop_assert_eq!(&again, &decoded);
        if w.extensions.is_empty() {
            prop_assert_eq!(decoded, w);
        }
    }

    #[test]
    fn validate_never_panics_and_sorts(w in workload()) {
        let findings = validate(&w);
        let keys: Vec<(&str, Code)> = findings.iter().map(|f| (f.path.as_str(), f.code)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        prop_assert_eq!(keys, sorted);
    }
}
