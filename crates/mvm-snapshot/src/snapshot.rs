//! Reading, listing and removing published snapshots.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{self, Sink};
use crate::error::{SnapshotError, io};
use crate::fsutil::{
    self, MANIFEST, SEAL, check_file_name, check_name, open_listed, open_regular, real_dir,
};
use crate::staging::STAGING_PREFIX;
use crate::{FORMAT, Manifest, SealKey};

pub(crate) const MAX_MANIFEST: u64 = 1 << 20;
const REMOVING_PREFIX: &str = ".removing-";

/// One entry of [`list`]: the directory name and the result of opening it.
pub type ListEntry = (String, Result<Snapshot, SnapshotError>);

/// An opened, seal-checked snapshot directory.
#[derive(Clone, Debug)]
pub struct Snapshot {
    dir: PathBuf,
    manifest: Manifest,
}

impl Snapshot {
    pub(crate) fn from_parts(dir: PathBuf, manifest: Manifest) -> Snapshot {
        Snapshot { dir, manifest }
    }

    /// Checks the seal (constant time) over `manifest.json`, parses it, checks the format,
    /// and checks that the directory holds exactly `manifest.json`, `seal` and the listed
    /// files, each a regular file (links are never followed) of the listed size. Does not
    /// hash data files: see [`verify`](Self::verify) and [`copy_out`](Self::copy_out).
    pub fn open(dir: &Path, key: &SealKey) -> Result<Snapshot, SnapshotError> {
        real_dir(dir)?;
        let dmd = std::fs::symlink_metadata(dir).map_err(io(dir))?;
        fsutil::check_private(dir, &dmd)?;
        let bad = |reason: String| SnapshotError::Manifest {
            dir: dir.to_path_buf(),
            reason,
        };

        let mpath = dir.join(MANIFEST);
        let bytes = match read_capped(&mpath, MAX_MANIFEST) {
            Err(SnapshotError::NotFound(_)) => {
                return Err(bad("manifest.json is missing (incomplete snapshot?)".into()));
            }
            r => r?.ok_or_else(|| bad("larger than the 1 MiB limit".into()))?,
        };
        let spath = dir.join(SEAL);
        let seal = match read_capped(&spath, 256) {
            Err(SnapshotError::NotFound(_)) => {
                return Err(SnapshotError::Seal {
                    dir: dir.to_path_buf(),
                    reason: "the seal file is missing".into(),
                });
            }
            r => r?,
        };
        let seal_ok = seal
            .as_deref()
            .and_then(|s| std::str::from_utf8(s).ok())
            .is_some_and(|s| key.check(&bytes, s.strip_suffix('\n').unwrap_or(s)));
        if !seal_ok {
            return Err(SnapshotError::Seal {
                dir: dir.to_path_buf(),
                reason: "manifest.json does not match its seal".into(),
            });
        }

        // Sealed, so written by us; still validated so a bug can never escape the directory.
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("cannot parse: {e}")))?;
        if manifest.format != FORMAT {
            return Err(bad(format!(
                "format {} is not supported (this build reads format {FORMAT}); it was made by another mvm version",
                manifest.format
            )));
        }
        for (name, e) in &manifest.files {
            if check_file_name(name).is_err() {
                return Err(bad(format!("lists an invalid file name {name:?}")));
            }
            if !digest::valid_digest(&e.digest) {
                return Err(bad(format!(
                    "file {name:?} has a malformed digest {:?}",
                    e.digest
                )));
            }
        }

        let mut seen = 0usize;
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(SnapshotError::UnexpectedFile {
                    dir: dir.to_path_buf(),
                    file: name.to_string_lossy().into_owned(),
                });
            };
            let p = entry.path();
            // `entry.metadata` is lstat: links are reported as links.
            let emd = entry.metadata().map_err(io(&p))?;
            if name == MANIFEST || name == SEAL {
                if !emd.file_type().is_file() {
                    return Err(SnapshotError::NotRegular { path: p });
                }
                fsutil::check_private(&p, &emd)?;
                continue;
            }
            let Some(fe) = manifest.files.get(name) else {
                return Err(SnapshotError::UnexpectedFile {
                    dir: dir.to_path_buf(),
                    file: name.to_string(),
                });
            };
            if !emd.file_type().is_file() {
                return Err(SnapshotError::NotRegular { path: p });
            }
            fsutil::check_private(&p, &emd)?;
            if emd.len() != fe.size {
                return Err(SnapshotError::Truncated {
                    path: p,
                    expected: fe.size,
                    found: emd.len(),
                });
            }
            seen += 1;
        }
        if seen != manifest.files.len() {
            let missing = manifest
                .files
                .keys()
                .find(|n| std::fs::symlink_metadata(dir.join(n)).is_err())
                .cloned()
                .unwrap_or_default();
            return Err(SnapshotError::Missing {
                dir: dir.to_path_buf(),
                file: missing,
            });
        }
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Each key of `expected` must be in the bindings with the same value; the first
    /// difference (in key order) is the error.
    pub fn check_bindings(&self, expected: &BTreeMap<String, String>) -> Result<(), SnapshotError> {
        for (k, v) in expected {
            let have = self.manifest.bindings.get(k);
            if have != Some(v) {
                return Err(SnapshotError::Mismatch {
                    dir: self.dir.clone(),
                    key: k.clone(),
                    snapshot: have.cloned(),
                    here: v.clone(),
                });
            }
        }
        Ok(())
    }

    /// Hashes `file` and compares it with the manifest; returns its path on success.
    pub fn verify(&self, file: &str) -> Result<PathBuf, SnapshotError> {
        let (p, f, size, want) = self.open_data(file)?;
        if digest::scan(&f, &p, size, None)? != want {
            return Err(SnapshotError::Tampered { path: p });
        }
        Ok(p)
    }

    /// Opens `file`, checks its digest and returns the open file at its
    /// start: what a reader then gets from it is what was verified (its
    /// path is not opened again, so a file swapped in after the check is
    /// not what is read).
    pub fn open_verified(&self, file: &str) -> Result<std::fs::File, SnapshotError> {
        use std::io::{Seek, SeekFrom};
        let (p, mut f, size, want) = self.open_data(file)?;
        if digest::scan(&f, &p, size, None)? != want {
            return Err(SnapshotError::Tampered { path: p });
        }
        f.seek(SeekFrom::Start(0))
            .map_err(|source| SnapshotError::Io {
                path: p.clone(),
                source,
            })?;
        Ok(f)
    }

    /// Copies `file` to `dest` (created new, 0600), sparse, hashing in the same pass. On a
    /// digest mismatch `dest` is removed and the error is `Tampered`; on any other error it
    /// is removed too. `dest` is not fsynced (it is a working copy that can be made again).
    pub fn copy_out(&self, file: &str, dest: &Path) -> Result<(), SnapshotError> {
        let (p, f, size, want) = self.open_data(file)?;
        let d = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dest)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => SnapshotError::Exists(dest.to_path_buf()),
                _ => SnapshotError::Io {
                    path: dest.to_path_buf(),
                    source: e,
                },
            })?;
        let r = d.set_len(size).map_err(io(dest)).and_then(|()| {
            digest::scan(
                &f,
                &p,
                size,
                Some(Sink {
                    file: &d,
                    path: dest,
                }),
            )
        });
        drop(d);
        match r {
            Ok(got) if got == want => Ok(()),
            Ok(_) => {
                let _ = std::fs::remove_file(dest);
                Err(SnapshotError::Tampered { path: p })
            }
            Err(e) => {
                let _ = std::fs::remove_file(dest);
                Err(e)
            }
        }
    }

    /// Bytes allocated on disk by the directory and its entries (`st_blocks * 512`).
    pub fn disk_usage(&self) -> u64 {
        let mut total = std::fs::symlink_metadata(&self.dir)
            .map(|m| fsutil::allocated(&m))
            .unwrap_or(0);
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if let Ok(m) = e.metadata() {
                    total += fsutil::allocated(&m);
                }
            }
        }
        total
    }

    /// Opens a listed data file without following links and re-checks its size on the
    /// descriptor (the directory may have changed since `open`).
    fn open_data(
        &self,
        file: &str,
    ) -> Result<(PathBuf, std::fs::File, u64, String), SnapshotError> {
        let Some(e) = self.manifest.files.get(file) else {
            return Err(SnapshotError::NotListed {
                dir: self.dir.clone(),
                file: file.to_string(),
            });
        };
        check_file_name(file)?;
        let p = self.dir.join(file);
        let (f, _) = open_listed(&self.dir, file, e.size)?;
        Ok((p, f, e.size, e.digest.clone()))
    }
}

