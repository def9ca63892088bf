//! Writing a snapshot: a private staging directory, published by an atomic rename.

use std::collections::BTreeMap;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::{self, Sink};
use crate::error::{SnapshotError, io};
use crate::fsutil::{self, MANIFEST, SEAL, check_file_name, check_name, open_listed, open_regular};
use crate::snapshot::{MAX_MANIFEST, Snapshot};
use crate::{FORMAT, FileEntry, Manifest, SealKey};

pub(crate) const STAGING_PREFIX: &str = ".staging-";

/// A snapshot being written: `<parent>/.staging-<name>-<pid>-<random>`. Dropping it without
/// [`commit`](Staging::commit) removes the directory.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    parent: PathBuf,
    name: String,
    files: BTreeMap<String, FileEntry>,
    done: bool,
}

impl Staging {
    /// Creates the staging directory (0700; `parent` is created 0700 if missing). `name` must
    /// be a plain file name. Fails early with `Exists` if `<parent>/<name>` already exists.
    pub fn new(parent: &Path, name: &str) -> Result<Staging, SnapshotError> {
        check_name(name)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io(parent))?;
        let target = parent.join(name);
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(SnapshotError::Exists(target));
        }
        let dir = parent.join(format!(
            "{STAGING_PREFIX}{name}-{}-{}",
            std::process::id(),
            fsutil::random_hex(8)?
        ));
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        // The umask may have removed owner bits; make it exactly 0700.
        std::fs::set_permissions(&dir, Permissions::from_mode(0o700)).map_err(io(&dir))?;
        Ok(Staging {
            dir,
            parent: parent.to_path_buf(),
            name: name.to_string(),
            files: BTreeMap::new(),
            done: false,
        })
    }

    /// Where the caller lets QEMU write its files.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Path of data file `file` inside staging.
    ///
    /// # Panics
    /// If `file` is not a plain file name (a programming error: names are constants).
    pub fn file_path(&self, file: &str) -> PathBuf {
        assert!(
            check_file_name(file).is_ok(),
            "snapshot data file name {file:?} is not a plain file name"
        );
        self.dir.join(file)
    }

    /// Copies regular file `src` into staging as `file` (which must not exist yet), keeping
    /// holes and not writing all-zero 4 KiB blocks, and computes its digest in the same pass.
    /// The source must not change during the copy (pause the VM first).
    pub fn copy_in(&mut self, src: &Path, file: &str) -> Result<FileEntry, SnapshotError> {
        check_file_name(file)?;
        let dst_path = self.dir.join(file);
        let s = File::open(src).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SnapshotError::NotFound(src.to_path_buf()),
            _ => SnapshotError::Io {
                path: src.to_path_buf(),
                source: e,
            },
        })?;
        let md = s.metadata().map_err(io(src))?;
        if !md.file_type().is_file() {
            return Err(SnapshotError::NotRegular {
                path: src.to_path_buf(),
            });
        }
        let dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&dst_path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => SnapshotError::Exists(dst_path.clone()),
                _ => SnapshotError::Io {
                    path: dst_path.clone(),
                    source: e,
                },
            })?;
        dst.set_len(md.len()).map_err(io(&dst_path))?;
        let digest = digest::scan(
            &s,
            src,
            md.len(),
            Some(Sink {
                file: &dst,
                path: &dst_path,
            }),
        )?;
        let e = FileEntry {
            size: md.len(),
            digest,
        };
        self.files.insert(file.to_string(), e.clone());
        Ok(e)
    }

    /// Records a data file the caller wrote into staging (e.g. QEMU's `vm.state`); hashes it
    /// now, so it must be complete. Refuses symlinks and non-regular files.
    pub fn add(&mut self, file: &str) -> Result<FileEntry, SnapshotError> {
        check_file_name(file)?;
        let p = self.dir.join(file);
        let (f, md) = open_regular(&p)?;
        let digest = digest::scan(&f, &p, md.len(), None)?;
        let e = FileEntry {
            size: md.len(),
            digest,
        };
        self.files.insert(file.to_string(), e.clone());
        Ok(e)
    }

    /// Seals and publishes the snapshot as `<parent>/<name>`: makes files 0600, writes
    /// `manifest.json` and `seal`, fsyncs files and directory, renames without replacing
    /// (`Exists` if the name is taken) and fsyncs the parent. On error nothing is published
    /// and the staging directory is removed.
    pub fn commit(
        mut self,
        key: &SealKey,
        kind: &str,
        bindings: BTreeMap<String, String>,
        payload: serde_json::Value,
    ) -> Result<Snapshot, SnapshotError> {
        // The published directory must pass `open`: nothing unrecorded, nothing changed size.
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !self.files.contains_key(&name) {
                return Err(SnapshotError::UnexpectedFile {
                    dir: self.dir.clone(),
                    file: name,
                });
            }
        }
        for (name, e) in &self.files {
            let p = self.dir.join(name);
            let (f, _) = open_listed(&self.dir, name, e.size)?;
            f.set_permissions(Permissions::from_mode(0o600))
                .map_err(io(&p))?;
            f.sync_all().map_err(io(&p))?;
        }

        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let manifest = Manifest {
            format: FORMAT,
            kind: kind.to_string(),
            created_unix_ms,
            bindings,
            files: self.files.clone(),
            payload,
        };
        let mut bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| SnapshotError::Manifest {
                dir: self.dir.clone(),
                reason: format!("cannot serialize: {e}"),
            })?;
        bytes.push(b'\n');
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(SnapshotError::Manifest {
                dir: self.dir.clone(),
                reason: format!(
                    "{} bytes, more than the 1 MiB limit (payload too large)",
                    bytes.len()
                ),
            });
        }
        write_new(&self.dir.join(MANIFEST), &bytes)?;
        write_new(
            &self.dir.join(SEAL),
            format!("{}\n", key.seal(&bytes)).as_bytes(),
        )?;
        fsutil::fsync_dir(&self.dir)?;

        let target = self.parent.join(&self.name);
        fsutil::rename_noreplace(&self.dir, &target).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => SnapshotError::Exists(target.clone()),
            _ => SnapshotError::Io {
                path: target.clone(),
                source: e,
            },
        })?;
        self.done = true;
        fsutil::fsync_dir(&self.parent)?;
        Ok(Snapshot::from_parts(target, manifest))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn write_new(path: &Path, data: &[u8]) -> Result<(), SnapshotError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io(path))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(io(path))
}
