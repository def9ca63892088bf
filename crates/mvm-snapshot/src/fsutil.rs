//! Small Linux file-system helpers shared by the modules.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{SnapshotError, io as ioerr};

pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const SEAL: &str = "seal";

/// A plain, visible file name: cannot escape its directory and cannot be confused with the
/// hidden `.staging-*` / `.removing-*` entries.
pub(crate) fn check_name(name: &str) -> Result<(), SnapshotError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::BadName(name.to_string()))
    }
}

/// Name of a data file: plain and not one of the reserved metadata names.
pub(crate) fn check_file_name(name: &str) -> Result<(), SnapshotError> {
    check_name(name)?;
    if name == MANIFEST || name == SEAL {
        return Err(SnapshotError::BadName(name.to_string()));
    }
    Ok(())
}

/// Opens an existing file read-only without following a final symlink and checks, on the
/// opened descriptor (no race), that it is a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), SnapshotError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => SnapshotError::NotRegular {
                path: path.to_path_buf(),
            },
            _ if e.kind() == io::ErrorKind::NotFound => SnapshotError::NotFound(path.to_path_buf()),
            _ => SnapshotError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
    let md = f.metadata().map_err(ioerr(path))?;
    if !md.file_type().is_file() {
        return Err(SnapshotError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok((f, md))
}

/// Opens `name` in snapshot `dir` as [`open_regular`] does, and checks it
/// has the `size` the manifest records.
pub(crate) fn open_listed(
    dir: &Path,
    name: &str,
    size: u64,
) -> Result<(File, std::fs::Metadata), SnapshotError> {
    let path = dir.join(name);
    let (f, md) = match open_regular(&path) {
        Err(SnapshotError::NotFound(_)) => {
            return Err(SnapshotError::Missing {
                dir: dir.to_path_buf(),
                file: name.to_string(),
            });
        }
        r => r?,
    };
    if md.len() != size {
        return Err(SnapshotError::Truncated {
            path,
            expected: size,
            found: md.len(),
        });
    }
    Ok((f, md))
}

/// Only this user may read or write `path` (its lstat metadata `md`).
pub(crate) fn check_private(path: &Path, md: &std::fs::Metadata) -> Result<(), SnapshotError> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if md.uid() != me || md.mode() & 0o077 != 0 {
        return Err(SnapshotError::NotPrivate {
            path: path.to_path_buf(),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
        });
    }
    Ok(())
}

/// `dir` is a directory itself, not a link to one.
pub(crate) fn real_dir(dir: &Path) -> Result<(), SnapshotError> {
    let md = std::fs::symlink_metadata(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SnapshotError::NotFound(dir.to_path_buf()),
        _ => SnapshotError::Io {
            path: dir.to_path_buf(),
            source: e,
        },
    })?;
    if !md.file_type().is_dir() {
        return Err(SnapshotError::NotRegular {
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

pub(crate) fn fsync_dir(path: &Path) -> Result<(), SnapshotError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(ioerr(path))
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// rename(2) that fails with `AlreadyExists` instead of replacing `to` (plain rename would
/// silently replace an empty directory or a file).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // File systems without RENAME_NOREPLACE: check-then-rename, racy but only between
        // two writers of the same name.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(from, to)
        }
        Some(libc::ENOTEMPTY) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
        _ => Err(e),
    }
}

/// Whether process `pid` exists (EPERM means it exists but belongs to someone else).
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub(crate) fn random_hex(n: usize) -> Result<String, SnapshotError> {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).map_err(|e| SnapshotError::Io {
        path: "/dev/urandom".into(),
        source: io::Error::other(e.to_string()),
    })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Bytes allocated on disk (not the logical size).
pub(crate) fn allocated(md: &std::fs::Metadata) -> u64 {
    md.blocks().saturating_mul(512)
}
