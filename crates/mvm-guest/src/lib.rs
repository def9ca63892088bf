//! Guest boot assets: Debian's cloud kernel (fetched with apt, cached,
//! turned into a bootable `vmlinux`), the kernel modules the guest loads,
//! and the initramfs holding the embedded static agent.
//!
//! The layout follows the guest boot contract in docs/architecture.md.

mod agent;
mod apt;
mod bzimage;
mod cache;
mod cpio;
mod deb;
mod initramfs;
mod kernel;
mod modules;
mod progress;

use std::path::{Path, PathBuf};

pub use apt::AptError;
pub use bzimage::{BzImageError, extract_vmlinux};
pub use cache::{CacheError, default_cache_dir};
pub use deb::DebError;
pub use initramfs::{InitramfsError, write_busybox_initramfs};
pub use kernel::{
    GUEST_MODULES, KERNEL_METAPACKAGE, Kernel, KernelError, KernelManifest, NETWORK_MODULES,
    ensure_kernel, update_kernel,
};
pub use modules::ModuleError;
pub use progress::Progress;

/// Kernel command line of every guest (the guest boot contract). QEMU adds
/// its own `virtio_mmio.device=` entries when ACPI is off.
pub const CMDLINE_BASE: &str =
    "console=ttyS0 quiet panic=-1 mvm.root=/dev/vda mvm.scratch=/dev/vdb";

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
}

/// Everything QEMU needs to boot a guest that runs the mvm agent.
#[derive(Debug, Clone)]
pub struct GuestAssets {
    /// Uncompressed ELF kernel, booted through its PVH entry.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The guest's `uname -r`.
    pub kernel_release: String,
    /// The Debian package and version the kernel came from.
    pub kernel_package: String,
    pub kernel_package_version: String,
    pub cmdline_base: String,
    /// sha256 of the embedded agent binary, for `doctor` and cache keys.
    pub agent_sha256: String,
}

/// Returns the guest kernel and agent initramfs, fetching and building them
/// into `cache_dir` on first use.
pub fn ensure_assets(cache_dir: &Path, progress: Progress) -> Result<GuestAssets, GuestError> {
    let kernel = ensure_kernel(cache_dir, progress)?;
    let payload = initramfs::Payload {
        agent: agent::AGENT,
        runners: agent::RUNNERS,
        python_sdk: agent::PYTHON_SDK,
        node_sdk: agent::NODE_SDK,
    };
    let initrd = initramfs::ensure_agent_initramfs(cache_dir, &kernel, payload)?;
    Ok(GuestAssets {
        kernel: kernel.vmlinux(),
        initrd,
        kernel_release: kernel.manifest.release.clone(),
        kernel_package: kernel.manifest.package.clone(),
        kernel_package_version: kernel.manifest.version.clone(),
        cmdline_base: CMDLINE_BASE.to_owned(),
        agent_sha256: agent_sha256(),
    })
}

/// sha256 of the agent binary embedded in this build.
pub fn agent_sha256() -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(agent::AGENT))
}

/// Names of the function runners embedded in this build.
pub fn runner_names() -> impl Iterator<Item = &'static str> {
    agent::RUNNERS.iter().map(|(name, _)| *name)
}

/// Paths inside the Python `mvm` package of the files embedded in this build.
pub fn python_sdk_files() -> impl Iterator<Item = &'static str> {
    agent::PYTHON_SDK.iter().map(|(name, _)| *name)
}

/// Paths inside the TypeScript `mvm-sdk` package of the files embedded in this build.
pub fn node_sdk_files() -> impl Iterator<Item = &'static str> {
    agent::NODE_SDK.iter().map(|(name, _)| *name)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
