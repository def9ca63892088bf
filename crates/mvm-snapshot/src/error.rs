//! Errors. Every message names the path, says what is wrong and gives a hint.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: not found (no such snapshot or file)", .0.display())]
    NotFound(PathBuf),

    #[error("{}: already exists; choose another name or remove the existing snapshot first", .0.display())]
    Exists(PathBuf),

    #[error(
        "invalid name {0:?}: must be a plain file name (not empty, no '/', not '.' or '..', \
         not starting with '.', not manifest.json or seal)"
    )]
    BadName(String),

    #[error(
        "snapshot {}: {reason}; it was modified, is incomplete, or was sealed with another \
         host key; remove the snapshot and create it again",
        dir.display()
    )]
    Seal { dir: PathBuf, reason: String },

    #[error("snapshot {}: manifest.json is invalid: {reason}; remove the snapshot", dir.display())]
    Manifest { dir: PathBuf, reason: String },

    #[error(
        "snapshot {}: unexpected file {file:?} that its manifest does not list (the directory \
         was modified); remove the snapshot",
        dir.display()
    )]
    UnexpectedFile { dir: PathBuf, file: String },

    #[error(
        "snapshot {}: file {file:?} listed in its manifest is missing (incomplete or modified); \
         remove the snapshot",
        dir.display()
    )]
    Missing { dir: PathBuf, file: String },

    #[error("snapshot {}: has no file {file:?}", dir.display())]
    NotListed { dir: PathBuf, file: String },

    #[error(
        "{}: not a regular file (symlink, directory or special file); snapshots hold only \
         regular files and are never reached through symlinks; remove it",
        path.display()
    )]
    NotRegular { path: PathBuf },

    #[error(
        "{}: mode {mode:o}, owner uid {uid}: a snapshot's files are its owner's only (guest memory is in them); remove the snapshot",
        path.display()
    )]
    NotPrivate { path: PathBuf, mode: u32, uid: u32 },

    #[error(
        "{}: size is {found} bytes but its seal says {expected} (truncated, extended or \
         replaced); remove the snapshot",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },

    #[error("{}: does not match its seal (tampered or corrupted); remove the snapshot", path.display())]
    Tampered { path: PathBuf },

    #[error(
        "snapshot {} was made for {key} = {}, but here {key} = {here}; it cannot be used with \
         this configuration, create a new snapshot",
        dir.display(),
        snapshot.as_deref().unwrap_or("(not recorded)")
    )]
    Mismatch {
        dir: PathBuf,
        key: String,
        /// `None` when the snapshot does not record `key` at all.
        snapshot: Option<String>,
        here: String,
    },

    #[error("seal key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { path, source }
}
