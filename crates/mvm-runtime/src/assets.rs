//! The kernel, initramfs and accelerator every instance boots with.

use std::path::Path;

pub use mvm_guest::Progress;

use crate::error::RuntimeError;
use crate::up::BootAssets;

/// Prepares (first use: fetches and builds into `cache_dir`) the guest
/// kernel and agent initramfs, and probes the accelerator (`MVM_ACCEL`
/// overrides the probe).
pub fn boot_assets(cache_dir: &Path, progress: Progress) -> Result<BootAssets, RuntimeError> {
    let guest =
        mvm_guest::ensure_assets(cache_dir, progress).map_err(|e| RuntimeError::GuestAssets {
            detail: e.to_string(),
        })?;
    let accel = mvm_vmm::probe();
    tracing::debug!(accel = accel.chosen.as_str(), reason = %accel.reason, "accelerator");
    // Under TCG the QEMU backend adds the host TSC frequency to the kernel
    // command line itself (mvm-vmm, qemu/tsc.rs).
    Ok(BootAssets {
        kernel: guest.kernel,
        initrd: guest.initrd,
        cmdline: guest.cmdline_base,
        accel: accel.chosen,
    })
}

/// Where boot assets are cached: `$MVM_CACHE_DIR`, else the XDG cache.
pub fn cache_dir() -> Result<std::path::PathBuf, RuntimeError> {
    mvm_guest::default_cache_dir().map_err(|e| RuntimeError::GuestAssets {
        detail: e.to_string(),
    })
}
