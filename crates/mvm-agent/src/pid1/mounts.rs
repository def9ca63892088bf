//! Thin wrappers over mount(2) and friends with errors that name the mount.

use std::ffi::CString;
use std::io;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {target}: {source}")]
pub struct MountError {
    pub action: &'static str,
    pub target: String,
    #[source]
    pub source: io::Error,
}

fn c(path: &str) -> CString {
    CString::new(path).expect("mount paths are literals or kernel command line words without NUL")
}

fn check(rc: libc::c_int, action: &'static str, target: &str) -> Result<(), MountError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(MountError {
            action,
            target: target.into(),
            source: io::Error::last_os_error(),
        })
    }
}

/// Mounts `source` of type `fstype` on `target`, creating the mount point.
pub fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), MountError> {
    std::fs::create_dir_all(target).map_err(|source| MountError {
        action: "create mount point",
        target: target.into(),
        source,
    })?;
    let (src, tgt, fs, dat) = (c(source), c(target), c(fstype), c(data));
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fs.as_ptr(),
            flags,
            dat.as_ptr().cast(),
        )
    };
    check(rc, "mount", &format!("{source} ({fstype}) on {target}"))
}

/// `mount --move from to`, creating `to`.
pub fn move_mount(from: &str, to: &str) -> Result<(), MountError> {
    std::fs::create_dir_all(to).map_err(|source| MountError {
        action: "create mount point",
        target: to.into(),
        source,
    })?;
    let (f, t) = (c(from), c(to));
    // SAFETY: valid strings; null fstype and data are allowed with MS_MOVE.
    let rc = unsafe {
        libc::mount(
            f.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            libc::MS_MOVE,
            std::ptr::null(),
        )
    };
    check(rc, "move mount", &format!("{from} to {to}"))
}

pub fn chroot_here() -> Result<(), MountError> {
    let dot = c(".");
    // SAFETY: valid string.
    check(
        unsafe { libc::chroot(dot.as_ptr()) },
        "chroot into",
        "the new root",
    )?;
    std::env::set_current_dir("/").map_err(|source| MountError {
        action: "enter",
        target: "/".into(),
        source,
    })
}

pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (path.metadata(), path.join("..").metadata()) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}
