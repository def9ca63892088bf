//! `mvm_image::plan`: the build decided from a real compile output, with
//! nothing downloaded or written to the store. (No VM, no base root.)

mod common;

use mvm_image::ImageError;

fn plan_of(
    packages: &[&str],
    extra: &str,
) -> (tempfile::TempDir, Result<mvm_image::Plan, ImageError>) {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("compiled");
    common::compile(
        work.path(),
        &out,
        packages,
        extra,
        "def greet(name):\n    return name\n",
    );
    let home = work.path().join("home");
    let plan = mvm_image::plan(&mvm_image::BuildRequest {
        input: &out,
        home: &home,
        cache_dir: &work.path().join("cache"),
        progress: mvm_image::Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    });
    assert!(
        common::images_in(&home).is_empty(),
        "planning wrote an image"
    );
    assert!(
        !work.path().join("cache").exists(),
        "planning touched the cache"
    );
    (work, plan)
}

#[test]
fn a_plain_function_needs_no_builder_vm() {
    let (_w, plan) = plan_of(&["python313"], r#","hooks":{}"#);
    let plan = plan.unwrap_or_else(|e| panic!("{e}"));
    assert!(!plan.needs_vm());
    assert_eq!(plan.install_lockfile(), None);
    assert!(
        plan.root().debs.iter().any(|d| d.starts_with("python3")),
        "{:?}",
        plan.root().debs
    );
}

#[test]
fn before_build_needs_the_builder_vm() {
    let (_w, plan) = plan_of(
        &["python313"],
        r#","hooks":{"before_build":[{"kind":"shell","line":"true"}]}"#,
    );
    assert!(plan.unwrap().needs_vm());
}

#[test]
fn what_cannot_be_built_is_refused_by_the_plan() {
    let (_w, plan) = plan_of(
        &["python313"],
        r#","dependencies":{"kind":"python","lockfile":"uv.lock","tool":"uv"}"#,
    );
    let err = plan
        .err()
        .expect("dependencies without a gate program")
        .to_string();
    assert!(
        err.contains("installing uv dependencies from `uv.lock`"),
        "{err}"
    );

    let (_w, plan) = plan_of(&["python313", "no-such-package-xyz"], "");
    let err = plan.err().expect("an unknown package").to_string();
    assert!(err.contains("no-such-package-xyz"), "{err}");
}
