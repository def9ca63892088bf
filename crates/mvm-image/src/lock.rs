//! `/etc/mvm/image.lock`: exactly what went into an image, so a build can
//! be audited and reproduced from recorded versions (snapshot.debian.org is
//! not reachable here, so versions are the reproducibility record).

use serde::{Deserialize, Serialize};

use crate::base::{BaseLock, DebPackage};
use crate::deps::Package;
use crate::table::Suite;
use crate::wheel::WheelFile;

pub const LOCK_VERSION: u32 = 1;

/// The hashes that identify the build's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub workload_id: String,
    pub app_name: String,
    pub ir_hash: String,
    /// sha256 of the compile output's SHA256SUMS file.
    pub sha256sums: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLock {
    pub lock_version: u32,
    pub image_id: String,
    pub builder: String,
    pub suite: Suite,
    pub mirror: String,
    pub base_key: String,
    pub debian: Vec<DebPackage>,
    pub wheels: Vec<WheelFile>,
    /// The guest kernel the image was prepared with; `null` when no step of
    /// the build booted one (images without dependencies or `before_build`).
    pub kernel: Option<String>,
    pub inputs: Inputs,
    /// The declared dependencies as installed in the builder microVM;
    /// `null` when none are declared.
    pub dependencies: Option<DepsLock>,
}

/// One dependency installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepsLock {
    /// `uv`, `npm`, `yarn`.
    pub tool: String,
    pub lockfile: String,
    pub lockfile_sha256: String,
    /// The `host:port` grants the builder's egress gate allowed.
    pub egress: Vec<String>,
    /// Every installed package and version (Python: `uv pip list`; Node:
    /// npm's `node_modules/.package-lock.json`).
    pub packages: Vec<Package>,
}

impl ImageLock {
    pub fn new(
        image_id: &str,
        builder: &str,
        base: &BaseLock,
        kernel: Option<String>,
        inputs: Inputs,
    ) -> ImageLock {
        ImageLock {
            lock_version: LOCK_VERSION,
            image_id: image_id.to_string(),
            builder: builder.to_string(),
            suite: base.suite,
            mirror: base.mirror.clone(),
            base_key: base.key.clone(),
            debian: base.debian.clone(),
            wheels: base.wheels.clone(),
            kernel,
            inputs,
            dependencies: None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("locks serialize");
        bytes.push(b'\n');
        bytes
    }
}
