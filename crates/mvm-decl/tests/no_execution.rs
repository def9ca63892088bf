//! The host never runs user code: declaration files whose module body,
//! decorator, default arguments, function body, imported sibling module,
//! package `__init__.py` or `sitecustomize.py` would leave a marker file (or
//! spawn a process that does) compile without any marker appearing.
//!
//! A control runs the same Python project with `python3` (when installed) and
//! checks the markers do appear, so the test proves the files really act when
//! executed.

use std::fs;
use std::path::Path;
use std::process::Command;

use mvm_decl::{Outcome, compile_declaration};

/// Writes a Python project whose every part touches a marker when executed.
fn python_project(dir: &Path) -> Vec<std::path::PathBuf> {
    let m = |name: &str| dir.join(format!("marker-{name}"));
    let markers = [
        "module",
        "default",
        "body",
        "sibling",
        "init",
        "sitecustomize",
        "spawn",
    ]
    .map(m);
    let [module, default, body, sibling, init, site, spawn] =
        markers.clone().map(|p| p.display().to_string());
    fs::write(
        dir.join("helper.py"),
        format!("open({sibling:?}, 'w').close()\n"),
    )
    .unwrap();
    fs::create_dir(dir.join("pkg")).unwrap();
    fs::write(
        dir.join("pkg/__init__.py"),
        format!("open({init:?}, 'w').close()\n"),
    )
    .unwrap();
    fs::write(
        dir.join("sitecustomize.py"),
        format!("open({site:?}, 'w').close()\n"),
    )
    .unwrap();
    let app = format!(
        r#"import os
import subprocess
import mvm
import helper
import pkg
import sitecustomize

open({module:?}, "w").close()
subprocess.run(["touch", {spawn:?}])

@mvm.app(name="inert", source=mvm.local_path("."))
def run(x=open({default:?}, "w")):
    open({body:?}, "w").close()
    return x

if __name__ == "__main__":
    run()
"#
    );
    fs::write(dir.join("app.py"), app).unwrap();
    markers.to_vec()
}

fn assert_no_markers(markers: &[std::path::PathBuf]) {
    for m in markers {
        assert!(
            !m.exists(),
            "{} appeared: user code ran during compile",
            m.display()
        );
    }
}

#[test]
fn python_declaration_is_never_executed() {
    let dir = tempfile::tempdir().unwrap();
    let markers = python_project(dir.path());
    let path = dir.path().join("app.py");
    let source = fs::read_to_string(&path).unwrap();
    let out =
        compile_declaration(&path, &source, Path::new("app.py")).expect("the declaration compiles");
    let Outcome::Declared(d) = out else {
        panic!("expected a declaration")
    };
    assert_eq!(d.workload.apps[0].name, "inert");
    assert_no_markers(&markers);
}

/// Control: running the project for real leaves every marker, so the test above can fail.
#[test]
fn python_control_markers_appear_when_run() {
    let Ok(status) = Command::new("python3").arg("--version").status() else {
        eprintln!("python3 is not installed; skipping the control");
        return;
    };
    assert!(status.success());
    let dir = tempfile::tempdir().unwrap();
    let markers = python_project(dir.path());
    // A stand-in `mvm` module so the script can run at all.
    fs::write(
        dir.path().join("mvm.py"),
        "def app(**kw):\n    return lambda f: f\ndef local_path(*a, **kw):\n    return None\n",
    )
    .unwrap();
    let status = Command::new("python3")
        .arg("app.py")
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    for m in &markers {
        assert!(
            m.exists(),
            "{} did not appear when the project ran",
            m.display()
        );
    }
}

/// A rejected declaration (a call that would run code) does not run either.
#[test]
fn rejected_python_call_is_not_executed() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker-decorator");
    let source = format!(
        "import mvm\n\n@mvm.app(name=open({:?}, 'w').name)\ndef f():\n    pass\n",
        marker.display().to_string()
    );
    let path = dir.path().join("app.py");
    fs::write(&path, &source).unwrap();
    let err = compile_declaration(&path, &source, Path::new("app.py")).unwrap_err();
    assert_eq!(err[0].code, mvm_ir::Code::ENotLiteral);
    assert_no_markers(&[marker]);
}

#[test]
fn typescript_declaration_is_never_executed() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("marker-top");
    let body = dir.path().join("marker-body");
    let spawn = dir.path().join("marker-spawn");
    let sibling = dir.path().join("marker-sibling");
    fs::write(
        dir.path().join("helper.ts"),
        format!(
            "require(\"fs\").writeFileSync({:?}, \"x\");\n",
            sibling.display().to_string()
        ),
    )
    .unwrap();
    let source = format!(
        r#"import * as mvm from "mvm-sdk";
import "./helper";
import {{ execSync }} from "node:child_process";
import {{ writeFileSync }} from "node:fs";

writeFileSync({top:?}, "x");
execSync("touch {spawn}");

export const run = mvm.app({{ name: "inert" }})((x: string = writeFileSync({body:?}, "x") ?? "") => {{
  writeFileSync({body:?}, "x");
  return x;
}});
"#,
        top = top.display().to_string(),
        spawn = spawn.display(),
        body = body.display().to_string(),
    );
    let path = dir.path().join("app.ts");
    fs::write(&path, &source).unwrap();
    let out =
        compile_declaration(&path, &source, Path::new("app.ts")).expect("the declaration compiles");
    let Outcome::Declared(d) = out else {
        panic!("expected a declaration")
    };
    assert_eq!(d.workload.apps[0].name, "inert");
    assert_no_markers(&[top, body, spawn, sibling]);
}
