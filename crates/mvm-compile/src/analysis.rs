//! Everything `check` and `compile` share: validation, the bundle walk and
//! the checks that need the bundle. `compile` passes a staging tree so the
//! walk copies each selected file as it visits it (one pass over the
//! source); `check` passes none and only looks.

mod image;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mvm_ir::text::escape_control;
use mvm_ir::{App, Code, Finding, Source, Workload};

use crate::bundle::addons::{self, BundledAddon};
use crate::bundle::limits::{self, Limits};
use crate::bundle::select::Selector;
use crate::bundle::walk::{self, EntryKind};
use crate::bundle::{SOURCE_POINTER, names, root};
use crate::checks::lockfile;
use crate::error::CompileError;
use crate::locate;
use crate::output::staging::{CopyError, CopyJob, StagedTree};
use crate::request::CompileRequest;
use crate::review::{self, Review};

/// Where the source bundle goes inside the compile output.
pub const SRC_DIR: &str = "src";

#[derive(Debug)]
pub struct Analysis {
    /// Front-end findings, validation, then bundle checks; located via spans.
    pub findings: Vec<Finding>,
    pub review: Option<Review>,
    /// Files and symlinks selected, when the bundle could be walked.
    pub bundled: Option<usize>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }
}

/// `skip`: absolute paths the bundle walk never enters (see [`walk::walk`]).
pub fn analyse(
    req: &CompileRequest,
    copy: Option<&mut StagedTree>,
    skip: &[PathBuf],
) -> Result<Analysis, CompileError> {
    let workload = &req.workload;
    let mut findings = req.findings.clone();
    // Declaration front ends validate too; keep their (located) copy of a finding.
    for f in mvm_ir::validate::validate(workload) {
        if !findings
            .iter()
            .any(|g| g.code == f.code && g.path == f.path && g.message == f.message)
        {
            findings.push(f);
        }
    }
    let ir_hash = mvm_ir::ir_hash(workload);

    let app = single_app(workload);
    // Before the bundle walk: an error here means nothing is copied.
    if let Some(app) = app {
        let found = image::findings(app, &req.origin, &findings);
        findings.extend(found);
    }
    let mut bundled = None;
    let mut bundled_addons = Vec::new();
    let mut unpinned = Vec::new();
    if let Some(app) = app
        && let Source::LocalPath {
            path,
            include,
            exclude,
        } = &app.source
        && !findings
            .iter()
            .any(|f| f.is_error() && f.path.starts_with(SOURCE_POINTER))
    {
        // Copy only while the IR is valid: a rejected compile writes nothing.
        let copy = if findings.iter().any(Finding::is_error) {
            None
        } else {
            copy
        };
        if let Some(scan) = scan(
            LocalSource {
                base: &req.source_root,
                path,
                include,
                exclude,
            },
            copy,
            skip,
            &req.extra_files,
            &app.addons,
            &mut findings,
        )? {
            findings.extend(lockfile::missing(app, &scan.paths));
            findings.extend(lockfile::project_missing(app, &scan.paths));
            if lockfile::is_requirements_file(app)
                && let Some(name) = lockfile::declared(app)
                && scan.paths.contains(name)
            {
                // Unreadable text is already reported by the walk; here it just pins nothing.
                let text = std::fs::read_to_string(scan.root.join(name)).unwrap_or_default();
                unpinned = lockfile::unpinned_requirements(&text);
            }
            bundled = Some(scan.paths.len());
            bundled_addons = scan.addons;
        }
    }

    locate::locate_all(&mut findings, &req.spans);
    let review = app.map(|app| {
        let facts = review::Facts {
            ir_hash: &ir_hash,
            origin: &req.origin,
            bundled,
            unpinned_requirements: &unpinned,
            addons: &bundled_addons,
            spans: &req.spans,
        };
        review::review(workload, app, &findings, &facts)
    });
    Ok(Analysis {
        findings,
        review,
        bundled,
    })
}

/// The app of a v0.1 workload; `None` when there is not exactly one
/// (validation has reported `E_APPS_COUNT`).
fn single_app(workload: &Workload) -> Option<&App> {
    match workload.apps.as_slice() {
        [app] => Some(app),
        _ => None,
    }
}

struct Scan {
    root: PathBuf,
    /// Selected files and symlinks, relative to `src/` (the addons' too).
    paths: BTreeSet<String>,
    addons: Vec<BundledAddon>,
}

/// The app's `local_path` source, resolved against `base`.
struct LocalSource<'a> {
    base: &'a Path,
    path: &'a str,
    include: &'a [String],
    exclude: &'a [String],
}

