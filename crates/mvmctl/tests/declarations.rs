//! `mvmctl compile` on Python and TypeScript declarations (static front end).

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn python_and_typescript_examples_compile() {
    for (decl, origin, bundled) in [
        ("examples/python/hello-app/app.py", "python:", "app.py"),
        ("examples/node/hello-app/app.ts", "typescript:", "app.ts"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        let r = run(mvmctl()
            .arg("compile")
            .arg(decl)
            .arg("--out")
            .arg(&out)
            .current_dir(repo()));
        assert_eq!(r.code, 0, "{decl}: {}", r.stderr);
        assert!(
            r.stdout.starts_with(&format!("compiled {origin}{decl} → ")),
            "{}",
            r.stdout
        );
        assert!(out.join("src").join(bundled).is_file());
        let review: Value =
            serde_json::from_slice(&std::fs::read(out.join("review.json")).unwrap()).unwrap();
        assert_eq!(review["origin"], format!("{origin}{decl}"));
        // Checks point at the declaration's text.
        let loc = &review["checks"][0]["location"];
        assert_eq!(loc["file"], decl, "{review}");
        assert!(loc["line"].as_u64().unwrap() > 1);
    }
}

#[test]
fn a_declaration_compiles_to_the_same_ir_as_its_emitted_json() {
    let tmp = tempfile::tempdir().unwrap();
    let from_decl = tmp.path().join("decl");
    let r = run(mvmctl()
        .args(["compile", "examples/python/hello-app/app.py", "--out"])
        .arg(&from_decl)
        .current_dir(repo()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ir = from_decl.join("workload.json");
    let from_ir = tmp.path().join("ir");
    let r = run(mvmctl()
        .arg("compile")
        .arg("--from-ir")
        .arg(&ir)
        .arg("--source-root")
        .arg(repo().join("examples/python/hello-app"))
        .arg("--out")
        .arg(&from_ir));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["workload.json", "launch.json", "flake.nix", "src/app.py"] {
        assert_eq!(
            std::fs::read(from_decl.join(f)).unwrap(),
            std::fs::read(from_ir.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn declaration_errors_point_at_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let decl = dir.path().join("tool.py");
    std::fs::write(
        &decl,
        "import mvm\n\n@mvm.app(\n    name=\"tool\",\n    source=mvm.local_path(\".\"),\n    image=mvm.python_image(),\n    \
         resources=mvm.resources(),\n    network=mvm.network(mode=\"none\", ports=[mvm.port(8080)]),\n    \
         entrypoint=mvm.entrypoint_function(module=\"tool\", function=\"run\", primary=True),\n)\ndef run(x):\n    return x\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let r = run(mvmctl().arg("compile").arg(&decl).arg("--out").arg(&out));
    assert_eq!(r.code, 2, "{}", r.stderr);
    let prefix = format!("{}:8:", decl.display());
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(": error[")),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}
