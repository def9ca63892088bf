//! The library API on real files: `check` and `compile` without the CLI.

use std::collections::BTreeMap;
use std::path::Path;

use mvm_compile::{CompileError, CompileOptions, CompileRequest, Status, check, compile};
use mvm_ir::{Code, Location};

const IR: &str = r#"{
  "schema_version": "0.1", "id": "api",
  "apps": [{
    "name": "api",
    "source": { "kind": "local_path", "path": "app", "include": ["*.py", "requirements.txt"] },
    "image": { "kind": "nix_packages", "packages": ["python313"] },
    "resources": {},
    "dependencies": { "kind": "python", "lockfile": "requirements.txt", "tool": "pip_tools" },
    "env": { "DB_PASSWORD": { "kind": "literal", "value": "hunter2" } },
    "entrypoints": [{ "kind": "command", "command": ["python3", "/app/main.py"], "name": "main", "primary": true }]
  }]
}"#;

fn request(root: &Path, spans: BTreeMap<String, Location>) -> CompileRequest {
    CompileRequest {
        workload: mvm_ir::decode::from_str(IR).unwrap(),
        source_root: root.to_path_buf(),
        spans,
        findings: Vec::new(),
        origin: "ir:test".into(),
        extra_files: Default::default(),
    }
}

fn opts() -> CompileOptions {
    CompileOptions {
        mtime: 0,
        toolchain_version: "test".into(),
    }
}

#[test]
fn check_locates_findings_through_spans_and_reviews_requirements() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("app")).unwrap();
    std::fs::write(root.path().join("app/main.py"), "").unwrap();
    std::fs::write(
        root.path().join("app/requirements.txt"),
        "flask>=3\nrich==13.7.1\n",
    )
    .unwrap();
    let at = |line| Location {
        file: "app.py".into(),
        line,
        column: 5,
    };
    let spans = BTreeMap::from([
        ("/apps/0".to_string(), at(3)),
        ("/apps/0/env".to_string(), at(9)),
    ]);

    let result = check(&request(root.path(), spans));
    assert!(!result.has_errors(), "{:?}", result.findings);
    assert_eq!(result.bundled, Some(2));
    let literal = result
        .findings
        .iter()
        .find(|f| f.code == Code::WSecretLiteral)
        .unwrap();
    assert_eq!(literal.location, Some(at(9)));
    let review = result.review.unwrap();
    let deps = review
        .checks
        .iter()
        .find(|c| c.check.as_str() == "dependencies_pinned")
        .unwrap();
    assert_eq!(deps.status, Status::Warn);
    assert!(deps.summary.contains("flask>=3"), "{}", deps.summary);
    let secrets = review
        .checks
        .iter()
        .find(|c| c.check.as_str() == "secrets_are_references")
        .unwrap();
    assert_eq!(
        (secrets.status, secrets.location.clone()),
        (Status::Warn, Some(at(9)))
    );
    assert!(!root.path().join("out").exists());
}

#[test]
fn compile_rejects_a_missing_lockfile_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("app")).unwrap();
    std::fs::write(root.path().join("app/main.py"), "").unwrap();
    let out = root.path().join("out.tgz");
    let err = compile(&request(root.path(), BTreeMap::new()), &out, &opts()).unwrap_err();
    let CompileError::Rejected { findings } = err else {
        panic!("{err}")
    };
    assert!(findings.iter().any(|f| f.code == Code::ELockfileMissing));
    let mut left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["app"]);
}

#[test]
fn compile_reports_what_it_wrote() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("app")).unwrap();
    std::fs::write(root.path().join("app/main.py"), "print(1)\n").unwrap();
    std::fs::write(root.path().join("app/requirements.txt"), "rich==13.7.1\n").unwrap();
    let out = root.path().join("build/out");
    let o = compile(&request(root.path(), BTreeMap::new()), &out, &opts()).unwrap();
    assert!(!o.archive);
    assert_eq!(o.bundled, 2);
    assert_eq!(
        o.ir_hash,
        mvm_ir::ir_hash(&mvm_ir::decode::from_str(IR).unwrap())
    );
    let launch: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("launch.json")).unwrap()).unwrap();
    assert_eq!(launch["source"]["tree_hash"], o.tree_hash.as_str());
    assert_eq!(launch["ir_hash"], o.ir_hash.as_str());
    // pip_tools is valid IR that this mvm's build refuses (W_IMAGE_UNBUILDABLE).
    assert_eq!(
        o.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
        [Code::WSecretLiteral, Code::WImageUnbuildable],
        "{:?}",
        o.findings
    );
}

/// Files a front end adds (a recording's `files.write`) pass the walk's
/// name rule and the bundle limits here too, whatever the front end checked.
#[test]
fn added_files_get_the_walks_name_checks() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("app")).unwrap();
    std::fs::write(root.path().join("app/main.py"), "").unwrap();
    std::fs::write(root.path().join("app/requirements.txt"), "rich==13.7.1\n").unwrap();
    let forged = format!("x\n{}  launch.json", "0".repeat(64));
    for bad in [
        forged.as_str(),
        ".git/config",
        "a/.git/HEAD",
        "esc\u{1b}[2J",
        "../up",
        "/abs",
    ] {
        let mut req = request(root.path(), BTreeMap::new());
        req.extra_files = BTreeMap::from([(bad.to_string(), b"data".to_vec())]);
        let out = root.path().join("out");
        let err = compile(&req, &out, &opts()).unwrap_err();
        let CompileError::Rejected { findings } = err else {
            panic!("{bad:?}: {err}")
        };
        let f = findings
            .iter()
            .find(|f| f.code == Code::EInvalidValue)
            .unwrap_or_else(|| panic!("{bad:?}: {findings:?}"));
        assert!(
            !f.message.contains('\n') && !f.message.contains('\u{1b}'),
            "{:?}",
            f.message
        );
        assert!(!out.exists());
    }
}
