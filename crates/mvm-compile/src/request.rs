//! What callers hand to [`crate::check`] and [`crate::compile`], and what they get back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mvm_ir::{Finding, Location, Workload};

use crate::review::Review;

/// One workload to check or compile, from any front end.
#[derive(Debug, Clone)]
pub struct CompileRequest {
    pub workload: Workload,
    /// The directory the app's relative `source.path` is resolved against:
    /// the declaration's or IR file's directory, or what the caller chose
    /// (`--source-root`, or the current directory for IR on stdin).
    pub source_root: PathBuf,
    /// JSON pointer into the IR → where the front end found that value, so
    /// findings about the IR point at the user's text. May be empty.
    pub spans: BTreeMap<String, Location>,
    /// Warnings the front end already produced; kept in the review.
    /// Validation findings repeating one of these are not reported twice.
    pub findings: Vec<Finding>,
    /// Where the IR came from, for reports: `ir:PATH`, `ir:-`, `python:PATH`,
    /// `typescript:PATH`, `recording:PATH`.
    pub origin: String,
    /// Files the front end itself contributes to the source bundle, by path
    /// inside `src/` (a recording's `files.write` calls). They must not
    /// collide with files the include globs select.
    pub extra_files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// Modification time of every output entry, in seconds since the epoch:
    /// `SOURCE_DATE_EPOCH` when the caller has one, else 0.
    pub mtime: u64,
    /// Version of the tool doing the compile, recorded in `launch.json`.
    pub toolchain_version: String,
}

/// What [`crate::check`] found. Nothing is written.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Front-end warnings, validation and bundle findings, located via spans.
    pub findings: Vec<Finding>,
    /// Seed 000's checklist; absent when the IR has no single app to review.
    pub review: Option<Review>,
    /// Files and symlinks the source bundle would hold, when it could be scanned.
    pub bundled: Option<usize>,
}

impl CheckResult {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }
}

/// What [`crate::compile`] wrote.
#[derive(Debug, Clone)]
pub struct CompileOutput {
    pub out: PathBuf,
    /// True when `out` is a `.tgz`/`.tar.gz` archive, false for a directory.
    pub archive: bool,
    pub ir_hash: String,
    /// Files and symlinks in `src/`.
    pub bundled: usize,
    pub tree_hash: String,
    /// Warnings (errors stop the compile), also listed in `review.json`.
    pub findings: Vec<Finding>,
    pub review: Review,
}
