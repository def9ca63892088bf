//! `mvmctl compile --from-recording` and the TypeScript auto-run path, with
//! the real SDKs recording real scripts (examples/*/sandbox-script).
//!
//! Auto-run executes a script on the host, so it happens only with
//! `--allow-host-run` (or `MVM_ALLOW_HOST_RUN=1`), never under `--check`,
//! under a timeout, with a cleared environment. The refusals are tested
//! with runners that leave a marker file when started at all.
//!
//! The tsx tests need `npm ci` in sdk/typescript (scripts/test.sh runs it
//! first): they use that tsx and the built mvm-sdk.

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
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("MVM_ALLOW_HOST_RUN")
        .env_remove("MVM_TSX");
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
    // The recording lies outside the script's directory, so its
    // source_root is used only when --source-root names it.
    let o = mvmctl(
        &[
            "compile",
            "--from-recording",
            rec.to_str().unwrap(),
            "--source-root",
            script.parent().unwrap().to_str().unwrap(),
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

fn tsx() -> PathBuf {
    let tsx = repo().join("sdk/typescript/node_modules/.bin/tsx");
    assert!(
        tsx.exists(),
        "run `npm ci` in sdk/typescript first (scripts/test.sh does)"
    );
    tsx
}

/// An executable shell script `dir/name` with `body`: a runner that does
/// what the test needs (leave a marker, hang, dump its arguments).
fn runner(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A Sandbox script whose module body leaves `marker` when it runs.
fn marking_script(proj: &Path, marker: &Path) {
    std::fs::write(
        proj.join("script.ts"),
        format!(
            "import {{ writeFileSync }} from \"node:fs\";\nimport {{ Sandbox }} from \"mvm-sdk\";\n\nwriteFileSync({:?}, \"ran\");\nawait using sb = await Sandbox.create({{ template: \"node-22\" }});\nawait sb.commands.start([\"node\", \"-e\", \"1\"]);\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
}

#[test]
fn typescript_sandbox_script_is_recorded_by_running_it_and_says_so() {
    let tsx = tsx();
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    for (flag, env) in [
        (Some("--allow-host-run"), None),
        (None, Some(("MVM_ALLOW_HOST_RUN", "1"))),
    ] {
        let out = tmp.path().join(format!("out-{}", flag.is_some()));
        let mut args = vec!["compile", "script.ts", "--out", out.to_str().unwrap()];
        args.extend(flag);
        let mut envs = vec![("MVM_TSX", tsx.to_str().unwrap())];
        envs.extend(env);
        let o = mvmctl(&args, &proj, &envs);
        assert!(o.status.success(), "{}", text(&o));
        // The warning names exactly what runs: the runner binary and the script.
        let command = format!(
            "warning: script.ts: --allow-host-run: running `{} {}`",
            tsx.display(),
            proj.join("script.ts").display()
        );
        assert!(
            text(&o).contains(&command)
                && text(&o).contains("ON THIS HOST in record mode, for at most 60 s"),
            "no host-execution warning naming the command: {}",
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
}

/// The attack: `mvmctl compile script.ts` (or `--check`, or `--format
/// json`) on a file someone sent. Without the opt-in it exits 2 with
/// E_HOST_RUN_REFUSED naming the runner, the script and the flag, and
/// neither the runner nor the script is started.
#[test]
fn sandbox_script_is_refused_without_the_opt_in_and_nothing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let ran_script = tmp.path().join("script-ran");
    let ran_runner = tmp.path().join("runner-ran");
    marking_script(&proj, &ran_script);
    let tsx = runner(
        &tmp.path().join("bin"),
        "tsx",
        &format!("touch {:?}\nexit 1", ran_runner.display().to_string()),
    );
    let out = tmp.path().join("out");
    let script = proj.join("script.ts");
    for (args, envs) in [
        (vec!["--out", out.to_str().unwrap()], vec![]),
        (
            vec!["--out", out.to_str().unwrap(), "--format", "json"],
            vec![],
        ),
        // Only exactly "1" opts in.
        (
            vec!["--out", out.to_str().unwrap()],
            vec![("MVM_ALLOW_HOST_RUN", "0")],
        ),
        (
            vec!["--out", out.to_str().unwrap()],
            vec![("MVM_ALLOW_HOST_RUN", "true")],
        ),
    ] {
        let mut all = vec!["compile", "script.ts"];
        all.extend(&args);
        let mut env = vec![("MVM_TSX", tsx.to_str().unwrap())];
        env.extend(envs);
        let o = mvmctl(&all, &proj, &env);
        let said = text(&o);
        assert_eq!(o.status.code(), Some(2), "{said}");
        assert!(said.contains("E_HOST_RUN_REFUSED"), "{said}");
        assert!(
            said.contains(&format!("`{} {}`", tsx.display(), script.display())),
            "the refusal must name the runner and the script: {said}"
        );
        assert!(said.contains("--allow-host-run"), "{said}");
        assert!(said.contains("ON THIS HOST"), "{said}");
        if args.contains(&"json") {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["findings"][0]["code"], "E_HOST_RUN_REFUSED", "{v}");
            assert_eq!(v["findings"][0]["location"]["line"], 5, "{v}");
        } else {
            assert!(
                said.contains("script.ts:5:24: error[E_HOST_RUN_REFUSED]"),
                "{said}"
            );
        }
        assert!(!ran_runner.exists(), "the runner was started: {said}");
        assert!(!ran_script.exists(), "the script ran: {said}");
        assert!(!out.exists());
    }
}

#[test]
fn check_never_runs_a_script_even_with_the_opt_in() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let ran_script = tmp.path().join("script-ran");
    marking_script(&proj, &ran_script);
    let tsx = tsx();
    for envs in [
        vec![("MVM_TSX", tsx.to_str().unwrap())],
        vec![
            ("MVM_TSX", tsx.to_str().unwrap()),
            ("MVM_ALLOW_HOST_RUN", "1"),
        ],
    ] {
        let o = mvmctl(
            &["compile", "script.ts", "--check", "--allow-host-run"],
            &proj,
            &envs,
        );
        let said = text(&o);
        assert_eq!(o.status.code(), Some(2), "{said}");
        assert!(said.contains("error[E_HOST_RUN_REFUSED]"), "{said}");
        assert!(said.contains("--check never runs anything"), "{said}");
        assert!(!ran_script.exists(), "--check ran the script: {said}");
    }
}

/// What the script sees: no variable of the caller's but PATH, HOME, LANG,
/// LC_ALL, TMPDIR and the SDK's two (a leaked NODE_OPTIONS would even stop
/// node from starting).
#[test]
fn host_run_gets_a_cleared_environment() {
    let tsx = tsx();
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let dump = tmp.path().join("env.json");
    std::fs::write(
        proj.join("script.ts"),
        format!(
            "import {{ writeFileSync }} from \"node:fs\";\nimport {{ Sandbox }} from \"mvm-sdk\";\n\nwriteFileSync({:?}, JSON.stringify(process.env));\nawait using sb = await Sandbox.create({{ template: \"node-22\" }});\nawait sb.commands.start([\"node\", \"-e\", \"1\"]);\n",
            dump.display().to_string()
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = mvmctl(
        &[
            "compile",
            "script.ts",
            "--allow-host-run",
            "--out",
            out.to_str().unwrap(),
        ],
        &proj,
        &[
            ("MVM_TSX", tsx.to_str().unwrap()),
            ("MVM_TEST_SECRET_TOKEN", "hunter2"),
            ("NODE_OPTIONS", "--require /nonexistent/hook.js"),
            ("AWS_SECRET_ACCESS_KEY", "hunter2"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let env: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    assert_eq!(env["MVM_SDK_MODE"], "record");
    assert!(env.contains_key("PATH"));
    for leaked in ["MVM_TEST_SECRET_TOKEN", "AWS_SECRET_ACCESS_KEY", "MVM_TSX"] {
        assert!(
            !env.contains_key(leaked),
            "{leaked} reached the script: {env:?}"
        );
    }
    assert!(
        !serde_json::to_string(&env).unwrap().contains("hunter2"),
        "{env:?}"
    );
}

/// deno gets only the permissions recording needs, never --allow-all.
#[test]
fn deno_runs_with_only_the_permissions_recording_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let args = tmp.path().join("args");
    let env = tmp.path().join("env");
    let deno = runner(
        &tmp.path().join("bin"),
        "deno",
        &format!(
            "printf '%s\\n' \"$@\" > {:?}\nenv > {:?}\nexit 3",
            args.display().to_string(),
            env.display().to_string()
        ),
    );
    let o = mvmctl(
        &["compile", "script.ts", "--allow-host-run", "--out", "out"],
        &proj,
        &[
            ("MVM_TSX", deno.to_str().unwrap()),
            ("MVM_TEST_SECRET_TOKEN", "hunter2"),
        ],
    );
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("the script failed in record mode"), "{said}");
    let args: Vec<String> = std::fs::read_to_string(&args)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--allow-all") || a == "-A"),
        "{args:?}"
    );
    assert_eq!(args[..2], ["run", "--no-prompt"], "{args:?}");
    assert_eq!(args[2], format!("--allow-read={}", proj.display()));
    assert!(
        args[3].starts_with("--allow-write=/") && args[3].ends_with("/recording.json"),
        "{args:?}"
    );
    assert_eq!(args[4], "--allow-env=MVM_SDK_MODE,MVM_SDK_OUT_PATH");
    assert_eq!(args[5], proj.join("script.ts").display().to_string());
    assert_eq!(args.len(), 6, "{args:?}");
    let env = std::fs::read_to_string(&env).unwrap();
    assert!(env.contains("MVM_SDK_MODE=record"), "{env}");
    assert!(!env.contains("hunter2"), "{env}");
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn gone_soon(pid: u32) -> bool {
    for _ in 0..100 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// A script that never exits is killed at --host-run-timeout, and so is
/// everything it started (its process group), with a clear error.
#[test]
fn a_script_that_hangs_is_killed_at_the_timeout_with_its_children() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let pids = tmp.path().join("pids");
    let hang = runner(
        &tmp.path().join("bin"),
        "tsx",
        &format!(
            "sleep 300 &\necho $! > {:?}\nwhile :; do sleep 1; done",
            pids.display().to_string()
        ),
    );
    let started = std::time::Instant::now();
    let o = mvmctl(
        &[
            "compile",
            "script.ts",
            "--allow-host-run",
            "--host-run-timeout",
            "2",
            "--out",
            "out",
        ],
        &proj,
        &[("MVM_TSX", hang.to_str().unwrap())],
    );
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(
        said.contains("the script was still running after 2 s and was killed"),
        "{said}"
    );
    assert!(said.contains("--host-run-timeout"), "{said}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let child: u32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        gone_soon(child),
        "the script's background process {child} survived"
    );

    // The same with the real runner: tsx starts node as a child process.
    let pid_file = tmp.path().join("node-pid");
    std::fs::write(
        proj.join("script.ts"),
        format!(
            "import {{ writeFileSync }} from \"node:fs\";\nimport {{ Sandbox }} from \"mvm-sdk\";\n\nwriteFileSync({:?}, String(process.pid));\nawait Sandbox.create({{}});\nsetInterval(() => {{}}, 1000);\n",
            pid_file.display().to_string()
        ),
    )
    .unwrap();
    let o = mvmctl(
        &[
            "compile",
            "script.ts",
            "--allow-host-run",
            "--host-run-timeout",
            "3",
            "--out",
            "out",
        ],
        &proj,
        &[("MVM_TSX", tsx().to_str().unwrap())],
    );
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("still running after 3 s"), "{said}");
    let node: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(gone_soon(node), "tsx's node process {node} survived");
}

#[test]
fn typescript_sandbox_script_without_a_runner_fails_with_the_install_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = ts_project(tmp.path());
    let empty = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
        cmd.args(["compile", "script.ts"])
            .args(extra)
            .current_dir(&proj)
            .env_remove("MVM_TSX")
            .env_remove("MVM_ALLOW_HOST_RUN")
            .env("PATH", &empty)
            .output()
            .unwrap()
    };
    let o = run(&["--allow-host-run", "--out", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("no TypeScript runner found"), "{said}");
    assert!(said.contains("npm install --save-dev tsx"), "{said}");
    // Without the opt-in it is refused first, saying no runner is installed.
    let o = run(&["--out", "out"]);
    let said = text(&o);
    assert!(
        said.contains("E_HOST_RUN_REFUSED") && said.contains("none is installed"),
        "{said}"
    );
}
