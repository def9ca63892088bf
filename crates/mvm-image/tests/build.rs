//! Real builds: mvm-compile output → mmdebstrap root → ext4 image in a
//! fresh store. The base root is cached in the shared cache dir, so only
//! the first run on a machine downloads Debian packages.

mod common;

use std::time::Instant;

use mvm_image::{BuildRequest, Progress};

const HELLO: &str = "def greet(name):\n    return f\"hello {name}\"\n";

#[test]
fn hello_python_builds_seals_and_rebuilds_without_work() {
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let compiled = work.path().join("compiled");
    common::compile(work.path(), &compiled, &["python313"], "", HELLO);
    let cache = common::cache_dir();
    let req = BuildRequest {
        input: &compiled,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    };

    let started = Instant::now();
    let built = mvm_image::build(&req).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "first build: {:.1?} (cached base root may apply)",
        started.elapsed()
    );
    assert!(!built.cached);
    let image = &built.image;
    let size = std::fs::metadata(&image.rootfs).unwrap().len();
    eprintln!("image size: {} bytes ({} MiB)", size, size >> 20);
    assert_eq!(size, image.meta.size_bytes);
    assert!(
        size <= 120 << 20,
        "hello image is {} MiB, over 120 MiB",
        size >> 20
    );

    // The guest sees the workload where the architecture says.
    let launch = std::fs::read(compiled.join("launch.json")).unwrap();
    assert_eq!(
        common::debugfs_cat(&image.rootfs, "/etc/mvm/launch.json"),
        launch
    );
    assert_eq!(std::fs::read(&image.launch_json).unwrap(), launch);
    assert_eq!(
        common::debugfs_cat(&image.rootfs, "/app/app.py"),
        HELLO.as_bytes()
    );
    let hook = common::debugfs_cat(&image.rootfs, "/etc/mvm/hooks/before_start.sh");
    assert!(String::from_utf8_lossy(&hook).contains("echo starting"));
    assert!(
        common::debugfs_stat(&image.rootfs, "/etc/mvm/hooks/before_start.sh")
            .contains("Mode:  0755")
    );
    assert!(common::debugfs_stat(&image.rootfs, "/usr/bin/python3.13").contains("Type: regular"));
    // Trimmed: no man pages or docs besides copyright files.
    assert!(common::debugfs_stat(&image.rootfs, "/usr/share/man/man1").contains("not found"));

    // image.lock: every Debian package with its version, and the input hashes.
    let lock_bytes = std::fs::read(&image.lock).unwrap();
    assert_eq!(
        common::debugfs_cat(&image.rootfs, "/etc/mvm/image.lock"),
        lock_bytes
    );
    let lock: serde_json::Value = serde_json::from_slice(&lock_bytes).unwrap();
    assert_eq!(lock["suite"], "trixie");
    assert_eq!(lock["image_id"], image.id.as_str());
    let debs = lock["debian"].as_array().unwrap();
    let python = debs
        .iter()
        .find(|p| p["name"] == "python3.13")
        .expect("python3.13 in image.lock");
    assert!(
        python["version"].as_str().unwrap().starts_with("3.13"),
        "{python}"
    );
    assert!(debs.iter().any(|p| p["name"] == "libc6"));
    assert!(
        !debs.iter().any(|p| p["name"] == "usrmerge"),
        "usrmerge pulls in perl"
    );
    let workload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(compiled.join("launch.json")).unwrap()).unwrap();
    assert_eq!(lock["inputs"]["ir_hash"], workload["ir_hash"]);
    let sums = std::fs::read(compiled.join("SHA256SUMS")).unwrap();
    let sums_hash = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&sums));
    assert_eq!(lock["inputs"]["sha256sums"], sums_hash.as_str());

    // The store resolves the image by id, prefix, app name, workload id and compile dir.
    for target in [
        image.id.as_str(),
        &image.id[..12],
        "hello",
        "hello-wl",
        compiled.to_str().unwrap(),
    ] {
        assert_eq!(
            mvm_image::resolve(&home, target).unwrap().id,
            image.id,
            "{target}"
        );
    }
    assert!(
        mvm_image::resolve(&home, "nope")
            .unwrap_err()
            .to_string()
            .contains("mvmctl build")
    );

    // Unchanged input: no work, same image.
    let started = Instant::now();
    let again = mvm_image::build(&req).unwrap();
    eprintln!("rebuild: {:.1?}", started.elapsed());
    assert!(again.cached);
    assert_eq!(again.image.id, image.id);

    // Changed source: a new image on the same cached base root; the name follows it.
    let compiled2 = work.path().join("compiled2");
    common::compile(
        work.path(),
        &compiled2,
        &["python313"],
        "",
        "def greet(name):\n    return name\n",
    );
    let started = Instant::now();
    let second = mvm_image::build(&BuildRequest {
        input: &compiled2,
        ..req
    })
    .unwrap();
    eprintln!("build on cached base root: {:.1?}", started.elapsed());
    assert_ne!(second.image.id, image.id);
    assert_eq!(second.image.meta.base_key, image.meta.base_key);
    assert_eq!(
        mvm_image::resolve(&home, "hello").unwrap().id,
        second.image.id
    );
    assert_eq!(common::images_in(&home).len(), 2);
    assert_eq!(common::staging_left(&home), 0);
}

#[test]
fn archives_build_like_directories() {
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let tgz = work.path().join("hello.tgz");
    common::compile(work.path(), &tgz, &["python313"], "", HELLO);
    let cache = common::cache_dir();
    let built = mvm_image::build(&BuildRequest {
        input: &tgz,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        common::debugfs_cat(&built.image.rootfs, "/app/app.py"),
        HELLO.as_bytes()
    );
    assert_eq!(common::staging_left(&home), 0);
}
