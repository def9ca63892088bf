//! Owner-only files whatever the umask, staged writes, the flock, and
//! bounded reads that refuse anything but a regular file.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
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
        // A symlink or FIFO planted in the audit dir must not redirect or block the writer.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    regular(&f, path)?;
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

/// Largest log.jsonl a reader accepts.
pub const MAX_LOG: u64 = 1 << 30;
/// Largest head.json, pending.json or genesis.json a reader accepts.
pub const MAX_SMALL: u64 = 64 * 1024;

fn open_error(path: &Path, e: std::io::Error) -> AuditError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        AuditError::NotRegular {
            path: path.to_path_buf(),
            what: "a symbolic link",
        }
    } else {
        AuditError::io(path, "open", e)
    }
}

/// fstat the open file: anything but a regular file is refused.
fn regular(f: &File, path: &Path) -> Result<u64, AuditError> {
    let meta = f.metadata().map_err(|e| AuditError::io(path, "stat", e))?;
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(meta.len());
    }
    use std::os::unix::fs::FileTypeExt;
    let what = if ft.is_dir() {
        "a directory, not a file"
    } else if ft.is_fifo() {
        "a FIFO, not a regular file"
    } else if ft.is_socket() {
        "a socket, not a regular file"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device, not a regular file"
    } else {
        "not a regular file"
    };
    Err(AuditError::NotRegular {
        path: path.to_path_buf(),
        what,
    })
}

/// Open for reading without following a symlink or blocking on a FIFO; only
/// a regular file of at most `max` bytes. `None` when it does not exist.
/// Returns the file and its length.
pub fn open_read(path: &Path, max: u64) -> Result<Option<(File, u64)>, AuditError> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path, e)),
    };
    let len = regular(&f, path)?;
    if len > max {
        return Err(AuditError::TooBig {
            path: path.to_path_buf(),
            size: len,
            max,
        });
    }
    Ok(Some((f, len)))
}

/// The whole file through [`open_read`]; the cap holds even if it grows meanwhile.
pub fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>, AuditError> {
    let Some((f, len)) = open_read(path, max)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| AuditError::io(path, "read", e))?;
    if bytes.len() as u64 > max {
        return Err(AuditError::TooBig {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(Some(bytes))
}
