//! Visiting the files a source bundle selects, in a stable order.
//!
//! Symlinks are never followed while walking. A selected symlink is kept
//! as a symlink, with its target text unchanged, when that target is
//! relative and stays inside the source root both as written and once
//! resolved; anything else is refused, because the bundle is mounted at
//! `/app` in the guest and a link out of it would either dangle or expose
//! host files. Fifos, sockets and device nodes are refused. `.git` is never
//! bundled, at any depth.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use mvm_ir::{Code, Finding};

use super::SOURCE_POINTER;
use super::select::Selector;

/// One selected entry, `path` relative to the source root with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// Any execute bit set on the source file.
    File {
        executable: bool,
    },
    Symlink {
        target: String,
    },
}

/// Walk `root` (canonical), calling `visit` for every selected entry in
/// byte order of its path. Problems are pushed to `findings` and the walk
/// goes on, so one run reports all of them; `visit` errors are pushed too.
/// `skip` holds absolute paths below `root` that are never visited: the
/// compile's own output and staging directory when they lie inside the
/// source root.
pub fn walk(
    root: &Path,
    selector: &Selector,
    skip: &[PathBuf],
    findings: &mut Vec<Finding>,
    visit: &mut dyn FnMut(&Path, &Entry) -> Result<(), Finding>,
) {
    let mut w = Walker {
        root,
        selector,
        skip,
        findings,
        visit,
    };
    w.dir(root, "", false);
}

struct Walker<'a> {
    root: &'a Path,
    selector: &'a Selector,
    skip: &'a [PathBuf],
    findings: &'a mut Vec<Finding>,
    visit: &'a mut dyn FnMut(&Path, &Entry) -> Result<(), Finding>,
}

impl Walker<'_> {
    fn dir(&mut self, abs: &Path, rel: &str, included_above: bool) {
        let mut names: Vec<OsString> = match std::fs::read_dir(abs) {
            Ok(it) => match it.map(|e| e.map(|e| e.file_name())).collect() {
                Ok(names) => names,
                Err(e) => return self.unreadable(rel, &format!("cannot list this directory: {e}")),
            },
            Err(e) => return self.unreadable(rel, &format!("cannot list this directory: {e}")),
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            if name == ".git" {
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
                    self.dir(&abs, &rel, included);
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
        if target.is_absolute() {
            return Err(format!(
                "this symlink points to the absolute path {text}, which is outside the source root \
                 (the bundle is mounted at /app in the guest)"
            ));
        }
        if !stays_inside(rel, &target) {
            return Err(format!(
                "this symlink points outside the source root ({text})"
            ));
        }
        // Lexically inside; the target may still go through another link that leaves.
        let resolved = abs
            .parent()
            .unwrap_or(self.root)
            .join(&target)
            .canonicalize()
            .map_err(|e| format!("this symlink's target {text} cannot be resolved: {e}"))?;
        if !resolved.starts_with(self.root) {
            return Err(format!(
                "this symlink resolves to {}, outside the source root",
                resolved.display()
            ));
        }
        Ok(text)
    }

    fn unreadable(&mut self, rel: &str, problem: &str) {
        let shown = if rel.is_empty() { "." } else { rel };
        self.findings.push(Finding::new(
            Code::ESourceUnreadable,
            SOURCE_POINTER,
            format!("{shown}: {problem}"),
            "remove it from the source directory or add it to the source's exclude globs",
        ));
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
    } else if rel.chars().any(|c| c.is_control() || c == '\\') {
        Some("this path contains a control character or a backslash")
    } else {
        None
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
