//! Resolving the app's `source.path` to the directory that gets bundled.

use std::path::{Path, PathBuf};

use mvm_ir::{Code, Finding};

const PATH_POINTER: &str = "/apps/0/source/path";

/// `base/path`, canonicalised. Refuses what does not exist, what is not a
/// directory, and `/` or the user's home directory (bundling either would
/// copy far more than any workload needs, secrets included).
pub fn resolve(base: &Path, path: &str) -> Result<PathBuf, Finding> {
    let joined = base.join(path);
    let root = joined.canonicalize().map_err(|e| {
        Finding::new(
            Code::ESourceUnreadable,
            PATH_POINTER,
            format!("the source directory {} cannot be opened: {e}", joined.display()),
            format!(
                "source.path `{path}` is relative to {} (the declaration's or IR file's directory; \
                 for IR on stdin, the current directory); pass --source-root DIR to resolve it elsewhere",
                base.display()
            ),
        )
    })?;
    if !root.is_dir() {
        return Err(Finding::new(
            Code::ESourceUnreadable,
            PATH_POINTER,
            format!("the source path {} is not a directory", root.display()),
            "point source.path at the directory holding the workload's files and narrow it with include globs",
        ));
    }
    let home = std::env::var_os("HOME").and_then(|h| Path::new(&h).canonicalize().ok());
    if root == Path::new("/") || Some(&root) == home.as_ref() {
        return Err(Finding::new(
            Code::ESourceEscapes,
            PATH_POINTER,
            format!(
                "the source path resolves to {}, which would bundle the whole directory",
                root.display()
            ),
            "point source.path at a project directory, not `/` or your home directory",
        ));
    }
    Ok(root)
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
    fn a_project_directory_resolves() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("app")).unwrap();
        assert_eq!(
            resolve(base.path(), "app").unwrap(),
            base.path().canonicalize().unwrap().join("app")
        );
    }
}
