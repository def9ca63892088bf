//! The invariants of docs/architecture.md that a program can check, read
//! from the workspace's own manifests and sources (rust-analyzer's "tidy"
//! tests are the model). A change that breaks one must change the doc too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// crate → the workspace crates in its `[dependencies]` (not dev).
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(crates_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line == "[dependencies]";
            } else if in_deps && line.starts_with("mvm") && line.contains("path = ") {
                deps.push(line.split([' ', '=']).next().unwrap().to_string());
            }
        }
        out.insert(
            dir.file_name().unwrap().to_string_lossy().into_owned(),
            deps,
        );
    }
    assert!(
        out.len() >= 12,
        "expected the workspace crates in {}",
        crates_dir().display()
    );
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn leaf_crates_depend_on_nothing_of_ours() {
    let deps = dependencies();
    for leaf in [
        "mvm-ir",
        "mvm-launch",
        "mvm-proto",
        "mvm-vmm",
        "mvm-guest",
        "mvm-packages",
        "mvm-keys",
        "mvm-audit",
        "mvm-secrets",
        "mvm-snapshot",
    ] {
        assert_eq!(
            deps[leaf],
            Vec::<String>::new(),
            "{leaf} must depend on nothing of ours"
        );
    }
}

#[test]
fn no_arrow_runs_back_up_the_pipeline() {
    let deps = dependencies();
    let front = [
        "mvm-ir",
        "mvm-decl",
        "mvm-compile",
        "mvm-recording",
        "mvm-launch",
    ];
    let back = [
        "mvm-image",
        "mvm-runtime",
        "mvm-agent",
        "mvm-vmm",
        "mvm-guest",
    ];
    for f in front {
        for b in back {
            assert!(
                !deps[f].contains(&b.to_string()),
                "{f} (front half) depends on {b} (back half)"
            );
        }
    }
    assert!(!deps["mvm-image"].contains(&"mvm-runtime".to_string()));
    for c in deps.keys().filter(|c| *c != "mvmctl") {
        assert!(
            !deps[c].contains(&"mvmctl".to_string()),
            "{c} depends on the CLI"
        );
    }
}

/// The back half reads `launch.json`, never the IR: from `mvm-ir` it may
/// use only terminal escaping and the address classifier; from
/// `mvm-compile` only the re-derivation that checks a compile output.
#[test]
fn the_back_half_never_reads_the_ir() {
    let allowed_ir = ["mvm_ir::text", "mvm_ir::validate::host"];
    for krate in ["mvm-image", "mvm-runtime", "mvm-agent"] {
        let mut files = Vec::new();
        rust_files(&crates_dir().join(krate).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap();
                for (at, _) in code.match_indices("mvm_ir::") {
                    let rest = &code[at..];
                    assert!(
                        allowed_ir.iter().any(|a| rest.starts_with(a)),
                        "{}:{}: the back half uses the IR: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    );
                }
                for (at, _) in code.match_indices("mvm_compile::") {
                    assert!(
                        code[at..].starts_with("mvm_compile::launch::rederive")
                            || code[at..].starts_with("mvm_compile::launch::Source")
                            || code[at..].starts_with("mvm_compile::bundle::tree_hash"),
                        "{}:{}: the back half uses the compiler: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    );
                }
            }
        }
    }
}

/// Callers get a VMM from `mvm_vmm::backend`, never by naming QEMU (only
/// `doctor` asks QEMU its version).
#[test]
fn only_mvm_vmm_names_qemu() {
    for krate in ["mvm-image", "mvm-runtime"] {
        let mut files = Vec::new();
        rust_files(&crates_dir().join(krate).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                !text.contains("Qemu::"),
                "{} names the QEMU backend",
                file.display()
            );
        }
    }
}

/// The untrusted-input modules the doc names exist, each with its fuzz
/// target, so the list cannot silently go stale.
#[test]
fn the_named_untrusted_input_readers_exist() {
    let root = crates_dir().join("..");
    for path in [
        "crates/mvm-ir/src/decode.rs",
        "crates/mvm-decl/src/python.rs",
        "crates/mvm-decl/src/typescript.rs",
        "crates/mvm-recording/src/format.rs",
        "crates/mvm-launch/src/lib.rs",
        "crates/mvm-plan/src/envelope.rs",
        "crates/mvm-image/src/compiled.rs",
        "crates/mvm-image/src/upper.rs",
        "crates/mvm-proto/src/frame.rs",
        "crates/mvm-egress/src/request.rs",
        "crates/mvm-broker/src/request.rs",
        "crates/mvm-image/src/tree.rs",
    ] {
        assert!(
            root.join(path).is_file(),
            "{path} is named in docs/architecture.md"
        );
    }
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    for target in std::fs::read_dir(root.join("fuzz/fuzz_targets")).unwrap() {
        let name = target
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            doc.contains(&format!("`{name}`")),
            "fuzz target {name} is not in docs/architecture.md"
        );
    }
}
