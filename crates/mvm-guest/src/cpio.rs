//! A writer for the "newc" cpio format the kernel unpacks as its initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Output is deterministic: entries are sorted by path, parent directories
//! are added implicitly, and owners, times and inode numbers are fixed, so
//! the same contents always give the same bytes.

use std::collections::BTreeMap;

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;
const DIR_MODE: u32 = 0o755;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File { mode: u32, data: Vec<u8> },
    CharDevice { mode: u32, major: u32, minor: u32 },
}

/// An in-memory initramfs tree.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    nodes: BTreeMap<String, Node>,
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regular file; `path` is absolute inside the archive (`/init`).
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> &mut Self {
        self.insert(path, Node::File { mode, data })
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.insert(path, Node::Dir)
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> &mut Self {
        self.insert(path, Node::CharDevice { mode, major, minor })
    }

    fn insert(&mut self, path: &str, node: Node) -> &mut Self {
        let relative = path.trim_matches('/').to_owned();
        let mut parent = relative.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            self.nodes.entry(up.to_owned()).or_insert(Node::Dir);
            parent = up;
        }
        self.nodes.insert(relative, node);
        self
    }

    /// The archive as newc cpio bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, (path, node)) in self.nodes.iter().enumerate() {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match node {
                Node::Dir => (S_IFDIR | DIR_MODE, &[], (0, 0)),
                Node::File { mode, data } => (S_IFREG | (mode & 0o7777), data, (0, 0)),
                Node::CharDevice { mode, major, minor } => {
                    (S_IFCHR | (mode & 0o7777), &[], (*major, *minor))
                }
            };
            let nlink = if matches!(node, Node::Dir) { 2 } else { 1 };
            // Inode 0 is avoided: some unpackers treat it as "no inode".
            let ino = index as u32 + 1;
            write_entry(&mut out, path, ino, mode, nlink, data, rdev);
        }
        write_entry(&mut out, TRAILER, 0, 0, 1, &[], (0, 0));
        out
    }
}

fn write_entry(
    out: &mut Vec<u8>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    data: &[u8],
    (rdev_major, rdev_minor): (u32, u32),
) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime: fixed for reproducible bytes
        u32::try_from(data.len()).expect("initramfs files are far below 4 GiB"),
        0, // devmajor
        0, // devminor
        rdev_major,
        rdev_minor,
        name.len() as u32 + 1, // name size includes the NUL
        0,                     // check: unused by newc
    ];
    out.extend_from_slice(MAGIC.as_bytes());
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn sample() -> Archive {
        let mut archive = Archive::new();
        archive
            .file("/init", 0o755, b"#!/bin/sh\necho hi\n".to_vec())
            .file("/lib/modules/load-order", 0o644, b"virtio\n".to_vec())
            .char_device("/dev/console", 0o600, 5, 1)
            .dir("/run");
        archive
    }

    #[test]
    fn same_contents_in_any_order_give_identical_bytes() {
        let mut reversed = Archive::new();
        reversed
            .dir("/run")
            .char_device("/dev/console", 0o600, 5, 1)
            .file("/lib/modules/load-order", 0o644, b"virtio\n".to_vec())
            .file("/init", 0o755, b"#!/bin/sh\necho hi\n".to_vec());
        assert_eq!(sample().to_bytes(), reversed.to_bytes());
        assert_eq!(sample().to_bytes().len() % 4, 0);
    }

    /// GNU cpio must read back exactly what was written.
    #[test]
    fn gnu_cpio_lists_and_extracts_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("initrd.cpio");
        std::fs::write(&archive, sample().to_bytes()).unwrap();

        let listing = Command::new("cpio")
            .args(["-t", "-v", "--quiet", "-F"])
            .arg(&archive)
            .output()
            .expect("cpio is installed");
        assert!(listing.status.success(), "{listing:?}");
        let listing = String::from_utf8(listing.stdout).unwrap();
        let names: Vec<&str> = listing
            .lines()
            .map(|l| l.split_whitespace().last().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/load-order",
                "run"
            ]
        );
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("crw-------") && l.contains("5,"))
        );
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("init"))
        );

        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        // Device nodes are left out: extracting them would need privileges.
        let extract = Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--nonmatching", "dev/console"])
            .stdin(std::fs::File::open(&archive).unwrap())
            .current_dir(&out)
            .status()
            .unwrap();
        assert!(extract.success());
        assert_eq!(
            std::fs::read(out.join("lib/modules/load-order")).unwrap(),
            b"virtio\n"
        );
        assert_eq!(
            std::fs::read(out.join("init")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
    }
}
