//! What people read from `mvmctl build → up → ps → invoke → logs → down`,
//! whole, on the Python hello-app example in a real microVM (QEMU; TCG on
//! hosts without usable KVM). Compared with reviewed snapshots in
//! tests/snapshots/; see common/snap.rs for the normalising.
//!
//! The store (MVM_HOME) is the test's own; the kernel and base root come
//! from the shared MVM_CACHE_DIR as in e2e_examples.rs, so only a cold
//! cache pays for downloads. One test: it boots one VM at a time.

#[path = "common/snap.rs"]
#[macro_use]
mod snap;

use std::ffi::OsString;
use std::path::PathBuf;

use snap::{Outcome, Sandbox, redact_table};

/// Stops whatever the test started, however it ends.
struct DownGuard {
    home: PathBuf,
    env: Vec<(&'static str, OsString)>,
}

impl Drop for DownGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .args(["down", "--all"])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("MVM_HOME", &self.home)
            .output();
    }
}

/// The host's variables a real build and boot need; the rest is cleared.
fn host_env() -> Vec<(&'static str, OsString)> {
    let mut env: Vec<(&'static str, OsString)> = [
        "PATH",
        "HOME",
        "TMPDIR",
        "XDG_CACHE_HOME",
        "MVM_CACHE_DIR",
        "MVM_ACCEL",
    ]
    .into_iter()
    .filter_map(|k| std::env::var_os(k).map(|v| (k, v)))
    .collect();
    if !env.iter().any(|(k, _)| *k == "MVM_CACHE_DIR") {
        // As scripts/test.sh does: one cache for every VM test.
        if let Some(home) = std::env::var_os("HOME") {
            env.push((
                "MVM_CACHE_DIR",
                PathBuf::from(home).join(".cache/mvm").into(),
            ));
        }
    }
    env
}

/// The console log with the kernel's own lines (timestamps, and which
/// ones appear depends on the host and accelerator) replaced by one
/// marker where the first was; the agent's lines are kept as printed.
fn without_kernel_lines(log: &str) -> String {
    let kernel = regex::Regex::new(r"^\[\s*\d+\.\d+\] ").unwrap();
    let mut out = String::new();
    let mut marked = false;
    for line in log.split_inclusive('\n') {
        if kernel.is_match(line) {
            if !marked {
                out.push_str("[kernel messages]\n");
                marked = true;
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

fn with_stdout(out: Outcome, f: impl Fn(&str) -> String) -> Outcome {
    Outcome {
        stdout: f(&out.stdout),
        ..out
    }
}

#[test]
fn build_up_ps_invoke_logs_down() {
    let mut s = Sandbox::new();
    let env = host_env();
    for (k, v) in &env {
        s.set_env(k, v.clone());
    }
    // The shared cache is outside the sandbox; no output should name it,
    // but if one does it reads the same everywhere.
    if let Some((_, cache)) = env.iter().find(|(k, _)| *k == "MVM_CACHE_DIR") {
        s.literal(&cache.to_string_lossy(), "[CACHE]");
    }
    let _guard = DownGuard {
        home: s.home(),
        env: env.clone(),
    };

    s.write(
        "hello-app/app.py",
        &Sandbox::example("examples/python/hello-app/app.py"),
    );
    let compiled = s.run(&["compile", "hello-app/app.py", "--out", "compiled"], None);
    assert_eq!(compiled.code, Some(0), "{}", compiled.stderr);

    // build: the image id hashes the base root, which is built from
    // Debian on this machine; its size varies with it.
    let build = s.run(&["build", "compiled"], None);
    assert_eq!(build.code, Some(0), "{}", build.stderr);
    let json = s.run(&["build", "compiled", "--json"], None);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("build --json");
    let id = report["image_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    s.literal(&id, "[IMAGE_ID]");
    s.literal(&id[..12], "[IMAGE_ID:12]");
    s.add_filter(r"\(\d+\.\d MiB\)", "([SIZE] MiB)");
    s.add_filter(r#""size_bytes": \d+"#, r#""size_bytes": [BYTES]"#);
    snapshot!("build_text", s.render(&["build", "compiled"], &build));
    snapshot!(
        "build_json",
        s.render(&["build", "compiled", "--json"], &json)
    );
    snapshot!("build_again_text", s.transcript(&["build", "compiled"]));

    // up: the timings are the machine's.
    s.add_filter(
        r"(ready in )\d+\.\ds( \(boot )\d+\.\ds(, configure )\d+( ms, before_start )\d+( ms, after_start )\d+( ms\))",
        "${1}[T]s${2}[T]s${3}[N]${4}[N]${5}[N]${6}",
    );
    s.add_filter(r#"("\w+_ms": )\d+"#, "${1}[MS]");
    // The first up of the image saves its template snapshot.
    s.add_filter(r"(saved a template snapshot in )\d+\.\ds", "${1}[T]s");
    snapshot!("up_text", s.transcript(&["up", "hello-app"]));
    snapshot!("up_already_running", s.transcript(&["up", "hello-app"]));

    // ps: uptime, QEMU's resident memory and CPU time change by the second.
    let ps = with_stdout(s.run(&["ps"], None), |t| {
        redact_table(t, &["UPTIME", "RSS", "CPU"])
    });
    assert_eq!(ps.code, Some(0));
    snapshot!("ps_running_text", s.render(&["ps"], &ps));
    s.add_filter(r#"("(?:uptime_s|rss_mb|cpu_s)": )[0-9.]+"#, "${1}[N]");
    snapshot!("ps_running_json", s.transcript(&["ps", "--json"]));

    snapshot!(
        "invoke_result",
        s.transcript(&["invoke", "hello-app", "--input", "name=ari"])
    );
    snapshot!(
        "invoke_json_arguments",
        s.transcript(&["invoke", "hello-app", "--json", r#"{"name": "ari"}"#])
    );
    // The runner's own line numbers change with the runner.
    s.add_filter(r#"(python_runner\.py\\", line )\d+"#, "${1}[N]");
    snapshot!(
        "invoke_function_raises",
        s.transcript(&["invoke", "hello-app", "--json", r#"{"nam": "ari"}"#])
    );
    snapshot!(
        "invoke_unknown_entrypoint",
        s.transcript(&["invoke", "hello-app", "--entrypoint", "nope"])
    );

    s.add_filter(r"\(pid \d+\)", "(pid [PID])");
    let logs = with_stdout(s.run(&["logs", "hello-app"], None), without_kernel_lines);
    assert_eq!(logs.code, Some(0));
    snapshot!("logs", s.render(&["logs", "hello-app"], &logs));

    snapshot!("down_text", s.transcript(&["down", "hello-app"]));
    snapshot!("ps_after_down", s.transcript(&["ps", "--json"]));

    // The JSON outcome of up, and down --all reporting each instance.
    snapshot!("up_json", s.transcript(&["up", "hello-app", "--json"]));
    snapshot!("down_all", s.transcript(&["down", "--all"]));
    let ps = s.run(&["ps", "--json"], None);
    assert_eq!(ps.stdout.trim(), "[]", "an instance was left running");
}
