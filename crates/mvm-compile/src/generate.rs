//! The generated files of a compile output, written into the staging tree
//! after the source bundle: `workload.json`, `launch.json`,
//! `hooks/<phase>.sh`, `flake.nix`, `review.json`, the [`STAMP`], and
//! last `SHA256SUMS` over all of them.

use std::io;

use mvm_ir::canonical::canonical_json;
use mvm_ir::{App, HookPhase, Workload};

use crate::analysis::SRC_DIR;
use crate::output::staging::StagedTree;
use crate::review::Review;
use crate::{flake, hooks, launch};

pub const WORKLOAD_JSON: &str = "workload.json";
pub const LAUNCH_JSON: &str = "launch.json";
pub const FLAKE_NIX: &str = "flake.nix";
pub const REVIEW_JSON: &str = "review.json";
pub const SHA256SUMS: &str = "SHA256SUMS";
/// Marks a directory or archive as written by `mvmctl compile`, so that a
/// later compile may replace it: `workload.json` and `SHA256SUMS` alone are
/// easy to have by accident (or by design, to get a directory deleted).
/// Fixed content, listed in `SHA256SUMS` like every other file.
pub const STAMP: &str = ".mvm-compile-output";
pub const STAMP_CONTENT: &str = "mvm-compile-output 1\n";

/// What the source bundle turned out to be, for `launch.json`.
pub struct Bundle {
    pub files: usize,
    pub tree_hash: String,
}

pub fn write_all(
    tree: &mut StagedTree,
    workload: &Workload,
    app: &App,
    review: &Review,
    toolchain: &str,
) -> io::Result<Bundle> {
    let ir_hash = &review.ir_hash;
    let (tree_hash, files) = tree.tree_hash_under(SRC_DIR);
    tree.write(WORKLOAD_JSON, &mvm_ir::to_canonical_bytes(workload), false)?;
    let source = launch::Source {
        files,
        tree_hash: &tree_hash,
    };
    tree.write(
        LAUNCH_JSON,
        launch::launch_json(workload, app, ir_hash, toolchain, &source).as_bytes(),
        false,
    )?;
    for phase in HookPhase::ALL {
        let script = hooks::script(phase, &hooks::merged(app, phase));
        tree.write(&launch::script_path(phase), script.as_bytes(), true)?;
    }
    tree.write(
        FLAKE_NIX,
        flake::flake(workload, app, ir_hash).as_bytes(),
        false,
    )?;
    // Reviews hold only strings, integers and lists, which always serialize.
    let review_value = serde_json::to_value(review).expect("a review serializes to JSON");
    tree.write(REVIEW_JSON, canonical_json(&review_value).as_bytes(), false)?;
    tree.write(STAMP, STAMP_CONTENT.as_bytes(), false)?;
    let sums = tree.sha256sums();
    tree.write(SHA256SUMS, sums.as_bytes(), false)?;
    Ok(Bundle { files, tree_hash })
}
