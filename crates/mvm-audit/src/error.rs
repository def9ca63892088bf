use std::path::PathBuf;

/// Errors for people: each names the file (and line where it applies) and a hint.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "{path}: {action}: {source} (hint: check that the audit dir exists and is owned by you)"
    )]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: could not take the audit lock: {source} (hint: another mvm process may be stuck holding it)"
    )]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: short write ({written} of {len} bytes) (hint: disk full?)")]
    ShortWrite {
        path: PathBuf,
        written: usize,
        len: usize,
    },
    #[error(
        "audit record would be {bytes} bytes, over the {max} byte limit even after truncating fields"
    )]
    TooLarge { bytes: usize, max: usize },
    #[error("could not encode audit record: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(
        "{path}: {what}; refusing to read it (hint: an audit dir holds only regular files: copy it with `cp -r`, don't link)"
    )]
    NotRegular { path: PathBuf, what: &'static str },
    #[error(
        "{path}: {size} bytes, over the {max} byte limit for this file (hint: this is not a file mvm wrote; check where the copy came from)"
    )]
    TooBig { path: PathBuf, size: u64, max: u64 },
    #[error("{path}:{line}: {detail} (hint: run verify to see whether the log was tampered with)")]
    Malformed {
        path: PathBuf,
        line: usize,
        detail: String,
    },
}

impl AuditError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        AuditError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
