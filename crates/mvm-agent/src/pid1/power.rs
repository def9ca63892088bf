//! Powering off, and the fix-ups after a snapshot restore.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use mvm_proto::{AgentError, ErrorKind, Response};

use crate::log;

/// How long processes get to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// Stops every process, syncs and powers off; QEMU runs with `-no-reboot`
/// and exits.
pub fn power_off() -> ! {
    // SAFETY: kill(-1) signals every process but PID 1.
    unsafe { libc::kill(-1, libc::SIGTERM) };
    let start = Instant::now();
    while user_processes_remain() && start.elapsed() < TERM_GRACE {
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-1, libc::SIGKILL) };
    // SAFETY: sync takes no arguments. The root is an overlay on a scratch
    // disk discarded with the instance, so syncing is all it needs.
    unsafe { libc::sync() };
    log!("powering off");
    // SAFETY: reboot(2) with a valid command; it does not return on success.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    log!("power off failed: {}", std::io::Error::last_os_error());
    // Exiting PID 1 panics the kernel, which (panic=-1, -no-reboot) also
    // stops the VM.
    std::process::exit(1)
}

/// Any process other than the agent with a command line (kernel threads
/// have none) is still alive.
fn user_processes_remain() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != 1)
        .any(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty()))
}

/// After a snapshot restore: jump the clock to the host's time and mix
/// fresh host entropy into the random pool, so restored copies differ.
pub fn resume(now_unix_ms: u64, entropy: &[u8]) -> Result<Response, AgentError> {
    let ts = libc::timespec {
        tv_sec: (now_unix_ms / 1000) as libc::time_t,
        tv_nsec: ((now_unix_ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: valid timespec pointer.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(AgentError {
            kind: ErrorKind::Io,
            message: format!("cannot set the guest clock: {e}"),
        });
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .and_then(|mut f| f.write_all(entropy))
        .map_err(|e| AgentError {
            kind: ErrorKind::Io,
            message: format!("cannot seed /dev/urandom: {e}"),
        })?;
    Ok(Response::Ok)
}
