//! `source.tree_hash`: one hash over the bundle's paths, kinds, modes and
//! contents, independent of timestamps, owners and the archive format.
//!
//! Definition: sort the bundle's entries by path (bytewise, paths relative
//! to the source root with `/` separators) and hash with SHA-256 the
//! concatenation of one line per entry:
//!
//! ```text
//! file 644 <sha256 of contents> <path>\n      regular file, no execute bit
//! file 755 <sha256 of contents> <path>\n      regular file with an execute bit
//! symlink 777 <sha256 of target text> <path>\n
//! ```
//!
//! Hashes are lowercase hex; the result is lowercase hex. Paths never hold
//! control characters (the walk refuses them), so lines are unambiguous.
//! Directories are implied by the paths and not listed.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    File { executable: bool, sha256: &'a str },
    Symlink { target: &'a str },
}

pub fn tree_hash<'a>(items: impl IntoIterator<Item = (&'a str, Item<'a>)>) -> String {
    let mut items: Vec<_> = items.into_iter().collect();
    items.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    for (path, item) in items {
        let line = match item {
            Item::File { executable, sha256 } => {
                format!(
                    "file {} {sha256} {path}\n",
                    if executable { "755" } else { "644" }
                )
            }
            Item::Symlink { target } => {
                format!("symlink 777 {} {path}\n", sha256_hex(target.as_bytes()))
            }
        };
        h.update(line.as_bytes());
    }
    format!("{:x}", h.finalize())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_documented_listing() {
        let a = sha256_hex(b"print('hi')\n");
        let listing = format!(
            "file 755 {a} bin/run\nsymlink 777 {} link\nfile 644 {a} z.py\n",
            sha256_hex(b"z.py")
        );
        let items = [
            (
                "z.py",
                Item::File {
                    executable: false,
                    sha256: &a,
                },
            ),
            ("link", Item::Symlink { target: "z.py" }),
            (
                "bin/run",
                Item::File {
                    executable: true,
                    sha256: &a,
                },
            ),
        ];
        assert_eq!(tree_hash(items), sha256_hex(listing.as_bytes()));
    }

    #[test]
    fn mode_changes_the_hash() {
        let a = sha256_hex(b"");
        let plain = tree_hash([(
            "x",
            Item::File {
                executable: false,
                sha256: &a,
            },
        )]);
        let exec = tree_hash([(
            "x",
            Item::File {
                executable: true,
                sha256: &a,
            },
        )]);
        assert_ne!(plain, exec);
    }
}
