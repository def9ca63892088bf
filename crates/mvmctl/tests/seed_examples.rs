//! Every declaration in the product documents (`shared/spec/seeds/`), as
//! written there (indentation restored), under `examples/seeds/`: each one
//! either runs end to end here, or `mvmctl compile` says why not before
//! any build. Nothing may fail for the first time after a build, apart
//! from what the documents themselves mark as runtime admission (network
//! egress, until the runtime provides it, is refused at `up` with a clear
//! message). The README's example table lists the same outcomes. The
//! cookbook's two-entrypoint example is `examples/python/math/mathsvc.py`
//! as written; `e2e_examples.rs` runs it.

#[path = "common/vm_env.rs"]
mod vm_env;

use serde_json::Value;
use vm_env::{Env, serial};

const SEEDS: &str = "examples/seeds";

/// `mvmctl compile --format json` of a seed declaration: (exit, report).
fn compile(env: &Env, declaration: &str, name: &str) -> (i32, Value) {
    let out = env.tmp.path().join(format!("{name}-compiled"));
    let o = env.mvmctl(&[
        "compile",
        &format!("{SEEDS}/{declaration}"),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report = serde_json::from_slice(&o.stdout).expect("compile --format json prints JSON");
    (o.status.code().unwrap_or(-1), report)
}

fn findings<'a>(report: &'a Value, code: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .map(|f| f.iter().filter(|f| f["code"] == code).collect())
        .unwrap_or_default()
}

/// The seed cannot be built by this mvm: compile says so in the review,
/// and `build` then fails with the same message (never later than that).
fn unbuildable(declaration: &str, name: &str, expected: &str) {
    let env = Env::new();
    let (code, report) = compile(&env, declaration, name);
    assert_eq!(code, 0, "an unbuildable image is a warning: {report:#}");
    let warned = findings(&report, "W_IMAGE_UNBUILDABLE");
    assert_eq!(warned.len(), 1, "{report:#}");
    let message = warned[0]["message"].as_str().unwrap();
    assert!(message.contains(expected), "{message}");
    assert!(warned[0]["hint"].as_str().is_some_and(|h| !h.is_empty()));
    let out = env.tmp.path().join(format!("{name}-compiled"));
    let build = env.mvmctl(&["build", out.to_str().unwrap()]);
    assert!(!build.status.success());
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(
        stderr.contains(message),
        "build must fail with the compile warning's words:\n{stderr}"
    );
}

#[test]
fn cookbook_hello_python_needs_python_3_12_which_nothing_here_provides() {
    unbuildable("cookbook-hello-python/tool.py", "hello", "Python 3.12");
}

#[test]
fn workflow_agent_tool_needs_python_3_12() {
    unbuildable("workflow-agent-tool/tool.py", "agent-tool", "python312");
}

#[test]
fn decorator_agent_tool_needs_python_3_12() {
    unbuildable("decorator-agent-tool/tool.py", "agent-tool", "python312");
}

#[test]
fn sdk_hello_app_needs_python_3_12() {
    unbuildable("sdk-hello-app-py/app.py", "hello-app", "Python 3.12");
}

/// A Node function on a Python image could never run: an error at compile.
#[test]
fn sdk_hello_app_in_typescript_is_refused_at_compile() {
    let env = Env::new();
    let (code, report) = compile(&env, "sdk-hello-app-ts/app.ts", "hello-app");
    assert_ne!(code, 0, "{report:#}");
    let refused = findings(&report, "E_IMAGE_NO_RUNTIME");
    assert_eq!(refused.len(), 1, "{report:#}");
    assert!(
        refused[0]["hint"].as_str().unwrap().contains("node_image"),
        "{report:#}"
    );
    assert!(
        !env.tmp.path().join("hello-app-compiled").exists(),
        "nothing half-written"
    );
}

/// `uv sync` needs pyproject.toml next to uv.lock; the worker's include
/// list leaves it out, so the install could never run.
#[test]
fn cookbook_worker_is_refused_at_compile_for_its_lockfile() {
    let env = Env::new();
    let (code, report) = compile(&env, "cookbook-worker/worker.py", "worker");
    assert_ne!(code, 0, "{report:#}");
    let refused = findings(&report, "E_LOCKFILE_NEEDS_PROJECT");
    assert_eq!(refused.len(), 1, "{report:#}");
    assert!(
        refused[0]["hint"]
            .as_str()
            .unwrap()
            .contains("pyproject.toml"),
        "{report:#}"
    );
}

/// The hooks example as written: `python` is a command in Python images,
/// `uv sync --frozen` runs in the builder, `python /app/migrate.py` at
/// boot, and `python /app/healthcheck.py` polls the server until ready.
#[test]
fn cookbook_service_runs_with_its_hooks() {
    let _g = serial();
    let env = Env::new();
    env.deploy(&format!("{SEEDS}/cookbook-service/service.py"), "service");
    let health = env.ok(&[
        "exec", "service", "--", "python", "-c",
        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/health').read().decode(), end='')",
    ]);
    assert_eq!(health.trim_end(), "ok migrated");
    let venv = env.ok(&[
        "exec",
        "service",
        "--",
        "sh",
        "-c",
        "command -v python; python --version",
    ]);
    assert!(
        venv.starts_with("/app/.venv/bin/python\n"),
        "uv sync made the venv first on PATH: {venv}"
    );
    env.ok(&["down", "service"]);
}

/// A secret is a reference: the guest sees an opaque token, never a value.
#[test]
fn cookbook_env_runs_and_the_secret_is_a_token() {
    let _g = serial();
    let env = Env::new();
    env.compile_and_build(&format!("{SEEDS}/cookbook-env/app.py"), "chat");
    // Admission: the referenced secret must be stored first.
    let refused = env.mvmctl(&["up", "chat"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("openai-api-key") && err.contains("mvmctl secret set openai-api-key"),
        "{err}"
    );
    env.secret_set("openai-api-key", "sk-cookbook-value");
    env.ok(&["up", "chat"]);
    let out = env.ok(&["invoke", "chat", "--input", "prompt=hi"]);
    assert_eq!(out.trim_end(), r#""hi""#);
    let seen = env.ok(&[
        "exec",
        "chat",
        "--",
        "sh",
        "-c",
        "echo $MODEL $OPENAI_API_KEY",
    ]);
    assert!(
        seen.starts_with("gpt-4.1-mini mvm-secret-ref:openai-api-key:"),
        "{seen}"
    );
    env.ok(&["down", "chat"]);
}

// The cookbook's network seed runs end to end in network.rs
// (`seed_examples_with_egress_run_end_to_end`).

/// The SDK page's hello-app with what the review asks for (Python 3.13, no
/// probe of a server it does not run): the banner its `before_start`
/// exports reaches the function.
#[test]
fn sdk_hello_app_runs_and_sees_the_before_start_export() {
    let _g = serial();
    let env = Env::new();
    env.secret_set("api-key", "sdk-hello-value");
    env.deploy(
        &format!("{SEEDS}/sdk-hello-app-runnable/app.py"),
        "hello-app",
    );
    let out = env.ok(&["invoke", "hello-app", "--input", "name=ari"]);
    assert_eq!(out.trim_end(), r#""hello ari (hi)""#);
    env.ok(&["down", "hello-app"]);
}
