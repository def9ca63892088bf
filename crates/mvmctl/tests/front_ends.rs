//! `mvmctl compile` on declarations written with every import form of the
//! SDK: they are compiled statically and never run, even with
//! `--allow-host-run` and a runner at hand (a runner that leaves a marker
//! when started at all, and module code that leaves one when executed).
//! And hostile nesting is a finding with exit 2, not a crash.

mod common;

use std::path::Path;

use common::*;

/// A runner that leaves `marker` if it is ever started.
fn marking_runner(dir: &Path, marker: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("tsx");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ntouch {:?}\nexit 1\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn compile(dir: &Path, file: &str, extra: &[&str], runner: &Path) -> Run {
    let mut cmd = mvmctl();
    cmd.arg("compile")
        .arg(file)
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .current_dir(dir)
        .env("MVM_TSX", runner)
        .env_remove("MVM_ALLOW_HOST_RUN");
    run(&mut cmd)
}

/// The attack of issue #10: a declaration written `import { app } from
/// "mvm-sdk"` (or any other form but `import * as mvm`) was not recognised,
/// so `mvmctl compile` ran the file on the host to "record" it.
#[test]
fn typescript_declarations_in_every_import_form_are_compiled_never_run() {
    for (head, app, local) in [
        (
            "import { app, localPath } from \"mvm-sdk\";",
            "app",
            "localPath",
        ),
        (
            "import { app as declare, local_path as lp } from \"mvm-sdk\";",
            "declare",
            "lp",
        ),
        ("import * as m from \"mvm-sdk\";", "m.app", "m.localPath"),
        ("import m from \"mvm-sdk\";", "m.app", "m.localPath"),
        ("const m = require(\"mvm-sdk\");", "m.app", "m.localPath"),
        (
            "const { app, localPath } = await import(\"mvm-sdk\");",
            "app",
            "localPath",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let ran_module = tmp.path().join("module-ran");
        let ran_runner = tmp.path().join("runner-ran");
        let runner = marking_runner(tmp.path(), &ran_runner);
        std::fs::write(
            tmp.path().join("app.ts"),
            format!(
                "import {{ writeFileSync }} from \"node:fs\";\nimport {{ Sandbox }} from \"mvm-sdk\";\n{head}\n\nwriteFileSync({m:?}, \"x\");\nexport const run = {app}({{ name: \"forms\", source: {local}(\".\", {{ include: [\"app.ts\"] }}) }})(async () => {{\n  writeFileSync({m:?}, \"x\");\n  await Sandbox.create({{}});\n}});\n",
                m = ran_module.display().to_string()
            ),
        )
        .unwrap();
        for extra in [&[][..], &["--allow-host-run"][..]] {
            let _ = std::fs::remove_dir_all(tmp.path().join("out"));
            let r = compile(tmp.path(), "app.ts", extra, &runner);
            assert_eq!(r.code, 0, "{head} {extra:?}: {}", r.stderr);
            assert!(
                r.stdout.starts_with("compiled typescript:app.ts"),
                "{head}: not compiled statically: {}",
                r.stdout
            );
            assert!(!r.stderr.contains("ON THIS HOST"), "{}", r.stderr);
            assert!(!ran_runner.exists(), "{head}: the runner was started");
            assert!(!ran_module.exists(), "{head}: the declaration ran");
        }
    }
}

#[test]
fn python_declarations_in_every_import_form_compile() {
    for (head, app, local) in [
        ("import mvm as m", "m.app", "m.local_path"),
        ("from mvm import app, local_path", "app", "local_path"),
        (
            "from mvm import app as declare, local_path as lp",
            "declare",
            "lp",
        ),
        ("from mvm import *", "app", "local_path"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let ran = tmp.path().join("module-ran");
        std::fs::write(
            tmp.path().join("app.py"),
            format!(
                "{head}\n\nopen({m:?}, \"w\").close()\n\n@{app}(name=\"forms\", source={local}(\".\", include=[\"app.py\"]))\ndef run() -> None:\n    open({m:?}, \"w\").close()\n",
                m = ran.display().to_string()
            ),
        )
        .unwrap();
        let r = compile(tmp.path(), "app.py", &[], Path::new("/nonexistent"));
        assert_eq!(r.code, 0, "{head}: {}", r.stderr);
        assert!(
            r.stdout.starts_with("compiled python:app.py"),
            "{}",
            r.stdout
        );
        assert!(!ran.exists(), "{head}: the declaration ran");
    }
}

/// A file with neither a declaration nor a Sandbox is an error, not a script to run.
#[test]
fn typescript_without_declaration_or_sandbox_is_an_error_and_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ran_runner = tmp.path().join("runner-ran");
    let runner = marking_runner(tmp.path(), &ran_runner);
    std::fs::write(
        tmp.path().join("app.ts"),
        "function app(o: object) { return (f: Function) => f; }\nexport const f = app({ name: \"mine\" })(() => 1);\n",
    )
    .unwrap();
    let r = compile(tmp.path(), "app.ts", &["--allow-host-run"], &runner);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("app.ts:1:1: error[E_NO_DECLARATION]"),
        "{}",
        r.stderr
    );
    assert!(!ran_runner.exists(), "the runner was started");
}

/// 10,000 nested parentheses aborted compile with a stack overflow (exit 134).
#[test]
fn deep_nesting_is_a_finding_with_exit_2_not_a_crash() {
    let n = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("app.ts"),
        format!(
            "import * as mvm from \"mvm-sdk\";\nexport const f = mvm.app({{ name: {}\"a\"{} }})(() => 1);\n",
            "(".repeat(n),
            ")".repeat(n)
        ),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("app.py"),
        format!(
            "import mvm\n\n@mvm.app(name={}\"a\"{})\ndef f():\n    pass\n",
            "(".repeat(n),
            ")".repeat(n)
        ),
    )
    .unwrap();
    for (file, at) in [("app.ts", "app.ts:2:288"), ("app.py", "app.py:3:270")] {
        let r = run(mvmctl()
            .args(["compile", file, "--check"])
            .current_dir(tmp.path()));
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "{at}: error[E_DECL_TOO_DEEP]: brackets are nested more than 256 deep here"
            )),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("hint: "), "{}", r.stderr);
        let r = run(mvmctl()
            .args(["compile", file, "--check", "--format", "json"])
            .current_dir(tmp.path()));
        assert_eq!(r.code, 2);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["findings"][0]["code"], "E_DECL_TOO_DEEP", "{v}");
    }
}
