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

/// Largest image.lock `--locked` reads.
const MAX_LOCK_BYTES: u64 = 16 << 20;

/// Reads an image.lock to rebuild from (`mvmctl build --locked`). It may
/// come from another machine: read as data, size-capped, typed,
/// a final symlink refused.
pub fn read(path: &std::path::Path) -> Result<ImageLock, crate::ImageError> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    let io = |e: std::io::Error| crate::ImageError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    let file = std::fs::File::from(fd);
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_LOCK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let bad = |detail: String| {
        crate::ImageError::Locked {
        lock: path.to_path_buf(),
        what: "not an image.lock".into(),
        detail,
        hint: "give the image.lock of an image `mvmctl build` made (`mvmctl image inspect` shows where it is)".into(),
    }
    };
    if bytes.len() as u64 > MAX_LOCK_BYTES {
        return Err(bad(format!("larger than {MAX_LOCK_BYTES} bytes")));
    }
    let lock: ImageLock = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("line {} column {}: {e}", e.line(), e.column())))?;
    if lock.lock_version != LOCK_VERSION {
        return Err(bad(format!(
            "lock_version {} (this mvmctl reads {LOCK_VERSION})",
            lock.lock_version
        )));
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageLock {
        let base = BaseLock {
            key: "k".into(),
            suite: Suite::Trixie,
            mirror: "http://deb.debian.org/debian".into(),
            debian: vec![],
            wheels: vec![],
        };
        let inputs = Inputs {
            workload_id: "w".into(),
            app_name: "a".into(),
            ir_hash: "0".repeat(64),
            sha256sums: "1".repeat(64),
        };
        ImageLock::new("id", "b", &base, None, inputs)
    }

    #[test]
    fn a_lock_from_elsewhere_is_read_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("image.lock");
        std::fs::write(&good, sample().to_json()).unwrap();
        assert_eq!(read(&good).unwrap(), sample());

        let link = dir.path().join("link.lock");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(read(&link).is_err(), "a final symlink is refused");

        let bad = dir.path().join("bad.lock");
        std::fs::write(&bad, b"{\n  \"lock_version\": 1,\n  \"extra\": true\n}").unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(
            e.contains("not an image.lock") && e.contains("line "),
            "{e}"
        );

        let mut other = serde_json::to_value(sample()).unwrap();
        other["lock_version"] = 9.into();
        std::fs::write(&bad, other.to_string()).unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(e.contains("lock_version 9"), "{e}");

        std::fs::write(&bad, vec![b' '; (MAX_LOCK_BYTES + 1) as usize]).unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
