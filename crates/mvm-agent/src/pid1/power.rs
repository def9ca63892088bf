//! Powering off, and the fix-ups after a snapshot restore.

use std::os::fd::AsRawFd;
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

/// `_IOW('R', 0x03, int[2])` from `<linux/random.h>`: write direction
/// (1 << 30), an argument size of 8 bytes (the two ints heading
/// `struct rand_pool_info`) << 16, type `'R'` (0x52) << 8, number 3. Adds
/// bytes to the input pool and credits them as entropy.
const RNDADDENTROPY: u32 = 0x4008_5203;
/// `_IO('R', 0x07)`: no argument. Makes the CRNG reseed from the input pool
/// now instead of at its next scheduled reseed (up to a minute later).
const RNDRESEEDCRNG: u32 = 0x5207;
/// More than the 256 bits the input pool holds; the rest is ignored.
const MAX_ENTROPY_BYTES: usize = 512;

/// After a snapshot restore: jump the clock to the host's time, then add
/// the host's entropy to the kernel's pool and force the CRNG to reseed, so
/// restored copies of one snapshot stop producing the same random numbers.
/// Writing to `/dev/urandom` is not enough: on the guest's Linux 6.1 that
/// only mixes the bytes into the input pool, and every copy keeps drawing
/// from the same CRNG state until its next timed reseed.
pub fn resume(now_unix_ms: u64, entropy: &[u8]) -> Result<Response, AgentError> {
    if entropy.is_empty() {
        return Err(AgentError {
            kind: ErrorKind::InvalidRequest,
            message: "resume carries no entropy; the host must send fresh random bytes (32 or more) so restored copies differ".into(),
        });
    }
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
    let random = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .map_err(|e| AgentError {
            kind: ErrorKind::Io,
            message: format!("cannot open /dev/urandom to seed the random pool: {e}"),
        })?;
    let pool_info = rand_pool_info(entropy);
    // SAFETY: RNDADDENTROPY reads a `struct rand_pool_info` whose `buf_size`
    // bytes follow its two ints; `pool_info` is laid out exactly so and
    // outlives the call.
    if unsafe { libc::ioctl(random.as_raw_fd(), RNDADDENTROPY as _, pool_info.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(AgentError {
            kind: ErrorKind::Io,
            message: format!(
                "cannot add the host's entropy to the kernel pool (ioctl RNDADDENTROPY on /dev/urandom): {e}; the agent needs CAP_SYS_ADMIN"
            ),
        });
    }
    // SAFETY: RNDRESEEDCRNG takes no argument.
    if unsafe { libc::ioctl(random.as_raw_fd(), RNDRESEEDCRNG as _) } != 0 {
        let e = std::io::Error::last_os_error();
        let hint = if e.raw_os_error() == Some(libc::ENODATA) {
            "the CRNG is not initialised yet; send at least 32 bytes of entropy"
        } else {
            "the agent needs CAP_SYS_ADMIN"
        };
        return Err(AgentError {
            kind: ErrorKind::Io,
            message: format!(
                "cannot make the kernel reseed its random generator (ioctl RNDRESEEDCRNG on /dev/urandom): {e}; {hint}"
            ),
        });
    }
    Ok(Response::Ok)
}

/// `struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }`
/// for at most [`MAX_ENTROPY_BYTES`] of `entropy`, every byte credited with
/// 8 bits (the host's bytes come from its CSPRNG). Built from `u32`s so the
/// ints are aligned; the bytes fill `buf` in memory order.
fn rand_pool_info(entropy: &[u8]) -> Vec<u32> {
    let bytes = &entropy[..entropy.len().min(MAX_ENTROPY_BYTES)];
    let mut words = vec![0u32; 2 + bytes.len().div_ceil(4)];
    words[0] = (bytes.len() * 8) as u32;
    words[1] = bytes.len() as u32;
    for (word, chunk) in words[2..].iter_mut().zip(bytes.chunks(4)) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_ne_bytes(b);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `_IOC(dir, type, nr, size)` as `<asm-generic/ioctl.h>` defines it.
    const fn ioc(dir: u32, kind: u8, nr: u32, size: u32) -> u32 {
        (dir << 30) | (size << 16) | ((kind as u32) << 8) | nr
    }

    #[test]
    fn ioctl_numbers_match_the_kernel_macros() {
        const IOC_WRITE: u32 = 1;
        const IOC_NONE: u32 = 0;
        let int_pair = (2 * std::mem::size_of::<libc::c_int>()) as u32;
        assert_eq!(RNDADDENTROPY, ioc(IOC_WRITE, b'R', 0x03, int_pair));
        assert_eq!(RNDRESEEDCRNG, ioc(IOC_NONE, b'R', 0x07, 0));
    }

    /// The memory the kernel reads: count in bits, size in bytes, then the
    /// bytes themselves in order.
    fn as_bytes(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn pool_info_is_packed_as_the_kernel_reads_it() {
        let info = rand_pool_info(&[1, 2, 3, 4, 5, 6]);
        let bytes = as_bytes(&info);
        assert_eq!(i32::from_ne_bytes(bytes[0..4].try_into().unwrap()), 48);
        assert_eq!(i32::from_ne_bytes(bytes[4..8].try_into().unwrap()), 6);
        assert_eq!(&bytes[8..14], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(bytes.len(), 16, "padded to whole words");
    }

    #[test]
    fn pool_info_caps_the_entropy() {
        let entropy: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        let info = rand_pool_info(&entropy);
        let bytes = as_bytes(&info);
        assert_eq!(info[0] as usize, MAX_ENTROPY_BYTES * 8);
        assert_eq!(info[1] as usize, MAX_ENTROPY_BYTES);
        assert_eq!(&bytes[8..], &entropy[..MAX_ENTROPY_BYTES]);
    }
}
