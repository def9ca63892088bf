//! The `--out` path: what form it takes, what may be replaced there, and
//! the final move into place.
//!
//! A directory output is built in a staging directory `.<name>.tmp-<random>`
//! next to `--out`; an archive is built in memory and written to a staging
//! file of the same name (same filesystem, so the final step is a rename).
//! If anything fails before that rename, the staging directory or file is
//! removed and `--out` is exactly as it was. An existing `--out` is replaced only when it is
//! empty or an earlier compile output: it holds the compiler's stamp
//! ([`crate::STAMP`], with its exact content) beside `workload.json` and
//! `SHA256SUMS`. Anything else is refused, never deleted.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use rustix::fs::{CWD, RenameFlags, renameat_with};
use tempfile::{NamedTempFile, TempDir};

use crate::error::CompileError;
use crate::generate::{SHA256SUMS, STAMP, STAMP_CONTENT, WORKLOAD_JSON};

/// Files that mark a directory or archive as an earlier compile output; the
/// stamp must also hold [`STAMP_CONTENT`].
const MARKERS: [&str; 3] = [WORKLOAD_JSON, SHA256SUMS, STAMP];

/// An archive when the name ends in `.tgz` or `.tar.gz`, else a directory.
pub fn is_archive(out: &Path) -> bool {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".tgz") || name.ends_with(".tar.gz")
}

/// Refuse `out` unless it is absent, empty, or an earlier compile output of the same form.
pub fn check_replaceable(out: &Path, archive: bool) -> Result<(), CompileError> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CompileError::Write {
                path: out.to_path_buf(),
                source: e,
            });
        }
    };
    let ours = match (archive, meta.is_dir(), meta.is_file()) {
        (false, true, _) => dir_is_replaceable(out),
        (true, _, true) => meta.len() == 0 || archive_is_replaceable(out),
        _ => false,
    };
    if ours {
        Ok(())
    } else {
        Err(CompileError::OutputOccupied {
            out: out.to_path_buf(),
        })
    }
}

fn dir_is_replaceable(dir: &Path) -> bool {
    let empty = std::fs::read_dir(dir)
        .map(|mut it| it.next().is_none())
        .unwrap_or(false);
    // Regular files, not links to them: a planted link could point anywhere.
    let is_file = |m: &str| {
        std::fs::symlink_metadata(dir.join(m)).is_ok_and(|meta| meta.file_type().is_file())
    };
    let stamped = || File::open(dir.join(STAMP)).is_ok_and(is_stamp);
    empty || (MARKERS.iter().all(|m| is_file(m)) && stamped())
}

/// Whether `r` holds exactly [`STAMP_CONTENT`] (reading one byte more, to see).
fn is_stamp(r: impl Read) -> bool {
    let mut buf = Vec::new();
    r.take(STAMP_CONTENT.len() as u64 + 1)
        .read_to_end(&mut buf)
        .is_ok_and(|_| buf == STAMP_CONTENT.as_bytes())
}

fn archive_is_replaceable(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut archive = tar::Archive::new(GzDecoder::new(io::BufReader::new(file)));
    let Ok(entries) = archive.entries() else {
        return false;
    };
    let mut found = [false; MARKERS.len()];
    for entry in entries {
        let Ok(entry) = entry else { return false };
        let Ok(path) = entry.path() else { return false };
        let path = path.into_owned();
        let regular = entry.header().entry_type().is_file();
        for (i, m) in MARKERS.iter().enumerate() {
            if path == Path::new(m) && regular {
                found[i] = *m != STAMP || is_stamp(entry);
                break;
            }
        }
        if found.iter().all(|f| *f) {
            return true;
        }
    }
    false
}

/// A staging directory (or, for an archive, file) next to `--out`, removed
/// on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    place: Place,
    out: PathBuf,
}

#[derive(Debug)]
enum Place {
    /// The output directory being built.
    Dir(TempDir),
    /// The archive being written (0600).
    Archive(NamedTempFile),
}

