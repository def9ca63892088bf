//! Which paths may name a file of the source bundle. One rule for every
//! way a file gets there (the walk of the source root, a recording's
//! `files.write`), so no front end can put a name in the bundle that the
//! walk would have refused.

/// Never bundled, at any depth: it holds the host's history, remotes and
/// credentials, and a `.git/config` in the bundle would be read by git in
/// the guest.
pub const GIT_DIR: &str = ".git";

/// Why `rel` (relative to the bundle root, `/` separators) cannot name a
/// bundle file, or `None` when it can. `SHA256SUMS` and the tree hash are
/// one line per file, so a newline in a name could forge a line, and a
/// backslash is how `sha256sum` escapes; both are refused, as is every
/// other control character.
pub fn problem(rel: &str) -> Option<&'static str> {
    if rel.chars().any(|c| c.is_control() || c == '\\') {
        return Some("this path contains a control character or a backslash");
    }
    if rel.is_empty() || rel.starts_with('/') {
        return Some("this path is empty or absolute");
    }
    for part in rel.split('/') {
        match part {
            "" | "." | ".." => {
                return Some("this path has an empty, `.` or `..` component");
            }
            GIT_DIR => return Some("a `.git` path is never bundled"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_pass() {
        for ok in [
            "app.py",
            "a/b/c.txt",
            ".gitignore",
            "x/.github/ci.yml",
            "é.txt",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn ambiguous_or_escaping_paths_are_refused() {
        for bad in [
            "a\nb",
            "a\u{1b}[2J",
            "a\\b",
            "\u{7f}",
            "",
            "/etc/x",
            "a//b",
            "a/./b",
            "../x",
            "a/..",
            ".git/config",
            "vendor/.git/HEAD",
            ".git",
        ] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
    }
}
