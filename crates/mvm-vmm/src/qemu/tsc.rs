//! The host TSC frequency, handed to TCG guests so their kernel does not
//! calibrate it.
//!
//! Under TCG the guest's `rdtsc` returns the host's TSC, but the kernel
//! calibrates it against QEMU's emulated PIT. On a busy host that
//! calibration fails ("tsc: Unable to calibrate against PIT") and the boot
//! stalls for minutes. Telling the kernel the frequency
//! (`tsc_early_khz=`) skips the calibration and makes boots steady.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the TSC is counted against the monotonic clock.
const WINDOW: Duration = Duration::from_millis(40);
/// A clock/TSC reading pair is only trusted when taken this close together
/// (no preemption in between).
const MAX_PAIR_GAP: Duration = Duration::from_micros(20);
const PAIR_ATTEMPTS: usize = 100;

/// The host TSC frequency in kHz, measured once per process; `None` when the
/// TSC is not a constant-rate clock that can serve as the guest's.
pub fn host_tsc_khz() -> Option<u32> {
    static KHZ: OnceLock<Option<u32>> = OnceLock::new();
    *KHZ.get_or_init(|| {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        constant_tsc(&cpuinfo).then(measure).flatten()
    })
}

/// Only an invariant TSC (constant rate, running in idle states) ticks at
/// one frequency that a guest can be told about.
fn constant_tsc(cpuinfo: &str) -> bool {
    let flags = cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "flags")
        .map(|(_, flags)| flags.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc")
}

#[cfg(target_arch = "x86_64")]
fn measure() -> Option<u32> {
    let (start, start_tsc) = paired_reading()?;
    std::thread::sleep(WINDOW);
    let (end, end_tsc) = paired_reading()?;
    let nanos = end.duration_since(start).as_nanos();
    let ticks = u128::from(end_tsc.checked_sub(start_tsc)?);
    let khz = ticks * 1_000_000 / nanos;
    // Whole MHz: the measurement jitters in the last digits, and a VM
    // restored from a snapshot should get the same command line it booted with.
    let whole_mhz = (khz + 500) / 1000 * 1000;
    u32::try_from(whole_mhz).ok().filter(|&khz| khz > 0)
}

#[cfg(not(target_arch = "x86_64"))]
fn measure() -> Option<u32> {
    None
}

/// A monotonic instant and the TSC value read at (almost) the same moment.
#[cfg(target_arch = "x86_64")]
fn paired_reading() -> Option<(Instant, u64)> {
    (0..PAIR_ATTEMPTS).find_map(|_| {
        let before = Instant::now();
        // SAFETY: rdtsc has no preconditions on x86-64.
        let tsc = unsafe { core::arch::x86_64::_rdtsc() };
        let after = Instant::now();
        let gap = after.duration_since(before);
        (gap <= MAX_PAIR_GAP).then(|| (before + gap / 2, tsc))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_invariant_tsc_counts() {
        assert!(constant_tsc(
            "flags\t\t: fpu tsc constant_tsc nonstop_tsc\n"
        ));
        assert!(!constant_tsc("flags\t\t: fpu tsc constant_tsc\n"));
        assert!(!constant_tsc("processor\t: 0\n"));
    }

    /// On this machine kind the TSC is invariant; the measurement must land
    /// in the range of real CPU clocks.
    #[test]
    fn the_host_tsc_is_measured_when_invariant() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        match host_tsc_khz() {
            Some(khz) => {
                assert!((500_000..10_000_000).contains(&khz), "{khz} kHz");
                assert_eq!(khz % 1000, 0);
            }
            None => assert!(!constant_tsc(&cpuinfo)),
        }
    }
}
