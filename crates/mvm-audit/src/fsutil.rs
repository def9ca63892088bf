//! Owner-only files whatever the umask, staged writes, and the flock.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::AuditError;

pub fn ensure_dir(dir: &Path) -> Result<(), AuditError> {
    std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, "create audit dir", e))?;
    // Explicit chmod: create_dir_all honours the umask.
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
        .map_err(|e| AuditError::io(dir, "chmod 0700", e))
}

/// Open (creating 0600) with the given options, then fchmod so umask can't widen or narrow it.
pub fn open_private(path: &Path, append: bool, read: bool) -> Result<File, AuditError> {
    let f = OpenOptions::new()
        .create(true)
        .read(read)
        .write(!append)
        .append(append)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuditError::io(path, "open", e))?;
    f.set_permissions(Permissions::from_mode(0o600))
        .map_err(|e| AuditError::io(path, "chmod 0600", e))?;
    Ok(f)
}

/// Exclusive flock held until the returned File is dropped.
pub fn lock(dir: &Path) -> Result<File, AuditError> {
    let path = dir.join("lock");
    let f = open_private(&path, false, true)?;
    loop {
        // SAFETY: flock on a valid fd we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(AuditError::Lock { path, source: e });
        }
    }
}

/// Write `bytes` to `dir/name` atomically: stage in the same dir, fsync, rename, fsync dir.
pub fn write_staged(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), AuditError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = open_private(&tmp, false, false)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_data())
        .map_err(|e| AuditError::io(&tmp, "write", e))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| AuditError::io(&path, "rename into place", e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
