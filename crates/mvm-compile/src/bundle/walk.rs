//! Visiting the files a source bundle selects, in a stable order.
//!
//! Symlinks are never followed while walking. A selected symlink is kept
//! as a symlink, with its target text unchanged, when that target is
//! relative and stays inside the source root both as written and once
//! resolved; anything else is refused, because the bundle is mounted at
//! `/app` in the guest and a link out of it would either dangle or expose
//! host files. Fifos, sockets and device nodes are refused. `.git` is never
//! bundled, at any depth. Names follow [`names::problem`]; the bundle stays
//! within [`Limits`] (the walk stops at the first entry over a cap); files
//! only their owner may read on the host are reported
//! (`W_SOURCE_PRIVATE_FILE`), since the bundle makes them world-readable.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use mvm_ir::text::escape_control;
use mvm_ir::{Code, Finding};

use super::limits::{Limits, Tally};
use super::names;
use super::owner::Owner;
use super::select::Selector;

/// `W_SOURCE_PRIVATE_FILE` findings listed one by one; more are summed up
/// in one last finding, so a private tree does not bury the other output.
const PRIVATE_LISTED: usize = 20;

/// One selected entry, `path` relative to the source root with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File {
        /// Any execute bit set on the source file.
        executable: bool,
        /// Its size when the walk saw it.
        size: u64,
    },
    Symlink {
        target: String,
    },
}

/// Walk `root` (canonical), calling `visit` for every selected entry in
/// byte order of its path. Problems are pushed to `findings` and the walk
/// goes on, so one run reports all of them; `visit` errors are pushed too.
/// Only a cap of `limits` ends the walk early. `skip` holds absolute paths
/// below `root` that are never visited: the compile's own output and
/// staging directory when they lie inside the source root. Returns what
/// was selected, for the caps on files added after the walk.
pub fn walk(
    root: &Path,
    selector: &Selector,
    skip: &[PathBuf],
    limits: &Limits,
    findings: &mut Vec<Finding>,
    visit: &mut dyn FnMut(&Path, &Entry) -> Result<(), Finding>,
) -> Tally {
    let bounds = Bounds {
        skip,
        limits,
        start: Tally::default(),
    };
    walk_for(Owner::App, root, selector, &bounds, findings, visit)
}

/// What a walk stays within besides its root.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<'a> {
    /// Never visited (see [`walk`]).
    pub skip: &'a [PathBuf],
    pub limits: &'a Limits,
    /// What the bundle already holds: an addon's files count with the app's.
    pub start: Tally,
}

/// [`walk`] of the app's source or an addon's directory, with findings at
/// `owner`'s pointer, in its words.
pub fn walk_for(
    owner: Owner<'_>,
    root: &Path,
    selector: &Selector,
    bounds: &Bounds<'_>,
    findings: &mut Vec<Finding>,
    visit: &mut dyn FnMut(&Path, &Entry) -> Result<(), Finding>,
) -> Tally {
    let Bounds {
        skip,
        limits,
        start,
    } = *bounds;
    let mut w = Walker {
        owner,
        pointer: owner.source_pointer(),
        root,
        selector,
        skip,
        limits,
        tally: start,
        over_limit: false,
        private: 0,
        findings,
        visit,
    };
    w.dir(root, "", false, None);
    if w.private > PRIVATE_LISTED {
        let more = w.private - PRIVATE_LISTED;
        w.findings.push(Finding::new(
            Code::WSourcePrivateFile,
            &w.pointer,
            format!("{more} more file(s) only their owner may read on the host are world-readable (0644) in the bundle"),
            owner.private_hint(),
        ));
    }
    w.tally
}

struct Walker<'a> {
    owner: Owner<'a>,
    /// `owner`'s source pointer, where every finding points.
    pointer: String,
    root: &'a Path,
    selector: &'a Selector,
    skip: &'a [PathBuf],
    limits: &'a Limits,
    tally: Tally,
    /// Set at the first entry over a cap; the walk then stops.
    over_limit: bool,
    /// Selected files only their owner may read, so far.
    private: usize,
    findings: &'a mut Vec<Finding>,
    visit: &'a mut dyn FnMut(&Path, &Entry) -> Result<(), Finding>,
}

