//! Compile output: source bundle, launch metadata, hook scripts, flake,
//! review report, deterministic archives.
//!
//! [`check`] validates a [`CompileRequest`] and runs the bundle checks
//! without writing anything; [`compile`] does the same and, when nothing is
//! an error, writes the compile output to a directory or a `.tgz`/`.tar.gz`
//! archive, atomically. The layout of the output is documented in
//! `docs/user-guide.md`.

mod analysis;
pub mod bundle;
pub mod checks;
mod error;
pub mod flake;
mod generate;
pub mod hooks;
pub mod launch;
pub mod locate;
pub mod output;
mod request;
pub mod review;

use std::path::Path;

use mvm_ir::{Code, Finding};

pub use analysis::SRC_DIR;
pub use error::CompileError;
pub use generate::{
    FLAKE_NIX, LAUNCH_JSON, REVIEW_JSON, SHA256SUMS, STAMP, STAMP_CONTENT, WORKLOAD_JSON,
};
pub use request::{CheckResult, CompileOptions, CompileOutput, CompileRequest};
pub use review::{Review, Status};

use output::staging::StagedTree;

/// The latest output mtime, in seconds since the epoch: the largest value
/// an 11-digit octal tar header field holds (in the year 2242). Larger
/// [`CompileOptions::mtime`] values are clamped to it.
pub const MAX_MTIME: u64 = 0o77777777777;
use output::target::{self, Staging};

/// Validate the workload and run the bundle checks; writes nothing.
pub fn check(req: &CompileRequest) -> CheckResult {
    match analysis::analyse(req, None, &[]) {
        Ok(a) => CheckResult {
            findings: a.findings,
            review: a.review,
            bundled: a.bundled,
        },
        // Without a staging tree nothing is written, so this cannot happen;
        // reported rather than hidden should that ever change.
        Err(e) => CheckResult {
            findings: e.findings(),
            review: None,
            bundled: None,
        },
    }
}

/// Write the compile output to `out`: a deterministic archive when `out`
/// ends in `.tgz`/`.tar.gz`, else a directory. On any error nothing at
/// `out` changes.
pub fn compile(
    req: &CompileRequest,
    out: &Path,
    opts: &CompileOptions,
) -> Result<CompileOutput, CompileError> {
    let archive = target::is_archive(out);
    target::check_replaceable(out, archive)?;
    let staging = Staging::new(out, archive)?;
    let tree_root = staging.tree_root();
    tracing::debug!(staging = %tree_root.display(), archive, "staging the compile output");
    let mut tree = StagedTree::new(tree_root.clone(), opts.mtime);
    let analysis = analysis::analyse(req, Some(&mut tree), &staging.own_paths())?;
    if analysis.has_errors() {
        return Err(CompileError::Rejected {
            findings: analysis.findings,
        });
    }
    let (Some(review), [app]) = (analysis.review, req.workload.apps.as_slice()) else {
        // Validation reports E_APPS_COUNT first; kept so a gap there cannot panic here.
        let f = Finding::new(
            Code::EAppsCount,
            "/apps",
            "a workload needs exactly one app",
            "declare one app",
        );
        return Err(CompileError::Rejected { findings: vec![f] });
    };
    let bundle = generate::write_all(
        &mut tree,
        &req.workload,
        app,
        &review,
        &opts.toolchain_version,
    )
    .map_err(CompileError::write(&tree_root))?;
    tree.set_mtimes().map_err(CompileError::write(&tree_root))?;
    if archive {
        let dest = staging.archive_path();
        output::archive::write_tgz(&tree, &dest, opts.mtime).map_err(CompileError::write(&dest))?;
    }
    staging.commit()?;
    tracing::debug!(out = %out.display(), files = bundle.files, "compile output in place");
    Ok(CompileOutput {
        out: out.to_path_buf(),
        archive,
        ir_hash: review.ir_hash.clone(),
        bundled: bundle.files,
        tree_hash: bundle.tree_hash,
        findings: analysis.findings,
        review,
    })
}
