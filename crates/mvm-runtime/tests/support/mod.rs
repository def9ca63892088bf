pub mod fixture;
pub mod rootfs;

use std::fs::File;
use std::path::Path;

/// An exclusive lock on `<cache>/vm-tests.lock`, shared with the other
/// crates' VM tests, so boots from any test binary run one at a time (TCG
/// boots stall under contention). Released when dropped.
pub struct VmLock(#[allow(dead_code)] File);

pub fn vm_lock(cache: &Path) -> VmLock {
    std::fs::create_dir_all(cache).unwrap();
    let file = File::create(cache.join("vm-tests.lock")).unwrap();
    file.lock().unwrap();
    VmLock(file)
}
