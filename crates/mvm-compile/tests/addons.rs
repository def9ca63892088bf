//! Addons in the compile output: an addon's `path` is checked like the
//! app's source path and its files are bundled at `src/.mvm/addons/<name>/`,
//! covered by the tree hash and `SHA256SUMS`; its hooks still run first.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use mvm_compile::bundle::tree_hash::{Item, sha256_hex, tree_hash};
use mvm_compile::{CompileError, CompileOptions, CompileRequest, Status, check, compile};
use mvm_ir::{Code, Finding, Location};
use serde_json::{Value, json};

/// An app bundling `app/main.py`, with `addons` attached.
fn ir(addons: Value) -> Value {
    json!({
        "schema_version": "0.1", "id": "addons",
        "apps": [{
            "name": "web",
            "source": { "kind": "local_path", "path": "app", "include": ["**"] },
            "image": { "kind": "nix_packages", "packages": ["python313"] },
            "entrypoints": [{ "kind": "command", "command": ["python3", "/app/main.py"], "name": "main", "primary": true }],
            "hooks": { "before_start": [{ "kind": "shell", "line": "test -s /run/addon-ran" }] },
            "addons": addons
        }]
    })
}

fn tools(path: &str) -> Value {
    json!([{
        "name": "tools", "source": { "kind": "local", "path": path },
        "hooks": { "before_start": [{ "kind": "argv", "argv": ["sh", "/app/.mvm/addons/tools/setup.sh"] }] }
    }])
}

fn request(root: &Path, ir: &Value) -> CompileRequest {
    CompileRequest {
        workload: mvm_ir::decode::from_str(&ir.to_string()).unwrap(),
        source_root: root.to_path_buf(),
        spans: BTreeMap::new(),
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

/// A project: `app/main.py` and `addons/tools/{setup.sh, data/msg.txt}`.
fn project() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let p = root.path();
    std::fs::create_dir_all(p.join("app")).unwrap();
    std::fs::write(p.join("app/main.py"), "print(1)\n").unwrap();
    std::fs::create_dir_all(p.join("addons/tools/data")).unwrap();
    std::fs::write(
        p.join("addons/tools/setup.sh"),
        "cat /app/.mvm/addons/tools/data/msg.txt > /run/addon-ran\n",
    )
    .unwrap();
    std::fs::set_permissions(
        p.join("addons/tools/setup.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(p.join("addons/tools/data/msg.txt"), "from tools\n").unwrap();
    root
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.is_error()).collect()
}

fn rejected(root: &Path, ir: &Value) -> Vec<Finding> {
    let out = root.join("out");
    let err = compile(&request(root, ir), &out, &opts()).unwrap_err();
    assert!(!out.exists(), "a rejected compile writes nothing");
    match err {
        CompileError::Rejected { findings } => findings,
        other => panic!("{other}"),
    }
}

#[test]
fn a_missing_addon_directory_is_refused_at_its_path() {
    let root = project();
    let ir = ir(tools("addons/nope"));
    let result = check(&request(root.path(), &ir));
    let errs = errors(&result.findings);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let f = errs[0];
    assert_eq!(f.code, Code::ESourceUnreadable);
    assert_eq!(f.path, "/apps/0/addons/0/source/path");
    assert!(
        f.message.contains("addons/nope") && f.message.contains("addon `tools`"),
        "{}",
        f.message
    );
    assert!(
        f.hint.contains(&root.path().display().to_string()) && f.hint.contains("--source-root"),
        "{}",
        f.hint
    );
    // compile refuses it the same way.
    let findings = rejected(root.path(), &ir);
    assert!(findings.iter().any(|g| g == f), "{findings:?}");
}

#[test]
fn an_addon_outside_the_project_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(project.join("app/main.py"), "").unwrap();
    std::fs::create_dir_all(outer.path().join("outside")).unwrap();
    std::fs::write(outer.path().join("outside/secret"), "x").unwrap();

    let f = errors(&check(&request(&project, &ir(tools("../outside")))).findings)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].code, f[0].path.as_str()),
        (Code::ESourceEscapes, "/apps/0/addons/0/source/path")
    );
    assert!(!f[0].message.contains("symlink"), "{}", f[0].message);

    // The same through a symlink, which the message then says.
    symlink(outer.path().join("outside"), project.join("linked")).unwrap();
    let f = errors(&check(&request(&project, &ir(tools("linked")))).findings)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].code, Code::ESourceEscapes);
    assert!(
        f[0].message.contains("through a symlink"),
        "{}",
        f[0].message
    );

    // A file is not an addon directory.
    let f = errors(&check(&request(&project, &ir(tools("app/main.py")))).findings)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        (f[0].code, f[0].message.contains("not a directory")),
        (Code::ESourceUnreadable, true)
    );
}

