//! The SDKs' generated spec files must be what `mvm_decl::sdk_spec` renders
//! now, and every table it renders must say what the lowering and the
//! validator do. The defaults, choices, aliases and lockfiles are the
//! lowering's own (`mvm_decl::tables`), and are still compiled both ways: a
//! default given explicitly must lower like an absent one, so a table entry
//! cannot name the wrong parameter or spell a value the helper reads
//! differently. Each name pattern is compared with the validator character
//! by character.
//! Regenerate the files with `MVM_BLESS=1 cargo test -p mvm-decl --test sdk_spec`.

use std::path::{Path, PathBuf};

use mvm_decl::helpers::{PHASES, snake_case};
use mvm_decl::sdk_spec::{self, Pattern, Value};
use mvm_decl::tables;
use mvm_decl::{Outcome, compile_declaration};
use mvm_ir::*;

// --- the checked-in files ----------------------------------------------------

#[test]
fn generated_files_are_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bless = std::env::var_os("MVM_BLESS").is_some();
    let mut stale = Vec::new();
    for (rel, text) in sdk_spec::files() {
        let path = root.join(rel);
        if bless {
            std::fs::write(&path, &text)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "{} stale or missing; regenerate with `MVM_BLESS=1 cargo test -p mvm-decl --test sdk_spec`, then run `npm run build` in sdk/typescript",
        stale.join(", ")
    );
}

#[test]
fn the_spec_follows_the_compilers_tables() {
    let value = |name: &str| {
        sdk_spec::entries()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no entry {name}"))
            .value
    };
    let Value::Map(params) = value("HELPER_PARAMS") else {
        panic!("HELPER_PARAMS is not a map")
    };
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    let expected: Vec<&str> = mvm_decl::helpers::SIGNATURES
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, expected);
    let Value::List(codes) = value("CODES") else {
        panic!("CODES is not a list")
    };
    assert_eq!(codes.len(), Code::ALL.len());
    assert_eq!(
        value("DEFAULT_RESOURCES_MEMORY_MB"),
        Value::Int(Resources::default().memory_mb)
    );
    let Value::List(ranges) = value("RANGES") else {
        panic!("RANGES is not a list")
    };
    assert_eq!(
        ranges[1],
        Value::List(vec![
            Value::Str("memory_mb".into()),
            Value::Int(*Resources::MEMORY_MB.start()),
            Value::Int(*Resources::MEMORY_MB.end()),
            Value::Str(" MiB".into()),
        ])
    );
}

// --- compiling probes --------------------------------------------------------

/// Compiles a Python declaration whose `@mvm.app` gets `kwargs` (", "-joined).
fn py(kwargs: &[String]) -> Result<Workload, Vec<Finding>> {
    let mut args = vec!["name=\"probe\"".to_string()];
    args.extend(kwargs.iter().cloned());
    let src = format!(
        "import mvm\n\n@mvm.app({})\ndef probe():\n    pass\n",
        args.join(", ")
    );
    compile("decl.py", &src)
}

/// Compiles a TypeScript declaration whose `mvm.app` gets `props`.
fn ts(props: &[String]) -> Result<Workload, Vec<Finding>> {
    let mut args = vec!["name: \"probe\"".to_string()];
    args.extend(props.iter().cloned());
    let src = format!(
        "import * as mvm from \"mvm-sdk\";\n\nexport const probe = mvm.app({{ {} }})(() => null);\n",
        args.join(", ")
    );
    compile("decl.ts", &src)
}

fn compile(file: &str, src: &str) -> Result<Workload, Vec<Finding>> {
    match compile_declaration(Path::new(file), src, Path::new(file))? {
        Outcome::Declared(d) => Ok(d.workload),
        other => panic!("{src}: not a declaration: {other:?}"),
    }
}

