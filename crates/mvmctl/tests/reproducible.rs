//! Reproducible images (docs/images.md, "Reproducible images"): the same
//! compile output built in two separate homes with separate, empty
//! download caches (two machines of this kind, as far as one host can
//! stand in for them) gives the same `rootfs.ext4` and `image.lock`; so
//! does a rebuild with warm caches; a plan signed against one verifies
//! against the other; and `build --check-reproducible` names exactly what
//! a non-deterministic `before_build` changed. Real mmdebstrap, real
//! builder microVMs, real registries.

#[path = "common/vm_env.rs"]
mod vm_env;

use std::path::{Path, PathBuf};

use serde_json::Value;
use vm_env::{Env, repo_root, serial};

/// One "machine": its own home and its own download cache.
struct Machine {
    env: Env,
}

impl Machine {
    fn new() -> Machine {
        Machine { env: Env::new() }
    }

    fn cache(&self) -> PathBuf {
        self.env.tmp.path().join("cache")
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let cache = self.cache();
        self.env.mvmctl_with(args, &[("MVM_CACHE_DIR", &cache)])
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "mvmctl {} failed", args.join(" "));
        String::from_utf8(out.stdout).unwrap()
    }

    fn compile(&self, declaration: &str) -> String {
        let out = self.env.tmp.path().join("compiled");
        let out = out.to_str().unwrap().to_string();
        self.ok(&["compile", declaration, "--out", &out]);
        out
    }

    /// `build --json`: (rootfs bytes, image.lock bytes, image id).
    fn build(&self, compiled: &str) -> (Vec<u8>, Vec<u8>, String) {
        let report: Value = serde_json::from_str(&self.ok(&["build", compiled, "--json"])).unwrap();
        let read = |key: &str| std::fs::read(report[key].as_str().unwrap()).unwrap();
        (
            read("rootfs_path"),
            read("lock_path"),
            report["image_id"].as_str().unwrap().to_string(),
        )
    }
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn two_machines_build_the_same_bytes_a_plan_signed_on_one_verifies_on_the_other_and_a_lock_rebuilds_it()
 {
    let _serial = serial();
    let (a, b) = (Machine::new(), Machine::new());
    let compiled = a.compile("examples/python/hello-app/app.py");
    let (rootfs_a, lock_a, id_a) = a.build(&compiled);
    a.ok(&["key", "generate", "alice"]);
    let plan = a.env.tmp.path().join("plan.json");
    let plan = plan.to_str().unwrap();
    a.ok(&["plan", &compiled, "--out", plan]);
    a.ok(&["sign", plan, "--key", "alice"]);
    let alice = a.env.tmp.path().join("alice.pub");
    std::fs::write(&alice, a.ok(&["key", "export", "alice"])).unwrap();

    // The other machine rebuilds from the same compile output.
    let (rootfs_b, lock_b, id_b) = b.build(&compiled);
    assert_eq!(id_a, id_b);
    assert!(
        rootfs_a == rootfs_b,
        "rootfs.ext4 differs between the machines ({} vs {})",
        sha(&rootfs_a),
        sha(&rootfs_b)
    );
    assert_eq!(lock_a, lock_b, "image.lock differs between the machines");
    let verified = b.ok(&["verify", plan, "--key", alice.to_str().unwrap()]);
    assert!(verified.contains("signed by: alice"), "{verified}");
    assert!(verified.contains("files match"), "{verified}");

    // Warm caches: the image removed from the store and built again.
    a.ok(&["image", "rm", &id_a]);
    let (rootfs_warm, lock_warm, _) = a.build(&compiled);
    assert!(rootfs_warm == rootfs_a, "a warm-cache rebuild differs");
    assert_eq!(lock_warm, lock_a);

    // A third machine, nothing cached, rebuilds from the lock: every
    // Debian package checked against its locked version; the same bytes.
    let c = Machine::new();
    let lock_file = c.env.tmp.path().join("image.lock");
    std::fs::write(&lock_file, &lock_a).unwrap();
    let lock_arg = lock_file.to_str().unwrap();
    let report: Value =
        serde_json::from_str(&c.ok(&["build", &compiled, "--locked", lock_arg, "--json"])).unwrap();
    let rootfs_c = std::fs::read(report["rootfs_path"].as_str().unwrap()).unwrap();
    assert!(rootfs_c == rootfs_a, "a --locked rebuild differs");
    assert_eq!(
        std::fs::read(report["lock_path"].as_str().unwrap()).unwrap(),
        lock_a
    );

    // A version the mirror no longer has: refused, naming the package.
    let mut gone: Value = serde_json::from_slice(&lock_a).unwrap();
    let python = gone["debian"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["name"] == "python3.13")
        .expect("hello-app's root has python3.13");
    python["version"] = "3.13.0~mvm-test-1".into();
    let gone_file = c.env.tmp.path().join("gone.lock");
    std::fs::write(&gone_file, serde_json::to_vec_pretty(&gone).unwrap()).unwrap();
    c.ok(&["image", "rm", &id_a]);
    let out = c.run(&["build", &compiled, "--locked", gone_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Debian package python3.13")
            && err.contains("locked at 3.13.0~mvm-test-1")
            && err.contains("no longer offers"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(
        std::fs::read_dir(c.env.home().join("images"))
            .unwrap()
            .flatten()
            .all(|e| e.file_name() == "names" || e.file_name() == ".tmp"),
        "nothing half-built is left in the store"
    );

    // A lock of other inputs: refused before anything is built.
    let mut other: Value = serde_json::from_slice(&lock_a).unwrap();
    other["inputs"]["sha256sums"] = "0".repeat(64).into();
    std::fs::write(&gone_file, serde_json::to_vec_pretty(&other).unwrap()).unwrap();
    let out = c.run(&["build", &compiled, "--locked", gone_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("inputs: the lock is for compile output"),
        "{err}"
    );

    // The boot artifacts each machine made for the builder: the same too.
    let initramfs = |m: &Machine| -> Vec<(String, String)> {
        let dir = m.cache().join("initramfs");
        let mut v: Vec<(String, String)> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let bytes = std::fs::read(e.path()).unwrap();
                        (e.file_name().to_string_lossy().into_owned(), sha(&bytes))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(initramfs(&a), initramfs(&b));
}

/// `--check-reproducible` of `decl`, as JSON, with its exit status.
fn check(decl: &Path) -> (i32, Value) {
    let m = Machine::new();
    let compiled = m.compile(decl.to_str().unwrap());
    let out = m.run(&["build", &compiled, "--check-reproducible", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // Its scratch space is gone.
    let left: Vec<_> = std::fs::read_dir(m.env.home())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".check-reproducible")
        })
        .collect();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
    // Nothing of the two builds is left in the user's store.
    let images = m.env.home().join("images");
    assert!(
        std::fs::read_dir(&images).map_or(true, |mut d| d.next().is_none()),
        "the check leaves the store as it was"
    );
    (out.status.code().unwrap(), report)
}

#[test]
fn a_before_build_that_writes_the_date_is_named_and_nothing_else() {
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let app = std::fs::read_to_string(repo_root().join("examples/python/service/app.py")).unwrap();
    let marker = r#"before_build="echo built-at-build-time > /etc/service-build-marker""#;
    assert!(
        app.contains(marker),
        "the example still has its before_build"
    );
    let app = app.replace(marker, r#"before_build="date +%s%N > /etc/built-at""#);
    std::fs::write(project.path().join("app.py"), app).unwrap();
    std::fs::copy(
        repo_root().join("examples/python/service/service.py"),
        project.path().join("service.py"),
    )
    .unwrap();
    let (code, report) = check(&project.path().join("app.py"));
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["identical"], false);
    let differences = report["differences"].as_array().unwrap();
    let named: Vec<(&str, &str)> = differences
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap(),
                d["attribute"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(named, [("/etc/built-at", "content")], "{report:#}");
}

/// A command service whose hooks run in the builder microVM, and uv and
/// npm installs there.
#[test]
fn hooks_and_dependencies_run_in_the_builder_build_to_the_same_bytes() {
    let _serial = serial();
    for decl in [
        "examples/python/service/app.py",
        "examples/python/deps-app/app.py",
        "examples/node/deps-app/app.ts",
    ] {
        let (code, report) = check(&repo_root().join(decl));
        assert_eq!(code, 0, "{decl}: {report:#}");
        assert_eq!(report["identical"], true, "{decl}");
        assert_eq!(report["rootfs_sha256"][0], report["rootfs_sha256"][1]);
    }
}
