//! Clamping the times in a sealed ext4 image, in place.
//!
//! `mke2fs -d` copies each file's atime, mtime and ctime from the tree it
//! reads. The mtime of everything the build itself created (the workload,
//! files package scripts wrote, caches) is the build's clock, the atime is
//! whenever something last read the file, and the ctime cannot be set by
//! anyone: it is when the tree was assembled. So after mke2fs, every used
//! inode is rewritten: mtime clamped to `epoch` (newer ones become `epoch`,
//! older ones, such as files unpacked from Debian packages, keep theirs;
//! see [`clamps`] for times from an unset clock),
//! and atime, ctime and crtime set to that same time. The inode checksum is
//! recomputed (`metadata_csum`), so the image stays valid for e2fsck and
//! the kernel. Nothing else in the image is touched.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::ImageError;

const SUPERBLOCK_OFFSET: u64 = 1024;
const EXT4_MAGIC: u16 = 0xEF53;
/// `INCOMPAT_64BIT`: group descriptors may be larger than 32 bytes.
const INCOMPAT_64BIT: u32 = 0x80;
/// `INCOMPAT_CSUM_SEED`: the checksum seed is stored, not derived.
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
/// Layouts this does not read: descriptors spread over meta block groups,
/// an external journal device.
const INCOMPAT_UNHANDLED: u32 = 0x10 | 0x8;
/// `RO_COMPAT_METADATA_CSUM`: inodes carry a crc32c.
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// A group whose inode table was never initialised holds no used inode.
const BG_INODE_UNINIT: u16 = 0x1;

// Offsets in the on-disk inode (struct ext4_inode).
const I_MODE: usize = 0x00;
const I_ATIME: usize = 0x08;
const I_CTIME: usize = 0x0C;
const I_MTIME: usize = 0x10;
const I_LINKS: usize = 0x1A;
const I_GENERATION: usize = 0x64;
const I_CHECKSUM_LO: usize = 0x7C;
const GOOD_OLD_INODE_SIZE: usize = 128;
const I_EXTRA_ISIZE: usize = 0x80;
const I_CHECKSUM_HI: usize = 0x82;
const I_CTIME_EXTRA: usize = 0x84;
const I_MTIME_EXTRA: usize = 0x88;
const I_ATIME_EXTRA: usize = 0x8C;
const I_CRTIME: usize = 0x90;
const I_CRTIME_EXTRA: usize = 0x94;

/// Times before 1980 (zip's epoch; no packaged file is older) are taken
/// as written by a clock that was never set: a builder microVM's guest
/// starts at 1970 and writes its files a boot's length later, which
/// differs from run to run. They are moved to the epoch too.
pub const UNSET_CLOCK_BEFORE: i64 = 315_532_800;

/// Whether a file time of `seconds` becomes `epoch` in the image.
pub fn clamps(seconds: i64, epoch: u32) -> bool {
    seconds > i64::from(epoch) || seconds < UNSET_CLOCK_BEFORE
}

/// What [`clamp_times`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamped {
    /// Inodes in use (all rewritten).
    pub inodes: u64,
    /// Of those, the ones whose mtime was newer than the epoch.
    pub clamped: u64,
}

