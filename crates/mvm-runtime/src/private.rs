//! Owner-only files and directories, whatever the umask.
//!
//! Instance directories hold the control socket, QEMU's monitor socket
//! (QMP can run commands on the host) and state with secret tokens, so they
//! are 0700 and their files 0600: another local user cannot reach them.
//! The control socket also checks its peer's uid (see
//! [`is_owner`]), so a loosened directory mode alone opens nothing.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (which must not exist) as 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

/// Creates `dir` and its missing parents (those created are 0700), and
/// makes `dir` itself 0700 even if it existed (an older mvm made it 0755).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    create_missing(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

fn create_missing(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_missing(parent)?;
    }
    match create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// Creates (or truncates) `path` as a 0600 file.
pub fn create_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Opens `path` for writing, creating it as 0600 if missing, without
/// truncating it (a lock file).
pub fn create_file_keep(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Makes an existing file (e.g. a socket just bound) 0600.
pub fn restrict(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))
}

/// Whether a local peer with `uid` may use this user's sockets: only the
/// same user (root included only when we are root).
pub fn is_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions.
    uid == unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Run in a child process: the umask is process-wide.
    #[test]
    fn modes_hold_under_a_permissive_umask() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "private::tests::child_creates", "--nocapture"])
            .env("MVM_PRIVATE_TEST_DIR", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().mode() & 0o777;
        assert_eq!(mode("a"), 0o700);
        assert_eq!(mode("a/b"), 0o700);
        assert_eq!(mode("a/b/f"), 0o600);
        assert_eq!(mode("old"), 0o700);
    }

    #[test]
    fn child_creates() {
        let Some(dir) = std::env::var_os("MVM_PRIVATE_TEST_DIR") else {
            return;
        };
        // SAFETY: umask has no preconditions.
        unsafe { libc::umask(0) };
        let dir = Path::new(&dir);
        create_dir_all(&dir.join("a/b")).unwrap();
        create_file(&dir.join("a/b/f")).unwrap();
        // Made loose by an older mvm: tightened when next used.
        std::fs::create_dir(dir.join("old")).unwrap();
        std::fs::set_permissions(dir.join("old"), Permissions::from_mode(0o755)).unwrap();
        create_dir_all(&dir.join("old")).unwrap();
    }
}