/// Canonical IR, or the codes and hints, for comparing two probes.
fn outcome(r: &Result<Workload, Vec<Finding>>) -> String {
    match r {
        Ok(w) => to_canonical_string(w),
        Err(findings) => findings
            .iter()
            .map(|f| format!("{}: {} ({})", f.code, f.message, f.hint))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// A value as a Python literal argument.
fn arg(v: &Value) -> String {
    match v {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) | Value::Regex(s) => format!("{s:?}"),
        Value::List(l) => format!("[{}]", l.iter().map(arg).collect::<Vec<_>>().join(", ")),
        Value::Map(_) => unreachable!("no default is a map"),
    }
}

/// Another value of the same kind, which the lowering must tell apart.
fn other(v: &Value, choices: Option<&[&str]>) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::Int(i) => Value::Int(i + 1),
        // The last choice: the first may be sugar that lowers like the default
        // (network mode "deny" without allow_https is "none").
        Value::Str(s) => match choices {
            Some(c) => Value::Str(c.iter().rev().find(|x| **x != s).unwrap().to_string()),
            None => Value::Str(format!("{s}9")),
        },
        Value::List(l) => {
            let mut l = l.clone();
            l.push(Value::Str("x".into()));
            Value::List(l)
        }
        Value::Regex(_) | Value::Map(_) => unreachable!("no default is a pattern or map"),
    }
}

/// The arguments a call to `helper` cannot do without.
fn required(helper: &str) -> Vec<String> {
    match helper {
        "port" => vec!["8080".into()],
        "dns_resolver" => vec!["\"10.0.0.53\"".into()],
        "entrypoint_function" => vec!["\"decl\"".into(), "\"probe\"".into()],
        "entrypoint" => vec!["[\"true\"]".into()],
        "secret" => vec!["\"probe-key\"".into()],
        _ => Vec::new(),
    }
}

/// The `@mvm.app` keyword arguments that place a call to `helper` where its
/// value shows in the IR. `app` itself takes the arguments directly.
fn probe(helper: &str, args: &[(&str, String)]) -> Result<Workload, Vec<Finding>> {
    let given: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if helper == "app" {
        return py(&given);
    }
    let mut all = required(helper);
    all.extend(given);
    let call = format!("mvm.{helper}({})", all.join(", "));
    let slot = match helper {
        "local_path" => format!("source={call}"),
        "python_image" | "node_image" | "nix_packages" | "oci_image" => format!("image={call}"),
        "resources" => format!("resources={call}"),
        "python_deps" | "node_deps" | "no_deps" => format!("dependencies={call}"),
        "network" => format!("network={call}"),
        "port" => format!("network=mvm.network(mode=\"bridge\", ports=[{call}])"),
        "dns_resolver" => format!("network=mvm.network(mode=\"bridge\", dns={call})"),
        "entrypoint_function" | "entrypoint" => format!(
            "entrypoints=[{call}, mvm.entrypoint([\"true\"], name=\"other\", primary=True)]"
        ),
        // Granted, so a bound secret is valid.
        "secret" => format!(
            "network=mvm.network(mode=\"deny\", allow_https=[\"api.example.com\"]), env={{\"PROBE_KEY\": {call}}}"
        ),
        _ => panic!("no probe for mvm.{helper}; add one to `probe` in this test"),
    };
    py(&[slot])
}

fn choices_of(helper: &str, param: &str) -> Option<Vec<&'static str>> {
    tables::choices()
        .into_iter()
        .find(|c| c.helper == helper && c.param == param)
        .map(|c| c.values)
}

// --- the declared tables against the lowering --------------------------------

