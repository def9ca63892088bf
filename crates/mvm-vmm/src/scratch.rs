//! Per-instance scratch disks: sparse files formatted ext4, used by the
//! guest as the overlay's upper layer.

use std::path::{Path, PathBuf};
use std::process::Command;

/// mkfs.ext4 cannot fit its metadata into less.
pub const MIN_SCRATCH_MIB: u64 = 4;
const MIB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("a scratch disk of {0} MiB is too small; it needs at least {MIN_SCRATCH_MIB} MiB")]
    TooSmall(u64),
    #[error("creating scratch disk {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not run mkfs.ext4 (on Debian: apt-get install e2fsprogs): {0}")]
    MkfsMissing(std::io::Error),
    #[error("mkfs.ext4 failed on {path}: {stderr}")]
    Mkfs { path: PathBuf, stderr: String },
}

/// Creates `path` (which must not exist) as a sparse `size_mib` MiB file
/// holding an empty ext4 filesystem labelled `mvm-scratch`. Only the
/// filesystem metadata takes real disk space until the guest writes.
pub fn create_scratch_disk(path: &Path, size_mib: u64) -> Result<(), ScratchError> {
    if size_mib < MIN_SCRATCH_MIB {
        return Err(ScratchError::TooSmall(size_mib));
    }
    let create_error = |source| ScratchError::Create {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(create_error)?;
    file.set_len(size_mib * MIB).map_err(create_error)?;
    drop(file);
    // Lazy inode-table init and no journal keep formatting fast and the
    // file sparse; the disk lives and dies with one instance, so there is
    // nothing for a journal to protect across a crash.
    let output = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-m",
            "0",
            "-L",
            "mvm-scratch",
            "-O",
            "^has_journal",
        ])
        .args(["-E", "lazy_itable_init=1,nodiscard"])
        .arg(path)
        .output()
        .map_err(ScratchError::MkfsMissing)?;
    if !output.status.success() {
        let _ = std::fs::remove_file(path);
        return Err(ScratchError::Mkfs {
            path: path.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn scratch_disk_is_sparse_ext4() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("scratch.ext4");
        create_scratch_disk(&disk, 1024).unwrap();
        let meta = std::fs::metadata(&disk).unwrap();
        assert_eq!(meta.len(), 1024 * MIB);
        let allocated = meta.blocks() * 512;
        assert!(allocated < 64 * MIB, "{allocated} bytes allocated");

        let fsck = Command::new("e2fsck")
            .args(["-f", "-n"])
            .arg(&disk)
            .output()
            .unwrap();
        assert!(fsck.status.success(), "{fsck:?}");
        let label = Command::new("e2label").arg(&disk).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "mvm-scratch");
    }

    #[test]
    fn existing_files_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("taken");
        std::fs::write(&disk, b"precious").unwrap();
        assert!(matches!(
            create_scratch_disk(&disk, 64),
            Err(ScratchError::Create { .. })
        ));
        assert_eq!(std::fs::read(&disk).unwrap(), b"precious");
        assert!(matches!(
            create_scratch_disk(&disk, 1),
            Err(ScratchError::TooSmall(1))
        ));
    }
}