impl Walker<'_> {
    /// `closed_above`: the nearest directory below the root, if any, that
    /// others may not enter on the host.
    fn dir(&mut self, abs: &Path, rel: &str, included_above: bool, closed_above: Option<&str>) {
        let mut names: Vec<OsString> = match std::fs::read_dir(abs) {
            Ok(it) => match it.map(|e| e.map(|e| e.file_name())).collect() {
                Ok(names) => names,
                Err(e) => return self.unreadable(rel, &format!("cannot list this directory: {e}")),
            },
            Err(e) => return self.unreadable(rel, &format!("cannot list this directory: {e}")),
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            if self.over_limit {
                return;
            }
            if name == names::GIT_DIR {
                continue;
            }
            let abs = abs.join(&name);
            if self.skip.contains(&abs) {
                continue;
            }
            let name = name.to_string_lossy();
            let rel = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            let meta = match std::fs::symlink_metadata(&abs) {
                Ok(m) => m,
                Err(e) => {
                    self.unreadable(&rel, &format!("cannot read its metadata: {e}"));
                    continue;
                }
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                if !self.selector.exclude_matches(&rel) {
                    let included = included_above || self.selector.include_matches(&rel);
                    let closed = match closed_above {
                        Some(c) => Some(c.to_string()),
                        None => (meta.permissions().mode() & 0o001 == 0).then(|| rel.clone()),
                    };
                    self.dir(&abs, &rel, included, closed.as_deref());
                }
                continue;
            }
            let selected = (included_above || self.selector.include_matches(&rel))
                && !self.selector.exclude_matches(&rel);
            if !selected {
                continue;
            }
            if let Some(problem) = name_problem(abs.strip_prefix(self.root).unwrap_or(&abs), &rel) {
                self.unreadable(&rel, problem);
                continue;
            }
            let kind = if ft.is_file() {
                EntryKind::File {
                    executable: meta.permissions().mode() & 0o111 != 0,
                    size: meta.len(),
                }
            } else if ft.is_symlink() {
                match self.symlink(&abs, &rel) {
                    Ok(target) => EntryKind::Symlink { target },
                    Err(problem) => {
                        self.unreadable(&rel, &problem);
                        continue;
                    }
                }
            } else {
                self.unreadable(&rel, special_kind(&ft));
                continue;
            };
            let size = match kind {
                EntryKind::File { size, .. } => size,
                EntryKind::Symlink { .. } => 0,
            };
            if let Err(problem) = self.tally.add(size, self.limits) {
                self.over_limit = true;
                self.findings.push(Finding::new(
                    Code::ESourceTooLarge,
                    &self.pointer,
                    format!("{}: {problem}", escape_control(&rel)),
                    self.owner.too_large_hint(),
                ));
                return;
            }
            if ft.is_file() {
                self.private_file(&rel, meta.permissions().mode(), closed_above);
            }
            let entry = Entry { path: rel, kind };
            if let Err(f) = (self.visit)(&abs, &entry) {
                self.findings.push(f);
            }
        }
    }

    /// The link's target text, if the link may be kept.
    fn symlink(&self, abs: &Path, rel: &str) -> Result<String, String> {
        let target =
            std::fs::read_link(abs).map_err(|e| format!("cannot read this symlink: {e}"))?;
        let text = target
            .to_str()
            .ok_or("this symlink's target is not valid UTF-8")?
            .to_string();
        let shown = escape_control(&text);
        let root_name = self.owner.root_name();
        if target.is_absolute() {
            return Err(format!(
                "this symlink points to the absolute path {shown}, which is outside {root_name} \
                 (the bundle is mounted at /app in the guest)"
            ));
        }
        if !stays_inside(rel, &target) {
            return Err(format!("this symlink points outside {root_name} ({shown})"));
        }
        // Lexically inside; the target may still go through another link that leaves.
        let resolved = abs
            .parent()
            .unwrap_or(self.root)
            .join(&target)
            .canonicalize()
            .map_err(|e| format!("this symlink's target {shown} cannot be resolved: {e}"))?;
        if !resolved.starts_with(self.root) {
            return Err(format!(
                "this symlink resolves to {}, outside {root_name}",
                escape_control(&resolved.to_string_lossy())
            ));
        }
        Ok(text)
    }

    fn unreadable(&mut self, rel: &str, problem: &str) {
        let shown = if rel.is_empty() { "." } else { rel };
        self.findings.push(Finding::new(
            Code::ESourceUnreadable,
            &self.pointer,
            format!("{}: {problem}", escape_control(shown)),
            self.owner.unreadable_hint(),
        ));
    }

    /// Warns when others on the host cannot read the file (no other-read
    /// bit, or a directory on its way they cannot enter): in the bundle it
    /// is 0644 under 0755 directories, readable by anyone in the guest and
    /// by anyone who gets the archive.
    fn private_file(&mut self, rel: &str, mode: u32, closed_above: Option<&str>) {
        let why = if mode & 0o004 == 0 {
            format!(
                "only its owner may read it on the host (mode {:04o})",
                mode & 0o7777
            )
        } else if let Some(dir) = closed_above {
            format!(
                "it lies in {}/, which others may not enter on the host",
                escape_control(dir)
            )
        } else {
            return;
        };
        self.private += 1;
        if self.private <= PRIVATE_LISTED {
            self.findings.push(Finding::new(
                Code::WSourcePrivateFile,
                &self.pointer,
                format!(
                    "{}: {why}; in the bundle it is world-readable (0644)",
                    escape_control(rel)
                ),
                self.owner.private_hint(),
            ));
        }
    }
}

/// Whether `target`, followed from the directory of `rel`, never climbs above the root.
fn stays_inside(rel: &str, target: &Path) -> bool {
    let mut depth = rel.matches('/').count();
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => return false,
            Component::ParentDir => depth -= 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Names that would be ambiguous in `SHA256SUMS`, the tree hash or JSON
/// reports. `raw` is the path below the root as the filesystem has it.
fn name_problem(raw: &Path, rel: &str) -> Option<&'static str> {
    if std::str::from_utf8(raw.as_os_str().as_bytes()).is_err() {
        Some("this path is not valid UTF-8")
    } else {
        names::problem(rel)
    }
}

fn special_kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "this is a fifo (named pipe); only regular files, directories and symlinks can be bundled"
    } else if ft.is_socket() {
        "this is a socket; only regular files, directories and symlinks can be bundled"
    } else {
        "this is a device node; only regular files, directories and symlinks can be bundled"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_links_may_not_climb_above_the_root() {
        assert!(stays_inside("a/b/link", Path::new("../c")));
        assert!(stays_inside("a/link", Path::new("../c/./d")));
        assert!(!stays_inside("link", Path::new("../c")));
        assert!(!stays_inside("a/link", Path::new("x/../../../c")));
    }
}
