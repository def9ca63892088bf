//! `before_build` runs inside a real builder microVM (QEMU, the mvm guest
//! kernel and agent), and what it writes lands in the sealed image.

mod common;

use mvm_image::{BuildRequest, ImageError, Progress};

#[test]
fn before_build_runs_in_the_guest_and_its_files_are_sealed_in() {
    let cache = common::cache_dir();
    let _vm = common::vm_lock(&cache);
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("compiled");
    // /proc/1/comm is the guest's PID 1 (the agent), which the host's is not.
    let hook = r#","hooks":{"before_build":[{"kind":"shell","line":"python3 -c 'import sys; print(sys.version_info[:2])' > /app/built.txt && cat /proc/1/comm >> /app/built.txt"}]}"#;
    common::compile(
        work.path(),
        &compiled,
        &["python313"],
        hook,
        "def greet(n):\n    return n\n",
    );
    let home = work.path().join("home");
    let built = mvm_image::build(&BuildRequest {
        input: &compiled,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let written =
        String::from_utf8(common::debugfs_cat(&built.image.rootfs, "/app/built.txt")).unwrap();
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some("(3, 13)"), "{written}");
    let comm = lines.next().unwrap_or_default();
    assert_ne!(comm, "systemd", "{written}");
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&built.image.lock).unwrap()).unwrap();
    assert!(
        lock["kernel"]
            .as_str()
            .is_some_and(|k| k.contains("linux-image")),
        "{}",
        lock["kernel"]
    );
    // Run-time state of the builder guest is not image content.
    assert!(common::debugfs_stat(&built.image.rootfs, "/run/mvm").contains("not found"));
    assert_eq!(common::staging_left(&home), 0);
}

#[test]
fn a_failing_before_build_fails_the_build_and_stores_nothing() {
    let cache = common::cache_dir();
    let _vm = common::vm_lock(&cache);
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("compiled");
    let hook =
        r#","hooks":{"before_build":[{"kind":"shell","line":"echo about to fail; exit 3"}]}"#;
    common::compile(
        work.path(),
        &compiled,
        &["python313"],
        hook,
        "def greet(n):\n    return n\n",
    );
    let home = work.path().join("home");
    let err = mvm_image::build(&BuildRequest {
        input: &compiled,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
    })
    .unwrap_err();
    let ImageError::Step { step, tail, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(step.contains("before_build"), "{err}");
    assert!(tail.contains("about to fail"), "{err}");
    assert!(common::images_in(&home).is_empty());
    assert_eq!(common::staging_left(&home), 0);
}
