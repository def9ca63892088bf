//! Errors reading, writing and signing plans and policies. Admission
//! decisions are not errors: they are [`crate::Refusal`]s.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{}: {source}\n  hint: check the path exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not one a plan reader accepts (symlink, special file, too big).
    #[error("{}: {detail}\n  hint: {hint}", path.display())]
    File {
        path: PathBuf,
        detail: String,
        hint: String,
    },
    /// Malformed JSON or a field of the wrong shape, at a JSON path.
    #[error("{}: at `{json_path}`: {message}\n  hint: {hint}", file.display())]
    Json {
        file: PathBuf,
        json_path: String,
        message: String,
        hint: String,
    },
    /// policy.toml: at line:column.
    #[error("{}:{line}:{column}: {message}\n  hint: {hint}", file.display())]
    Policy {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
        hint: String,
    },
    #[error("{}: already signed by key {key_id} ({label})\n  hint: each key signs a plan once", file.display())]
    AlreadySigned {
        file: PathBuf,
        key_id: String,
        label: String,
    },
}

impl PlanError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        PlanError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