/// A link leaving the addon's directory is refused exactly as one leaving
/// the app's source root: same code and message, at the addon's pointer.
#[test]
fn a_symlink_out_of_an_addon_is_refused_like_one_out_of_the_app() {
    let root = project();
    let p = root.path();
    std::fs::write(p.join("secret"), "x").unwrap();
    symlink("../../secret", p.join("addons/tools/leak")).unwrap();
    symlink("/etc/passwd", p.join("addons/tools/abs")).unwrap();
    symlink("data/msg.txt", p.join("addons/tools/ok")).unwrap();
    symlink("../secret", p.join("app/leak")).unwrap();
    let result = check(&request(p, &ir(tools("addons/tools"))));
    let errs = errors(&result.findings);
    let at = |ptr: &str| -> Vec<String> {
        errs.iter()
            .filter(|f| f.path == ptr)
            .map(|f| {
                assert_eq!(f.code, Code::ESourceUnreadable);
                f.message.clone()
            })
            .collect()
    };
    assert_eq!(
        at("/apps/0/source"),
        ["leak: this symlink points outside the source root (../secret)"]
    );
    assert_eq!(
        at("/apps/0/addons/0/source"),
        [
            "abs: this symlink points to the absolute path /etc/passwd, which is outside the addon's directory \
             (the bundle is mounted at /app in the guest)",
            "leak: this symlink points outside the addon's directory (../../secret)",
        ]
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    // Without the escaping links, the inside one is kept as a link.
    std::fs::remove_file(p.join("addons/tools/leak")).unwrap();
    std::fs::remove_file(p.join("addons/tools/abs")).unwrap();
    std::fs::remove_file(p.join("app/leak")).unwrap();
    let out = p.join("out");
    compile(&request(p, &ir(tools("addons/tools"))), &out, &opts()).unwrap();
    assert_eq!(
        std::fs::read_link(out.join("src/.mvm/addons/tools/ok")).unwrap(),
        Path::new("data/msg.txt")
    );
}

#[test]
fn addon_files_are_bundled_under_mvm_addons_and_covered_by_the_hashes() {
    let root = project();
    let p = root.path();
    // Never bundled, as in the app's source.
    std::fs::create_dir_all(p.join("addons/tools/.git")).unwrap();
    std::fs::write(p.join("addons/tools/.git/config"), "[core]\n").unwrap();
    let out = p.join("out");
    let o = compile(&request(p, &ir(tools("addons/tools"))), &out, &opts()).unwrap();

    let src = out.join("src");
    assert_eq!(
        std::fs::read_to_string(src.join(".mvm/addons/tools/data/msg.txt")).unwrap(),
        "from tools\n"
    );
    let mode = |rel: &str| {
        std::fs::metadata(src.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".mvm/addons/tools/setup.sh"), 0o755);
    assert_eq!(mode(".mvm/addons/tools/data/msg.txt"), 0o644);
    assert!(!src.join(".mvm/addons/tools/.git").exists());
    // The app's own files are where they were.
    assert!(src.join("main.py").is_file());
    assert_eq!(o.bundled, 3);

    // SHA256SUMS lists the addon's files like every other.
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for (rel, bytes) in [
        (
            "src/.mvm/addons/tools/setup.sh",
            std::fs::read(p.join("addons/tools/setup.sh")).unwrap(),
        ),
        (
            "src/.mvm/addons/tools/data/msg.txt",
            b"from tools\n".to_vec(),
        ),
    ] {
        let line = format!("{}  {rel}", sha256_hex(&bytes));
        assert!(sums.lines().any(|l| l == line), "{line} not in\n{sums}");
    }

    // launch.json's tree hash is the documented hash over all of src/.
    let script = std::fs::read(p.join("addons/tools/setup.sh")).unwrap();
    let (s1, s2, s3) = (
        sha256_hex(b"print(1)\n"),
        sha256_hex(&script),
        sha256_hex(b"from tools\n"),
    );
    let expected = tree_hash([
        (
            "main.py",
            Item::File {
                executable: false,
                sha256: &s1,
            },
        ),
        (
            ".mvm/addons/tools/setup.sh",
            Item::File {
                executable: true,
                sha256: &s2,
            },
        ),
        (
            ".mvm/addons/tools/data/msg.txt",
            Item::File {
                executable: false,
                sha256: &s3,
            },
        ),
    ]);
    let launch: Value =
        serde_json::from_slice(&std::fs::read(out.join("launch.json")).unwrap()).unwrap();
    assert_eq!(
        launch["source"],
        json!({ "files": 3, "tree_hash": expected })
    );
    assert_eq!(o.tree_hash, expected);

    // Changing an addon file changes the tree hash.
    std::fs::write(p.join("addons/tools/data/msg.txt"), "changed\n").unwrap();
    let out2 = p.join("out2");
    let o2 = compile(&request(p, &ir(tools("addons/tools"))), &out2, &opts()).unwrap();
    assert_ne!(o2.tree_hash, o.tree_hash);
}

#[test]
fn app_files_at_the_addons_place_are_refused() {
    for clash in [".mvm/addons/tools/setup.sh", ".mvm/addons/x", ".mvm"] {
        let root = project();
        let p = root.path();
        let file = p.join("app").join(clash);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "mine").unwrap();
        let findings = rejected(p, &ir(tools("addons/tools")));
        let errs = errors(&findings);
        assert_eq!(errs.len(), 1, "{clash}: {errs:?}");
        assert_eq!(
            (errs[0].code, errs[0].path.as_str()),
            (Code::EInvalidValue, "/apps/0/source"),
            "{clash}"
        );
        assert!(
            errs[0].message.starts_with(&format!("{clash}: ")) && errs[0].hint.contains("exclude"),
            "{errs:?}"
        );
    }
    // A `.mvm` symlink would lead the addons' files elsewhere.
    let root = project();
    let p = root.path();
    std::fs::create_dir_all(p.join("app/elsewhere")).unwrap();
    symlink("elsewhere", p.join("app/.mvm")).unwrap();
    let errs = rejected(p, &ir(tools("addons/tools")));
    assert!(
        errs.iter()
            .any(|f| f.code == Code::EInvalidValue && f.message.starts_with(".mvm: ")),
        "{errs:?}"
    );
    // Without addons the app may hold what it likes there.
    let root = project();
    let p = root.path();
    std::fs::create_dir_all(p.join("app/.mvm/addons")).unwrap();
    std::fs::write(p.join("app/.mvm/addons/x"), "mine").unwrap();
    let result = check(&request(p, &ir(json!([]))));
    assert!(!result.has_errors(), "{:?}", result.findings);
}