/// Walk the source bundle, copying into `copy` under `src/` when given.
/// `None` when the source root itself cannot be used (a finding says why).
fn scan(
    source: LocalSource<'_>,
    mut copy: Option<&mut StagedTree>,
    skip: &[PathBuf],
    extra_files: &BTreeMap<String, Vec<u8>>,
    attached: &[mvm_ir::AddonUse],
    findings: &mut Vec<Finding>,
) -> Result<Option<Scan>, CompileError> {
    let LocalSource {
        base,
        path,
        include,
        exclude,
    } = source;
    let root = match root::resolve(base, path) {
        Ok(r) => r,
        Err(f) => {
            findings.push(f);
            return Ok(None);
        }
    };
    let selector = match Selector::new(include, exclude) {
        Ok(s) => s,
        Err(fs) => {
            findings.extend(fs);
            return Ok(None);
        }
    };
    if let Some(tree) = copy.as_deref_mut() {
        tree.dir(SRC_DIR)
            .map_err(CompileError::write(tree.root().join(SRC_DIR)))?;
    }
    let limits = Limits::current();
    let mut paths = BTreeSet::new();
    // The first failure to write the staging tree; it ends the compile
    // after the walk, as an output error rather than a source finding.
    let mut output_error: Option<CompileError> = None;
    // Files are copied after the walk, several at a time.
    let mut jobs: Vec<CopyJob> = Vec::new();
    let mut visit = |abs: &Path, entry: &walk::Entry| -> Result<(), Finding> {
        paths.insert(entry.path.clone());
        let Some(tree) = copy.as_deref_mut() else {
            return Ok(());
        };
        if output_error.is_some() {
            return Ok(());
        }
        let rel = format!("{SRC_DIR}/{}", entry.path);
        match &entry.kind {
            EntryKind::File { executable, .. } => {
                jobs.push(CopyJob {
                    rel,
                    src: abs.to_path_buf(),
                    executable: *executable,
                    max_bytes: limits.max_file_bytes,
                });
                Ok(())
            }
            EntryKind::Symlink { target } => {
                if let Err(e) = tree.symlink(&rel, target) {
                    output_error = Some(CompileError::Write {
                        path: tree.root().join(&rel),
                        source: e,
                    });
                }
                Ok(())
            }
        }
    };
    let mut tally = walk::walk(&root, &selector, skip, &limits, findings, &mut visit);
    if let Some(e) = output_error {
        return Err(e);
    }
    // A walk that found an error rejects the compile: copying gigabytes
    // that will be deleted would only delay saying so.
    let walk_failed = findings.iter().any(Finding::is_error);
    if let Some(tree) = copy.as_deref_mut().filter(|_| !walk_failed) {
        let outcomes = tree.copy_many(&jobs);
        for (job, outcome) in jobs.iter().zip(outcomes) {
            match outcome {
                Ok(()) => {}
                Err(CopyError::Source(problem)) => findings.push(Finding::new(
                    Code::ESourceUnreadable,
                    SOURCE_POINTER,
                    format!(
                        "{}: {problem}",
                        escape_control(
                            job.rel
                                .strip_prefix(&format!("{SRC_DIR}/"))
                                .unwrap_or(&job.rel)
                        )
                    ),
                    "remove it from the source directory or add it to the source's exclude globs",
                )),
                Err(CopyError::Output(e)) => {
                    return Err(CompileError::Write {
                        path: tree.root().join(&job.rel),
                        source: e,
                    });
                }
            }
        }
    }
    // Front ends check their own files and name them in their terms; this
    // is the same check again, so no front end can add what the walk refuses.
    for (rel, bytes) in extra_files {
        let shown = escape_control(rel);
        if let Some(problem) = names::problem(rel) {
            findings.push(Finding::new(
                Code::EInvalidValue,
                SOURCE_POINTER,
                format!("{shown}: a file the script writes into the bundle: {problem}"),
                "write the file under a plain relative path below /app",
            ));
            continue;
        }
        if let Err(problem) = tally.add(bytes.len() as u64, &limits) {
            findings.push(Finding::new(
                Code::ESourceTooLarge,
                SOURCE_POINTER,
                format!("{shown}: written by the script: {problem}"),
                limits::HINT,
            ));
            break;
        }
        if !paths.insert(rel.clone()) {
            findings.push(Finding::new(
                Code::EInvalidValue,
                SOURCE_POINTER,
                format!(
                    "{shown}: written by the script and also selected from the source directory"
                ),
                "write the file under another name, or exclude the source file",
            ));
            continue;
        }
        if let Some(tree) = copy.as_deref_mut() {
            let dest = format!("{SRC_DIR}/{rel}");
            tree.write(&dest, bytes, false)
                .map_err(CompileError::write(tree.root().join(&dest)))?;
        }
    }
    // After the app's own files and the front end's, so a clash with them is found.
    let bounds = walk::Bounds {
        skip,
        limits: &limits,
        start: tally,
    };
    let addons = addons::bundle(base, attached, &bounds, &mut paths, copy, findings)?;
    Ok(Some(Scan {
        root,
        paths,
        addons,
    }))
}
