//! The attached addons' files in the source bundle.
//!
//! Each addon's directory is bundled whole at [`ADDONS_DIR`]`/<name>/`
//! inside `src/`, so the guest has it at `/app/.mvm/addons/<name>/`
//! ([`GUEST_DIR`]) wherever its hooks run: in the builder for
//! `before_build`, at boot for the other phases. Its path is resolved like
//! the app's `source.path` (relative to the same directory, which it may
//! not leave), and its files follow the app's walk, name and symlink rules
//! and count towards the same caps. Being part of `src/`, they are covered
//! by `launch.json`'s tree hash, `SHA256SUMS` and the image builder's
//! checks of the bundle, with no second contract for the back half.

use std::collections::BTreeSet;
use std::path::Path;

use mvm_ir::text::escape_control;
use mvm_ir::{AddonSource, AddonUse, Code, Finding};

use super::owner::Owner;
use super::select::Selector;
use super::walk::{self, Bounds, EntryKind};
use super::{SOURCE_POINTER, names, root};
use crate::analysis::SRC_DIR;
use crate::error::CompileError;
use crate::output::staging::{CopyError, CopyJob, StagedTree};

/// Where addons go, relative to the bundle root (`src/`).
pub const ADDONS_DIR: &str = ".mvm/addons";
/// Where addons are in the guest: the bundle is mounted at `/app`.
pub const GUEST_DIR: &str = "/app/.mvm/addons";

/// One addon as bundled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledAddon {
    pub name: String,
    /// Files and symlinks under its directory in the bundle.
    pub files: usize,
}

/// Walks each addon's directory below `base` after the app's bundle
/// (`paths`, relative to `src/`, which gets the addons' paths added),
/// copying into `copy` under `src/` when given and nothing is an error.
/// Problems are pushed to `findings`; an error is returned only when the
/// staging tree cannot be written.
pub fn bundle(
    base: &Path,
    addons: &[AddonUse],
    bounds: &Bounds<'_>,
    paths: &mut BTreeSet<String>,
    copy: Option<&mut StagedTree>,
    findings: &mut Vec<Finding>,
) -> Result<Vec<BundledAddon>, CompileError> {
    if addons.is_empty() {
        return Ok(Vec::new());
    }
    collisions(paths, findings);
    let everything = Selector::new(&["**".to_string()], &[]).expect("`**` is a valid glob");
    let mut tally = bounds.start;
    let mut jobs: Vec<CopyJob> = Vec::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut bundled = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, addon) in addons.iter().enumerate() {
        let AddonSource::Local { path } = &addon.source;
        let prefix = format!("{ADDONS_DIR}/{}", addon.name);
        // Validation reports a bad, repeated or empty name or path; such
        // an addon has no place in the bundle, and a second finding about
        // it would only repeat the first.
        if addon.name.is_empty()
            || addon.name.contains('/')
            || names::problem(&prefix).is_some()
            || !seen.insert(addon.name.as_str())
            || path.trim().is_empty()
        {
            continue;
        }
        let owner = Owner::Addon {
            index,
            name: &addon.name,
        };
        let dir = match root::resolve_for(owner, base, path) {
            Ok(d) => d,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        let mut files = 0;
        let mut visit = |abs: &Path, entry: &walk::Entry| -> Result<(), Finding> {
            let rel = format!("{prefix}/{}", entry.path);
            let dest = format!("{SRC_DIR}/{rel}");
            match &entry.kind {
                EntryKind::File { executable, .. } => jobs.push(CopyJob {
                    rel: dest,
                    src: abs.to_path_buf(),
                    executable: *executable,
                    max_bytes: bounds.limits.max_file_bytes,
                }),
                EntryKind::Symlink { target } => links.push((dest, target.clone())),
            }
            paths.insert(rel);
            files += 1;
            Ok(())
        };
        let here = Bounds {
            start: tally,
            ..*bounds
        };
        tally = walk::walk_for(owner, &dir, &everything, &here, findings, &mut visit);
        bundled.push(BundledAddon {
            name: addon.name.clone(),
            files,
        });
        // The walk stopped at a cap; every later file would be over it too.
        if findings.iter().any(|f| f.code == Code::ESourceTooLarge) {
            break;
        }
    }
    // A rejected compile writes nothing: copying would only delay saying so.
    if let Some(tree) = copy.filter(|_| !findings.iter().any(Finding::is_error)) {
        for (rel, target) in &links {
            tree.symlink(rel, target)
                .map_err(CompileError::write(tree.root().join(rel)))?;
        }
        copy_files(tree, &jobs, addons, findings)?;
    }
    Ok(bundled)
}

/// An app file at `.mvm`, `.mvm/addons` or below it would clash with the
/// addons' directories (or, as a symlink, lead their files elsewhere).
fn collisions(paths: &BTreeSet<String>, findings: &mut Vec<Finding>) {
    let clash: Vec<&String> = paths
        .iter()
        .filter(|p| {
            p.as_str() == ".mvm"
                || p.as_str() == ADDONS_DIR
                || p.starts_with(&format!("{ADDONS_DIR}/"))
        })
        .collect();
    let Some(first) = clash.first() else {
        return;
    };
    let more = match clash.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    findings.push(Finding::new(
        Code::EInvalidValue,
        SOURCE_POINTER,
        format!(
            "{}: the app's source bundle holds this path{more}, but `{ADDONS_DIR}/` holds the attached addons \
             ({GUEST_DIR}/<name>/ in the guest)",
            escape_control(first)
        ),
        "rename it, or add it to the source's exclude globs (for example \".mvm/**\")",
    ));
}

fn copy_files(
    tree: &mut StagedTree,
    jobs: &[CopyJob],
    addons: &[AddonUse],
    findings: &mut Vec<Finding>,
) -> Result<(), CompileError> {
    let outcomes = tree.copy_many(jobs);
    for (job, outcome) in jobs.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {}
            Err(CopyError::Source(problem)) => {
                // `src/.mvm/addons/<name>/<rel>`: the finding names the
                // file as the addon's walk does, at that addon's pointer.
                let in_bundle = job.rel.strip_prefix(&format!("{SRC_DIR}/{ADDONS_DIR}/"));
                let (name, rel) = in_bundle
                    .and_then(|r| r.split_once('/'))
                    .unwrap_or(("", &job.rel));
                let index = addons.iter().position(|a| a.name == name).unwrap_or(0);
                let owner = Owner::Addon { index, name };
                findings.push(Finding::new(
                    Code::ESourceUnreadable,
                    owner.source_pointer(),
                    format!("{}: {problem}", escape_control(rel)),
                    owner.unreadable_hint(),
                ));
            }
            Err(CopyError::Output(e)) => {
                return Err(CompileError::Write {
                    path: tree.root().join(&job.rel),
                    source: e,
                });
            }
        }
    }
    Ok(())
}
