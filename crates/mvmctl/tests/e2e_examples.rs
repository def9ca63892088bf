//! End to end, as a user runs it: `mvmctl compile → build → up → invoke →
//! down` on the examples under examples/, with real images and real
//! microVMs (QEMU; TCG on hosts without usable KVM).
//!
//! Each test owns an MVM_HOME; the kernel and base roots come from the
//! shared MVM_CACHE_DIR so only the first test pays for downloads. VM tests
//! run one at a time: TCG boots stall when they fight for the two cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn mvmctl(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .args(args)
            .env("MVM_HOME", self.home())
            .current_dir(repo_root())
            .output()
            .expect("run mvmctl");
        eprintln!(
            "$ mvmctl {}\n[exit {:?}]\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.mvmctl(args);
        assert!(out.status.success(), "mvmctl {} failed", args.join(" "));
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// compile + build + up; returns the instance name.
    fn deploy(&self, declaration: &str, name: &str) {
        let out = self.tmp.path().join(format!("{name}-compiled"));
        let out = out.to_str().unwrap();
        self.ok(&["compile", declaration, "--out", out]);
        self.ok(&["build", out]);
        self.ok(&["up", name]);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Never leave a VM behind, whatever the test did.
        let _ = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .args(["down", "--all"])
            .env("MVM_HOME", self.home())
            .output();
    }
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn python_hello_app() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/hello-app/app.py", "hello-app");
    let result = env.ok(&["invoke", "hello-app", "--input", "name=ari"]);
    assert_eq!(result.trim_end(), r#""hello ari""#);
    env.ok(&["down", "hello-app"]);
    let ps = env.ok(&["ps", "--json"]);
    assert!(!ps.contains("hello-app"), "instance left behind: {ps}");
}

#[test]
fn math_two_entrypoints() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/math/mathsvc.py", "math");
    let add = env.ok(&["invoke", "math", "--json", r#"{"a": 6, "b": 7}"#]);
    assert_eq!(add.trim_end(), "13");
    let mul = env.ok(&[
        "invoke",
        "math",
        "--entrypoint",
        "mul",
        "--input",
        "a=6",
        "--input",
        "b=7",
    ]);
    assert_eq!(mul.trim_end(), "42");
    env.ok(&["down", "math"]);
}

#[test]
fn command_service_with_every_hook() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/service/app.py", "service");
    let events = env.ok(&["exec", "service", "--", "cat", "/run/mvm-events.log"]);
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        lines,
        [
            "before_start banner=hi",
            "built-at-build-time",
            "service-start banner=hi",
            "after_start-ok",
        ],
        "hooks and service ran out of order"
    );
    let down = env.mvmctl(&["down", "service"]);
    assert!(down.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&down.stdout),
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        said.contains("before_stop"),
        "before_stop output not shown by down: {said}"
    );
}