struct Geometry {
    block_size: u64,
    inodes_per_group: u32,
    inode_size: usize,
    groups: u64,
    desc_size: usize,
    gdt_offset: u64,
    /// crc32c seed for inode checksums, when the image has them.
    csum_seed: Option<u32>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// ext4's crc32c: no inversion before or after (the kernel's
/// `crc32c_le(seed, data)`), which the `crc32c` crate's append form has.
fn ext4_crc(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

fn bad(image: &Path, detail: impl Into<String>) -> ImageError {
    ImageError::Io {
        path: image.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, detail.into()),
    }
}

fn geometry(image: &Path, sb: &[u8]) -> Result<Geometry, ImageError> {
    if le16(sb, 0x38) != EXT4_MAGIC {
        return Err(bad(image, "not an ext4 image (no superblock magic)"));
    }
    let log_block = le32(sb, 0x18);
    if log_block > 6 {
        return Err(bad(image, "block size out of range"));
    }
    let block_size = 1024u64 << log_block;
    let incompat = le32(sb, 0x60);
    let ro_compat = le32(sb, 0x64);
    let blocks = u64::from(le32(sb, 0x04))
        | if incompat & INCOMPAT_64BIT != 0 {
            u64::from(le32(sb, 0x150)) << 32
        } else {
            0
        };
    let first_data_block = u64::from(le32(sb, 0x14));
    let blocks_per_group = u64::from(le32(sb, 0x20));
    let inodes_per_group = le32(sb, 0x28);
    if incompat & INCOMPAT_UNHANDLED != 0 {
        return Err(bad(
            image,
            format!("a layout this cannot rewrite (incompat features {incompat:#x})"),
        ));
    }
    let inode_size = if le32(sb, 0x4C) == 0 {
        GOOD_OLD_INODE_SIZE
    } else {
        usize::from(le16(sb, 0x58))
    };
    let desc_size = if incompat & INCOMPAT_64BIT != 0 {
        usize::from(le16(sb, 0xFE))
    } else {
        32
    };
    if blocks_per_group == 0
        || blocks <= first_data_block
        || inodes_per_group == 0
        || u64::from(inodes_per_group) > 8 * block_size
        || !(GOOD_OLD_INODE_SIZE..=block_size as usize).contains(&inode_size)
        || !(32..=1024).contains(&desc_size)
    {
        return Err(bad(image, "implausible superblock geometry"));
    }
    let csum_seed = (ro_compat & RO_COMPAT_METADATA_CSUM != 0).then(|| {
        if incompat & INCOMPAT_CSUM_SEED != 0 {
            le32(sb, 0x270)
        } else {
            ext4_crc(!0, &sb[0x68..0x78])
        }
    });
    let groups = (blocks - first_data_block).div_ceil(blocks_per_group);
    if groups * desc_size as u64 > 64 << 20 {
        return Err(bad(image, "implausible number of block groups"));
    }
    Ok(Geometry {
        block_size,
        inodes_per_group,
        inode_size,
        groups,
        desc_size,
        gdt_offset: (first_data_block + 1) * block_size,
        csum_seed,
    })
}

/// Clamps every used inode's times in the ext4 image at `image` to
/// `epoch` (seconds; before 2038).
pub fn clamp_times(image: &Path, epoch: u32) -> Result<Clamped, ImageError> {
    let io = |e: std::io::Error| ImageError::Io {
        path: image.to_path_buf(),
        source: e,
    };
    let file = File::options()
        .read(true)
        .write(true)
        .open(image)
        .map_err(&io)?;
    let mut sb = vec![0u8; 1024];
    file.read_exact_at(&mut sb, SUPERBLOCK_OFFSET)
        .map_err(&io)?;
    let g = geometry(image, &sb)?;
    let mut gdt = vec![0u8; g.groups as usize * g.desc_size];
    file.read_exact_at(&mut gdt, g.gdt_offset).map_err(&io)?;
    let mut done = Clamped {
        inodes: 0,
        clamped: 0,
    };
    let ipg = g.inodes_per_group as usize;
    let mut bitmap = vec![0u8; g.block_size as usize];
    let mut table = vec![0u8; ipg * g.inode_size];
    for group in 0..g.groups as usize {
        let d = &gdt[group * g.desc_size..(group + 1) * g.desc_size];
        if le16(d, 0x12) & BG_INODE_UNINIT != 0 {
            continue;
        }
        let wide = g.desc_size >= 64;
        let hi = |at: usize| {
            if wide {
                u64::from(le32(d, at)) << 32
            } else {
                0
            }
        };
        let bitmap_block = u64::from(le32(d, 0x04)) | hi(0x24);
        let table_block = u64::from(le32(d, 0x08)) | hi(0x28);
        file.read_exact_at(&mut bitmap, bitmap_block * g.block_size)
            .map_err(&io)?;
        let table_at = table_block * g.block_size;
        file.read_exact_at(&mut table, table_at).map_err(&io)?;
        let mut changed = false;
        for i in 0..ipg {
            if bitmap[i / 8] & (1 << (i % 8)) == 0 {
                continue;
            }
            let inode = &mut table[i * g.inode_size..(i + 1) * g.inode_size];
            // Reserved inodes are marked used but most hold nothing.
            if le16(inode, I_MODE) == 0 || le16(inode, I_LINKS) == 0 {
                continue;
            }
            let number = (group * ipg + i + 1) as u32;
            if clamp_inode(inode, number, epoch, g.csum_seed) {
                done.clamped += 1;
            }
            done.inodes += 1;
            changed = true;
        }
        if changed {
            file.write_all_at(&table, table_at).map_err(&io)?;
        }
    }
    file.sync_all().map_err(&io)?;
    Ok(done)
}

/// Rewrites one inode's times; true when its mtime was clamped.
fn clamp_inode(inode: &mut [u8], number: u32, epoch: u32, csum_seed: Option<u32>) -> bool {
    // Never trusted past the inode's own bytes.
    let extra = if inode.len() > GOOD_OLD_INODE_SIZE + 2 {
        usize::from(le16(inode, I_EXTRA_ISIZE)).min(inode.len() - GOOD_OLD_INODE_SIZE)
    } else {
        0
    };
    // Whether a field of the large inode is within i_extra_isize.
    let fits = |at: usize, len: usize| at + len <= GOOD_OLD_INODE_SIZE + extra;
    let mtime = le32(inode, I_MTIME);
    let mtime_extra = if fits(I_MTIME_EXTRA, 4) {
        le32(inode, I_MTIME_EXTRA)
    } else {
        0
    };
    // Seconds are the low 32 bits plus the extra field's two epoch bits.
    let seconds = i64::from(mtime as i32) + (i64::from(mtime_extra & 3) << 32);
    let clamped = clamps(seconds, epoch);
    let (mtime, mtime_extra) = if clamped {
        (epoch, 0)
    } else {
        (mtime, mtime_extra)
    };
    put32(inode, I_MTIME, mtime);
    put32(inode, I_ATIME, mtime);
    put32(inode, I_CTIME, mtime);
    for at in [I_MTIME_EXTRA, I_ATIME_EXTRA, I_CTIME_EXTRA] {
        if fits(at, 4) {
            put32(inode, at, mtime_extra);
        }
    }
    if fits(I_CRTIME, 4) {
        put32(inode, I_CRTIME, mtime);
    }
    if fits(I_CRTIME_EXTRA, 4) {
        put32(inode, I_CRTIME_EXTRA, mtime_extra);
    }
    if let Some(seed) = csum_seed {
        let has_hi = fits(I_CHECKSUM_HI, 2);
        put16(inode, I_CHECKSUM_LO, 0);
        if has_hi {
            put16(inode, I_CHECKSUM_HI, 0);
        }
        let mut crc = ext4_crc(seed, &number.to_le_bytes());
        crc = ext4_crc(crc, &inode[I_GENERATION..I_GENERATION + 4]);
        crc = ext4_crc(crc, inode);
        put16(inode, I_CHECKSUM_LO, crc as u16);
        if has_hi {
            put16(inode, I_CHECKSUM_HI, (crc >> 16) as u16);
        }
    }
    clamped
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A tree with a directory, files, a symlink and a hard link, its
    /// times set to `mtime`, sealed by mke2fs as the builder does.
    fn image_of(dir: &Path, mtime: i64) -> std::path::PathBuf {
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/new"), b"made by the build").unwrap();
        std::fs::write(tree.join("old"), b"from a package").unwrap();
        std::fs::hard_link(tree.join("old"), tree.join("old-link")).unwrap();
        std::os::unix::fs::symlink("sub/new", tree.join("link")).unwrap();
        let set = |p: &Path, s: i64| {
            let t = rustix::fs::Timespec {
                tv_sec: s,
                tv_nsec: 123_456_789,
            };
            rustix::fs::utimensat(
                rustix::fs::CWD,
                p,
                &rustix::fs::Timestamps {
                    last_access: t,
                    last_modification: t,
                },
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
        };
        for p in ["sub/new", "link", "sub", ""] {
            set(&tree.join(p), mtime);
        }
        // Older than the epoch: kept.
        set(&tree.join("old"), 1_600_000_000);
        // Written by a guest whose clock was never set (a boot's length
        // after 1970, different each time): moved to the epoch.
        std::fs::write(tree.join("guest"), b"from the builder").unwrap();
        set(&tree.join("guest"), 2 + mtime % 3);
        let out = dir.join("root.ext4");
        std::fs::File::create(&out)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let status = Command::new("mkfs.ext4")
            .env("E2FSPROGS_FAKE_TIME", "1704067200")
            .env("LC_ALL", "C")
            .args([
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                "4096",
                "-O",
                "^has_journal,^resize_inode",
            ])
            .args(["-U", "0f6b1c2e-0000-4000-8000-000000000001"])
            .args(["-E", "hash_seed=0f6b1c2e-0000-4000-8000-000000000001"])
            .arg("-d")
            .arg(&tree)
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        out
    }

    fn debugfs_stat(image: &Path, path: &str) -> String {
        let out = Command::new("debugfs")
            .args(["-R", &format!("stat {path}")])
            .arg(image)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn two_builds_at_different_times_give_the_same_bytes_and_a_valid_image() {
        let epoch = 1_704_067_200; // 2024-01-01
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = image_of(a.path(), 1_800_000_000);
        // The second tree is made a moment later: other ctimes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = image_of(b.path(), 1_800_000_500);
        assert_ne!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap()
        );

        let done = clamp_times(&first, epoch).unwrap();
        clamp_times(&second, epoch).unwrap();
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap(),
            "the same tree at another time seals to the same bytes"
        );
        // root, lost+found, sub, sub/new, old (linked twice), link, guest;
        // mke2fs gives the first two its own (fixed) clock.
        assert_eq!(done.inodes, 7, "{done:?}");
        assert_eq!(done.clamped, 4, "{done:?}");

        let fsck = Command::new("e2fsck")
            .args(["-fn"])
            .arg(&first)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "e2fsck: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        let new = debugfs_stat(&first, "/sub/new");
        for field in ["ctime", "atime", "mtime", "crtime"] {
            assert!(
                new.lines().any(|l| l
                    .trim_start()
                    .starts_with(&format!("{field}: 0x65920080:00000000"))),
                "{field} of a new file is the epoch:\n{new}"
            );
        }
        let guest = debugfs_stat(&first, "/guest");
        assert!(guest.contains("mtime: 0x65920080:"), "{guest}");
        let old = debugfs_stat(&first, "/old");
        assert!(
            old.contains("mtime: 0x5f5e1000:"),
            "an older file keeps its mtime:\n{old}"
        );
    }

    #[test]
    fn a_layout_it_cannot_read_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let image = image_of(dir.path(), 1_800_000_000);
        // Mark the descriptors as spread over meta block groups (META_BG).
        let mut bytes = std::fs::read(&image).unwrap();
        let at = SUPERBLOCK_OFFSET as usize + 0x60;
        let incompat = le32(&bytes, at) | 0x10;
        put32(&mut bytes, at, incompat);
        std::fs::write(&image, &bytes).unwrap();
        let e = clamp_times(&image, 1).unwrap_err().to_string();
        assert!(e.contains("a layout this cannot rewrite"), "{e}");
        assert_eq!(std::fs::read(&image).unwrap(), bytes, "nothing was written");
    }

    #[test]
    fn a_file_that_is_not_ext4_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not.ext4");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let e = clamp_times(&path, 1).unwrap_err().to_string();
        assert!(e.contains("not an ext4 image"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 8192]);
    }
}
