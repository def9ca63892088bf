//! Where re-fetchable downloads live, and writing into it so that a reader
//! never sees a half-written entry: everything is staged next to its final
//! place and renamed into it.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "no cache directory: set MVM_CACHE_DIR, XDG_CACHE_HOME or HOME to say where mvm may keep downloads"
    )]
    NoLocation,
    #[error("preparing cache directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("moving staged {staged} into the cache as {target}: {source}")]
    Publish {
        staged: PathBuf,
        target: PathBuf,
        source: std::io::Error,
    },
}

/// `$MVM_CACHE_DIR`, else `$XDG_CACHE_HOME/mvm`, else `~/.cache/mvm`.
pub fn default_cache_dir() -> Result<PathBuf, CacheError> {
    let nonempty = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = nonempty("MVM_CACHE_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = nonempty("XDG_CACHE_HOME") {
        return Ok(dir.join("mvm"));
    }
    nonempty("HOME")
        .map(|home| home.join(".cache").join("mvm"))
        .ok_or(CacheError::NoLocation)
}

pub(crate) fn create_dir(path: &Path) -> Result<(), CacheError> {
    std::fs::create_dir_all(path).map_err(|source| CacheError::Create {
        path: path.to_owned(),
        source,
    })
}

/// A fresh directory inside `parent` to build an entry in before publishing it.
pub(crate) fn staging_dir(parent: &Path) -> Result<TempDir, CacheError> {
    create_dir(parent)?;
    tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(parent)
        .map_err(|source| CacheError::Create {
            path: parent.to_owned(),
            source,
        })
}

/// Renames `staged` to `target`. If another process published the same
/// entry first, theirs is kept: entries are keyed by their inputs, so both
/// are equal.
pub(crate) fn publish(staged: &Path, target: &Path) -> Result<(), CacheError> {
    match std::fs::rename(staged, target) {
        Ok(()) => Ok(()),
        Err(_) if target.exists() => Ok(()),
        Err(source) => Err(CacheError::Publish {
            staged: staged.to_owned(),
            target: target.to_owned(),
            source,
        }),
    }
}