#[test]
fn hooks_of_addons_still_run_first_in_attachment_order() {
    let root = project();
    let p = root.path();
    std::fs::create_dir_all(p.join("addons/second")).unwrap();
    std::fs::write(p.join("addons/second/x"), "").unwrap();
    let addons = json!([
        { "name": "tools", "source": { "kind": "local", "path": "addons/tools" },
          "hooks": { "before_start": [{ "kind": "shell", "line": "echo first" }] } },
        { "name": "second", "source": { "kind": "local", "path": "addons/second" },
          "hooks": { "before_start": [{ "kind": "shell", "line": "echo second" }] } }
    ]);
    let out = p.join("out");
    compile(&request(p, &ir(addons)), &out, &opts()).unwrap();
    let launch: Value =
        serde_json::from_slice(&std::fs::read(out.join("launch.json")).unwrap()).unwrap();
    assert_eq!(
        launch["hooks"]["before_start"],
        json!([
            { "kind": "shell", "line": "echo first" },
            { "kind": "shell", "line": "echo second" },
            { "kind": "shell", "line": "test -s /run/addon-ran" }
        ])
    );
    let script = std::fs::read_to_string(out.join("hooks/before_start.sh")).unwrap();
    let at = |s: &str| script.find(s).unwrap_or_else(|| panic!("{s} in {script}"));
    assert!(at("echo first") < at("echo second") && at("echo second") < at("test -s"));
    assert!(out.join("src/.mvm/addons/second/x").is_file());
}

#[test]
fn the_review_lists_each_addon_with_its_files() {
    let root = project();
    let p = root.path();
    std::fs::write(p.join("addons/tools/private"), "x").unwrap();
    std::fs::set_permissions(
        p.join("addons/tools/private"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let mut req = request(p, &ir(tools("addons/tools")));
    req.spans = BTreeMap::from([(
        "/apps/0/addons/0/source".to_string(),
        Location {
            file: "app.py".into(),
            line: 7,
            column: 9,
        },
    )]);
    let result = check(&req);
    assert!(!result.has_errors(), "{:?}", result.findings);
    assert_eq!(result.bundled, Some(4));
    let review = result.review.unwrap();
    let source = review
        .checks
        .iter()
        .find(|c| c.check.as_str() == "source_narrow")
        .unwrap();
    assert!(
        source
            .summary
            .contains("(1 file(s)); list only what the workload needs; plus addon(s) `tools` (3 file(s)) at /app/.mvm/addons/<name>/; 1 finding(s)"),
        "{}",
        source.summary
    );
    // The private addon file is the source check's finding, located at the addon.
    assert_eq!(source.status, Status::Warn);
    let private = &source.findings[0];
    assert_eq!(
        (
            private.code,
            private.path.as_str(),
            private.location.as_ref().map(|l| l.line)
        ),
        (Code::WSourcePrivateFile, "/apps/0/addons/0/source", Some(7))
    );
}
