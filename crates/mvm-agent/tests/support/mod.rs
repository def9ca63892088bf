//! A real `mvm-agent` in dev mode on a unix socket, with its own guest root
//! in a temporary directory, and a protocol client connected to it.

#![allow(dead_code)] // each test binary uses a different part

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::Duration;

use mvm_proto::Client;
use serde_json::Value;
use tempfile::TempDir;

pub struct DevAgent {
    pub child: Child,
    pub dir: TempDir,
    pub client: Client,
}

impl DevAgent {
    /// Starts an agent whose guest root is a fresh directory; `setup`
    /// fills the root before the agent starts.
    pub fn start(setup: impl FnOnce(&Path)) -> DevAgent {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("app")).unwrap();
        setup(&root);
        let socket = dir.path().join("agent.sock");
        let runners = Path::new(env!("CARGO_MANIFEST_DIR")).join("runners");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mvm-agent"))
            .arg("--socket")
            .arg(&socket)
            .arg("--root")
            .arg(&root)
            .arg("--runners")
            .arg(&runners)
            .spawn()
            .unwrap();
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(stream) => break stream,
                Err(_) => {
                    if let Some(status) = child.try_wait().unwrap() {
                        panic!("the agent exited before listening: {status}");
                    }
                    thread::sleep(Duration::from_millis(10));
                }
            }
        };
        let client = Client::connect(stream, Duration::from_secs(60)).unwrap();
        DevAgent { child, dir, client }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, relative: &str) -> String {
        self.root().join(relative).to_string_lossy().into_owned()
    }
}

impl Drop for DevAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `/etc/mvm/launch.json` with the given entrypoints and otherwise
/// the full contract as compile writes it (the agent reads it strictly).
pub fn write_launch(root: &Path, entrypoints: Value, primary: &str) {
    let phases = ["before_build", "before_start", "after_start", "before_stop"];
    let launch = serde_json::json!({
        "launch_version": mvm_launch::LAUNCH_VERSION,
        "workload_id": "dev", "app_name": "dev",
        "ir_hash": "0".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "test"},
        "image": {"kind": "nix_packages", "packages": []},
        "dependencies": {"kind": "none"},
        "resources": {"cpu_cores": 1, "memory_mib": 256, "rootfs_size_mib": 512},
        "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
        "env": {},
        "entrypoints": entrypoints,
        "primary_entrypoint": primary,
        "hooks": phases.iter().map(|p| (p.to_string(), serde_json::json!([]))).collect::<serde_json::Map<_, _>>(),
        "hook_scripts": phases.iter().map(|p| (p.to_string(), serde_json::json!(format!("hooks/{p}.sh")))).collect::<serde_json::Map<_, _>>(),
        "mounts": [], "volumes": [], "threat_tier": "untrusted",
        "source": {"files": 0, "tree_hash": "0".repeat(64)},
    });
    write(root, "etc/mvm/launch.json", &launch.to_string());
}

pub fn write(root: &Path, relative: &str, contents: &str) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// Whether a process is gone: no longer in /proc, or a zombie awaiting
/// its reaper.
pub fn is_dead(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Waits until `pid` is dead. A SIGKILLed process needs a moment to exit;
/// the bound only turns a broken kill into a failure instead of a hang.
pub fn wait_dead(pid: u32) -> bool {
    for _ in 0..3000 {
        if is_dead(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}
