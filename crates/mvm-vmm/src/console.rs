//! Keeping a guest's console log bounded.
//!
//! The guest writes its serial console as fast as it likes and QEMU appends
//! it to `console.log`. A watcher thread copies the log to `console.log.1`
//! and truncates it once it passes [`CONSOLE_LOG_MAX_BYTES`] ("copytruncate":
//! QEMU keeps its descriptor, opened with `append=on`, and goes on writing at
//! the new end). At most about twice the limit is kept; a few lines written
//! between the copy and the truncation can be lost. The log is guest text:
//! readers escape control characters before printing it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Per file; two files are kept.
pub const CONSOLE_LOG_MAX_BYTES: u64 = 16 << 20;
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The rotated copy of `log`.
pub fn rotated(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Rotates `log` if it is over `max` bytes; returns whether it did.
pub fn cap(log: &Path, max: u64) -> std::io::Result<bool> {
    match std::fs::metadata(log) {
        Ok(m) if m.len() > max => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    std::fs::copy(log, rotated(log))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(log)?
        .set_len(0)?;
    Ok(true)
}

/// Watches `log` until process `pid` has exited.
pub fn watch(log: PathBuf, pid: u32, max: u64) {
    let shown = log.display().to_string();
    let spawned = std::thread::Builder::new()
        .name("console-cap".into())
        .spawn(move || {
            while running(pid) {
                if let Err(e) = cap(&log, max) {
                    tracing::warn!("capping {}: {e}", log.display());
                }
                std::thread::sleep(CHECK_EVERY);
            }
            let _ = cap(&log, max);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch {shown}: {e}");
    }
}

/// Alive and not a zombie.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_over_its_limit_is_rotated_and_an_appending_writer_goes_on() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let mut writer = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        writer.write_all(&vec![b'x'; 2048]).unwrap();
        assert!(!cap(&log, 4096).unwrap());
        writer.write_all(&vec![b'y'; 4096]).unwrap();
        assert!(cap(&log, 4096).unwrap());
        assert_eq!(std::fs::metadata(rotated(&log)).unwrap().len(), 6144);
        writer.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"after\n");
    }

    /// Sampled while the writer runs (about 1.3 MB/s, faster than a TCG
    /// guest's serial console): neither file ever grows far past the cap.
    #[test]
    fn the_watcher_bounds_a_flood() {
        const CAP: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "i=0; while [ $i -lt 60 ]; do head -c 65536 /dev/zero; sleep 0.05; i=$((i+1)); done >> {}",
                log.display()
            ))
            .spawn()
            .unwrap();
        watch(log.clone(), child.id(), CAP);
        let mut largest = 0;
        while child.try_wait().unwrap().is_none() {
            for f in [log.clone(), rotated(&log)] {
                largest = largest.max(std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // 60 x 64 KiB = 3.75 MiB written in all.
        assert!(largest <= CAP + CAP / 2, "a file reached {largest} bytes");
        assert!(rotated(&log).exists());
    }
}
