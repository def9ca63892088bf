//! Where the agent finds the files of the guest it serves. In the VM every
//! path is absolute under `/`; dev mode points `root` and `runners` at host
//! directories so tests need no VM.

use std::path::PathBuf;

use mvm_proto::HookPhase;

#[derive(Debug, Clone)]
pub struct Layout {
    /// Root of the guest filesystem: `/` in the VM.
    pub root: PathBuf,
    /// Directory holding `python_runner.py` and `node_runner.mjs`.
    pub runners: PathBuf,
}

impl Layout {
    /// The layout after switch root: runners were copied to `/run/mvm/runners`.
    pub fn guest() -> Layout {
        Layout {
            root: PathBuf::from("/"),
            runners: PathBuf::from(RUN_RUNNERS_DIR),
        }
    }

    pub fn launch_json(&self) -> PathBuf {
        self.root.join("etc/mvm/launch.json")
    }

    pub fn hook_script(&self, phase: HookPhase) -> PathBuf {
        self.root
            .join(format!("etc/mvm/hooks/{}.sh", phase.as_str()))
    }

    /// The source bundle, the default working directory; `/` when the image
    /// has none.
    pub fn app_dir(&self) -> PathBuf {
        let app = self.root.join("app");
        if app.is_dir() { app } else { self.root.clone() }
    }

    /// The copy of the Python SDK (`mvm` package) shipped in the initramfs
    /// and made importable by the Python runner.
    pub fn python_sdk(&self) -> PathBuf {
        self.root.join(PYTHON_SDK_DIR.trim_start_matches('/'))
    }

    pub fn runner(&self, file: &str) -> PathBuf {
        self.runners.join(file)
    }
}

/// Runners as shipped in the initramfs.
pub const INITRAMFS_RUNNERS_DIR: &str = "/usr/lib/mvm/runners";
/// Runners after boot, in the new root.
pub const RUN_RUNNERS_DIR: &str = "/run/mvm/runners";
/// The Python SDK in the guest root (see the crate README).
pub const PYTHON_SDK_DIR: &str = "/usr/lib/mvm/python";
/// The TypeScript SDK in the initramfs, and where PID 1 puts it in the
/// root: `/node_modules` is the last place Node's resolver looks, so
/// guest code can `import "mvm-sdk"` and an app's own copy still wins.
pub const INITRAMFS_NODE_SDK_DIR: &str = "/usr/lib/mvm/node/mvm-sdk";
pub const ROOT_NODE_SDK_DIR: &str = "/node_modules/mvm-sdk";
