//! Resolving the app's `source.path`, or an addon's `path`, to the
//! directory that gets bundled.

use std::path::{Component, Path, PathBuf};

use mvm_ir::text::escape_control;
use mvm_ir::{Code, Finding};

use super::owner::Owner;

/// `base/path`, canonicalised. Symlinks are followed on purpose here, to
/// find where the directory really is: it must lie inside `base` (the
/// declaration's or IR file's directory, or `--source-root`), or a
/// `local_path("keys")` whose `keys` links to `/etc` would bundle the
/// host's files. Refuses what does not exist, what is not a directory, and
/// `/` or the user's home directory (bundling either would copy far more
/// than any workload needs, secrets included).
pub fn resolve(base: &Path, path: &str) -> Result<PathBuf, Finding> {
    resolve_for(Owner::App, base, path)
}

/// [`resolve`] for the app's source or an addon's directory: the same
/// rules, findings at `owner`'s pointer in its words.
pub fn resolve_for(owner: Owner<'_>, base: &Path, path: &str) -> Result<PathBuf, Finding> {
    let pointer = owner.path_pointer();
    let joined = base.join(path);
    let field = owner.field(path);
    let shown_base = escape_control(&base.to_string_lossy()).into_owned();
    // Shown without the `.` components a relative base adds.
    let shown_joined =
        escape_control(&joined.components().collect::<PathBuf>().to_string_lossy()).into_owned();
    let root = joined.canonicalize().map_err(|e| {
        let message = match owner {
            Owner::App => format!("the source directory {shown_joined} cannot be opened: {e}"),
            Owner::Addon { name, .. } => {
                format!("the directory {shown_joined} of addon `{name}` cannot be opened: {e}")
            }
        };
        let like = match owner {
            Owner::App => "",
            Owner::Addon { .. } => ", as for source.path",
        };
        Finding::new(
            Code::ESourceUnreadable,
            &pointer,
            message,
            format!(
                "{field} is relative to {shown_base} (the declaration's or IR file's directory{like}; \
                 for IR on stdin, the current directory); pass --source-root DIR to resolve it elsewhere"
            ),
        )
    })?;
    let shown_root = escape_control(&root.to_string_lossy()).into_owned();
    // `joined` canonicalised, so `base` can be too.
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    if !root.starts_with(&base) {
        // The app's source path has passed validation (no `..`, not
        // absolute), so it can only leave through a symlink; an addon's may not have.
        let how = if lexically_inside(path) {
            " (through a symlink)"
        } else {
            ""
        };
        let what = match owner {
            Owner::App => "the source",
            Owner::Addon { .. } => "an addon's directory",
        };
        return Err(Finding::new(
            Code::ESourceEscapes,
            &pointer,
            format!(
                "{field} resolves to {shown_root}, outside {}{how}",
                escape_control(&base.to_string_lossy())
            ),
            format!(
                "{what} must lie inside the declaration's or IR file's directory, or --source-root DIR; \
                 copy the files there instead of linking to them"
            ),
        ));
    }
    if !root.is_dir() {
        return Err(match owner {
            Owner::App => Finding::new(
                Code::ESourceUnreadable,
                &pointer,
                format!("the source path {shown_root} is not a directory"),
                "point source.path at the directory holding the workload's files and narrow it with include globs",
            ),
            Owner::Addon { .. } => Finding::new(
                Code::ESourceUnreadable,
                &pointer,
                format!("{field} resolves to {shown_root}, which is not a directory"),
                "point the addon's path at the directory holding its files",
            ),
        });
    }
    let home = std::env::var_os("HOME").and_then(|h| Path::new(&h).canonicalize().ok());
    if root == Path::new("/") || Some(&root) == home.as_ref() {
        return Err(match owner {
            Owner::App => Finding::new(
                Code::ESourceEscapes,
                &pointer,
                format!(
                    "the source path resolves to {shown_root}, which would bundle the whole directory"
                ),
                "point source.path at a project directory, not `/` or your home directory",
            ),
            Owner::Addon { .. } => Finding::new(
                Code::ESourceEscapes,
                &pointer,
                format!("{field} resolves to {shown_root}, which would bundle the whole directory"),
                "point the addon's path at its own directory, not `/` or your home directory",
            ),
        });
    }
    Ok(root)
}

/// Whether `path` stays below its base as written: relative, no `..`.
fn lexically_inside(path: &str) -> bool {
    Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_names_the_base_in_its_hint() {
        let base = tempfile::tempdir().unwrap();
        let f = resolve(base.path(), "nope").unwrap_err();
        assert_eq!(f.code, Code::ESourceUnreadable);
        assert!(
            f.hint.contains(&base.path().display().to_string()),
            "{}",
            f.hint
        );
    }

    #[test]
    fn a_file_is_not_a_source_root() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("f"), "").unwrap();
        assert_eq!(
            resolve(base.path(), "f").unwrap_err().code,
            Code::ESourceUnreadable
        );
    }

    #[test]
    fn the_filesystem_root_is_refused() {
        assert_eq!(
            resolve(Path::new("/"), ".").unwrap_err().code,
            Code::ESourceEscapes
        );
    }

    #[test]
    fn a_symlink_out_of_the_base_is_refused_and_names_its_target() {
        let outside = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), base.path().join("keys")).unwrap();
        let f = resolve(base.path(), "keys").unwrap_err();
        assert_eq!(f.code, Code::ESourceEscapes);
        let target = outside.path().canonicalize().unwrap();
        assert!(
            f.message.contains(&target.display().to_string()),
            "{}",
            f.message
        );
        // A link that stays inside the base is fine.
        std::fs::create_dir(base.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", base.path().join("alias")).unwrap();
        assert!(resolve(base.path(), "alias").is_ok());
    }

    #[test]
    fn a_project_directory_resolves() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("app")).unwrap();
        assert_eq!(
            resolve(base.path(), "app").unwrap(),
            base.path().canonicalize().unwrap().join("app")
        );
    }
}
