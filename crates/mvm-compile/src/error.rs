//! The ways `compile` can fail. Every variant becomes a [`Finding`] so the
//! CLI prints all failures the same way (`PATH: error[CODE]: message`).

use std::path::PathBuf;

use mvm_ir::{Code, Finding};

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Validation or bundle checks found errors; `findings` also holds the
    /// warnings seen so far, in the order they were found.
    #[error("the workload has {} error(s)", .findings.iter().filter(|f| f.is_error()).count())]
    Rejected { findings: Vec<Finding> },

    /// The output path holds something that is not an earlier compile output.
    #[error(
        "{} exists and is not an mvm compile output (no {} stamp beside workload.json and SHA256SUMS); refusing to replace it",
        .out.display(),
        crate::STAMP
    )]
    OutputOccupied { out: PathBuf },

    /// Writing the output failed; nothing at `--out` was changed.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CompileError {
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CompileError {
        let path = path.into();
        move |source| CompileError::Write { path, source }
    }

    /// The failure as findings, for printing and for `--format json`.
    pub fn findings(&self) -> Vec<Finding> {
        match self {
            CompileError::Rejected { findings } => findings.clone(),
            CompileError::OutputOccupied { .. } => vec![Finding::new(
                Code::EOutput,
                "",
                self.to_string(),
                "choose another --out path, or remove what is there yourself",
            )],
            CompileError::Write { .. } => vec![Finding::new(
                Code::EOutput,
                "",
                format!("{self}; nothing at the output path was changed"),
                "check that the output's parent directory is writable and has free space",
            )],
        }
    }
}
