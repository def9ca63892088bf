//! Cold-boot wall times under the probed accelerator:
//! - floor: kernel + busybox `/init` that prints a marker and powers off;
//! - agent: kernel + agent initramfs + Debian root until the agent's hello.
//!
//! Each boot takes seconds, so this is a plain binary (harness = false)
//! with a few samples: `MVM_BENCH_SAMPLES` (default 3).
//! Run: `cargo bench -p mvm-vmm --bench boot`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use mvm_guest::{Progress, ensure_assets, write_busybox_initramfs};
use mvm_proto::Client;
use mvm_vmm::{Backend, Disk, backend, connect_agent};

const MARKER: &str = "mvm-floor-init-reached";

fn main() {
    let samples: usize = std::env::var("MVM_BENCH_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let cache = common::cache_dir();
    let assets = ensure_assets(&cache, Progress::Stderr).unwrap();
    let root = common::rootfs::test_rootfs(&cache);
    let _lock = common::vm_lock(&cache);
    let accel = mvm_vmm::probe().chosen;

    let mut floor_marker = Vec::new();
    let mut floor_exit = Vec::new();
    for _ in 0..samples {
        let dir = tempfile::tempdir().unwrap();
        let initrd = dir.path().join("busybox.cpio");
        write_busybox_initramfs(&initrd, Path::new("/bin/busybox"), MARKER).unwrap();
        let spec = common::spec(dir.path(), &assets.kernel, &initrd, Vec::new());
        let started = Instant::now();
        let mut vm = backend(Backend::default()).launch(&spec).unwrap();
        let seen = common::wait_console(vm.as_mut(), &spec, MARKER, common::BOOT_TIMEOUT);
        common::wait_exit(vm.as_mut(), &spec, common::BOOT_TIMEOUT);
        floor_marker.push(seen - started);
        floor_exit.push(started.elapsed());
    }

    let mut agent_hello = Vec::new();
    let mut agent_exit = Vec::new();
    for _ in 0..samples {
        let dir = tempfile::tempdir().unwrap();
        let disks = vec![Disk {
            path: root.clone(),
            read_only: true,
        }];
        let spec = common::spec(dir.path(), &assets.kernel, &assets.initrd, disks);
        let started = Instant::now();
        let mut vm = backend(Backend::default()).launch(&spec).unwrap();
        let stream = connect_agent(vm.as_mut(), &spec, Duration::from_secs(30)).unwrap();
        let client = Client::connect(stream, common::BOOT_TIMEOUT).unwrap();
        agent_hello.push(started.elapsed());
        client.shutdown("benchmark").unwrap();
        common::wait_exit(vm.as_mut(), &spec, common::BOOT_TIMEOUT);
        agent_exit.push(started.elapsed());
    }

    println!(
        "cold boot wall times, accelerator {accel:?}, {samples} samples each (min / median / max):"
    );
    report("floor: launch -> busybox /init marker", &mut floor_marker);
    report(
        "floor: launch -> QEMU exited after poweroff",
        &mut floor_exit,
    );
    report("agent: launch -> hello (ready)", &mut agent_hello);
    report(
        "agent: launch -> QEMU exited after Shutdown",
        &mut agent_exit,
    );
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "  {what:<45} {:.2} s / {:.2} s / {:.2} s",
        secs(times[0]),
        secs(times[times.len() / 2]),
        secs(times[times.len() - 1])
    );
}
