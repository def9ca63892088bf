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
        allow_private_egress: &[],
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
        allow_private_egress: &[],
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

/// (len, mtime, ctime) of every file the host reaches under `dirs`,
/// following links: any write through a planted link changes one of them.
fn host_files(dirs: &[&str]) -> std::collections::BTreeMap<std::path::PathBuf, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    for dir in dirs {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(m) = std::fs::metadata(e.path()) {
                out.insert(e.path(), (m.len(), m.mtime(), m.ctime()));
            }
        }
    }
    out
}

/// A hostile before_build: it replaces files that are absolute links in
/// the base (the host merged them with `cp`, which wrote through to the
/// host's own files), points /etc/mvm/image.lock and /mnt at host paths,
/// and leaves a symlink loop and a 10,000-link chain. The host's files are
/// untouched, the links are data in the image, and mvm's own files in
/// /etc/mvm are the compiled ones.
#[test]
fn links_planted_by_before_build_never_reach_the_host() {
    let cache = common::cache_dir();
    let _vm = common::vm_lock(&cache);
    let work = tempfile::tempdir().unwrap();
    let victim_dir = work.path().join("victim");
    std::fs::create_dir(&victim_dir).unwrap();
    let victim = victim_dir.join("image.lock");
    std::fs::write(&victim, b"host file\n").unwrap();
    // Old merges removed `upper/mnt/mvm` after resolving a planted `mnt`.
    std::fs::create_dir(victim_dir.join("mvm")).unwrap();
    std::fs::write(victim_dir.join("mvm/keep"), b"keep").unwrap();
    let v = victim.display();
    let d = victim_dir.display();
    let script = format!(
        "set -e\n\
         for f in /usr/bin/* /usr/sbin/* /etc/alternatives/*; do \
           if [ -L \"$f\" ] && readlink \"$f\" | grep -q '^/'; then rm \"$f\"; echo guest > \"$f\"; echo \"$f\" >> /app/replaced; fi; \
         done\n\
         ln -sf {v} /etc/mvm/image.lock\n\
         ln -sf {v} /etc/mvm/launch.json\n\
         rm -rf /mnt && ln -s {d} /mnt\n\
         ln -s loop-b /app/loop-a && ln -s loop-a /app/loop-b\n\
         mkdir /app/chain\n\
         python3 -c \"import os; [os.symlink(f'l{{i+1}}', f'/app/chain/l{{i}}') for i in range(10000)]\"\n\
         ln -s {d} /app/chain/l10000\n"
    );
    let hook = serde_json::json!({"hooks": {"before_build": [{"kind": "shell", "line": script}]}});
    let hook = format!(",{}", &hook.to_string()[1..hook.to_string().len() - 1]);
    let compiled = work.path().join("compiled");
    common::compile(
        work.path(),
        &compiled,
        &["python313"],
        &hook,
        "def greet(n):\n    return n\n",
    );
    let watched = ["/usr/bin", "/usr/sbin", "/etc/alternatives", "/bin"];
    let before = host_files(&watched);
    let built = common::build_plain(&compiled, &work.path().join("home"), &cache)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&victim).unwrap(), b"host file\n");
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 2);
    assert_eq!(std::fs::read(victim_dir.join("mvm/keep")).unwrap(), b"keep");
    assert_eq!(before, host_files(&watched), "a host file changed");

    let replaced =
        String::from_utf8(common::debugfs_cat(&built.image.rootfs, "/app/replaced")).unwrap();
    assert!(
        replaced.lines().count() > 0,
        "the base has absolute links to replace"
    );
    let first = replaced.lines().next().unwrap();
    assert_eq!(common::debugfs_cat(&built.image.rootfs, first), b"guest\n");
    let lock: serde_json::Value = serde_json::from_slice(&common::debugfs_cat(
        &built.image.rootfs,
        "/etc/mvm/image.lock",
    ))
    .expect("image.lock is the real one, not a link");
    assert!(lock["image_id"].is_string(), "{lock}");
    assert_eq!(
        common::debugfs_cat(&built.image.rootfs, "/etc/mvm/launch.json"),
        std::fs::read(compiled.join("launch.json")).unwrap()
    );
    assert!(common::debugfs_stat(&built.image.rootfs, "/mnt").contains("Type: symlink"));
    assert!(common::debugfs_stat(&built.image.rootfs, "/app/loop-a").contains("Type: symlink"));
    assert!(
        common::debugfs_stat(&built.image.rootfs, "/app/chain/l9999").contains("Type: symlink")
    );
}
