//! `mvmctl compile --from-recording` and the TypeScript auto-run path, with
//! the real SDKs recording real scripts (examples/*/sandbox-script).
//!
//! The TypeScript test needs `npm ci` in sdk/typescript (scripts/test.sh
//! runs it first): it uses that tsx and the built mvm-sdk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn mvmctl(args: &[&str], cwd: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
    cmd.args(args).current_dir(cwd);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn workload(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("workload.json")).unwrap()).unwrap()
}

#[test]
fn python_recording_compiles_with_written_files_in_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec.json");
    let script = repo().join("examples/python/sandbox-script/script.py");
    let status = Command::new("python3")
        .arg(&script)
        .env("MVM_SDK_MODE", "record")
        .env("MVM_SDK_OUT_PATH", &rec)
        .env("PYTHONPATH", repo().join("sdk/python/src"))
        .status()
        .unwrap();
    assert!(status.success());

    let out = tmp.path().join("out");
    let o = mvmctl(
        &[
            "compile",
            "--from-recording",
            rec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let w = workload(&out);
    let app = &w["apps"][0];
    assert_eq!(w["id"], "sandbox-script");
    assert_eq!(app["image"]["packages"], serde_json::json!(["python313"]));
    assert_eq!(
        app["entrypoints"][0]["command"],
        serde_json::json!(["python3", "/app/serve.py"])
    );
    assert_eq!(
        app["hooks"]["before_start"],
        serde_json::json!([{"kind": "argv", "argv": ["python3", "-c", "print('setting up')"]}])
    );
    assert_eq!(
        std::fs::read_to_string(out.join("src/config/name.txt")).unwrap(),
        "ari\n"
    );
    assert!(out.join("src/serve.py").is_file());
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(
        sums.contains("src/config/name.txt"),
        "written file not covered by SHA256SUMS"
    );
}

#[test]
fn unlowerable_recording_is_rejected_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec.json");
    std::fs::write(
        &rec,
        r#"{"recording_version":1,"sdk":{"language":"python","version":"0.1.0"},"source_root":"/tmp",
        "sandboxes":[{"template":"minimal","env":{},"include":[],"resources":{},"network":{},
        "operations":[{"op":"write","path":"/etc/passwd","data_b64":""},{"op":"run","cmd":"true","background":false}]}]}"#,
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = mvmctl(
        &[
            "compile",
            "--from-recording",
            rec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("/sandboxes/0/operations/0/path: error[E_INVALID_VALUE]"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());

    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"recording_version":1,"sdk":{"language":"cobol","version":"1"},"source_root":"/","sandboxes":[]}"#).unwrap();
    let o = mvmctl(
        &[
            "compile",
            "--from-recording",
            bad.to_str().unwrap(),
            "--check",
        ],
        tmp.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("/sdk/language: error[E_SCHEMA]"),
        "{}",
        text(&o)
    );
}

/// A project directory holding the example script with mvm-sdk installed.
fn ts_project(tmp: &Path) -> PathBuf {
    let proj = tmp.join("proj");
    std::fs::create_dir_all(proj.join("node_modules")).unwrap();
    std::os::unix::fs::symlink(
        repo().join("sdk/typescript"),
        proj.join("node_modules/mvm-sdk"),
    )
    .unwrap();
    for f in ["script.ts", "package.json"] {
        std::fs::copy(
            repo().join("examples/node/sandbox-script").join(f),
            proj.join(f),
        )
        .unwrap();
    }
    proj
}

#[test]
fn typescript_sandbox_script_is_recorded_by_running_it_and_says_so() {
    let tsx = repo().join("sdk/typescript/node_modules/.bin/tsx");
    assert!(
        tsx.exists(),
        "run `npm ci` in sdk/typescript first (scripts/test.sh does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let out = tmp.path().join("out");
    let o = mvmctl(
        &["compile", "script.ts", "--out", out.to_str().unwrap()],
        &proj,
        &[("MVM_TSX", tsx.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("runs it ON THIS HOST"),
        "no host-execution warning: {}",
        text(&o)
    );
    let w = workload(&out);
    assert_eq!(
        w["apps"][0]["image"]["packages"],
        serde_json::json!(["nodejs_22"])
    );
    assert_eq!(
        w["apps"][0]["entrypoints"][0]["command"],
        serde_json::json!(["node", "/app/server.mjs"])
    );
    assert!(
        std::fs::read_to_string(out.join("src/server.mjs"))
            .unwrap()
            .contains("GREETING")
    );
}

#[test]
fn typescript_sandbox_script_without_a_runner_fails_with_the_install_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let empty = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
    let o = cmd
        .args(["compile", "script.ts", "--check"])
        .current_dir(&proj)
        .env_remove("MVM_TSX")
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("no TypeScript runner found"), "{said}");
    assert!(said.contains("npm install --save-dev tsx"), "{said}");
}