/// Reads a regular file (not through a symlink); `None` if it is larger than `cap`.
fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, SnapshotError> {
    let (f, _) = open_regular(path)?;
    let mut buf = Vec::new();
    f.take(cap + 1).read_to_end(&mut buf).map_err(io(path))?;
    Ok(if buf.len() as u64 > cap {
        None
    } else {
        Some(buf)
    })
}

/// Published snapshots under `parent`, sorted by name, each opened (seal-checked). Hidden
/// entries (`.staging-*`, `.removing-*`, anything starting with '.') are skipped. A missing
/// `parent` means no snapshots.
pub fn list(parent: &Path, key: &SealKey) -> Result<Vec<ListEntry>, SnapshotError> {
    let rd = match std::fs::read_dir(parent) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(SnapshotError::Io {
                path: parent.to_path_buf(),
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io(parent))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let snap = Snapshot::open(&entry.path(), key);
        out.push((name, snap));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Removes `.staging-*` and `.removing-*` entries under `parent` whose creating process (pid
/// in the name) no longer runs; returns how many were removed. Pids are only meaningful in
/// one pid namespace: do not share a snapshot directory between pid namespaces.
pub fn clean_staging(parent: &Path) -> Result<usize, SnapshotError> {
    let mut n = 0;
    for p in leftovers(parent)? {
        let is_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
        // remove_dir_all does not follow symlinks inside; a symlink entry is just unlinked.
        let r = if is_dir {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Ok(()) => n += 1,
            // Someone else cleaned it concurrently.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SnapshotError::Io { path: p, source: e }),
        }
    }
    Ok(n)
}

/// The `.staging-*` and `.removing-*` entries under `parent` whose creating process no
/// longer runs: what [`clean_staging`] removes.
pub fn leftovers(parent: &Path) -> Result<Vec<std::path::PathBuf>, SnapshotError> {
    let rd = match std::fs::read_dir(parent) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(SnapshotError::Io {
                path: parent.to_path_buf(),
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io(parent))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = leftover_pid(&name) else {
            continue;
        };
        if !fsutil::pid_alive(pid) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// The pid in `.staging-<name>-<pid>-<random>` or `.removing-<name>-<pid>-<random>`.
fn leftover_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(STAGING_PREFIX)
        .or_else(|| name.strip_prefix(REMOVING_PREFIX))?;
    let mut parts = rest.rsplitn(3, '-');
    let _random = parts.next()?;
    let pid = parts.next()?;
    let _name = parts.next().filter(|n| !n.is_empty())?;
    pid.parse().ok()
}

/// Removes a published snapshot directory: renames it to `.removing-<name>-<pid>-<random>`
/// (so it disappears from its name at once) and then deletes it. Refuses a symlink.
pub fn remove(dir: &Path) -> Result<(), SnapshotError> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| SnapshotError::BadName(dir.display().to_string()))?;
    check_name(name)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    real_dir(dir)?;
    let tmp = parent.join(format!(
        "{REMOVING_PREFIX}{name}-{}-{}",
        std::process::id(),
        fsutil::random_hex(8)?
    ));
    fsutil::rename_noreplace(dir, &tmp).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SnapshotError::NotFound(dir.to_path_buf()),
        _ => SnapshotError::Io {
            path: dir.to_path_buf(),
            source: e,
        },
    })?;
    fsutil::fsync_dir(parent)?;
    std::fs::remove_dir_all(&tmp).map_err(io(&tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_names() {
        assert_eq!(
            leftover_pid(".staging-my-snap-123-00ff00ff00ff00ff"),
            Some(123)
        );
        assert_eq!(leftover_pid(".removing-x-7-ab"), Some(7));
        assert_eq!(leftover_pid(".staging--7-ab"), None);
        assert_eq!(leftover_pid(".staging-x-notapid-ab"), None);
        assert_eq!(leftover_pid("snap-1-2"), None);
        assert_eq!(leftover_pid(".other-x-1-2"), None);
    }
}
