//! Path rules: a source path must stay inside the declaration directory, and
//! guest paths (working directories, mount targets) must be absolute.

/// Why a source path leaves the directory it is relative to, if it does.
/// The empty path means "." and is fine.
pub(super) fn source_escape(path: &str) -> Option<&'static str> {
    if path.starts_with('/') || path.starts_with('\\') || has_drive_prefix(path) {
        Some("is absolute")
    } else if path.starts_with('~') {
        Some("starts with \"~\", which a shell expands to a home directory")
    } else if path.split(['/', '\\']).any(|c| c == "..") {
        Some("has a \"..\" component")
    } else {
        None
    }
}

/// `C:` and the like: absolute on Windows hosts.
fn has_drive_prefix(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Why a guest path is not a usable absolute path, if it is not.
pub(super) fn guest_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("is not absolute")
    } else if path.split('/').any(|c| c == "..") {
        Some("has a \"..\" component")
    } else if path.contains('\0') {
        Some("contains a NUL character")
    } else {
        None
    }
}

/// Why a path inside the source bundle (a lockfile) is not one, if it is not.
pub(super) fn bundle_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("is empty")
    } else {
        source_escape(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_paths() {
        for ok in ["", ".", "src", "./app", "a/b.c/d", "..foo", "foo.."] {
            assert_eq!(source_escape(ok), None, "{ok}");
        }
        for bad in [
            "/",
            "/home/me",
            "~",
            "~/code",
            "..",
            "../x",
            "a/../b",
            "a/..",
            "C:\\x",
            "a\\..\\b",
            "\\\\srv\\x",
        ] {
            assert!(source_escape(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn guest_paths() {
        assert_eq!(guest_path_problem("/app"), None);
        assert_eq!(guest_path_problem("/"), None);
        assert!(guest_path_problem("app").is_some());
        assert!(guest_path_problem("").is_some());
        assert!(guest_path_problem("/app/../etc").is_some());
    }

    #[test]
    fn bundle_paths() {
        assert_eq!(bundle_path_problem("uv.lock"), None);
        assert!(bundle_path_problem("").is_some());
        assert!(bundle_path_problem("../uv.lock").is_some());
    }
}
