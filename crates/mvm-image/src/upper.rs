//! The builder's writes: the overlay upper layer on the builder's scratch
//! disk, read as data and applied to the image tree.
//!
//! Everything on that disk was written by the guest, which ran user code as
//! root and could also have written the block device raw. So the host never
//! mounts it and never hands it to a C parser: `ext4-view` (memory-safe,
//! read-only) reads it from the image file, names are plain bytes without
//! `/` or NUL, and [`Tree`] writes the entries without following any link,
//! whether the guest planted it in the upper layer or it came from the base
//! (`usr/bin/awk -> /etc/alternatives/awk`). Links are stored as links.
//!
//! Overlay whiteouts (character devices) delete the path from the tree;
//! other special files are skipped. Opaque directories (an xattr) are not
//! seen, so a directory the guest deleted and re-created keeps the lower
//! layer's files too.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ext4_view::{Ext4, FileType};

use crate::tree::{MAX_DEPTH, Owner, Tree, escape};

/// Paths in the upper layer that are run-time state, not image content.
pub const NOT_CONTENT: &[&str] = &["run", "tmp", "proc", "sys", "dev", "mnt/mvm"];
/// More entries than any real install writes; a guard against a crafted
/// file system whose directories loop.
const MAX_ENTRIES: u64 = 2_000_000;
/// Bytes of file content merged in all. The scratch disk is 4 GiB, but
/// sparse files and hard links are larger than the blocks they use, and
/// every copy is real bytes on the host.
pub const MAX_BYTES: u64 = 8 << 30;
/// A link target is a path; a longer one is a crafted inode.
const MAX_LINK_TARGET: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum UpperError {
    #[error("the builder's scratch disk is not a readable ext4 file system: {0}")]
    Unreadable(String),
    #[error("the scratch disk has no overlay upper layer (/upper)")]
    NoUpper,
    #[error("reading `{path}` from the builder's scratch disk: {detail}")]
    Entry { path: String, detail: String },
    #[error(
        "the builder's writes hold more than {MAX_ENTRIES} entries or nest deeper than {MAX_DEPTH}; refusing to merge them"
    )]
    TooMany,
    #[error(
        "the builder's writes hold more than {MAX_BYTES} bytes of files (sparse files and hard links count in full); refusing to merge them"
    )]
    TooLarge,
    #[error(transparent)]
    Tree(#[from] crate::tree::TreeError),
}

/// What was merged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    pub removed: u64,
    /// Special files left out (escaped paths).
    pub skipped: Vec<String>,
}

