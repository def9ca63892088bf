//! Why an input could not be turned into a compile request, with the hint
//! the CLI prints under it.

use std::path::PathBuf;

use mvm_ir::Finding;

use crate::autorun::AutorunError;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read Workload IR from stdin: {0}")]
    Stdin(std::io::Error),
    #[error("{}: not a declaration or Workload IR file", .0.display())]
    UnknownKind(PathBuf),
    /// The front end's findings (errors and any warnings), located.
    #[error("the input was rejected")]
    Rejected(Vec<Finding>),
    #[error("{}: recording it failed: {source}", .path.display())]
    Autorun { path: PathBuf, source: AutorunError },
}

impl InputError {
    /// What to do about it; `None` where the message or the findings say it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            InputError::Read { .. } => {
                Some("check the path; relative paths are taken from the current directory")
            }
            InputError::Stdin(_) => Some("pipe Workload IR JSON into `mvmctl compile -`"),
            InputError::UnknownKind(_) => Some(
                "pass a Python (.py) or TypeScript (.ts, .mts) declaration, Workload IR (.json), \
                 or - for IR on stdin; use --from-ir FILE for IR in a file with another extension",
            ),
            InputError::Rejected(_) | InputError::Autorun { .. } => None,
        }
    }

    /// The findings to print: a rejected input's, else none.
    pub fn findings(&self) -> &[Finding] {
        match self {
            InputError::Rejected(f) => f,
            _ => &[],
        }
    }
}
