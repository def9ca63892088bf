//! Host processes an instance owns (its supervisor and QEMU), identified by
//! pid *and* start time so a recycled pid is never mistaken for ours.

use std::fs;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks after boot.
    pub start_ticks: u64,
}

/// What `/proc/<pid>/stat` says about a process, parsed once.
struct Stat {
    state: char,
    utime_ticks: u64,
    stime_ticks: u64,
    start_ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or
    // parentheses; everything after the last ')' is space separated.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `rest` starts at field 3 (state), so field N is f[N - 3].
    Some(Stat {
        state: f.first()?.chars().next()?,
        utime_ticks: f.get(11)?.parse().ok()?,
        stime_ticks: f.get(12)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
        rss_pages: f.get(21)?.parse().ok()?,
    })
}

impl ProcessRef {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: i32) -> Option<ProcessRef> {
        read_stat(pid).map(|s| ProcessRef {
            pid,
            start_ticks: s.start_ticks,
        })
    }

    pub fn current() -> ProcessRef {
        ProcessRef::of(std::process::id() as i32).expect("/proc/self/stat is readable")
    }

    fn live_stat(&self) -> Option<Stat> {
        read_stat(self.pid)
            .filter(|s| s.start_ticks == self.start_ticks && s.state != 'Z' && s.state != 'X')
    }

    /// True while this very process runs (not a zombie, not a reused pid).
    pub fn is_alive(&self) -> bool {
        self.live_stat().is_some()
    }

    /// Resident memory in KiB, while alive.
    pub fn rss_kib(&self) -> Option<u64> {
        let page_kib = (page_size() / 1024).max(1);
        self.live_stat().map(|s| s.rss_pages * page_kib)
    }

    /// CPU time used so far (user + system), while alive.
    pub fn cpu_time(&self) -> Option<Duration> {
        let hz = clock_ticks_per_second();
        self.live_stat()
            .map(|s| Duration::from_millis((s.utime_ticks + s.stime_ticks) * 1000 / hz))
    }

    /// Sends `signal` if the process is still ours; false if it is gone.
    pub fn signal(&self, signal: i32) -> bool {
        if !self.is_alive() {
            return false;
        }
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(self.pid, signal) == 0 }
    }

    /// Polls until the process has exited or `timeout` passed; true if gone.
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL and wait for the exit.
    pub fn terminate(&self, grace: Duration) {
        if self.signal(libc::SIGTERM) && !self.wait_gone(grace) {
            self.signal(libc::SIGKILL);
            self.wait_gone(Duration::from_secs(5));
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as u64 } else { 4096 }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn current_process_is_alive() {
        let me = ProcessRef::current();
        assert!(me.is_alive());
        assert!(me.rss_kib().unwrap() > 0);
    }

    #[test]
    fn reused_pid_is_not_ours() {
        let me = ProcessRef::current();
        let other = ProcessRef {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!other.is_alive());
    }

    #[test]
    fn terminate_ends_a_child() {
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let p = ProcessRef::of(child.id() as i32).unwrap();
        assert!(p.is_alive());
        // Reap in the background so the child does not linger as a zombie
        // (a zombie already counts as gone, but the test should not leak).
        let reaper = std::thread::spawn(move || child.wait());
        p.terminate(Duration::from_secs(5));
        assert!(!p.is_alive());
        reaper.join().unwrap().unwrap();
    }
}
