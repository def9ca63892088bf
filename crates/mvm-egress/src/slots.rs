//! The cap on concurrent connections per microVM. QEMU starts one gate
//! process per guest connection, so the count lives in the file system:
//! a directory of slot files, one `flock` each. A process holds its slot
//! for its lifetime and the kernel drops the lock when it exits, however
//! it exits, so a crashed gate never leaks a slot.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::PathBuf;

/// `dir` holds `slot-0` .. `slot-{max-1}`.
#[derive(Debug, Clone)]
pub struct Slots {
    pub dir: PathBuf,
    pub max: usize,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _file: File,
}

impl Slots {
    /// A free slot, or `None` when all `max` are held.
    pub fn acquire(&self) -> io::Result<Option<Slot>> {
        std::fs::create_dir_all(&self.dir)?;
        for i in 0..self.max {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.dir.join(format!("slot-{i}")))?;
            match file.try_lock() {
                Ok(()) => return Ok(Some(Slot { _file: file })),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
        Ok(None)
    }
}
