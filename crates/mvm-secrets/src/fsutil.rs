//! Owner-only files and directories: every open refuses symlinks
//! (O_NOFOLLOW) and checks what it opened (fstat), every write is staged
//! in the same directory, fsynced and renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::SecretError;

pub(crate) fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Check an existing directory: a real directory (not a link), ours,
/// mode 0700 or tighter. `Ok(false)` when it does not exist.
pub(crate) fn check_dir(dir: &Path, what: &'static str) -> Result<bool, SecretError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(SecretError::io(dir, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(SecretError::Symlink {
            path: dir.into(),
            what,
        });
    }
    if !meta.is_dir() {
        return Err(SecretError::NotRegular {
            path: dir.into(),
            what,
        });
    }
    check_owner_mode(dir, &meta, 0o700)?;
    Ok(true)
}

fn check_owner_mode(path: &Path, meta: &fs::Metadata, want: u32) -> Result<(), SecretError> {
    let me = my_uid();
    if meta.uid() != me {
        return Err(SecretError::NotOwned {
            path: path.into(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions {
            path: path.into(),
            mode,
            want,
        });
    }
    Ok(())
}

/// Make `dir` (one level, its parent must exist) 0700 whatever the
/// umask, or check the one that is there.
pub(crate) fn ensure_dir(dir: &Path, what: &'static str) -> Result<(), SecretError> {
    if check_dir(dir, what)? {
        return Ok(());
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask may have taken bits away; never adds any, but be exact.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| SecretError::io(dir, e))?;
        }
        // Another process made it first: fine if it passes the checks.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SecretError::io(dir, e)),
    }
    check_dir(dir, what)?;
    Ok(())
}

/// Read a whole owner-only regular file without following a link; at
/// most `cap` bytes (more is `Damaged`). `Ok(None)` when it does not exist.
pub(crate) fn read_private(
    path: &Path,
    cap: u64,
    what: &'static str,
) -> Result<Option<Vec<u8>>, SecretError> {
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(SecretError::Symlink {
                path: path.into(),
                what,
            });
        }
        Err(e) => return Err(SecretError::io(path, e)),
    };
    // fstat on what was opened: no swap between check and read.
    let meta = f.metadata().map_err(|e| SecretError::io(path, e))?;
    if !meta.is_file() {
        return Err(SecretError::NotRegular {
            path: path.into(),
            what,
        });
    }
    check_owner_mode(path, &meta, 0o600)?;
    let mut buf = Vec::new();
    (&mut f)
        .take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SecretError::io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(SecretError::Damaged {
            path: path.into(),
            detail: format!("bigger than {cap} bytes"),
        });
    }
    Ok(Some(buf))
}

/// Stage `bytes` beside `dest` (0600, O_EXCL so never through a link),
/// fsync, then put it in place: by rename (replaces `dest`, and a link
/// planted there, never writing through it) or, with `exclusive`, by hard
/// link (refuses an existing `dest`). The directory is fsynced after.
pub(crate) fn write_private(
    dir: &Path,
    dest: &Path,
    bytes: &[u8],
    exclusive: bool,
) -> Result<bool, SecretError> {
    let stage = dir.join(format!(".stage.{}.tmp", random_hex(8)?));
    let staged = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&stage)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = staged {
        let _ = fs::remove_file(&stage);
        return Err(SecretError::io(&stage, e));
    }
    let placed = if exclusive {
        let r = fs::hard_link(&stage, dest);
        let _ = fs::remove_file(&stage);
        match r {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(SecretError::io(dest, e)),
        }
    } else {
        if let Err(e) = fs::rename(&stage, dest) {
            let _ = fs::remove_file(&stage);
            return Err(SecretError::io(dest, e));
        }
        true
    };
    sync_dir(dir)?;
    Ok(placed)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), SecretError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SecretError::io(dir, e))
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| {
        SecretError::io(
            "the system random source",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(b)
}

fn random_hex(n: usize) -> Result<String, SecretError> {
    let b: [u8; 16] = random_bytes()?;
    Ok(b.iter().take(n).map(|x| format!("{x:02x}")).collect())
}
