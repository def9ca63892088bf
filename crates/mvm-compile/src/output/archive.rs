//! The deterministic `.tgz` form of a staged output, built from a tree
//! kept in memory ([`StagedTree::in_memory`]) or read back from disk.
//!
//! Same tree → same bytes: entries in byte order of their paths (each
//! directory before its contents), GNU tar headers throughout (long paths
//! and link targets use GNU long-name records), uid/gid 0 with empty owner
//! names, modes 0755 for directories and executables, 0644 for other
//! files, 0777 for symlinks, every mtime the same, and a gzip header with
//! no file name, mtime 0 and OS "unknown". The archive file itself is 0600:
//! its entries are world-readable whatever the source files' host modes.

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use super::staging::{Staged, StagedTree};

/// gzip's "unknown" operating system, so the header does not depend on the host.
const GZIP_OS_UNKNOWN: u8 = 255;

/// Writes the archive of `tree` to `file` (new and empty, at its start),
/// makes it 0600 and syncs it.
pub fn write_tgz(tree: &StagedTree, file: &File, mtime: u64) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(0o600))?;
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(BufWriter::new(file), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (rel, entry) in tree.entries() {
        let mut h = Header::new_gnu();
        h.set_mtime(mtime.min(crate::MAX_MTIME));
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(entry.mode());
        match entry {
            Staged::Dir => {
                h.set_entry_type(EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, format!("{rel}/"), io::empty())?;
            }
            Staged::File { size, .. } => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(*size);
                match tree.contents(rel) {
                    Some(bytes) => tar.append_data(&mut h, rel, bytes)?,
                    None if tree.is_in_memory() => {
                        return Err(io::Error::other(format!("{rel}: no contents recorded")));
                    }
                    None => tar.append_data(&mut h, rel, File::open(tree.root().join(rel))?)?,
                }
            }
            Staged::Symlink { target } => {
                h.set_entry_type(EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, rel, target)?;
            }
        }
    }
    let gz = tar.into_inner()?;
    let mut buffered = gz.finish()?;
    buffered.flush()?;
    buffered.get_ref().sync_all()
}
