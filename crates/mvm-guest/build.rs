//! Builds the guest agent (`mvm-agent`) as a static binary and generates the
//! Rust file that embeds it, the function runners and the Python SDK (the
//! `mvm` package guest code imports) into this crate.
//!
//! The agent is built by a nested cargo in release mode for the host target
//! with `+crt-static`, so it runs as PID 1 in an initramfs without a libc.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const AGENT_PACKAGE: &str = "mvm-agent";
const AGENT_TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("mvm-guest lives in <workspace>/crates/");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let agent_crate = workspace.join("crates").join(AGENT_PACKAGE);
    let runners_dir = agent_crate.join("runners");
    let python_sdk_dir = workspace.join("sdk").join("python").join("src").join("mvm");
    // The TypeScript SDK as built by tsc (committed, so building the guest
    // needs no Node toolchain; scripts/test.sh fails when it is stale).
    let node_sdk_dir = workspace.join("sdk").join("typescript");

    for input in [
        agent_crate.clone(),
        workspace.join("crates").join("mvm-proto"),
        workspace.join("Cargo.lock"),
        python_sdk_dir.clone(),
        node_sdk_dir.join("dist"),
        node_sdk_dir.join("package.json"),
    ] {
        println!("cargo:rerun-if-changed={}", input.display());
    }

    let agent = build_agent(workspace, &out_dir);
    let runners = list_files(&runners_dir);
    let python_sdk = list_files(&python_sdk_dir);
    let node_sdk = node_sdk_files(&node_sdk_dir);

    let mut generated = String::new();
    writeln!(
        generated,
        "/// The static guest agent binary, installed as `/init`.\npub static AGENT: &[u8] = include_bytes!({:?});",
        agent.display().to_string()
    )
    .unwrap();
    embed_files(
        &mut generated,
        "Function runners (file name, contents), installed under `/usr/lib/mvm/runners/`.",
        "RUNNERS",
        &runners,
    );
    embed_files(
        &mut generated,
        "The Python SDK's `mvm` package (path inside it, contents), installed under `/usr/lib/mvm/python/mvm/`.",
        "PYTHON_SDK",
        &python_sdk,
    );
    embed_files(
        &mut generated,
        "The TypeScript SDK `mvm-sdk` (package.json and dist/*.js), installed under `/usr/lib/mvm/node/mvm-sdk/`.",
        "NODE_SDK",
        &node_sdk,
    );
    std::fs::write(out_dir.join("agent.rs"), generated).expect("OUT_DIR is writable");
}

/// Runs the nested cargo build and returns the path of the agent binary.
fn build_agent(workspace: &Path, out_dir: &Path) -> PathBuf {
    let target_dir = agent_target_dir(out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--package",
            AGENT_PACKAGE,
            "--target",
            AGENT_TARGET,
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings (profile, features, flags, target) must not
    // leak into the agent's build. CARGO_HOME keeps the same registry, and
    // CARGO_MAKEFLAGS keeps the outer jobserver so both builds share its cores.
    for (key, _) in env::vars_os() {
        let key_str = key.to_string_lossy();
        let keep = key_str == "CARGO_HOME" || key_str == "CARGO_MAKEFLAGS";
        let outer = key_str.starts_with("CARGO_")
            || key_str.ends_with("RUSTFLAGS")
            || key_str.starts_with("RUSTC_WORKSPACE_WRAPPER");
        if outer && !keep {
            command.env_remove(&key);
        }
    }
    command.env(
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
        "-C target-feature=+crt-static",
    );
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build {AGENT_PACKAGE}: {e}"));
    assert!(
        status.success(),
        "building the guest agent ({AGENT_PACKAGE}, static, release) failed; see the cargo output above"
    );
    target_dir
        .join(AGENT_TARGET)
        .join("release")
        .join(AGENT_PACKAGE)
}

/// A target directory that survives changes of OUT_DIR (profiles, features),
/// so the agent is rebuilt incrementally: `<outer target dir>/mvm-agent-static`.
/// Cargo marks its target directory root with `CACHEDIR.TAG`.
fn agent_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(|target| target.join("mvm-agent-static"))
        .unwrap_or_else(|| out_dir.join("mvm-agent-static"))
}

fn embed_files(generated: &mut String, doc: &str, name: &str, files: &[(String, PathBuf)]) {
    writeln!(
        generated,
        "/// {doc}\npub static {name}: &[(&str, &[u8])] = &["
    )
    .unwrap();
    for (relative, path) in files {
        writeln!(
            generated,
            "    ({relative:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    generated.push_str("];\n");
}

/// What guest code needs to `import "mvm-sdk"`: the manifest and the
/// JavaScript tsc emitted (type declarations are for editors only).
fn node_sdk_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let dist = dir.join("dist");
    assert!(
        dist.join("index.js").is_file(),
        "{} is missing; it is committed output of `npm run build` in sdk/typescript",
        dist.join("index.js").display()
    );
    let mut files: Vec<(String, PathBuf)> = list_files(&dist)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".js"))
        .map(|(name, path)| (format!("dist/{name}"), path))
        .collect();
    files.push(("package.json".into(), dir.join("package.json")));
    files.sort();
    files
}

/// Regular files under `dir` as (`/`-separated path relative to `dir`,
/// absolute path), sorted; bytecode caches are left out. A missing
/// directory gives no files.
fn list_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    collect_files(dir, "", &mut files);
    files.sort();
    files
}

fn collect_files(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && name != "__pycache__" {
            collect_files(&entry.path(), &format!("{prefix}{name}/"), files);
        } else if kind.is_file() && !name.ends_with(".pyc") {
            files.push((format!("{prefix}{name}"), entry.path()));
        }
    }
}
