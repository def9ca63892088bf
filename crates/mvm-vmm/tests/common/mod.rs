//! Shared by the boot tests and the boot benchmark: VM serialisation, the
//! VM spec they boot, and waiting with clear errors instead of hangs.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod rootfs;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use mvm_vmm::{Disk, Network, VmProcess, VmSpec, log_tail, probe};

/// Generous: TCG boots on a shared 2-core machine can take several times
/// their idle duration.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Holds an exclusive lock on `<cache>/vm-tests.lock` so that VM boots from
/// any test binary run one at a time (TCG boots stall under contention).
pub struct VmLock(File);

pub fn vm_lock(cache: &Path) -> VmLock {
    std::fs::create_dir_all(cache).unwrap();
    let file = File::create(cache.join("vm-tests.lock")).unwrap();
    file.lock().unwrap();
    VmLock(file)
}

/// A spec with the contract's command line, a scratch disk as the last disk,
/// no network and the probed accelerator.
pub fn spec(dir: &Path, kernel: &Path, initrd: &Path, mut disks: Vec<Disk>) -> VmSpec {
    let scratch = dir.join("scratch.ext4");
    mvm_vmm::create_scratch_disk(&scratch, 256).unwrap();
    disks.push(Disk {
        path: scratch,
        read_only: false,
    });
    VmSpec {
        kernel: kernel.to_owned(),
        initrd: initrd.to_owned(),
        cmdline: mvm_guest::CMDLINE_BASE.to_owned(),
        vcpus: 1,
        memory_mib: 256,
        disks,
        agent_socket: dir.join("agent.sock"),
        console_log: dir.join("console.log"),
        vmm_log: dir.join("qemu.log"),
        broker_socket: None,
        control_socket: Some(dir.join("qmp.sock")),
        network: Network::None,
        accel: probe().chosen,
    }
}

/// Waits for the VM to exit; on timeout kills it and panics with the console.
pub fn wait_exit(process: &mut dyn VmProcess, spec: &VmSpec, timeout: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = process.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > timeout {
            process.kill().unwrap();
            panic!(
                "VM did not exit within {timeout:?}; console tail:\n{}\nQEMU log tail:\n{}",
                log_tail(&spec.console_log),
                log_tail(&spec.vmm_log)
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Waits until `marker` appears in the console log; panics with the console
/// if the VM exits first or the timeout passes. Returns when it was seen.
pub fn wait_console(
    process: &mut dyn VmProcess,
    spec: &VmSpec,
    marker: &str,
    timeout: Duration,
) -> Instant {
    let started = Instant::now();
    loop {
        let console = std::fs::read_to_string(&spec.console_log).unwrap_or_default();
        if console.contains(marker) {
            return Instant::now();
        }
        if let Some(status) = process.try_wait().unwrap() {
            panic!(
                "VM exited ({status}) before printing {marker:?}; console:\n{console}\nQEMU log:\n{}",
                log_tail(&spec.vmm_log)
            );
        }
        if started.elapsed() > timeout {
            process.kill().unwrap();
            panic!(
                "no {marker:?} on the console within {timeout:?}; console tail:\n{}",
                log_tail(&spec.console_log)
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

pub fn cache_dir() -> PathBuf {
    mvm_guest::default_cache_dir().unwrap()
}

/// When the console first showed output and each marker, measured from
/// [`ConsoleWatch::start`]; `done` is when [`ConsoleWatch::finish`] ran.
#[derive(Debug)]
pub struct BootTimings {
    pub first_output: Duration,
    pub markers: Vec<Duration>,
    pub done: Duration,
}

/// Watches a console log from a thread while the caller waits on the VM.
pub struct ConsoleWatch {
    started: Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Option<Instant>, Vec<Option<Instant>>)>,
}

impl ConsoleWatch {
    /// Call just before launching the VM.
    pub fn start(spec: &VmSpec, markers: &[&str]) -> ConsoleWatch {
        use std::sync::atomic::Ordering;
        let started = Instant::now();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let log = spec.console_log.clone();
        let markers: Vec<String> = markers.iter().map(|m| m.to_string()).collect();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut first = None;
            let mut seen = vec![None; markers.len()];
            loop {
                let stopping = flag.load(Ordering::Relaxed);
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let now = Instant::now();
                if first.is_none() && !text.is_empty() {
                    first = Some(now);
                }
                for (marker, at) in markers.iter().zip(seen.iter_mut()) {
                    if at.is_none() && text.contains(marker.as_str()) {
                        *at = Some(now);
                    }
                }
                if stopping {
                    return (first, seen);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        ConsoleWatch {
            started,
            stop,
            thread,
        }
    }

    /// Stops watching; panics if the console stayed silent or a marker never showed.
    pub fn finish(self) -> BootTimings {
        let done = self.started.elapsed();
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (first, seen) = self.thread.join().unwrap();
        let since = |at: Instant| at.duration_since(self.started);
        BootTimings {
            first_output: since(first.expect("the console printed nothing")),
            markers: seen
                .into_iter()
                .enumerate()
                .map(|(i, at)| {
                    since(at.unwrap_or_else(|| panic!("console marker {i} never appeared")))
                })
                .collect(),
            done,
        }
    }
}
