//! A directory tree the host writes into without ever following a link in
//! it: the image tree after a builder microVM ran (its links were planted
//! by the guest), and the extraction target of a compile-output archive.
//!
//! Every operation names a path relative to the tree's root. Parents are
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a
//! symlink anywhere on the way is an error, never a detour; the last
//! component is replaced, not written through (`O_EXCL | O_NOFOLLOW` after
//! removing what was there). Nothing here calls a path-based std::fs
//! function on a path below the root.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps};

/// Paths deeper than this are refused: a guest-written file system can
/// nest (or loop) without end, and PATH_MAX bounds real trees anyway.
pub const MAX_DEPTH: usize = 256;

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A path that is absolute, empty, has `.`/`..`, or is too deep.
    #[error("`{path}` is not a plain relative path inside the tree ({why})")]
    BadPath { path: String, why: &'static str },
    #[error("{op} `{path}` in {root}: {source}")]
    Io {
        op: &'static str,
        path: String,
        root: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Owner to give a new entry; applied only when running as root (an
/// unprivileged build keeps its own uid, as `cp -a` would).
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// One entry found by [`Tree::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub rel: PathBuf,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        mode: u32,
        size: u64,
    },
    Symlink {
        target: std::ffi::OsString,
    },
    /// Device, fifo or socket.
    Special,
}

pub struct Tree {
    root: OwnedFd,
    path: PathBuf,
    as_root: bool,
}

/// The components of `rel`, each a plain name.
pub fn components(rel: &Path) -> Result<Vec<&OsStr>, TreeError> {
    let bad = |why| TreeError::BadPath {
        path: escape(rel.as_os_str()),
        why,
    };
    if rel.as_os_str().as_bytes().contains(&0) {
        return Err(bad("it contains a NUL byte"));
    }
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("it contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(bad("it is absolute")),
        }
    }
    if out.is_empty() {
        return Err(bad("it is empty"));
    }
    if out.len() > MAX_DEPTH {
        return Err(bad("it is nested too deeply"));
    }
    Ok(out)
}

/// A path or name as printable text: control characters escaped.
pub fn escape(s: &OsStr) -> String {
    mvm_ir::text::escape_control(&String::from_utf8_lossy(s.as_bytes())).into_owned()
}

impl Tree {
    /// Opens an existing directory (itself not a symlink).
    pub fn open(path: &Path) -> Result<Tree, TreeError> {
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TreeError::Io {
            op: "opening",
            path: ".".into(),
            root: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Tree {
            root,
            path: path.to_path_buf(),
            as_root: rustix::process::geteuid().is_root(),
        })
    }

    fn err(&self, op: &'static str, rel: &Path) -> impl FnOnce(rustix::io::Errno) -> TreeError {
        let path = escape(rel.as_os_str());
        let root = self.path.clone();
        move |e| TreeError::Io {
            op,
            path,
            root,
            source: if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::XDEV {
                io::Error::other("a symbolic link is in the way; links are never followed here")
            } else {
                e.into()
            },
        }
    }

