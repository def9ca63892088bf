//! What differs between two sealed images, file by file: the summary
//! `mvmctl build --check-reproducible` prints when two builds of the same
//! inputs did not give the same bytes (path, attribute, both values).
//! Images are read with ext4-view, as data: nothing in them is followed on
//! the host.

use std::collections::BTreeMap;
use std::path::Path;

use ext4_view::{Ext4, FileType};
use sha2::{Digest, Sha256};

use crate::error::ImageError;

/// Entries read from one image at most.
const MAX_ENTRIES: usize = 2_000_000;

/// One attribute of one path that is not the same in both images.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    pub path: String,
    /// `presence`, `type`, `mode`, `uid`, `gid`, `size`, `mtime`,
    /// `content` (sha256) or `target` (of a link); for image.lock, the
    /// field.
    pub attribute: String,
    pub first: String,
    pub second: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u16,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: String,
    /// sha256 of a file, target of a link.
    content: Option<String>,
}

fn unreadable(image: &Path, e: impl std::fmt::Display) -> ImageError {
    ImageError::Io {
        path: image.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    }
}

fn kind(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
    }
}

/// Image text (names, link targets) for a report: every control
/// character escaped, newlines included, so nothing from an image can
/// drive the terminal or forge a report line.
pub fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(bytes).chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// sha256 of a file in the image, read in chunks.
fn file_sha256(fs: &Ext4, path: &ext4_view::PathBuf) -> Result<String, String> {
    use std::io::Read;
    let mut file = fs.open(path.as_path()).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// Entries by their raw path bytes (two names that differ only in bytes
/// that are not UTF-8 stay two entries).
fn entries(image: &Path) -> Result<BTreeMap<Vec<u8>, Entry>, ImageError> {
    let fs = Ext4::load_from_path(image).map_err(|e| unreadable(image, e))?;
    let mut out = BTreeMap::new();
    let root = ext4_view::PathBuf::try_from("/").expect("a valid path");
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in fs
            .read_dir(dir.as_path())
            .map_err(|e| unreadable(image, e))?
        {
            let entry = entry.map_err(|e| unreadable(image, e))?;
            let name = entry.file_name();
            if name.as_ref() == b"." || name.as_ref() == b".." {
                continue;
            }
            if out.len() >= MAX_ENTRIES {
                return Err(unreadable(image, "more entries than an image may hold"));
            }
            let path = entry.path();
            let raw: &[u8] = path.as_ref();
            let key = raw.to_vec();
            let meta = entry.metadata().map_err(|e| unreadable(image, e))?;
            let t = meta.modified();
            let content = match meta.file_type() {
                FileType::Regular => {
                    Some(file_sha256(&fs, &path).map_err(|e| unreadable(image, e))?)
                }
                FileType::Symlink => {
                    let target = fs
                        .read_link(path.as_path())
                        .map_err(|e| unreadable(image, e))?;
                    Some(shown(target.as_ref()))
                }
                FileType::Directory => {
                    stack.push(path.clone());
                    None
                }
                _ => None,
            };
            out.insert(
                key,
                Entry {
                    kind: kind(meta.file_type()),
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    size: meta.len(),
                    mtime: format!("{}.{:09}", t.seconds(), t.nanoseconds()),
                    content,
                },
            );
        }
    }
    Ok(out)
}

/// Every path and attribute that differs between images `first` and
/// `second`, sorted by path.
pub fn compare(first: &Path, second: &Path) -> Result<Vec<Difference>, ImageError> {
    let (a, b) = (entries(first)?, entries(second)?);
    let mut out = Vec::new();
    let mut paths: Vec<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let diff = |attribute: &str, first: String, second: String| Difference {
            path: shown(path),
            attribute: attribute.to_string(),
            first,
            second,
        };
        let (x, y) = match (a.get(path), b.get(path)) {
            (Some(x), Some(y)) => (x, y),
            (x, y) => {
                let seen = |e: Option<&Entry>| e.map_or("absent".into(), |e| e.kind.to_string());
                out.push(diff("presence", seen(x), seen(y)));
                continue;
            }
        };
        if x.kind != y.kind {
            out.push(diff("type", x.kind.into(), y.kind.into()));
            continue;
        }
        let pairs: [(&'static str, String, String); 6] = [
            ("mode", format!("{:04o}", x.mode), format!("{:04o}", y.mode)),
            ("uid", x.uid.to_string(), y.uid.to_string()),
            ("gid", x.gid.to_string(), y.gid.to_string()),
            ("size", x.size.to_string(), y.size.to_string()),
            ("mtime", x.mtime.clone(), y.mtime.clone()),
            (
                if x.kind == "symlink" {
                    "target"
                } else {
                    "content"
                },
                x.content.clone().unwrap_or_default(),
                y.content.clone().unwrap_or_default(),
            ),
        ];
        for (attribute, p, q) in pairs {
            if p != q {
                out.push(diff(attribute, p, q));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn image(dir: &Path, tree: &Path) -> std::path::PathBuf {
        let out = dir.join(format!(
            "{}.ext4",
            tree.file_name().unwrap().to_string_lossy()
        ));
        std::fs::File::create(&out)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096", "-d"])
            .arg(tree)
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        out
    }

    #[test]
    fn names_each_path_and_attribute_that_differs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for t in [&a, &b] {
            std::fs::create_dir_all(t.join("etc")).unwrap();
            std::fs::write(t.join("etc/same"), b"same").unwrap();
        }
        std::fs::write(a.join("etc/date"), b"Fri Dec  4").unwrap();
        std::fs::write(b.join("etc/date"), b"Sat Dec  5").unwrap();
        std::fs::write(a.join("only-a"), b"").unwrap();
        std::os::unix::fs::symlink("x", a.join("link")).unwrap();
        std::os::unix::fs::symlink("y", b.join("link")).unwrap();
        std::fs::write(b.join("mode"), b"").unwrap();
        std::fs::write(a.join("mode"), b"").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(b.join("mode"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (ia, ib) = (image(dir.path(), &a), image(dir.path(), &b));

        let found = compare(&ia, &ib).unwrap();
        let keys: Vec<(&str, &str)> = found
            .iter()
            .filter(|d| d.attribute != "mtime")
            .map(|d| (d.path.as_str(), d.attribute.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("/etc/date", "content"),
                ("/link", "target"),
                ("/mode", "mode"),
                ("/only-a", "presence")
            ],
            "{found:#?}"
        );
        let link = found.iter().find(|d| d.path == "/link").unwrap();
        assert_eq!((link.first.as_str(), link.second.as_str()), ("x", "y"));
        let only = found.iter().find(|d| d.path == "/only-a").unwrap();
        assert_eq!(
            (only.first.as_str(), only.second.as_str()),
            ("file", "absent")
        );
        assert!(compare(&ia, &ia).unwrap().is_empty());
    }

    #[test]
    fn image_text_cannot_drive_the_terminal_or_forge_a_line() {
        assert_eq!(shown(b"a\nb\x1b]0;x\x07c\\"), "a\\nb\\u{1b}]0;x\\u{7}c\\\\");
        assert_eq!(shown("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }
}
