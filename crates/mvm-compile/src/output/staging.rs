//! The output tree while it is being built.
//!
//! Every entry is recorded as it is written, so `SHA256SUMS`, the tree hash
//! and the archive come from what is actually on disk in the staging
//! directory, not from a second look at the source.

use std::collections::BTreeMap;
use std::fs::{File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use filetime::FileTime;
use sha2::{Digest, Sha256};

use crate::bundle::tree_hash::{self, Item};

pub const DIR_MODE: u32 = 0o755;
pub const EXEC_MODE: u32 = 0o755;
pub const FILE_MODE: u32 = 0o644;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staged {
    Dir,
    File {
        executable: bool,
        size: u64,
        sha256: String,
    },
    Symlink {
        target: String,
    },
}

impl Staged {
    pub fn mode(&self) -> u32 {
        match self {
            Staged::Dir => DIR_MODE,
            Staged::File {
                executable: true, ..
            } => EXEC_MODE,
            Staged::File {
                executable: false, ..
            } => FILE_MODE,
            Staged::Symlink { .. } => 0o777,
        }
    }
}

/// Why copying one source file failed.
#[derive(Debug)]
pub enum CopyError {
    /// The source file cannot be bundled (it changed kind, or reading failed).
    Source(String),
    /// Writing into the staging directory failed.
    Output(io::Error),
}

#[derive(Debug)]
pub struct StagedTree {
    root: PathBuf,
    /// Modification time given to every entry.
    mtime: SystemTime,
    /// Relative path → entry; byte order puts every directory before its contents.
    entries: BTreeMap<String, Staged>,
}

impl StagedTree {
    /// `root` must be an existing, empty directory; `mtime` is in seconds
    /// since the epoch.
    pub fn new(root: PathBuf, mtime: u64) -> StagedTree {
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.min(crate::MAX_MTIME));
        StagedTree {
            root,
            mtime,
            entries: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entries(&self) -> &BTreeMap<String, Staged> {
        &self.entries
    }

    pub fn write(&mut self, rel: &str, bytes: &[u8], executable: bool) -> io::Result<()> {
        self.parents(rel)?;
        let path = self.root.join(rel);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        f.write_all(bytes)?;
        self.finish_file(&f, executable)?;
        let sha256 = tree_hash::sha256_hex(bytes);
        self.entries.insert(
            rel.to_string(),
            Staged::File {
                executable,
                size: bytes.len() as u64,
                sha256,
            },
        );
        Ok(())
    }

    /// Copy a source file, refusing anything that is not (or no longer) a
    /// regular file: it is opened without following symlinks and without
    /// blocking, so a fifo swapped in after the walk cannot hang the copy.
    pub fn copy_from(&mut self, rel: &str, src: &Path, executable: bool) -> Result<(), CopyError> {
        let mut input = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(src)
            .map_err(|e| CopyError::Source(format!("cannot open it: {e}")))?;
        let meta = input
            .metadata()
            .map_err(|e| CopyError::Source(format!("cannot read its metadata: {e}")))?;
        if !meta.is_file() {
            return Err(CopyError::Source(
                "it stopped being a regular file while it was bundled".into(),
            ));
        }
        self.parents(rel).map_err(CopyError::Output)?;
        let path = self.root.join(rel);
        let mut output = File::create_new(&path).map_err(CopyError::Output)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Source(format!("cannot read it: {e}"))),
            };
            hasher.update(&buf[..n]);
            output.write_all(&buf[..n]).map_err(CopyError::Output)?;
            size += n as u64;
        }
        self.finish_file(&output, executable)
            .map_err(CopyError::Output)?;
        let sha256 = format!("{:x}", hasher.finalize());
        self.entries.insert(
            rel.to_string(),
            Staged::File {
                executable,
                size,
                sha256,
            },
        );
        Ok(())
    }

    pub fn symlink(&mut self, rel: &str, target: &str) -> io::Result<()> {
        self.parents(rel)?;
        std::os::unix::fs::symlink(target, self.root.join(rel))?;
        self.entries.insert(
            rel.to_string(),
            Staged::Symlink {
                target: target.to_string(),
            },
        );
        Ok(())
    }

    /// Mode and times through the open handle: no second path lookup per
    /// file, and later writes elsewhere in the tree cannot change them.
    fn finish_file(&self, f: &File, executable: bool) -> io::Result<()> {
        f.set_permissions(Permissions::from_mode(if executable {
            EXEC_MODE
        } else {
            FILE_MODE
        }))?;
        f.set_times(
            FileTimes::new()
                .set_accessed(self.mtime)
                .set_modified(self.mtime),
        )
    }

    /// An empty directory (and its parents); a no-op if it exists already.
    pub fn dir(&mut self, rel: &str) -> io::Result<()> {
        self.parents(&format!("{rel}/"))
    }

    fn parents(&mut self, rel: &str) -> io::Result<()> {
        for (i, _) in rel.match_indices('/') {
            let dir = &rel[..i];
            if !self.entries.contains_key(dir) {
                let path = self.root.join(dir);
                std::fs::create_dir(&path)?;
                set_mode(&path, DIR_MODE)?;
                self.entries.insert(dir.to_string(), Staged::Dir);
            }
        }
        Ok(())
    }

    /// `sha256sum` format over every regular file, sorted by path. Symlinks
    /// are left out (`sha256sum -c` would follow them); `launch.json`'s
    /// `source.tree_hash` covers them.
    pub fn sha256sums(&self) -> String {
        self.entries
            .iter()
            .filter_map(|(path, e)| match e {
                Staged::File { sha256, .. } => Some(format!("{sha256}  {path}\n")),
                _ => None,
            })
            .collect()
    }

    /// [`tree_hash::tree_hash`] over the entries below `prefix` (`"src"`),
    /// and how many files and symlinks there are.
    pub fn tree_hash_under(&self, prefix: &str) -> (String, usize) {
        let below = format!("{prefix}/");
        let items: Vec<(&str, Item)> = self
            .entries
            .iter()
            .filter_map(|(path, e)| {
                let rel = path.strip_prefix(&below)?;
                match e {
                    Staged::Dir => None,
                    Staged::File {
                        executable, sha256, ..
                    } => Some((
                        rel,
                        Item::File {
                            executable: *executable,
                            sha256,
                        },
                    )),
                    Staged::Symlink { target } => Some((rel, Item::Symlink { target })),
                }
            })
            .collect();
        let count = items.len();
        (tree_hash::tree_hash(items), count)
    }

    /// Give the directories, symlinks and the root the tree's mtime (files
    /// got it when written). Children go first: creating an entry changes
    /// its directory's mtime, setting a child's times does not.
    pub fn set_mtimes(&self) -> io::Result<()> {
        let t = FileTime::from_system_time(self.mtime);
        for (rel, e) in self.entries.iter().rev() {
            let path = self.root.join(rel);
            match e {
                Staged::Symlink { .. } => filetime::set_symlink_file_times(&path, t, t)?,
                Staged::Dir => filetime::set_file_times(&path, t, t)?,
                Staged::File { .. } => {}
            }
        }
        set_mode(&self.root, DIR_MODE)?;
        filetime::set_file_times(&self.root, t, t)
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}
