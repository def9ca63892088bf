//! A build that fails part-way (the Debian mirror does not answer) leaves
//! no image, no staging directory and no half-made base root, and reports
//! the build log's tail. Its own test binary: it sets MVM_DEBIAN_MIRROR.

mod common;

use mvm_image::{BuildRequest, ImageError, Progress};

#[test]
fn a_failed_mmdebstrap_leaves_nothing_behind() {
    // Nothing listens on port 9 (discard) of the loopback address here.
    // SAFETY: this test binary has one test and no other threads read the environment.
    unsafe { std::env::set_var("MVM_DEBIAN_MIRROR", "http://127.0.0.1:9/debian") };
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("compiled");
    common::compile(
        work.path(),
        &compiled,
        &["python313", "jq"],
        "",
        "def greet(n):\n    return n\n",
    );
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
    let ImageError::Step {
        step, log, tail, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(step.contains("mmdebstrap"), "{err}");
    assert!(tail.contains("127.0.0.1"), "{err}");
    assert!(log.is_file(), "the build log is kept: {}", log.display());
    assert!(common::images_in(&home).is_empty());
    assert_eq!(common::staging_left(&home), 0);
    let roots: Vec<_> = std::fs::read_dir(cache.join("rootfs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        roots.iter().all(|n| n.to_string_lossy().ends_with(".lock")),
        "{roots:?}"
    );
}