/// Applies `/upper` of the ext4 image `scratch` to `tree`.
pub fn merge(scratch: &Path, tree: &Tree) -> Result<Merged, UpperError> {
    let fs = Ext4::load_from_path(scratch).map_err(|e| UpperError::Unreadable(e.to_string()))?;
    let root = ext4_view::PathBuf::try_from("/upper").expect("a valid path");
    match fs.symlink_metadata(root.as_path()) {
        Ok(m) if m.is_dir() => {}
        _ => return Err(UpperError::NoUpper),
    }
    let mut merged = Merged::default();
    let mut seen = 0u64;
    let mut bytes = 0u64;
    // Directory times are set last: writing into a directory changes it.
    let mut dir_times = Vec::new();
    let mut stack: Vec<(ext4_view::PathBuf, PathBuf)> = vec![(root, PathBuf::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let entries = fs.read_dir(dir.as_path()).map_err(|e| UpperError::Entry {
            path: shown(&rel_dir),
            detail: e.to_string(),
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| UpperError::Entry {
                path: shown(&rel_dir),
                detail: e.to_string(),
            })?;
            let name = entry.file_name();
            let name = OsStr::from_bytes(name.as_ref());
            if name == "." || name == ".." {
                continue;
            }
            seen += 1;
            if seen > MAX_ENTRIES || rel_dir.components().count() >= MAX_DEPTH {
                return Err(UpperError::TooMany);
            }
            let rel = rel_dir.join(name);
            if NOT_CONTENT.iter().any(|p| rel == Path::new(p)) {
                continue;
            }
            let failed = |e: ext4_view::Ext4Error| UpperError::Entry {
                path: shown(&rel),
                detail: e.to_string(),
            };
            let meta = entry.metadata().map_err(failed)?;
            let owner = Some(Owner {
                uid: meta.uid(),
                gid: meta.gid(),
            });
            let mode = u32::from(meta.mode());
            let mtime = meta.modified();
            match meta.file_type() {
                FileType::Directory => {
                    tree.mkdir(&rel, mode, owner)?;
                    dir_times.push((rel.clone(), mtime));
                    stack.push((entry.path(), rel));
                    merged.dirs += 1;
                }
                FileType::Regular => {
                    bytes = bytes.saturating_add(meta.len());
                    if bytes > MAX_BYTES {
                        return Err(UpperError::TooLarge);
                    }
                    let mut file = fs.open(entry.path().as_path()).map_err(failed)?;
                    tree.write_file(
                        &rel,
                        &mut std::io::Read::take(&mut file, meta.len()),
                        mode,
                        owner,
                    )?;
                    tree.set_mtime(&rel, mtime.seconds(), mtime.nanoseconds())?;
                    merged.files += 1;
                }
                FileType::Symlink => {
                    if meta.len() > MAX_LINK_TARGET {
                        return Err(UpperError::Entry {
                            path: shown(&rel),
                            detail: format!("a link target of {} bytes", meta.len()),
                        });
                    }
                    let target = fs.read_link(entry.path().as_path()).map_err(failed)?;
                    tree.symlink(&rel, OsStr::from_bytes(target.as_ref()), owner)?;
                    merged.links += 1;
                }
                FileType::CharacterDevice => {
                    tree.remove(&rel)?;
                    merged.removed += 1;
                }
                _ => merged.skipped.push(shown(&rel)),
            }
        }
    }
    for (rel, t) in dir_times.iter().rev() {
        tree.set_mtime(rel, t.seconds(), t.nanoseconds())?;
    }
    Ok(merged)
}

fn shown(rel: &Path) -> String {
    escape(Path::new("/").join(rel).as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// An ext4 image whose `/upper` is `upper`, made by mkfs.ext4 as the
    /// guest's kernel would have left it.
    fn image_of(upper: &Path, out: &Path) {
        let root = upper.parent().unwrap();
        let f = std::fs::File::create(out).unwrap();
        f.set_len(64 << 20).unwrap();
        let status = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-O", "^has_journal", "-d"])
            .arg(root)
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn planted_links_are_data_and_host_files_stay_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        std::fs::create_dir(&host).unwrap();
        let victim = host.join("awk");
        std::fs::write(&victim, b"the host's awk").unwrap();
        let lock = host.join("image.lock");
        std::fs::write(&lock, b"host lock").unwrap();

        // The image tree, as copied from a Debian base: absolute links.
        let tree_dir = dir.path().join("tree");
        std::fs::create_dir_all(tree_dir.join("usr/bin")).unwrap();
        std::fs::create_dir_all(tree_dir.join("etc/mvm")).unwrap();
        std::fs::create_dir_all(tree_dir.join("mnt")).unwrap();
        symlink(&victim, tree_dir.join("usr/bin/awk")).unwrap();

        // What a hostile before_build leaves in the upper layer.
        let staged = dir.path().join("staged");
        let up = staged.join("upper");
        std::fs::create_dir_all(up.join("usr/bin")).unwrap();
        std::fs::write(up.join("usr/bin/awk"), b"guest awk").unwrap();
        std::fs::create_dir_all(up.join("etc/mvm")).unwrap();
        symlink(&lock, up.join("etc/mvm/image.lock")).unwrap();
        symlink(&host, up.join("mnt")).unwrap();
        symlink("loop-b", up.join("loop-a")).unwrap();
        symlink("loop-a", up.join("loop-b")).unwrap();
        std::fs::create_dir(up.join("chain")).unwrap();
        for i in 0..10_000 {
            symlink(format!("l{}", i + 1), up.join(format!("chain/l{i}"))).unwrap();
        }
        symlink(&host, up.join("chain/l10000")).unwrap();
        let scratch = dir.path().join("scratch.ext4");
        image_of(&up, &scratch);

        let tree = Tree::open(&tree_dir).unwrap();
        let merged = merge(&scratch, &tree).unwrap();
        // Then what build does next: write image.lock.
        tree.ensure_parents(Path::new("etc/mvm/image.lock"))
            .unwrap();
        tree.write_file(
            Path::new("etc/mvm/image.lock"),
            &mut &b"lock"[..],
            0o644,
            None,
        )
        .unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"the host's awk");
        assert_eq!(std::fs::read(&lock).unwrap(), b"host lock");
        assert_eq!(std::fs::read_dir(&host).unwrap().count(), 2);
        assert_eq!(
            std::fs::read(tree_dir.join("usr/bin/awk")).unwrap(),
            b"guest awk"
        );
        assert_eq!(
            std::fs::read(tree_dir.join("etc/mvm/image.lock")).unwrap(),
            b"lock"
        );
        assert_eq!(std::fs::read_link(tree_dir.join("mnt")).unwrap(), host);
        assert_eq!(
            std::fs::read_link(tree_dir.join("loop-a")).unwrap(),
            Path::new("loop-b")
        );
        assert_eq!(
            std::fs::read_link(tree_dir.join("chain/l10000")).unwrap(),
            host
        );
        assert!(merged.links >= 10_003, "{merged:?}");
    }

    #[test]
    fn whiteouts_delete_and_run_time_state_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let tree_dir = dir.path().join("tree");
        std::fs::create_dir_all(tree_dir.join("etc")).unwrap();
        std::fs::write(tree_dir.join("etc/motd"), b"base").unwrap();
        let staged = dir.path().join("staged");
        let up = staged.join("upper");
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::create_dir_all(up.join("run/mvm")).unwrap();
        std::fs::write(up.join("run/mvm/state"), b"x").unwrap();
        std::fs::create_dir_all(up.join("tmp")).unwrap();
        // An overlay whiteout is a 0:0 character device; only root can make one.
        let made = std::process::Command::new("mknod")
            .arg(up.join("etc/motd"))
            .args(["c", "0", "0"])
            .status()
            .unwrap();
        assert!(
            made.success(),
            "mknod needs root; the test suite runs as root"
        );
        let scratch = dir.path().join("scratch.ext4");
        image_of(&up, &scratch);
        let tree = Tree::open(&tree_dir).unwrap();
        let merged = merge(&scratch, &tree).unwrap();
        assert_eq!(merged.removed, 1);
        assert!(!tree_dir.join("etc/motd").exists());
        assert!(!tree_dir.join("run").exists());
        assert!(!tree_dir.join("tmp").exists());
    }

    /// A sparse file costs the guest no blocks but would cost the host its
    /// full length: refused before any of it is copied.
    #[test]
    fn a_huge_sparse_file_is_refused_before_it_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("staged/upper");
        std::fs::create_dir_all(&up).unwrap();
        let f = std::fs::File::create(up.join("big")).unwrap();
        f.set_len(MAX_BYTES + 1).unwrap();
        let scratch = dir.path().join("scratch.ext4");
        image_of(&up, &scratch);
        let tree_dir = dir.path().join("tree");
        std::fs::create_dir(&tree_dir).unwrap();
        let err = merge(&scratch, &Tree::open(&tree_dir).unwrap()).unwrap_err();
        assert!(matches!(err, UpperError::TooLarge), "{err}");
        assert!(!tree_dir.join("big").exists());
    }

    #[test]
    fn garbage_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("scratch.ext4");
        std::fs::write(&scratch, vec![0x5a; 1 << 20]).unwrap();
        let tree_dir = dir.path().join("tree");
        std::fs::create_dir(&tree_dir).unwrap();
        let err = merge(&scratch, &Tree::open(&tree_dir).unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a readable ext4"), "{err}");
    }
}
