//! What compile says about the image, end to end with the real binary on
//! the seed documents' own declarations: an image this mvm cannot build is
//! `W_IMAGE_UNBUILDABLE` with the very text `mvmctl build` refuses with, and
//! a function with no runtime in its image is `E_IMAGE_NO_RUNTIME`. (No VM:
//! build refuses while planning, before anything is fetched.)

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Seed 000's first example ("Declaration cookbook"), as written; only the
/// function body's indentation, lost in the seed's text, is restored.
const SEED_000_TOOL_PY: &str = r#"import mvm
mvm.workload(id="hello-python")
@mvm.app(
name="hello",
source=mvm.local_path(".", include=["src/**", "pyproject.toml", "uv.lock"]),
image=mvm.python_image(python="3.12", packages=["uv"]),
resources=mvm.resources(cpu_cores=1, memory_mb=512, rootfs_size_mb=1024),
dependencies=mvm.python_deps(lockfile="uv.lock", tool="uv"),
network=mvm.network(mode="none"),
entrypoint=mvm.entrypoint_function(
module="src.tool",
function="run",
primary=True,
),
)
def run(prompt: str) -> str:
    return prompt.upper()
"#;

/// Seed 003's TypeScript hello-app, as written (the seed runs the import
/// into the text before it; it is the file's first line).
const SEED_003_APP_TS: &str = r#"import * as mvm from "mvm-sdk";
export const greet = mvm.app({ name: "hello-app", source: mvm.localPath("."), image: mvm.python_image({ python: "3.12" }), resources: mvm.resources({ cpu: 1, memory_mb: 256 }), entrypoint: mvm.entrypoint_function({ module: "app", function: "greet", primary: true, }), before_start: "export HELLO_BANNER='hi'",})((name: string): string => `hello ${name}`);
"#;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn python_312_warns_at_compile_and_build_refuses_with_the_same_text() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    write(
        &project,
        &[
            ("tool.py", SEED_000_TOOL_PY),
            (
                "src/tool.py",
                "def run(prompt: str) -> str:\n    return prompt.upper()\n",
            ),
            (
                "pyproject.toml",
                "[project]\nname = \"hello\"\nversion = \"0.1.0\"\n",
            ),
            ("uv.lock", "version = 1\n"),
        ],
    );
    let out = tmp.path().join("hello-python");
    let r = run(mvmctl()
        .current_dir(&project)
        .args(["compile", "./tool.py", "--out"])
        .arg(&out));
    assert_eq!(
        r.code, 0,
        "a warning does not stop the compile: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("tool.py:6:") && r.stderr.contains("warning[W_IMAGE_UNBUILDABLE]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("warn  dependencies_pinned"),
        "{}",
        r.stdout
    );

    let review: Value =
        serde_json::from_slice(&std::fs::read(out.join("review.json")).unwrap()).unwrap();
    let warnings: Vec<&Value> = review["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "W_IMAGE_UNBUILDABLE")
        .collect();
    assert_eq!(warnings.len(), 1, "{review:#}");
    let w = warnings[0];
    assert_eq!(w["path"], "/apps/0/image/packages/0");
    assert_eq!(w["location"]["file"], "./tool.py");
    let message = w["message"].as_str().unwrap();
    let hint = w["hint"].as_str().unwrap();
    for needle in ["`python312`", "Python 3.12", "python311", "python313"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    assert_eq!(
        hint,
        "mvm.python_image(python=\"3.11\") or mvm.python_image(python=\"3.13\") \
         (in nix_packages: python311 or python313)"
    );

    let home = tmp.path().join("home");
    let cache = tmp.path().join("cache");
    let b = run(mvmctl()
        .env("MVM_HOME", &home)
        .env("MVM_CACHE_DIR", &cache)
        .arg("build")
        .arg(&out));
    assert_eq!(b.code, 1, "{}", b.stderr);
    // The same message, word for word; its last sentence names the helpers
    // the hint names.
    assert_eq!(b.stderr, format!("error: {message}\n"));
    assert!(message.ends_with(hint.split(" (in nix_packages").next().unwrap()));
    assert!(
        !home.join("images").exists() && !cache.join("rootfs").exists(),
        "build refused before doing anything"
    );
}

#[test]
fn the_typescript_hello_app_on_a_python_image_is_a_compile_error() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("hello-app");
    write(&project, &[("app.ts", SEED_003_APP_TS)]);
    let out = tmp.path().join("out");
    let r = run(mvmctl()
        .arg("compile")
        .arg(project.join("app.ts"))
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "app.ts:2:190: error[E_IMAGE_NO_RUNTIME]: entrypoint `greet` is a TypeScript function \
             and runs on Node, but the image has no Node (nix_packages: python312)"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "  hint: declare the image with mvm.node_image({ node: \"22\" }), \
             or add \"nodejs_22\" to its mvm.nix_packages([...]) list\n"
        ),
        "{}",
        r.stderr
    );
    // Python 3.12 is its own problem, said too.
    assert!(
        r.stderr
            .contains("warning[W_IMAGE_UNBUILDABLE]: image package `python312`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.ends_with(&format!(
            "error: nothing was written to {}: 1 error(s), 1 warning(s)\n",
            out.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!out.exists());

    // The same declaration on the helper the hint names compiles.
    let fixed = SEED_003_APP_TS.replace(
        "mvm.python_image({ python: \"3.12\" })",
        "mvm.node_image({ node: \"22\" })",
    );
    write(&project, &[("app.ts", &fixed)]);
    let r = run(mvmctl()
        .arg("compile")
        .arg(project.join("app.ts"))
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("W_IMAGE_UNBUILDABLE"), "{}", r.stderr);
}
