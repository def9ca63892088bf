//! Assembling the guest initramfs, per the guest boot contract in
//! docs/architecture.md: `/init` (the agent), `/lib/modules/*.ko` with
//! `/lib/modules/load-order`, `/usr/lib/mvm/runners/*`, and the Python SDK
//! under `/usr/lib/mvm/python/mvm/` and the TypeScript SDK under
//! `/usr/lib/mvm/node/mvm-sdk/` (the agent copies both into the root so
//! guest code can `import mvm` and `import "mvm-sdk"`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cache::{self, CacheError};
use crate::cpio::Archive;
use crate::kernel::Kernel;

/// Bumped whenever the layout below changes, so cached initramfs files are rebuilt.
const LAYOUT_VERSION: &str = "mvm-initramfs-4";
const RUNNERS_DIR: &str = "/usr/lib/mvm/runners";
const PYTHON_SDK_DIR: &str = "/usr/lib/mvm/python/mvm";
const NODE_SDK_DIR: &str = "/usr/lib/mvm/node/mvm-sdk";
/// `/dev/console` (char 5:1) exists before anything mounts devtmpfs, so the
/// kernel can give PID 1 its stdin/stdout/stderr on the serial console.
const CONSOLE: (&str, u32, u32) = ("/dev/console", 5, 1);

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the initramfs carries besides the kernel's modules.
#[derive(Debug, Clone, Copy)]
pub struct Payload<'a> {
    /// The static agent binary.
    pub agent: &'a [u8],
    /// Function runners: (file name, contents).
    pub runners: &'a [(&'a str, &'a [u8])],
    /// Files of the Python `mvm` package: (path inside it, contents).
    pub python_sdk: &'a [(&'a str, &'a [u8])],
    /// Files of the TypeScript `mvm-sdk` package: (path inside it, contents).
    pub node_sdk: &'a [(&'a str, &'a [u8])],
}

/// The agent initramfs for `kernel`, from the cache or built and cached now.
pub fn ensure_agent_initramfs(
    cache_dir: &Path,
    kernel: &Kernel,
    payload: Payload<'_>,
) -> Result<PathBuf, InitramfsError> {
    let key = cache_key(kernel, payload);
    let dir = cache_dir.join("initramfs");
    let target = dir.join(format!("{key}.cpio"));
    if target.is_file() {
        return Ok(target);
    }
    let bytes = agent_archive(kernel, payload)?.to_bytes();
    let staging = cache::staging_dir(&dir)?;
    let staged = staging.path().join("initrd.cpio");
    write(&staged, &bytes)?;
    cache::publish(&staged, &target)?;
    Ok(target)
}

/// Everything that determines the archive's bytes.
fn cache_key(kernel: &Kernel, payload: Payload<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(LAYOUT_VERSION);
    hasher.update(&kernel.manifest.vmlinux_sha256);
    for (list, modules) in [
        ("boot", &kernel.manifest.load_order),
        ("network", &kernel.manifest.network_load_order),
    ] {
        hasher.update([1]);
        hasher.update(list);
        for module in modules {
            hasher.update([0]);
            hasher.update(module);
        }
    }
    hasher.update(Sha256::digest(payload.agent));
    for (tag, files) in [
        ("runners", payload.runners),
        ("python", payload.python_sdk),
        ("node", payload.node_sdk),
    ] {
        hasher.update([0]);
        hasher.update(tag);
        for (name, contents) in files {
            hasher.update([0]);
            hasher.update(name);
            hasher.update(Sha256::digest(contents));
        }
    }
    crate::hex(&hasher.finalize())
}

fn agent_archive(kernel: &Kernel, payload: Payload<'_>) -> Result<Archive, InitramfsError> {
    let mut archive = base_archive();
    archive.file("/init", 0o755, payload.agent.to_vec());
    // load-order: every boot; load-order.network: when a NIC is attached.
    for (list, names) in [
        ("load-order", &kernel.manifest.load_order),
        ("load-order.network", &kernel.manifest.network_load_order),
    ] {
        let mut order = String::new();
        for name in names {
            let path = kernel.module(name);
            let ko =
                std::fs::read(&path).map_err(|source| InitramfsError::Read { path, source })?;
            archive.file(&format!("/lib/modules/{name}.ko"), 0o644, ko);
            order.push_str(&format!("{name}.ko\n"));
        }
        archive.file(&format!("/lib/modules/{list}"), 0o644, order.into_bytes());
    }
    archive.dir(RUNNERS_DIR);
    for (name, contents) in payload.runners {
        archive.file(&format!("{RUNNERS_DIR}/{name}"), 0o755, contents.to_vec());
    }
    for (dir, files) in [
        (PYTHON_SDK_DIR, payload.python_sdk),
        (NODE_SDK_DIR, payload.node_sdk),
    ] {
        archive.dir(dir);
        for (name, contents) in files {
            archive.file(&format!("{dir}/{name}"), 0o644, contents.to_vec());
        }
    }
    Ok(archive)
}

/// Writes a busybox-only initramfs to `out`: its `/init` prints `marker` on
/// the console and powers the machine off. Boots of it measure the floor
/// cost of kernel + QEMU without the agent or any module.
pub fn write_busybox_initramfs(
    out: &Path,
    busybox: &Path,
    marker: &str,
) -> Result<(), InitramfsError> {
    let binary = std::fs::read(busybox).map_err(|source| InitramfsError::Read {
        path: busybox.to_owned(),
        source,
    })?;
    let quoted = marker.replace('\'', r"'\''");
    let init =
        format!("#!/bin/busybox sh\n/bin/busybox echo '{quoted}'\n/bin/busybox poweroff -f\n");
    let mut archive = base_archive();
    archive
        .file("/bin/busybox", 0o755, binary)
        .file("/init", 0o755, init.into_bytes());
    write(out, &archive.to_bytes())
}

fn base_archive() -> Archive {
    let mut archive = Archive::new();
    let (path, major, minor) = CONSOLE;
    archive.char_device(path, 0o600, major, minor);
    archive
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), InitramfsError> {
    std::fs::write(path, bytes).map_err(|source| InitramfsError::Write {
        path: path.to_owned(),
        source,
    })
}
