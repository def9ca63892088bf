//! The floor: the Debian cloud kernel booting a busybox-only initramfs
//! under the same QEMU flags as a real guest, then powering off.

mod common;

use std::path::Path;
use std::time::Instant;

use mvm_guest::{Progress, ensure_kernel, write_busybox_initramfs};
use mvm_vmm::{Backend, backend};

const MARKER: &str = "mvm-floor-init-reached";

#[test]
fn busybox_initramfs_boots_prints_and_powers_off() {
    let cache = common::cache_dir();
    let kernel = ensure_kernel(&cache, Progress::Hidden).unwrap();
    let _lock = common::vm_lock(&cache);
    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("busybox.cpio");
    write_busybox_initramfs(&initrd, Path::new("/bin/busybox"), MARKER).unwrap();
    let spec = common::spec(dir.path(), &kernel.vmlinux(), &initrd, Vec::new());

    let started = Instant::now();
    let mut vm = backend(Backend::default()).launch(&spec).unwrap();
    let seen = common::wait_console(vm.as_mut(), &spec, MARKER, common::BOOT_TIMEOUT);
    let status = common::wait_exit(vm.as_mut(), &spec, common::BOOT_TIMEOUT);
    let exited = Instant::now();

    assert!(
        status.success(),
        "QEMU exited with {status}: {}",
        mvm_vmm::log_tail(&spec.vmm_log)
    );
    let console = std::fs::read_to_string(&spec.console_log).unwrap();
    // The marker line printed by /init itself, not the kernel echoing the command line.
    assert!(
        console.lines().any(|line| line.trim() == MARKER),
        "{console}"
    );
    println!(
        "floor boot ({:?}): marker after {:.2} s, QEMU exited after {:.2} s",
        spec.accel,
        (seen - started).as_secs_f64(),
        (exited - started).as_secs_f64()
    );
}
