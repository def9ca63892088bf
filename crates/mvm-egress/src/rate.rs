//! The cap on new connections per second per microVM. Like the slots, the
//! state is shared by every gate process of one microVM through the file
//! system: one small file, read and rewritten under `flock`, holding a
//! token bucket (`TOKENS UNIX_MS`). The bucket holds at most `per_second`
//! tokens and refills at `per_second` a second, so a burst of
//! `per_second` connections passes and the next one within that second
//! does not.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// A token bucket in `file`.
#[derive(Debug, Clone)]
pub struct Rate {
    pub file: PathBuf,
    /// New connections allowed per second (at least 1).
    pub per_second: u32,
}

impl Rate {
    /// Takes one token: `true` when this connection is within the rate.
    pub fn take(&self) -> io::Result<bool> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.file)?;
        // Held until `file` is dropped at the end of this call.
        file.lock()?;
        let mut text = String::new();
        // Only gate processes write this file; anything unreadable in it
        // (a torn write by a killed process) counts as a full bucket.
        let _ = (&file).take(64).read_to_string(&mut text);
        let now = now_ms();
        let max = f64::from(self.per_second.max(1));
        let tokens = match parse(&text) {
            Some((tokens, at)) => {
                // A clock that went back refills nothing.
                let elapsed = now.saturating_sub(at) as f64 / 1000.0;
                (tokens + elapsed * max).min(max)
            }
            None => max,
        };
        let (left, ok) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
        file.write_all(format!("{left:.6} {now}\n").as_bytes())?;
        Ok(ok)
    }
}

fn parse(text: &str) -> Option<(f64, u64)> {
    let mut words = text.split_whitespace();
    let tokens: f64 = words.next()?.parse().ok()?;
    let at: u64 = words.next()?.parse().ok()?;
    (tokens.is_finite() && tokens >= 0.0).then_some((tokens, at))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_passes_a_burst_then_refuses_then_refills() {
        let dir = tempfile::tempdir().unwrap();
        let rate = Rate {
            file: dir.path().join("slots/rate"),
            per_second: 3,
        };
        let got: Vec<bool> = (0..4).map(|_| rate.take().unwrap()).collect();
        assert_eq!(got, [true, true, true, false]);
        std::thread::sleep(std::time::Duration::from_millis(450));
        assert!(
            rate.take().unwrap(),
            "one token back after a third of a second"
        );
        // A corrupt file is a full bucket, not an error.
        std::fs::write(&rate.file, b"garbage").unwrap();
        assert!(rate.take().unwrap());
        std::fs::write(&rate.file, b"NaN 0").unwrap();
        assert!(rate.take().unwrap());
    }
}