/// Problems with `defaults`: giving the default must change nothing, giving
/// another value must change the IR (so the probe can see the parameter).
fn default_problems(defaults: &[(&str, &str, Value)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (helper, param, value) in defaults {
        let absent = outcome(&probe(helper, &[]));
        let given = outcome(&probe(helper, &[(param, arg(value))]));
        let changed = other(value, choices_of(helper, param).as_deref());
        let different = outcome(&probe(helper, &[(param, arg(&changed))]));
        if given != absent {
            problems.push(format!(
                "mvm.{helper}({param}=) does not default to {}: absent gives {absent}, given gives {given}",
                arg(value)
            ));
        }
        if different == absent {
            problems.push(format!(
                "mvm.{helper}({param}={}) lowers like an absent {param}; the probe cannot see it",
                arg(&changed)
            ));
        }
    }
    problems
}

fn choice_problems(choices: &[(&str, &str, Vec<&str>)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (helper, param, values) in choices {
        for v in values {
            if let Err(findings) = probe(helper, &[(param, format!("{v:?}"))])
                && findings
                    .iter()
                    .any(|f| f.message.contains("which is not one of"))
            {
                problems.push(format!("mvm.{helper}({param}={v:?}) is refused"));
            }
        }
        let listed: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
        let hint = format!("use one of {}", listed.join(", "));
        let refused = probe(helper, &[(param, "\"not-a-choice\"".into())]);
        if !matches!(&refused, Err(f) if f.iter().any(|f| f.hint == hint)) {
            problems.push(format!(
                "mvm.{helper}({param}=) does not accept exactly {}: {}",
                listed.join(", "),
                outcome(&refused)
            ));
        }
    }
    problems
}

#[test]
fn defaults_are_the_lowerings() {
    let problems = default_problems(&sdk_spec::defaults());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn choices_are_the_lowerings() {
    let choices: Vec<_> = tables::choices()
        .into_iter()
        .map(|c| (c.helper, c.param, c.values))
        .collect();
    let problems = choice_problems(&choices);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checks above can fail: a wrong default or a missing choice is caught.
#[test]
fn the_checks_catch_a_wrong_table() {
    let wrong = [
        ("resources", "memory_mb", Value::Int(300)),
        ("python_image", "python", Value::Str("3.12".into())),
        ("entrypoint", "name", Value::Str("start".into())),
    ];
    for w in wrong {
        assert!(
            !default_problems(std::slice::from_ref(&w)).is_empty(),
            "{w:?} was not caught"
        );
    }
    let missing = [("node_deps", "tool", vec!["npm", "pnpm"])];
    assert!(!choice_problems(&missing).is_empty());
    let id = Pattern {
        max: Some(64),
        ..sdk_spec::PATTERNS[0]
    };
    assert!(!pattern_problems(&id).is_empty());
}

#[test]
fn value_and_parameter_aliases_are_the_lowerings() {
    for c in tables::choices() {
        for &(alias, target) in c.aliases {
            let (helper, param) = (c.helper, c.param);
            let a = outcome(&probe(helper, &[(param, format!("{alias:?}"))]));
            let t = outcome(&probe(helper, &[(param, format!("{target:?}"))]));
            assert_eq!(a, t, "mvm.{helper}({param}={alias:?}) is not {target:?}");
        }
    }
    for &(helper, alias, param) in tables::PARAM_ALIASES {
        let a = outcome(&probe(helper, &[(alias, "3".into())]));
        let p = outcome(&probe(helper, &[(param, "3".into())]));
        assert_eq!(a, p, "mvm.{helper}({alias}=) is not {param}=");
        let both = probe(helper, &[(alias, "3".into()), (param, "3".into())]);
        assert!(
            matches!(&both, Err(f) if f.iter().any(|f| f.code == Code::EKwargConflict)),
            "mvm.{helper}({alias}=, {param}=) is not a conflict: {}",
            outcome(&both)
        );
    }
}

#[test]
fn lockfiles_are_the_lowerings() {
    for (helper, tool, lockfile) in tables::lockfiles() {
        let tool_arg = ("tool", format!("{tool:?}"));
        let absent = outcome(&probe(helper, std::slice::from_ref(&tool_arg)));
        let given = outcome(&probe(
            helper,
            &[tool_arg.clone(), ("lockfile", format!("{lockfile:?}"))],
        ));
        let other = outcome(&probe(
            helper,
            &[tool_arg, ("lockfile", "\"other.lock\"".into())],
        ));
        assert_eq!(
            absent, given,
            "mvm.{helper}(tool={tool:?}) does not use {lockfile}"
        );
        assert_ne!(absent, other);
    }
}

/// The SDKs fill an absent app argument by calling the helper with no
/// arguments; the compiler must do the same in both languages.
#[test]
fn absent_app_arguments_are_the_helpers_without_arguments() {
    for (param, py_helper, ts_helper) in [
        ("source", "local_path", "localPath"),
        ("image", "python_image", "nodeImage"),
        ("resources", "resources", "resources"),
        ("dependencies", "no_deps", "noDeps"),
        ("network", "network", "network"),
    ] {
        let absent = outcome(&py(&[]));
        let given = outcome(&py(&[format!("{param}=mvm.{py_helper}()")]));
        assert_eq!(
            absent, given,
            "Python: an absent {param} is not mvm.{py_helper}()"
        );
        let absent = outcome(&ts(&[]));
        let given = outcome(&ts(&[format!("{param}: mvm.{ts_helper}()")]));
        assert_eq!(
            absent, given,
            "TypeScript: an absent {param} is not mvm.{ts_helper}()"
        );
    }
}

#[test]
fn entrypoint_constants_are_the_lowerings() {
    let w = py(&[]).unwrap();
    let Entrypoint::Function {
        format,
        working_dir,
        ..
    } = &w.apps[0].entrypoints[0]
    else {
        panic!("the default entrypoint is not a function")
    };
    assert_eq!(
        serde_json::to_value(format).unwrap(),
        sdk_spec::FUNCTION_FORMAT
    );
    assert_eq!(working_dir, DEFAULT_WORKING_DIR);
    assert_eq!(w.schema_version, SCHEMA_VERSION);
}

#[test]
fn phases_and_camel_aliases_match() {
    let phases: Vec<&str> = HookPhase::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(PHASES.to_vec(), phases);
    // The TypeScript front end reads a camelCase helper back with snake_case.
    let aliases = sdk_spec::camel_aliases();
    assert!(
        aliases
            .iter()
            .any(|(c, s)| c == "localPath" && *s == "local_path")
    );
    for (camel, snake) in aliases {
        assert_eq!(snake_case(&camel), snake);
    }
}

// --- the declared tables against the validator -------------------------------

/// A valid workload to vary.
fn base() -> Workload {
    py(&[]).expect("the probe declaration compiles")
}

fn has(w: &Workload, code: Code, path: &str) -> bool {
    validate(w)
        .iter()
        .any(|f| f.code == code && (path.is_empty() || f.path == path))
}

/// Whether the validator accepts `s` where pattern `name` applies.
fn accepted(name: &str, s: &str) -> bool {
    let mut w = base();
    let app = &mut w.apps[0];
    let function = |language: Language, s: &str| Entrypoint::Function {
        name: "probe".into(),
        language,
        module: "decl".into(),
        function: s.into(),
        format: Format::Json,
        working_dir: DEFAULT_WORKING_DIR.into(),
        primary: true,
    };
    let fn_path = "/apps/0/entrypoints/0/function";
    match name {
        "id" => {
            w.id = s.into();
            !has(&w, Code::EIdInvalid, "/id")
        }
        "env_name" => {
            app.env
                .insert(s.into(), EnvValue::Literal { value: "v".into() });
            !has(&w, Code::EEnvNameInvalid, "")
        }
        "secret_name" => {
            app.env.insert(
                "X".into(),
                EnvValue::SecretRef {
                    name: s.into(),
                    auth: Default::default(),
                    header: None,
                    hosts: Vec::new(),
                },
            );
            !has(&w, Code::ESecretNameInvalid, "")
        }
        "header_name" => {
            // A header the host owns matches the pattern but is refused by
            // name (HOST_OWNED_HEADERS); the probes never spell one.
            app.network.mode = NetworkMode::Bridge;
            app.network.egress.allowlist = vec![HostPort {
                host: "api.example.com".into(),
                port: 443,
            }];
            app.env.insert(
                "X".into(),
                EnvValue::SecretRef {
                    name: "x".into(),
                    auth: SecretAuth::Header,
                    header: Some(s.into()),
                    hosts: vec!["api.example.com".into()],
                },
            );
            !has(&w, Code::ESecretHeaderInvalid, "")
        }
        "identifier" => {
            app.entrypoints = vec![function(Language::Python, s)];
            !has(&w, Code::EInvalidValue, fn_path)
        }
        "js_identifier" => {
            app.entrypoints = vec![function(Language::Node, s)];
            !has(&w, Code::EInvalidValue, fn_path)
        }
        "nix_package" => {
            app.image = Image::NixPackages {
                packages: vec![s.into()],
            };
            !has(&w, Code::EInvalidValue, "/apps/0/image/packages/0")
        }
        "sha256_digest" => {
            app.image = Image::OciBase {
                reference: "debian:12".into(),
                digest: Some(s.into()),
            };
            !has(&w, Code::EInvalidValue, "/apps/0/image/digest")
        }
        _ => panic!("no validator probe for pattern {name}; add one to `accepted`"),
    }
}

/// Strings around every edge of `p`: each ASCII character (and a few others)
/// first and second, the shortest and longest lengths and one past them, and
/// a wrong prefix. Compared with what the validator says.
fn pattern_problems(p: &Pattern) -> Vec<String> {
    let ascii = || ' '..='~';
    let (Some(first_ok), Some(rest_ok)) = (
        ascii().find(|&c| p.first_allows(c)),
        ascii().find(|&c| p.rest_allows(c)),
    ) else {
        return vec![format!("pattern {}: no string matches it", p.name)];
    };
    let fill = |n: usize| rest_ok.to_string().repeat(n);
    // Long enough to probe the second character, and no shorter than allowed.
    let len = p.min.max(2);
    assert!(
        p.max.is_none_or(|m| m >= len),
        "pattern {}: too short to probe",
        p.name
    );
    let prefix = p.prefix;
    let mut probes = vec![String::new(), prefix.to_string()];
    for c in ascii().chain(['\t', '\n', '\u{0}', 'é', 'ß', '٣']) {
        probes.push(format!("{prefix}{c}{}", fill(len - 1)));
        probes.push(format!("{prefix}{first_ok}{c}{}", fill(len - 2)));
    }
    let longest = p.max.map_or([300, 301], |m| [m, m + 1]);
    for n in [p.min - 1, p.min, p.min + 1].into_iter().chain(longest) {
        if n >= 1 {
            probes.push(format!("{prefix}{first_ok}{}", fill(n - 1)));
        }
    }
    if let Some(c) = prefix.chars().next() {
        let wrong = format!("{}{}", c.to_ascii_uppercase(), &prefix[c.len_utf8()..]);
        probes.push(format!("{wrong}{first_ok}{}", fill(len - 1)));
    }
    probes
        .iter()
        .filter(|s| p.matches(s) != accepted(p.name, s))
        .map(|s| {
            format!(
                "pattern {} ({}) says {} for {s:?}, the validator the opposite",
                p.name,
                p.regex(),
                p.matches(s)
            )
        })
        .collect()
}

#[test]
fn patterns_are_the_validators() {
    let problems: Vec<String> = sdk_spec::PATTERNS
        .iter()
        .flat_map(pattern_problems)
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn credential_suffixes_are_the_validators() {
    let warns = |key: &str| {
        let mut w = base();
        w.apps[0]
            .env
            .insert(key.into(), EnvValue::Literal { value: "v".into() });
        has(&w, Code::WSecretLiteral, "")
    };
    for suffix in sdk_spec::CREDENTIAL_SUFFIXES {
        assert!(warns(&format!("MY_{suffix}")) && warns(&format!("my_{}", suffix.to_lowercase())));
        assert!(!warns(&format!("MY_{suffix}S")), "{suffix}S");
    }
    for key in ["MODEL_PATH", "NAME", "PASS", "AUTH", "CREDENTIALS"] {
        assert!(
            !warns(key),
            "{key} warns but no suffix in CREDENTIAL_SUFFIXES says so"
        );
    }
}

#[test]
fn ranges_units_and_ports_are_the_validators() {
    for ((field, unit), range) in sdk_spec::RESOURCE_UNITS.into_iter().zip([
        Resources::CPU_CORES,
        Resources::MEMORY_MB,
        Resources::ROOTFS_SIZE_MB,
    ]) {
        let mut w = base();
        let r = &mut w.apps[0].resources;
        *match field {
            "cpu_cores" => &mut r.cpu_cores,
            "memory_mb" => &mut r.memory_mb,
            _ => &mut r.rootfs_size_mb,
        } = 0;
        let expected = format!(
            "{field} 0{unit} is outside {}..={}",
            range.start(),
            range.end()
        );
        let findings = validate(&w);
        assert!(
            findings
                .iter()
                .any(|f| f.code == Code::EResourcesRange && f.message == expected),
            "no {expected:?} in {findings:?}"
        );
    }
    let port = |port: u16| {
        let mut w = base();
        w.apps[0].network = Network {
            mode: NetworkMode::Bridge,
            egress: Egress {
                allowlist: vec![HostPort {
                    host: "example.com".into(),
                    port,
                }],
            },
            ..Network::default()
        };
        has(
            &w,
            Code::EInvalidValue,
            "/apps/0/network/egress/allowlist/0/port",
        )
    };
    let min = tables::PORT_MIN;
    assert!(port(min - 1) && !port(min) && !port(u16::MAX));
}
