//! A finding about the declaration file, positioned by byte offset until
//! [`crate::span::LineIndex`] turns it into a located [`mvm_ir::Finding`].

use mvm_ir::{Code, Finding};

use crate::span::LineIndex;

#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    pub code: Code,
    pub at: usize,
    pub message: String,
    pub hint: String,
}

impl Diag {
    pub fn new(code: Code, at: usize, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Diag {
            code,
            at,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// `path` is the IR pointer the finding is about, `""` when there is none yet.
    pub fn into_finding(self, index: &LineIndex, path: &str) -> Finding {
        Finding::new(self.code, path, self.message, self.hint).at(index.locate(self.at))
    }
}

/// The hint every "not a literal" error carries.
pub const LITERAL_HINT: &str = "declarations are read without running the file: write the value as a literal (string, number, boolean, None, list, dict) or an mvm helper call";

/// How deeply literals may nest. Real declarations use a handful of levels;
/// the limit keeps hostile input from exhausting the stack.
pub const MAX_DEPTH: usize = 32;

pub fn too_deep(at: usize) -> Diag {
    Diag::new(
        mvm_ir::Code::EDeclTooDeep,
        at,
        format!("values are nested more than {MAX_DEPTH} levels deep"),
        "declarations need only a few levels of lists, dicts and helper calls",
    )
}