    /// The directory holding `rel`'s last component, and that component.
    fn parent<'p>(&self, rel: &'p Path) -> Result<(OwnedFd, &'p OsStr), TreeError> {
        let comps = components(rel)?;
        let (name, dirs) = comps.split_last().expect("components are never empty");
        let dir: PathBuf = dirs.iter().collect();
        let dir = if dirs.is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let fd = rustix::fs::openat2(
            &self.root,
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(self.err("opening the directory of", rel))?;
        Ok((fd, name))
    }

    /// What is at `rel` now (not following a final symlink), if anything.
    pub fn kind(&self, rel: &Path) -> Result<Option<FileType>, TreeError> {
        let (dir, name) = match self.parent(rel) {
            Ok(p) => p,
            Err(TreeError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound
                    || source.raw_os_error() == Some(libc_enotdir()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err("examining", rel)(e)),
        }
    }

    /// Removes whatever is at `rel` (a directory with everything in it);
    /// nothing there is fine.
    pub fn remove(&self, rel: &Path) -> Result<(), TreeError> {
        let (dir, name) = match self.parent(rel) {
            Ok(p) => p,
            Err(TreeError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound
                    || source.raw_os_error() == Some(libc_enotdir()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        remove_at(&dir, name, 0).map_err(self.err("removing", rel))
    }

    /// Creates `rel` as a directory, or keeps the directory already there;
    /// anything else there is replaced. Mode and owner are set either way.
    pub fn mkdir(&self, rel: &Path, mode: u32, owner: Option<Owner>) -> Result<(), TreeError> {
        let (dir, name) = self.parent(rel)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(_) => {
                remove_at(&dir, name, 0).map_err(self.err("replacing", rel))?;
                rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700))
                    .map_err(self.err("creating the directory", rel))?;
            }
            Err(rustix::io::Errno::NOENT) => {
                rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700))
                    .map_err(self.err("creating the directory", rel))?;
            }
            Err(e) => return Err(self.err("examining", rel)(e)),
        }
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(self.err("opening the directory", rel))?;
        self.finish(&fd, rel, mode, owner)
    }

    /// Creates the missing directories above `rel` (mode 0755); an
    /// ancestor that exists but is not a directory is an error.
    pub fn ensure_parents(&self, rel: &Path) -> Result<(), TreeError> {
        let comps = components(rel)?;
        let mut at = PathBuf::new();
        for c in &comps[..comps.len() - 1] {
            at.push(c);
            match self.kind(&at)? {
                Some(FileType::Directory) => {}
                None => self.mkdir(&at, 0o755, None)?,
                Some(_) => {
                    return Err(TreeError::BadPath {
                        path: escape(rel.as_os_str()),
                        why: "an entry above it is not a directory",
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates `rel` as a new regular file with `data`, replacing whatever
    /// was there (a symlink is removed, never written through).
    pub fn write_file(
        &self,
        rel: &Path,
        data: &mut dyn Read,
        mode: u32,
        owner: Option<Owner>,
    ) -> Result<u64, TreeError> {
        let (dir, name) = self.parent(rel)?;
        remove_at(&dir, name, 0).map_err(self.err("replacing", rel))?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(self.err("creating", rel))?;
        let mut file = std::fs::File::from(fd);
        let written = io::copy(data, &mut file).map_err(|e| TreeError::Io {
            op: "writing",
            path: escape(rel.as_os_str()),
            root: self.path.clone(),
            source: e,
        })?;
        file.flush().ok();
        self.finish(&file, rel, mode, owner)?;
        Ok(written)
    }

    /// Creates `rel` as a symlink to `target` (stored as data; never
    /// resolved here), replacing whatever was there.
    pub fn symlink(
        &self,
        rel: &Path,
        target: &OsStr,
        owner: Option<Owner>,
    ) -> Result<(), TreeError> {
        let (dir, name) = self.parent(rel)?;
        remove_at(&dir, name, 0).map_err(self.err("replacing", rel))?;
        rustix::fs::symlinkat(target, &dir, name).map_err(self.err("creating the link", rel))?;
        if let (Some(o), true) = (owner, self.as_root) {
            rustix::fs::chownat(
                &dir,
                name,
                Some(rustix::fs::Uid::from_raw(o.uid)),
                Some(rustix::fs::Gid::from_raw(o.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(self.err("setting the owner of", rel))?;
        }
        Ok(())
    }

    /// Sets the modification time of `rel` (not following a final link).
    pub fn set_mtime(&self, rel: &Path, seconds: i64, nanos: u32) -> Result<(), TreeError> {
        let (dir, name) = self.parent(rel)?;
        let t = rustix::fs::Timespec {
            tv_sec: seconds,
            tv_nsec: nanos.min(999_999_999).into(),
        };
        rustix::fs::utimensat(
            &dir,
            name,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(self.err("setting the time of", rel))
    }

    /// The modification time (seconds) of the regular file `rel`, links
    /// followed as the guest would but never out of the tree (they resolve
    /// as if the tree were `/`); `None` when it is missing or not a file.
    pub fn file_mtime(&self, rel: &Path) -> Result<Option<i64>, TreeError> {
        components(rel)?;
        let fd = match rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP) => return Ok(None),
            Err(e) => return Err(self.err("examining", rel)(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(self.err("examining", rel))?;
        Ok((FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then_some(st.st_mtime))
    }

    /// Opens the regular file `rel` with `access` (read or read-write); a
    /// link anywhere on the way (the last component included) is an error,
    /// and so is anything but a regular file. Also returns its size.
    fn open_regular(
        &self,
        rel: &Path,
        access: OFlags,
        op: &'static str,
    ) -> Result<(std::fs::File, u64), TreeError> {
        components(rel)?;
        let fd = rustix::fs::openat2(
            &self.root,
            rel,
            // NONBLOCK: opening a fifo must not wait for a writer.
            access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(self.err("opening", rel))?;
        let st = rustix::fs::fstat(&fd).map_err(self.err("examining", rel))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(TreeError::Io {
                op,
                path: escape(rel.as_os_str()),
                root: self.path.clone(),
                source: io::Error::other("not a regular file"),
            });
        }
        Ok((std::fs::File::from(fd), st.st_size as u64))
    }

    /// Overwrites `bytes` at `offset` of the regular file `rel`, which must
    /// already be that long; links are refused as in [`Tree::open_file`].
    pub fn patch(&self, rel: &Path, offset: u64, bytes: &[u8]) -> Result<(), TreeError> {
        use std::os::unix::fs::FileExt as _;
        let (file, size) = self.open_regular(rel, OFlags::RDWR, "writing")?;
        let io = |e: io::Error| TreeError::Io {
            op: "writing",
            path: escape(rel.as_os_str()),
            root: self.path.clone(),
            source: e,
        };
        if size < offset + bytes.len() as u64 {
            return Err(io(io::Error::other("shorter than the bytes to overwrite")));
        }
        file.write_all_at(bytes, offset).map_err(io)
    }

    /// Opens the regular file `rel` for reading; a link anywhere on the way
    /// (the last component included) is an error.
    pub fn open_file(&self, rel: &Path) -> Result<std::fs::File, TreeError> {
        self.open_regular(rel, OFlags::RDONLY, "reading")
            .map(|(f, _)| f)
    }

    /// The first `len` bytes of the regular file `rel` (fewer if it is shorter).
    pub fn read_prefix(&self, rel: &Path, len: u64) -> Result<Vec<u8>, TreeError> {
        let file = self.open_file(rel)?;
        let mut bytes = Vec::new();
        file.take(len)
            .read_to_end(&mut bytes)
            .map_err(|e| TreeError::Io {
                op: "reading",
                path: escape(rel.as_os_str()),
                root: self.path.clone(),
                source: e,
            })?;
        Ok(bytes)
    }

    /// Reads the regular file `rel`, refusing one over `limit` bytes.
    pub fn read(&self, rel: &Path, limit: u64) -> Result<Vec<u8>, TreeError> {
        let bytes = self.read_prefix(rel, limit + 1)?;
        if bytes.len() as u64 > limit {
            return Err(TreeError::Io {
                op: "reading",
                path: escape(rel.as_os_str()),
                root: self.path.clone(),
                source: io::Error::other(format!("larger than its limit of {limit} bytes")),
            });
        }
        Ok(bytes)
    }

    /// Everything under the root, parents before children, sorted by path
    /// within each directory; at most `max_entries`.
    pub fn walk(&self, max_entries: usize) -> Result<Vec<Found>, TreeError> {
        let mut out = Vec::new();
        let root = rustix::fs::openat(
            &self.root,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(self.err("opening", Path::new(".")))?;
        self.walk_dir(&root, PathBuf::new(), &mut out, max_entries)?;
        Ok(out)
    }

    fn walk_dir(
        &self,
        dir: &OwnedFd,
        rel: PathBuf,
        out: &mut Vec<Found>,
        max: usize,
    ) -> Result<(), TreeError> {
        if rel.components().count() >= MAX_DEPTH {
            return Err(TreeError::BadPath {
                path: escape(rel.as_os_str()),
                why: "it is nested too deeply",
            });
        }
        let mut names = Vec::new();
        let mut listing = rustix::fs::Dir::read_from(dir).map_err(self.err("listing", &rel))?;
        while let Some(entry) = listing.read() {
            let entry = entry.map_err(self.err("listing", &rel))?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort();
        for name in names {
            let path = rel.join(&name);
            if out.len() >= max {
                return Err(TreeError::BadPath {
                    path: escape(path.as_os_str()),
                    why: "the tree holds more entries than allowed",
                });
            }
            let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(self.err("examining", &path))?;
            let kind = match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Kind::Dir,
                FileType::RegularFile => Kind::File {
                    mode: st.st_mode & 0o7777,
                    size: st.st_size as u64,
                },
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(dir, &name, Vec::new())
                        .map_err(self.err("reading the link", &path))?;
                    Kind::Symlink {
                        target: OsStr::from_bytes(target.as_bytes()).to_os_string(),
                    }
                }
                _ => Kind::Special,
            };
            let is_dir = matches!(kind, Kind::Dir);
            out.push(Found {
                rel: path.clone(),
                kind,
            });
            if is_dir {
                let sub = rustix::fs::openat(
                    dir,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(self.err("opening the directory", &path))?;
                self.walk_dir(&sub, path, out, max)?;
            }
        }
        Ok(())
    }

    fn finish(
        &self,
        fd: &impl AsFd,
        rel: &Path,
        mode: u32,
        owner: Option<Owner>,
    ) -> Result<(), TreeError> {
        if let (Some(o), true) = (owner, self.as_root) {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(o.uid)),
                Some(rustix::fs::Gid::from_raw(o.gid)),
            )
            .map_err(self.err("setting the owner of", rel))?;
        }
        // After chown, which clears set-id bits; fchmod also ignores the umask.
        rustix::fs::fchmod(fd, Mode::from_raw_mode(mode & 0o7777))
            .map_err(self.err("setting the mode of", rel))
    }
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}

/// Removes `name` in `dir`, recursing into directories through file
/// descriptors only. Bounded by [`MAX_DEPTH`].
fn remove_at(dir: &OwnedFd, name: &OsStr, depth: usize) -> rustix::io::Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
    if depth >= MAX_DEPTH {
        return Err(rustix::io::Errno::LOOP);
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    let mut listing = rustix::fs::Dir::read_from(&sub)?;
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    for n in names {
        remove_at(&sub, &n, depth + 1)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn tree() -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        let t = Tree::open(&dir.path().join("t")).unwrap();
        (dir, t)
    }

    #[test]
    fn a_final_symlink_is_replaced_not_written_through() {
        let (dir, t) = tree();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"host file").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("t/awk")).unwrap();
        t.write_file(Path::new("awk"), &mut &b"guest"[..], 0o755, None)
            .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"host file");
        let meta = std::fs::symlink_metadata(dir.path().join("t/awk")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn a_symlinked_parent_is_refused() {
        let (dir, t) = tree();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("t/etc")).unwrap();
        std::os::unix::fs::symlink("../outside", dir.path().join("t/rel")).unwrap();
        for rel in ["etc/passwd", "rel/passwd"] {
            let err = t
                .write_file(Path::new(rel), &mut &b"x"[..], 0o644, None)
                .unwrap_err();
            assert!(err.to_string().contains("symbolic link"), "{err}");
            let err = t.mkdir(Path::new(&format!("{rel}.d")), 0o755, None);
            assert!(err.is_err(), "mkdir below a link is refused too");
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn remove_never_leaves_the_tree() {
        let (dir, t) = tree();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"k").unwrap();
        std::fs::create_dir(dir.path().join("t/mnt")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("t/mnt/mvm")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("t/link")).unwrap();
        t.remove(Path::new("mnt/mvm")).unwrap();
        t.remove(Path::new("link/keep")).unwrap_err();
        t.remove(Path::new("mnt")).unwrap();
        assert!(outside.join("keep").exists());
        assert!(std::fs::symlink_metadata(dir.path().join("t/mnt")).is_err());
    }

    #[test]
    fn mkdir_replaces_a_link_and_sets_the_mode_whatever_the_umask() {
        let (dir, t) = tree();
        std::os::unix::fs::symlink("usr/lib", dir.path().join("t/lib")).unwrap();
        t.mkdir(Path::new("lib"), 0o751, None).unwrap();
        let meta = std::fs::symlink_metadata(dir.path().join("t/lib")).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o751);
    }

    #[test]
    fn bad_paths_are_refused() {
        let (_dir, t) = tree();
        for rel in ["/etc/passwd", "../x", "a/../../x", "", "a\0b"] {
            assert!(
                t.write_file(Path::new(rel), &mut &b""[..], 0o644, None)
                    .is_err(),
                "{rel:?}"
            );
        }
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert!(matches!(
            components(Path::new(&deep)),
            Err(TreeError::BadPath { .. })
        ));
    }

    #[test]
    fn escape_shows_control_characters() {
        assert_eq!(escape(OsStr::new("a\nb\x1b[31m")), "a\\nb\\x1b[31m");
    }
}
