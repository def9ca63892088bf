//! Recording → Workload IR (docs/recording.md, "Lowering").
//!
//! One sandbox becomes one app: the template names the image, the last
//! command becomes the command entrypoint, earlier (foreground) commands
//! become `before_start` argv hooks, and written files become files of the
//! source bundle (never shell hooks that recreate them), so the reviewer
//! sees them as files. What has no faithful lowering is an error.
//!
//! A recording is untrusted: its written file names pass the bundle's own
//! name rule ([`mvm_compile::bundle::names`]), what it writes is capped
//! ([`MAX_WRITES`], [`MAX_WRITTEN_BYTES`]), and its `source_root` is used
//! only inside the recording's directory ([`confine_root`]).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use mvm_compile::bundle::names;
use mvm_ir::codes::pointer_segment;
use mvm_ir::decode::part;
use mvm_ir::text::escape_control;
use mvm_ir::{
    App, Code, Dependencies, Entrypoint, Finding, HookCmd, Hooks, Image, SCHEMA_VERSION, Source,
    ThreatTier, Workload,
};

use crate::format::{Cmd, Operation, Recording, Sandbox};

/// Where the source bundle lives in the guest; only files written below it
/// can become bundle files.
pub const APP_DIR: &str = "/app";

/// `files.write` calls a recording may hold: scripts write a few config
/// files; more is a sign of something other than a workload description.
pub const MAX_WRITES: usize = 10_000;
/// Bytes those calls may write in all (decoded): 64 MiB. The recording
/// carries them as base64 in memory, and big data belongs in the source
/// tree (selected by `include`) or a volume.
pub const MAX_WRITTEN_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Default)]
pub struct LowerOptions {
    /// Which sandbox to lower (0-based) when the script created several.
    pub sandbox: Option<usize>,
    /// Workload id and app name; default: the source root's directory name.
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Lowered {
    pub workload: Workload,
    /// The directory `include` globs resolve against.
    pub source_root: PathBuf,
    /// Files the script wrote under /app: bundle-relative path → contents.
    pub files: BTreeMap<String, Vec<u8>>,
}

pub fn lower(rec: &Recording, opts: &LowerOptions) -> Result<Lowered, Vec<Finding>> {
    let index = pick_sandbox(rec, opts.sandbox)?;
    let sb = &rec.sandboxes[index];
    let at = |rest: &str| format!("/sandboxes/{index}{rest}");
    let source_root = PathBuf::from(&rec.source_root);
    if !source_root.is_absolute() {
        return Err(vec![invalid(
            "/source_root",
            "source_root must be an absolute path",
            "re-record the script with a current SDK",
        )]);
    }
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => id_from(
            source_root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };

    let mut errors = Vec::new();
    let mut files = BTreeMap::new();
    let mut hooks = Vec::new();
    let runs: Vec<usize> = (0..sb.operations.len())
        .filter(|&i| matches!(sb.operations[i], Operation::Run { .. }))
        .collect();
    let Some(&last_run) = runs.last() else {
        return Err(vec![invalid(
            &at("/operations"),
            "the sandbox ran no command, so there is nothing to make the entrypoint",
            "call sandbox.commands.run(...) or commands.start(...) with the workload's main command",
        )]);
    };
    let mut entry = Vec::new();
    let (mut writes, mut written) = (0usize, 0u64);
    for (i, op) in sb.operations.iter().enumerate() {
        match op {
            Operation::Run { cmd, background } => {
                let argv = argv(cmd);
                if argv.is_empty() || argv[0].is_empty() {
                    errors.push(Finding::new(
                        Code::EEmptyCommand,
                        at(&format!("/operations/{i}/cmd")),
                        "empty command",
                        "give the command to run",
                    ));
                } else if i == last_run {
                    entry = argv;
                } else if *background {
                    errors.push(invalid(
                        &at(&format!("/operations/{i}/background")),
                        "only the last command may run in the background: it becomes the workload's service",
                        "start one long-running command, last; run setup commands with commands.run(...) before it",
                    ));
                } else {
                    hooks.push(HookCmd::Argv { argv });
                }
            }
            Operation::Write { path, data_b64 } => {
                writes += 1;
                // Counted before decoding, from the base64 length, so an
                // oversized write costs no memory.
                written = written.saturating_add(data_b64.len() as u64 / 4 * 3);
                if writes > MAX_WRITES || written > MAX_WRITTEN_BYTES {
                    errors.push(Finding::new(
                        Code::ESourceTooLarge,
                        at(&format!("/operations/{i}")),
                        format!(
                            "the script writes more than {MAX_WRITES} files or {MAX_WRITTEN_BYTES} bytes with files.write, the limit for a recording"
                        ),
                        "write large or many files into the source tree and select them with `include`",
                    ));
                    break;
                }
                match (bundle_path(path), base64::engine::general_purpose::STANDARD.decode(data_b64)) {
                    (Ok(rel), Ok(data)) => {
                        files.insert(rel, data);
                    }
                    (Err(problem), _) => errors.push(invalid(
                        &at(&format!("/operations/{i}/path")),
                        &format!("files.write({path:?}) cannot be lowered: {problem}"),
                        "write the file below /app (where the bundle is mounted) under a plain name, or add it to the source tree and `include`",
                    )),
                    (_, Err(e)) => errors.push(invalid(&at(&format!("/operations/{i}/data_b64")), &format!("not base64: {e}"), "re-record the script")),
                }
            }
            Operation::Kill => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let workload = workload(&name, sb, index, hooks, entry)?;
    Ok(Lowered {
        workload,
        source_root,
        files,
    })
}

fn pick_sandbox(rec: &Recording, chosen: Option<usize>) -> Result<usize, Vec<Finding>> {
    let n = rec.sandboxes.len();
    match (chosen, n) {
        (_, 0) => Err(vec![invalid(
            "/sandboxes",
            "the recording has no sandbox",
            "the script must call Sandbox.create(...) in record mode",
        )]),
        (Some(i), _) if i < n => Ok(i),
        (Some(i), _) => Err(vec![invalid(
            "/sandboxes",
            &format!("--sandbox {i} is out of range: the recording has {n}"),
            "pick an index from 0",
        )]),
        (None, 1) => Ok(0),
        (None, _) => Err(vec![Finding::new(
            Code::EAppsCount,
            "/sandboxes",
            format!("the recording has {n} sandboxes and a workload holds exactly one app"),
            "choose one with --sandbox N (0-based)",
        )]),
    }
}

/// The workload of sandbox `index`. What the recording only copies from
/// the script (`resources`, `network`, `env`) is read by the IR's own
/// reader, so it gets the defaults and findings it would get in an IR file,
/// pointing into the recording; the rest is built here and needs no reading.
fn workload(
    name: &str,
    sb: &Sandbox,
    index: usize,
    before_start: Vec<HookCmd>,
    command: Vec<String>,
) -> Result<Workload, Vec<Finding>> {
    let at = |part: &str| format!("/sandboxes/{index}/{part}");
    let mut findings = Vec::new();
    let resources = keep(
        part::resources(&sb.resources, &at("resources")),
        &mut findings,
    );
    let network = keep(part::network(&sb.network, &at("network")), &mut findings);
    let env: Vec<_> = sb
        .env
        .iter()
        .map(|(key, v)| {
            let path = format!("{}/{}", at("env"), pointer_segment(key));
            keep(part::env_value(v, &path), &mut findings).map(|v| (key.clone(), v))
        })
        .collect();
    let (Some(resources), Some(network), Some(env)) =
        (resources, network, env.into_iter().collect::<Option<_>>())
    else {
        // The order a whole IR file's findings are reported in.
        findings.sort_by(|a, b| (&a.path, a.code).cmp(&(&b.path, b.code)));
        return Err(findings);
    };
    let app = App {
        name: name.to_owned(),
        source: Source::LocalPath {
            path: ".".into(),
            include: sb.include.clone(),
            exclude: Vec::new(),
        },
        image: Image::NixPackages {
            packages: sb
                .template
                .nix_packages()
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        },
        resources,
        dependencies: Dependencies::default(),
        network,
        env,
        entrypoints: vec![Entrypoint::Command {
            name: "main".into(),
            command,
            working_dir: mvm_ir::default_working_dir(),
            primary: true,
        }],
        hooks: Hooks {
            before_start,
            ..Hooks::default()
        },
        addons: Vec::new(),
        mounts: Vec::new(),
        threat_tier: ThreatTier::default(),
    };
    Ok(Workload {
        schema_version: SCHEMA_VERSION.to_owned(),
        id: name.to_owned(),
        apps: vec![app],
        volumes: Vec::new(),
        extensions: BTreeMap::new(),
    })
}

/// The value read, or `None` with its findings added to `findings`.
fn keep<T>(read: Result<T, Vec<Finding>>, findings: &mut Vec<Finding>) -> Option<T> {
    read.map_err(|f| findings.extend(f)).ok()
}

fn argv(cmd: &Cmd) -> Vec<String> {
    match cmd {
        Cmd::Shell(line) if line.trim().is_empty() => Vec::new(),
        Cmd::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
        Cmd::Argv(argv) => argv.clone(),
    }
}

/// The directory the bundle is taken from: the recording's `source_root`,
/// resolved (symlinks followed, to find where it really is), which must lie
/// inside `boundary` (the recording file's directory, or for an auto-run
/// script its own directory). Without this a recording could name any
/// directory of the host, `/etc` or another user's project, as its source.
pub fn confine_root(source_root: &Path, boundary: &Path) -> Result<PathBuf, Finding> {
    let shown = escape_control(&source_root.to_string_lossy()).into_owned();
    let root = source_root.canonicalize().map_err(|e| {
        Finding::new(
            Code::ESourceUnreadable,
            "/source_root",
            format!("the recording's source_root {shown} cannot be opened: {e}"),
            "pass --source-root DIR to bundle from the script's directory",
        )
    })?;
    let boundary = boundary.canonicalize().map_err(|e| {
        Finding::new(
            Code::ESourceUnreadable,
            "/source_root",
            format!(
                "the recording's directory {} cannot be opened: {e}",
                escape_control(&boundary.to_string_lossy())
            ),
            "pass --source-root DIR to bundle from the script's directory",
        )
    })?;
    if root.starts_with(&boundary) {
        return Ok(root);
    }
    Err(Finding::new(
        Code::ESourceEscapes,
        "/source_root",
        format!(
            "the recording's source_root {shown} resolves to {}, outside the recording's directory {}",
            escape_control(&root.to_string_lossy()),
            escape_control(&boundary.to_string_lossy())
        ),
        "keep the recording in the script's project directory, or pass --source-root DIR to choose \
         the directory to bundle yourself",
    ))
}

/// `/app/data/x.txt` → `data/x.txt`, for a path strictly below /app whose
/// name the bundle walk would also accept.
fn bundle_path(path: &str) -> Result<String, String> {
    let outside = || format!("only files under {APP_DIR}/ become part of the source bundle");
    let rel = Path::new(path)
        .strip_prefix(APP_DIR)
        .map_err(|_| outside())?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(outside)?;
    if parts.is_empty() {
        return Err(outside());
    }
    let rel = parts.join("/");
    match names::problem(&rel) {
        Some(problem) => Err(format!(
            "{problem} (the source bundle's rule for file names)"
        )),
        None => Ok(rel),
    }
}

/// A valid IR id from a directory name: lowercase, other characters → `-`.
fn id_from(raw: String) -> String {
    let mut id: String = raw
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    id = id.trim_matches('-').to_owned();
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        id = format!("sandbox-{id}").trim_end_matches('-').to_owned();
    }
    id.truncate(63);
    id
}

fn invalid(path: &str, message: &str, hint: &str) -> Finding {
    Finding::new(Code::EInvalidValue, path, message, hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::decode;
    use serde_json::json;

    fn rec(ops: &str) -> Recording {
        decode(&format!(
            r#"{{"recording_version":1,"sdk":{{"language":"typescript","version":"0.1.0"}},"source_root":"/work/My_Proj",
            "sandboxes":[{{"template":"python-3.13","env":{{"MODE":{{"kind":"literal","value":"demo"}}}},"include":["main.py"],
            "resources":{{"cpu_cores":2,"memory_mb":512,"rootfs_size_mb":512}},
            "network":{{"mode":"none","ports":[],"egress":{{"allowlist":[]}},"dns":{{"kind":"none"}}}},"operations":[{ops}]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn last_command_is_the_entrypoint_and_earlier_ones_are_hooks() {
        let r = rec(
            r#"{"op":"write","path":"/app/conf/a.txt","data_b64":"aGkK"},
            {"op":"run","cmd":"pip --version","background":false},
            {"op":"run","cmd":["python3","main.py"],"background":true},{"op":"kill"}"#,
        );
        let l = lower(&r, &LowerOptions::default()).unwrap();
        let app = &l.workload.apps[0];
        assert_eq!(l.workload.id, "my-proj");
        assert_eq!(
            app.image,
            Image::NixPackages {
                packages: vec!["python313".into()]
            }
        );
        assert_eq!(app.resources.cpu_cores, 2);
        assert_eq!(
            app.hooks.before_start,
            [HookCmd::Argv {
                argv: vec!["sh".into(), "-c".into(), "pip --version".into()]
            }]
        );
        match &app.entrypoints[..] {
            [
                Entrypoint::Command {
                    command,
                    primary: true,
                    name,
                    ..
                },
            ] => {
                assert_eq!(command, &["python3", "main.py"]);
                assert_eq!(name, "main");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            l.files,
            BTreeMap::from([("conf/a.txt".to_owned(), b"hi\n".to_vec())])
        );
    }

    #[test]
    fn what_cannot_be_lowered_is_an_error() {
        let outside = rec(
            r#"{"op":"write","path":"/etc/x","data_b64":""},{"op":"run","cmd":"true","background":false}"#,
        );
        let e = lower(&outside, &LowerOptions::default()).unwrap_err();
        assert_eq!(e[0].path, "/sandboxes/0/operations/0/path");

        let early_bg = rec(
            r#"{"op":"run","cmd":"a","background":true},{"op":"run","cmd":"b","background":true}"#,
        );
        let e = lower(&early_bg, &LowerOptions::default()).unwrap_err();
        assert_eq!(e[0].path, "/sandboxes/0/operations/0/background");

        let none = rec(r#"{"op":"kill"}"#);
        assert_eq!(
            lower(&none, &LowerOptions::default()).unwrap_err()[0].path,
            "/sandboxes/0/operations"
        );
    }

    #[test]
    fn bad_ir_shapes_point_into_the_recording() {
        let mut r = rec(r#"{"op":"run","cmd":"true","background":false}"#);
        r.sandboxes[0].resources = json!({"cpu_cores": 1, "gpus": 1});
        let e = lower(&r, &LowerOptions::default()).unwrap_err();
        assert!(
            e.iter()
                .any(|f| f.path.starts_with("/sandboxes/0/resources")),
            "{e:?}"
        );
    }

    /// The workload as lowering used to make it: IR JSON read back by the
    /// IR reader, findings moved to the recording's pointers. Direct
    /// building must give the same workload and the same findings.
    fn through_ir_json(
        sb: &Sandbox,
        hooks: &[HookCmd],
        entry: &[String],
    ) -> Result<Workload, Vec<Finding>> {
        let value = serde_json::json!({
            "schema_version": mvm_ir::SCHEMA_VERSION,
            "id": "x",
            "apps": [{
                "name": "x",
                "source": {"kind": "local_path", "path": ".", "include": sb.include, "exclude": []},
                "image": {"kind": "nix_packages", "packages": sb.template.nix_packages()},
                "resources": sb.resources,
                "network": sb.network,
                "env": sb.env,
                "entrypoints": [{"kind": "command", "name": "main", "command": entry, "primary": true}],
                "hooks": {"before_start": hooks},
            }],
        });
        mvm_ir::decode::from_value(&value).map_err(|findings| {
            findings
                .into_iter()
                .map(|mut f| {
                    for part in ["env", "resources", "network"] {
                        if let Some(rest) = f.path.strip_prefix(&format!("/apps/0/{part}")) {
                            f.path = format!("/sandboxes/0/{part}{rest}");
                        }
                    }
                    f
                })
                .collect()
        })
    }

    #[test]
    fn direct_building_matches_reading_ir_json() {
        let hooks = vec![HookCmd::Argv {
            argv: vec!["sh".into(), "-c".into(), "pip --version".into()],
        }];
        let entry = vec!["python3".to_owned(), "main.py".to_owned()];
        let base = rec(r#"{"op":"run","cmd":"true","background":false}"#).sandboxes[0].clone();
        let variants: [&dyn Fn(&mut Sandbox); 9] = [
            &|_| {},
            &|sb| sb.resources = json!({}),
            &|sb| sb.resources = json!({"cpu_cores": -1, "gpus": 1, "memory_mb": "x"}),
            &|sb| sb.resources = serde_json::Value::Null,
            &|sb| {
                sb.network = json!({"mode": "bridge", "ports": [{"guest": 70000}], "dns": {"kind": "resolver"}})
            },
            &|sb| {
                sb.env.insert("a/b~c".into(), json!({"kind": "secret_ref"}));
                sb.env.insert("B".into(), json!("plain"));
            },
            &|sb| {
                sb.template = crate::format::Template::Minimal;
                sb.include.clear();
                sb.env
                    .insert("TOKEN".into(), json!({"kind": "secret_ref", "name": "tok"}));
                sb.network = json!({"egress": {"allowlist": [{"host": "pypi.org", "port": 443}]}});
            },
            // A recording carries a secret's bindings as the IR spells them.
            &|sb| {
                sb.env.insert(
                    "PYPI_TOKEN".into(),
                    json!({"kind": "secret_ref", "name": "pypi", "type": "header",
                           "header": "X-Token", "hosts": ["pypi.org"]}),
                );
                sb.network = json!({"mode": "bridge", "egress": {"allowlist": [{"host": "pypi.org", "port": 443}]}});
            },
            &|sb| {
                sb.env.insert(
                    "PYPI_TOKEN".into(),
                    json!({"kind": "secret_ref", "name": "pypi", "type": "Bearer", "hosts": "pypi.org"}),
                );
            },
        ];
        let mut errors = 0;
        for (i, change) in variants.iter().enumerate() {
            let mut sb = base.clone();
            change(&mut sb);
            let direct = workload("x", &sb, 0, hooks.clone(), entry.clone());
            let reference = through_ir_json(&sb, &hooks, &entry);
            match (&direct, &reference) {
                (Ok(d), Ok(r)) => assert_eq!(
                    mvm_ir::to_canonical_string(d),
                    mvm_ir::to_canonical_string(r),
                    "{i}"
                ),
                _ => {
                    errors += 1;
                    assert_eq!(direct, reference, "{i}");
                }
            }
        }
        // Not vacuous: the bad shapes above are rejected, with findings.
        assert_eq!(errors, 5);
    }

    #[test]
    fn ids_from_directory_names() {
        assert_eq!(id_from("My_Proj".into()), "my-proj");
        assert_eq!(id_from("9lives".into()), "sandbox-9lives");
        assert!(bundle_path("/app/../etc/passwd").is_err());
        assert!(bundle_path("/app").is_err());
        assert_eq!(bundle_path("/app/x/y"), Ok("x/y".into()));
    }

    #[test]
    fn written_names_follow_the_bundle_rule() {
        // Each would be refused by the bundle walk: a newline forges a
        // SHA256SUMS line, ESC drives the terminal, .git/config is read by
        // git in the guest.
        for (i, bad) in [
            "/app/x\\nf00d  launch.json",
            "/app/evil\\u001b[2J",
            "/app/.git/config",
            "/app/a\\\\b",
        ]
        .iter()
        .enumerate()
        {
            let r = rec(&format!(
                r#"{{"op":"write","path":"{bad}","data_b64":""}},{{"op":"run","cmd":"true","background":false}}"#
            ));
            let e = lower(&r, &LowerOptions::default()).unwrap_err();
            assert_eq!(e[0].path, "/sandboxes/0/operations/0/path", "{i}: {e:?}");
            assert!(
                !e[0].message.contains('\u{1b}') && !e[0].message.contains('\n'),
                "{:?}",
                e[0].message
            );
        }
    }

    #[test]
    fn writes_are_capped() {
        let many: Vec<String> = (0..=MAX_WRITES)
            .map(|i| format!(r#"{{"op":"write","path":"/app/f{i}","data_b64":""}}"#))
            .collect();
        let r = rec(&format!(
            r#"{},{{"op":"run","cmd":"true","background":false}}"#,
            many.join(",")
        ));
        let e = lower(&r, &LowerOptions::default()).unwrap_err();
        assert_eq!(e[0].code, Code::ESourceTooLarge);
        assert_eq!(e[0].path, format!("/sandboxes/0/operations/{MAX_WRITES}"));

        // Counted from the base64 text, before anything is decoded.
        let big = "A".repeat((MAX_WRITTEN_BYTES / 3 * 4 + 4) as usize);
        let r = rec(&format!(
            r#"{{"op":"write","path":"/app/big","data_b64":"{big}"}},{{"op":"run","cmd":"true","background":false}}"#
        ));
        let e = lower(&r, &LowerOptions::default()).unwrap_err();
        assert_eq!(e[0].code, Code::ESourceTooLarge);
    }

    #[test]
    fn a_source_root_outside_the_recordings_directory_is_refused() {
        let project = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir(project.path().join("sub")).unwrap();
        let inside = confine_root(&project.path().join("sub"), project.path()).unwrap();
        assert_eq!(inside, project.path().canonicalize().unwrap().join("sub"));
        let e = confine_root(elsewhere.path(), project.path()).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::ESourceEscapes, "/source_root")
        );
        // A link inside the directory that leads out is followed, and refused.
        std::os::unix::fs::symlink(elsewhere.path(), project.path().join("out")).unwrap();
        let e = confine_root(&project.path().join("out"), project.path()).unwrap_err();
        assert_eq!(e.code, Code::ESourceEscapes);
        assert!(
            e.message.contains(
                &elsewhere
                    .path()
                    .canonicalize()
                    .unwrap()
                    .display()
                    .to_string()
            )
        );
    }
}
