//! The output tree while it is being built.
//!
//! Every entry is recorded as it is written, so `SHA256SUMS`, the tree hash
//! and the archive come from what was actually written, not from a second
//! look at the source. A tree for a directory output is written to disk in
//! the staging directory; a tree for an archive ([`StagedTree::in_memory`])
//! holds its files' bytes in memory, the exact bytes that were hashed, and
//! the archive is built from them.

use std::collections::BTreeMap;
use std::fs::{File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use filetime::FileTime;
use sha2::{Digest, Sha256};

use crate::bundle::tree_hash::{self, Item};

/// Directories as archives record them.
pub const DIR_MODE: u32 = 0o755;
/// Directories on disk: owner-only, whatever the umask. The bundle's files
/// are 0644 whatever their host mode (for deterministic output), so a
/// private source file stays private only if others cannot enter the
/// directories holding it.
pub const DISK_DIR_MODE: u32 = 0o700;
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
    /// Writing into the staging directory (or tree) failed.
    Output(io::Error),
}

#[derive(Debug)]
pub struct StagedTree {
    root: PathBuf,
    /// Modification time given to every entry.
    mtime: SystemTime,
    /// Relative path → entry; byte order puts every directory before its contents.
    entries: BTreeMap<String, Staged>,
    /// The process umask keeps 0644/0755 intact, so files get their mode
    /// at creation and need no chmod (one syscall less per file).
    exact_modes: bool,
    /// `Some` for a tree kept in memory: each regular file's bytes, by
    /// relative path. Nothing is written under `root` then.
    memory: Option<BTreeMap<String, Vec<u8>>>,
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
            exact_modes: umask_keeps_modes(),
            memory: None,
        }
    }

    /// A tree that writes nothing to disk: entries are recorded as by
    /// [`StagedTree::new`], with the files' bytes held in memory (see
    /// [`StagedTree::contents`]). `root` names the tree in error messages
    /// only; it need not exist and is never created.
    pub fn in_memory(root: PathBuf, mtime: u64) -> StagedTree {
        StagedTree {
            memory: Some(BTreeMap::new()),
            ..StagedTree::new(root, mtime)
        }
    }

    /// Whether the tree is kept in memory rather than on disk.
    pub fn is_in_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// The bytes of the regular file at `rel`, for a tree in memory.
    pub fn contents(&self, rel: &str) -> Option<&[u8]> {
        self.memory.as_ref()?.get(rel).map(Vec::as_slice)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entries(&self) -> &BTreeMap<String, Staged> {
        &self.entries
    }

    pub fn write(&mut self, rel: &str, bytes: &[u8], executable: bool) -> io::Result<()> {
        self.parents(rel)?;
        if let Some(memory) = self.memory.as_mut() {
            check_new(&self.entries, rel)?;
            memory.insert(rel.to_string(), bytes.to_vec());
        } else {
            let path = self.root.join(rel);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(file_mode(executable))
                .open(&path)?;
            f.write_all(bytes)?;
            self.finish_file(&f, executable)?;
        }
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

    /// Copies source files into the tree, refusing anything that is not (or
    /// no longer) a regular file (see [`copy_file`]), a few at a time:
    /// creating a file costs a wait on the disk more than CPU, so waits
    /// overlap. Outcomes come back in the order of `jobs`.
    pub fn copy_many(&mut self, jobs: &[CopyJob]) -> Vec<Result<(), CopyError>> {
        let in_memory = self.is_in_memory();
        let mut outcomes: Vec<Option<Result<(), CopyError>>> = jobs
            .iter()
            .map(|j| {
                let mut ready = self.parents(&j.rel);
                if in_memory && ready.is_ok() {
                    ready = check_new(&self.entries, &j.rel);
                }
                ready.err().map(|e| Err(CopyError::Output(e)))
            })
            .collect();
        let todo: Vec<usize> = (0..jobs.len()).filter(|&i| outcomes[i].is_none()).collect();
        let workers = COPY_WORKERS
            .min(todo.len().div_ceil(FILES_PER_WORKER))
            .max(1);
        let dest = if in_memory {
            Dest::Memory
        } else {
            Dest::Disk {
                root: &self.root,
                mtime: self.mtime,
                exact_modes: self.exact_modes,
            }
        };
        // Per file: its index in `todo`, and its size, hash and (in memory)
        // bytes, or why not.
        type Copied = Vec<(usize, Result<CopiedFile, CopyError>)>;
        let copied: Copied = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let mine: Vec<usize> = todo.iter().copied().skip(w).step_by(workers).collect();
                    scope.spawn(move || {
                        mine.into_iter()
                            .map(|i| {
                                let j = &jobs[i];
                                (i, copy_file(dest, j))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("copy workers do not panic"))
                .collect()
        });
        for (i, result) in copied {
            outcomes[i] = Some(result.map(|c| {
                let j = &jobs[i];
                if let (Some(memory), Some(bytes)) = (self.memory.as_mut(), c.bytes) {
                    memory.insert(j.rel.clone(), bytes);
                }
                self.record_file(&j.rel, j.executable, c.size, c.sha256);
            }));
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every job has an outcome"))
            .collect()
    }

    fn record_file(&mut self, rel: &str, executable: bool, size: u64, sha256: String) {
        self.entries.insert(
            rel.to_string(),
            Staged::File {
                executable,
                size,
                sha256,
            },
        );
    }

    pub fn symlink(&mut self, rel: &str, target: &str) -> io::Result<()> {
        self.parents(rel)?;
        if self.is_in_memory() {
            check_new(&self.entries, rel)?;
        } else {
            std::os::unix::fs::symlink(target, self.root.join(rel))?;
        }
        self.entries.insert(
            rel.to_string(),
            Staged::Symlink {
                target: target.to_string(),
            },
        );
        Ok(())
    }

    fn finish_file(&self, f: &File, executable: bool) -> io::Result<()> {
        finish_file(f, executable, self.mtime, self.exact_modes)
    }

    /// An empty directory (and its parents); a no-op if it exists already.
    pub fn dir(&mut self, rel: &str) -> io::Result<()> {
        self.parents(&format!("{rel}/"))
    }

    fn parents(&mut self, rel: &str) -> io::Result<()> {
        for (i, _) in rel.match_indices('/') {
            let dir = &rel[..i];
            if !self.entries.contains_key(dir) {
                if !self.is_in_memory() {
                    let path = self.root.join(dir);
                    std::fs::create_dir(&path)?;
                    set_mode(&path, DISK_DIR_MODE)?;
                }
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
    /// its directory's mtime, setting a child's times does not. Nothing to
    /// do for a tree in memory.
    pub fn set_mtimes(&self) -> io::Result<()> {
        if self.is_in_memory() {
            return Ok(());
        }
        let t = FileTime::from_system_time(self.mtime);
        for (rel, e) in self.entries.iter().rev() {
            let path = self.root.join(rel);
            match e {
                Staged::Symlink { .. } => filetime::set_symlink_file_times(&path, t, t)?,
                Staged::Dir => filetime::set_file_times(&path, t, t)?,
                Staged::File { .. } => {}
            }
        }
        set_mode(&self.root, DISK_DIR_MODE)?;
        filetime::set_file_times(&self.root, t, t)
    }
}

/// How many threads copy source files, and the fewest files worth one.
const COPY_WORKERS: usize = 8;
const FILES_PER_WORKER: usize = 32;

/// One source file for [`StagedTree::copy_many`].
#[derive(Debug, Clone)]
pub struct CopyJob {
    pub rel: String,
    pub src: PathBuf,
    pub executable: bool,
    /// Reading stops with an error past this many bytes: the walk checked
    /// the size it saw, but a file can grow before it is copied.
    pub max_bytes: u64,
}

/// The checks the filesystem makes when an entry is created on disk, for a
/// tree in memory: `rel` is new, and its parents are directories.
fn check_new(entries: &BTreeMap<String, Staged>, rel: &str) -> io::Result<()> {
    if entries.contains_key(rel) {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    let parents_are_dirs = rel
        .match_indices('/')
        .all(|(i, _)| matches!(entries.get(&rel[..i]), Some(Staged::Dir)));
    if !parents_are_dirs {
        return Err(io::Error::from(io::ErrorKind::NotADirectory));
    }
    Ok(())
}

/// Where [`copy_file`] puts a file's bytes.
#[derive(Clone, Copy)]
enum Dest<'a> {
    /// `root/rel`, whose directory exists, with the tree's mtime.
    Disk {
        root: &'a Path,
        mtime: SystemTime,
        exact_modes: bool,
    },
    /// A buffer returned with the hash.
    Memory,
}

/// What [`copy_file`] copied.
struct CopiedFile {
    size: u64,
    sha256: String,
    /// The bytes, exactly those hashed, for [`Dest::Memory`].
    bytes: Option<Vec<u8>>,
}

/// The copy's sink.
enum Output {
    Disk(File),
    Memory(Vec<u8>),
}

/// Copies `src` to `dest`, hashing as it goes. The source is opened
/// without following symlinks and without blocking, so a fifo swapped in
/// after the walk cannot hang the copy.
fn copy_file(dest: Dest<'_>, job: &CopyJob) -> Result<CopiedFile, CopyError> {
    let CopyJob {
        rel,
        src,
        executable,
        max_bytes,
    } = job;
    let (executable, max_bytes) = (*executable, *max_bytes);
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
    // One byte more than the file has, so a small file takes one read: a
    // short read once the stat size is reached is the end of a regular file.
    let expected = meta.len();
    let mut output = match dest {
        Dest::Disk { root, .. } => Output::Disk(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(file_mode(executable))
                .open(root.join(rel))
                .map_err(CopyError::Output)?,
        ),
        Dest::Memory => Output::Memory(Vec::with_capacity(expected.min(max_bytes) as usize)),
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; (expected as usize + 1).min(64 * 1024)];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Source(format!("cannot read it: {e}"))),
        };
        hasher.update(&buf[..n]);
        match &mut output {
            Output::Disk(f) => f.write_all(&buf[..n]).map_err(CopyError::Output)?,
            Output::Memory(v) => v.extend_from_slice(&buf[..n]),
        }
        size += n as u64;
        if size > max_bytes {
            return Err(CopyError::Source(format!(
                "it grew past the limit of {max_bytes} bytes for one file while it was bundled"
            )));
        }
        if n < buf.len() && size >= expected {
            break;
        }
    }
    let bytes = match (output, dest) {
        (
            Output::Disk(f),
            Dest::Disk {
                mtime, exact_modes, ..
            },
        ) => {
            finish_file(&f, executable, mtime, exact_modes).map_err(CopyError::Output)?;
            None
        }
        (Output::Memory(v), _) => Some(v),
        (Output::Disk(_), Dest::Memory) => unreachable!("the output follows the destination"),
    };
    Ok(CopiedFile {
        size,
        sha256: format!("{:x}", hasher.finalize()),
        bytes,
    })
}

fn file_mode(executable: bool) -> u32 {
    if executable { EXEC_MODE } else { FILE_MODE }
}

/// Mode (unless creation already set it exactly) and times through the
/// open handle: no second path lookup per file, and later writes
/// elsewhere in the tree cannot change them.
fn finish_file(f: &File, executable: bool, mtime: SystemTime, exact_modes: bool) -> io::Result<()> {
    if !exact_modes {
        f.set_permissions(Permissions::from_mode(file_mode(executable)))?;
    }
    f.set_times(FileTimes::new().set_accessed(mtime).set_modified(mtime))
}

/// Whether the process umask clears none of the bits of 0755 (it is read
/// by setting it, so it is set straight back).
fn umask_keeps_modes() -> bool {
    // SAFETY: umask cannot fail; the old mask is restored at once.
    let old = unsafe { libc::umask(0o022) };
    unsafe { libc::umask(old) };
    old & EXEC_MODE == 0
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}