impl Staging {
    /// Creates `--out`'s parent directories when they are missing.
    pub fn new(out: &Path, archive: bool) -> Result<Staging, CompileError> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(CompileError::write(&parent))?;
        let mut prefix = OsString::from(".");
        prefix.push(out.file_name().unwrap_or_default());
        prefix.push(".tmp-");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        let place = if archive {
            // Created 0600.
            Place::Archive(
                builder
                    .tempfile_in(&parent)
                    .map_err(CompileError::write(&parent))?,
            )
        } else {
            Place::Dir(
                builder
                    .tempdir_in(&parent)
                    .map_err(CompileError::write(&parent))?,
            )
        };
        Ok(Staging {
            place,
            out: out.to_path_buf(),
        })
    }

    /// The staging directory or file.
    fn path(&self) -> &Path {
        match &self.place {
            Place::Dir(d) => d.path(),
            Place::Archive(f) => f.path(),
        }
    }

    /// The staging directory (or file) and `--out`, absolute and canonical:
    /// a source root that contains them must not bundle them.
    pub fn own_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.path().canonicalize().into_iter().collect();
        if let (Some(parent), Some(name)) = (self.path().parent(), self.out.file_name())
            && let Ok(parent) = parent.canonicalize()
        {
            paths.push(parent.join(name));
        }
        paths
    }

    /// Where the output tree is built: the staging directory. An archive's
    /// tree is kept in memory ([`crate::output::staging::StagedTree::in_memory`]);
    /// this is then the path that names it in error messages, `--out`
    /// itself, and nothing is created there.
    pub fn tree_root(&self) -> PathBuf {
        match &self.place {
            Place::Dir(d) => d.path().to_path_buf(),
            Place::Archive(_) => self.out.clone(),
        }
    }

    /// Where the archive is written before it is moved to `--out`.
    pub fn archive_path(&self) -> PathBuf {
        self.path().to_path_buf()
    }

    /// The staging file for the archive (`None` for a directory output).
    pub fn archive_file(&self) -> Option<&File> {
        match &self.place {
            Place::Dir(_) => None,
            Place::Archive(f) => Some(f.as_file()),
        }
    }

    /// Move the finished output to `--out`, replacing what
    /// [`check_replaceable`] allowed.
    pub fn commit(self) -> Result<(), CompileError> {
        let Staging { place, out } = self;
        let dir = match place {
            Place::Dir(dir) => dir,
            Place::Archive(file) => {
                // rename(2) replaces a file atomically.
                return file
                    .persist(&out)
                    .map(drop)
                    .map_err(|e| CompileError::Write {
                        path: out,
                        source: e.error,
                    });
            }
        };
        let out = &out;
        let staged = dir.path();
        if std::fs::symlink_metadata(out).is_err() {
            std::fs::rename(staged, out).map_err(CompileError::write(out))?;
            let _moved = dir.keep();
            return Ok(());
        }
        // Swap the two directories in one step; the staging path then holds
        // the old output, which dropping `dir` removes.
        match renameat_with(CWD, staged, CWD, out, RenameFlags::EXCHANGE) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                Self::replace_in_two_steps(dir, out)
            }
            Err(e) => Err(CompileError::Write {
                path: out.clone(),
                source: e.into(),
            }),
        }
    }

    /// For filesystems without RENAME_EXCHANGE: move the old output aside,
    /// move the new one in (putting the old one back if that fails), then
    /// delete the old one.
    fn replace_in_two_steps(dir: TempDir, out: &Path) -> Result<(), CompileError> {
        let mut aside = dir.path().as_os_str().to_owned();
        aside.push(".old");
        let aside = PathBuf::from(aside);
        std::fs::rename(out, &aside).map_err(CompileError::write(out))?;
        if let Err(e) = std::fs::rename(dir.path(), out) {
            let _ = std::fs::rename(&aside, out);
            return Err(CompileError::Write {
                path: out.to_path_buf(),
                source: e,
            });
        }
        let _moved = dir.keep();
        // The new output is in place; a leftover old copy is only clutter.
        if let Err(e) = std::fs::remove_dir_all(&aside) {
            tracing::warn!(
                "could not remove the previous output moved to {}: {e}",
                aside.display()
            );
        }
        Ok(())
    }
}
