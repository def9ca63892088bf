//! Builds that must fail before doing any work, with a message that says
//! what to change, and leave the store as it was.

mod common;

use mvm_image::{BuildRequest, ImageError, Progress};

const HELLO: &str = "def greet(name):\n    return name\n";

fn build(
    packages: &[&str],
    extra: &str,
) -> (tempfile::TempDir, Result<mvm_image::Built, ImageError>) {
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("compiled");
    common::compile(work.path(), &compiled, packages, extra, HELLO);
    let home = work.path().join("home");
    let cache = work.path().join("cache");
    let result = mvm_image::build(&BuildRequest {
        input: &compiled,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    });
    (work, result)
}

fn assert_store_clean(work: &tempfile::TempDir) {
    let home = work.path().join("home");
    assert!(common::images_in(&home).is_empty());
    assert_eq!(common::staging_left(&home), 0);
    assert!(!home.join("images/names").exists());
    // Nothing was fetched either.
    assert!(!work.path().join("cache/rootfs").exists());
}

#[test]
fn python312_names_the_versions_that_exist() {
    let (work, result) = build(&["python312", "uv"], "");
    let err = result.unwrap_err();
    assert!(matches!(err, ImageError::Resolve(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("python312") && msg.contains("python311") && msg.contains("python313"),
        "{msg}"
    );
    assert_store_clean(&work);
}

#[test]
fn oci_base_is_refused() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("compiled");
    common::compile(work.path(), &compiled, &["python313"], "", HELLO);
    // Swap the image for an OCI base in a compiled output of its own making.
    let ir = std::fs::read_to_string(compiled.join("workload.json")).unwrap();
    let ir = ir.replace(
        r#"{"kind":"nix_packages","packages":["python313"]}"#,
        &format!(
            r#"{{"digest":"{digest}","kind":"oci_base","reference":"docker.io/library/python"}}"#
        ),
    );
    let workload = mvm_ir::decode::from_str(&ir).unwrap_or_else(|f| panic!("{f:?}"));
    let src = work.path().join("src-root");
    let req = mvm_compile::CompileRequest {
        workload,
        source_root: src,
        spans: Default::default(),
        findings: vec![],
        origin: "ir:test".into(),
        extra_files: Default::default(),
    };
    let oci = work.path().join("oci");
    mvm_compile::compile(
        &req,
        &oci,
        &mvm_compile::CompileOptions {
            mtime: 0,
            toolchain_version: "t".into(),
        },
    )
    .unwrap();
    let home = work.path().join("home");
    let cache = work.path().join("cache");
    let err = mvm_image::build(&BuildRequest {
        input: &oci,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    })
    .unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
    assert_store_clean(&work);
}

#[test]
fn dependencies_without_the_gate_program_are_refused_not_run_on_the_host() {
    let (work, result) = build(
        &["python313", "uv"],
        r#","dependencies":{"kind":"python","lockfile":"uv.lock","tool":"uv"}"#,
    );
    let err = result.unwrap_err();
    assert!(matches!(err, ImageError::NeedsBuilderVm { .. }), "{err:?}");
    assert!(err.to_string().contains("uv.lock"), "{err}");
    assert_store_clean(&work);
}

#[test]
fn a_changed_compile_output_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("compiled");
    common::compile(work.path(), &compiled, &["python313"], "", HELLO);
    std::fs::write(compiled.join("src/app.py"), "import os; os.system('id')\n").unwrap();
    let home = work.path().join("home");
    let cache = work.path().join("cache");
    let err = mvm_image::build(&BuildRequest {
        input: &compiled,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    })
    .unwrap_err();
    assert!(matches!(err, ImageError::Checksum { .. }), "{err:?}");
    assert!(err.to_string().contains("app.py"), "{err}");
    assert_store_clean(&work);
}
