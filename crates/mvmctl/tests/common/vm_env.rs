//! A user's environment for end-to-end tests that boot real microVMs:
//! an own MVM_HOME, mvmctl run from the repository root with a umask of 0
//! (what mvm keeps private must be private whatever the umask), output
//! echoed for the test log, and `down --all` when dropped so no VM is
//! left behind. Include with `#[path = "common/vm_env.rs"] mod vm_env;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

pub static SERIAL: Mutex<()> = Mutex::new(());

pub struct Env {
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    pub fn mvmctl(&self, args: &[&str]) -> Output {
        self.mvmctl_with(args, &[])
    }

    /// `mvmctl` with more environment variables (`MVM_CACHE_DIR`, ...).
    pub fn mvmctl_with(&self, args: &[&str], vars: &[(&str, &Path)]) -> Output {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
        // A permissive umask: what mvm keeps private must be private
        // whatever the user's umask is.
        // SAFETY: umask is async-signal-safe and touches no memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        let out = cmd
            .args(args)
            .env("MVM_HOME", self.home())
            .env("MVM_SECRETS_KEY_FILE", self.secrets_key())
            .envs(vars.iter().copied())
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

    /// The secret store's key: outside the home, as the store requires.
    pub fn secrets_key(&self) -> PathBuf {
        self.tmp.path().join("secrets.key")
    }

    /// `mvmctl secret set NAME --from-file`, the value never on a command line.
    pub fn secret_set(&self, name: &str, value: &str) {
        let file = self.tmp.path().join(format!("secret-{name}"));
        std::fs::write(&file, value).expect("writing the secret's file");
        self.ok(&["secret", "set", name, "--from-file", file.to_str().unwrap()]);
        std::fs::remove_file(&file).expect("removing the secret's file");
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.mvmctl(args);
        assert!(out.status.success(), "mvmctl {} failed", args.join(" "));
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// image.lock of the image `deploy(_, name)` built (a second build of
    /// the same input is a store lookup that reports it).
    pub fn image_lock(&self, name: &str) -> serde_json::Value {
        let compiled = self.tmp.path().join(format!("{name}-compiled"));
        let report = self.ok(&["build", &compiled.to_string_lossy(), "--json"]);
        let report: serde_json::Value = serde_json::from_str(&report).expect("build --json");
        let lock =
            std::fs::read(report["lock_path"].as_str().expect("lock_path")).expect("image.lock");
        serde_json::from_slice(&lock).expect("image.lock is JSON")
    }

    /// compile + build, into `<tmp>/<name>-compiled`.
    pub fn compile_and_build(&self, declaration: &str, name: &str) {
        let out = self.tmp.path().join(format!("{name}-compiled"));
        let out = out.to_str().unwrap();
        self.ok(&["compile", declaration, "--out", out]);
        self.ok(&["build", out]);
    }

    /// compile + build + up of instance `name`.
    pub fn deploy(&self, declaration: &str, name: &str) {
        self.compile_and_build(declaration, name);
        self.ok(&["up", name]);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Never leave a VM behind, whatever the test did.
        let _ = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .args(["down", "--all"])
            .env("MVM_HOME", self.home())
            .env("MVM_SECRETS_KEY_FILE", self.secrets_key())
            .output();
    }
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

/// VM tests of one binary run one at a time: TCG boots stall when they
/// fight for the two cores.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
