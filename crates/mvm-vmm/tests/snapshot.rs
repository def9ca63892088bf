//! Snapshot and restore of a real agent guest: the state saved over QMP
//! brings back the same running guest, memory included, in a new QEMU.

mod common;

use std::time::{Duration, Instant};

use mvm_guest::{Progress, ensure_assets};
use mvm_proto::Client;
use mvm_vmm::{Backend, Disk, Qmp, backend, connect_agent};

const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Lives in the guest's /run tmpfs: only memory carries it across a restore.
const MARKER: &str = "/run/mvm-snapshot-marker";

#[test]
fn restored_guest_keeps_its_memory_and_answers() {
    let cache = common::cache_dir();
    let assets = ensure_assets(&cache, Progress::Hidden).unwrap();
    let root = common::rootfs::test_rootfs(&cache);
    let _lock = common::vm_lock(&cache);
    let dir = tempfile::tempdir().unwrap();
    let disks = vec![Disk {
        path: root,
        read_only: true,
    }];
    let spec = common::spec(dir.path(), &assets.kernel, &assets.initrd, disks);
    let control = spec.control_socket.clone().unwrap();
    let snapshot = dir.path().join("vm.state");

    let mut vm = backend(Backend::default()).launch(&spec).unwrap();
    let stream = connect_agent(vm.as_mut(), &spec, SOCKET_TIMEOUT).unwrap();
    let client = Client::connect(stream, common::BOOT_TIMEOUT).unwrap();
    client
        .write_file(MARKER, b"before".to_vec(), 0o644)
        .unwrap();

    let saving = Instant::now();
    let mut qmp = Qmp::connect(&control).unwrap();
    qmp.snapshot(&snapshot, SNAPSHOT_TIMEOUT).unwrap();
    let saved_in = saving.elapsed();
    drop(client);
    qmp.quit().unwrap();
    common::wait_exit(vm.as_mut(), &spec, common::BOOT_TIMEOUT);

    let restoring = Instant::now();
    let mut vm = backend(Backend::default())
        .restore(&spec, &snapshot)
        .unwrap();
    let stream = connect_agent(vm.as_mut(), &spec, SOCKET_TIMEOUT).unwrap();
    let reader = stream.try_clone().unwrap();
    let client = Client::attach(reader, stream, common::BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; QEMU log:\n{}", mvm_vmm::log_tail(&spec.vmm_log)));
    let answered_in = restoring.elapsed();
    assert_eq!(client.read_file(MARKER).unwrap(), b"before");

    client.shutdown("test done").unwrap();
    let status = common::wait_exit(vm.as_mut(), &spec, common::BOOT_TIMEOUT);
    assert!(
        status.success(),
        "{status}: {}",
        mvm_vmm::log_tail(&spec.vmm_log)
    );
    println!(
        "snapshot ({:?}): {} MiB saved in {:.2} s; restored guest answered after {:.2} s",
        spec.accel,
        std::fs::metadata(&snapshot).unwrap().len() >> 20,
        saved_in.as_secs_f64(),
        answered_in.as_secs_f64()
    );
}
