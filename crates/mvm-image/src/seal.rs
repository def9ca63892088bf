//! Sealing a root directory into the read-only ext4 image the guest mounts.
//!
//! ext4 rather than erofs: the guest kernel and agent mount ext4 (the
//! architecture's boot contract), and `mkfs.erofs` is not installed here.
//! No journal (the image is never written), no reserved blocks, no resize
//! reserve; the UUID and directory hash seed come from the image id, and
//! mke2fs's clock is fixed. The bytes still differ between builds: mke2fs
//! 1.47.0 copies each file's ctime, which is when the tree was assembled.
//! The image id, not the bytes, is what identifies an image.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::buildlog::BuildLog;
use crate::error::ImageError;

const BLOCK: u64 = 4096;
/// Fixed superblock time (2024-01-01T00:00:00Z).
const FIXED_TIME: &str = "1704067200";
/// Room for ext4's own metadata (group descriptors, bitmaps, directories
/// past their first block) on top of the file data.
const SLACK_PERCENT: u64 = 2;
const SLACK_FIXED: u64 = 4 << 20;

/// Blocks and inodes a tree needs at least.
struct Measure {
    blocks: u64,
    inodes: u64,
}

fn measure(dir: &Path) -> Result<Measure, ImageError> {
    let mut m = Measure {
        blocks: 1,
        inodes: 1,
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(ImageError::io(&d))? {
            let entry = entry.map_err(ImageError::io(&d))?;
            let meta = entry
                .path()
                .symlink_metadata()
                .map_err(ImageError::io(entry.path()))?;
            m.inodes += 1;
            if meta.is_dir() {
                m.blocks += 1;
                stack.push(entry.path());
            } else if meta.is_symlink() {
                // Targets up to 59 bytes live in the inode itself.
                m.blocks += u64::from(meta.size() > 59);
            } else {
                m.blocks += meta.size().div_ceil(BLOCK);
            }
        }
    }
    Ok(m)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` from the first 32 hex digits of `seed`.
fn uuid_from(seed: &str) -> String {
    let h = &seed[..32];
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Writes `tree` into a new ext4 image at `out`; returns its size in bytes.
/// `seed` is a hex digest (at least 32 digits).
pub fn seal(tree: &Path, out: &Path, seed: &str, log: &mut BuildLog) -> Result<u64, ImageError> {
    let m = measure(tree)?;
    let inodes = m.inodes + m.inodes / 10 + 256;
    let data = m.blocks * BLOCK + inodes * 256;
    let mut size = (data + data * SLACK_PERCENT / 100 + SLACK_FIXED).next_multiple_of(1 << 20);
    let uuid = uuid_from(seed);
    // The estimate is usually enough; if mke2fs runs out of room, grow and retry.
    for attempt in 1..=3 {
        let file = std::fs::File::create(out).map_err(ImageError::io(out))?;
        file.set_len(size).map_err(ImageError::io(out))?;
        drop(file);
        let mut cmd = Command::new("mkfs.ext4");
        cmd.env("E2FSPROGS_FAKE_TIME", FIXED_TIME)
            .env("SOURCE_DATE_EPOCH", FIXED_TIME)
            .args([
                "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-L", "mvm-root",
            ])
            .args(["-O", "^has_journal,^resize_inode"])
            .arg("-N")
            .arg(inodes.to_string())
            .arg("-U")
            .arg(&uuid)
            .arg("-E")
            .arg(format!("root_owner=0:0,hash_seed={uuid}"))
            .arg("-d")
            .arg(tree)
            .arg(out);
        match log.run(
            &format!("mkfs.ext4 ({} MiB, attempt {attempt})", size >> 20),
            "mkfs.ext4",
            "install e2fsprogs",
            &mut cmd,
        ) {
            Ok(()) => return Ok(size),
            Err(ImageError::Step { tail, .. })
                if attempt < 3 && (tail.contains("space") || tail.contains("allocate")) =>
            {
                size = (size + size / 3).next_multiple_of(1 << 20);
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_well_formed() {
        let seed = crate::digest::sha256_bytes(b"x");
        let u = uuid_from(&seed);
        assert_eq!(u.len(), 36);
        assert_eq!(
            u.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
    }

    /// A real mkfs.ext4 run: the image holds the tree (checked with debugfs).
    #[test]
    fn seals_a_tree_that_debugfs_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("etc/mvm")).unwrap();
        std::fs::write(tree.join("etc/mvm/launch.json"), b"{\"a\":1}").unwrap();
        std::os::unix::fs::symlink("etc/mvm/launch.json", tree.join("l")).unwrap();
        let out = dir.path().join("rootfs.ext4");
        let mut log = BuildLog::create(&dir.path().join("log")).unwrap();
        let seed = crate::digest::sha256_bytes(b"seed");
        let size = seal(&tree, &out, &seed, &mut log).unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len(), size);
        let cat = Command::new("debugfs")
            .args(["-R", "cat /etc/mvm/launch.json"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(cat.stdout, b"{\"a\":1}");
        let stats = Command::new("dumpe2fs")
            .arg("-h")
            .arg(&out)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&stats.stdout);
        assert!(text.contains(&uuid_from(&seed)), "{text}");
        assert!(!text.contains("has_journal"), "{text}");
    }
}
