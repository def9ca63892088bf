//! Sealing a root directory into the read-only ext4 image the guest mounts.
//!
//! ext4 rather than erofs: the guest kernel and agent mount ext4 (the
//! architecture's boot contract), and `mkfs.erofs` is not installed here.
//! No journal (the image is never written), no reserved blocks, no resize
//! reserve; the UUID and directory hash seed come from the image id,
//! mke2fs's clock is fixed and it reads directories in C-locale order.
//! mke2fs copies each file's times from the tree, and those depend on when
//! the build ran; so afterwards every inode's times are clamped to the
//! build's epoch ([`crate::ext4_times`]). Python caches whose header
//! records a source mtime that the clamp changes are restamped first, so
//! they stay valid. Together: the same inputs seal to the same bytes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::buildlog::BuildLog;
use crate::error::ImageError;
use crate::tree::{Kind, Tree};

const BLOCK: u64 = 4096;
/// Fixed superblock time (2024-01-01T00:00:00Z).
const FIXED_TIME: &str = "1704067200";
/// The epoch file times are clamped to unless `SOURCE_DATE_EPOCH` says
/// otherwise: the same instant as the superblock's.
pub const DEFAULT_EPOCH: u32 = 1_704_067_200;
/// Entries a tree may hold for the restamping walk.
const MAX_ENTRIES: usize = 2_000_000;
/// mke2fs's profile, given to it instead of the host's /etc/mke2fs.conf so
/// the features and defaults of an image never depend on the machine (the
/// values of Debian's file; the journal and resize inode are off anyway).
const MKE2FS_PROFILE: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384

[fs_types]
\text4 = {
\t\tfeatures = extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";
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

/// Rewrites the source mtime in the header of every timestamp-checked
/// `__pycache__/*.pyc` whose source the clamp to `epoch` will change, so
/// Python still finds the cache valid (it compares the recorded mtime and
/// size with the source's). Best effort: a cache that cannot be read or
/// written is left as it is (Python then recompiles it in memory), and
/// noted. Returns how many were rewritten.
fn restamp_pycs(tree: &Path, epoch: u32, log: &mut BuildLog) -> Result<usize, ImageError> {
    let tree = Tree::open(tree)?;
    let mut restamped = 0;
    let found = match tree.walk(MAX_ENTRIES) {
        Ok(found) => found,
        Err(e) => {
            log.note(&format!("Python caches not restamped: {e}"));
            return Ok(0);
        }
    };
    for found in found {
        let Kind::File { size, .. } = found.kind else {
            continue;
        };
        let rel = &found.rel;
        let (Some(dir), Some(name)) = (rel.parent(), rel.file_name().and_then(|n| n.to_str()))
        else {
            continue;
        };
        if size < 16 || !name.ends_with(".pyc") || dir.file_name() != Some("__pycache__".as_ref()) {
            continue;
        }
        // `mod.cpython-313.pyc`, `mod.cpython-313.opt-1.pyc` → `mod.py`.
        let module = name.split('.').next().unwrap_or_default();
        let source = dir
            .parent()
            .unwrap_or(Path::new(""))
            .join(format!("{module}.py"));
        // Python stats the source through a link; so does this, inside
        // the tree only.
        let Ok(Some(mtime)) = tree.file_mtime(&source) else {
            continue;
        };
        if !crate::ext4_times::clamps(mtime, epoch) {
            continue;
        }
        let header = match tree.read_prefix(rel, 16) {
            Ok(h) if h.len() == 16 => h,
            _ => continue,
        };
        let flags = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let recorded = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        // Flags 0: checked by timestamp (hash-based caches do not care).
        if flags == 0 && recorded == mtime as u32 {
            match tree.patch(rel, 8, &epoch.to_le_bytes()) {
                Ok(()) => restamped += 1,
                Err(e) => log.note(&format!("Python cache not restamped: {e}")),
            }
        }
    }
    Ok(restamped)
}

/// Writes `tree` into a new ext4 image at `out`, every time in it clamped
/// to `epoch`; returns its size in bytes. `seed` is a hex digest (at least
/// 32 digits).
pub fn seal(
    tree: &Path,
    out: &Path,
    seed: &str,
    epoch: u32,
    log: &mut BuildLog,
) -> Result<u64, ImageError> {
    let started = std::time::Instant::now();
    let restamped = restamp_pycs(tree, epoch, log)?;
    let restamp_time = started.elapsed();
    let m = measure(tree)?;
    let inodes = m.inodes + m.inodes / 10 + 256;
    let data = m.blocks * BLOCK + inodes * 256;
    let size = (data + data * SLACK_PERCENT / 100 + SLACK_FIXED).next_multiple_of(1 << 20);
    let uuid = uuid_from(seed);
    let profile = out.with_extension("mke2fs.conf");
    std::fs::write(&profile, MKE2FS_PROFILE).map_err(ImageError::io(&profile))?;
    let restamped = (restamped, restamp_time);
    let result = mke2fs(
        tree, out, &uuid, &profile, size, inodes, epoch, restamped, log,
    );
    let _ = std::fs::remove_file(&profile);
    result
}

#[allow(clippy::too_many_arguments)]
fn mke2fs(
    tree: &Path,
    out: &Path,
    uuid: &str,
    profile: &Path,
    mut size: u64,
    inodes: u64,
    epoch: u32,
    (restamped, restamp_time): (usize, std::time::Duration),
    log: &mut BuildLog,
) -> Result<u64, ImageError> {
    // The estimate is usually enough; if mke2fs runs out of room, grow and retry.
    for attempt in 1..=3 {
        let file = std::fs::File::create(out).map_err(ImageError::io(out))?;
        file.set_len(size).map_err(ImageError::io(out))?;
        drop(file);
        let mut cmd = Command::new("mkfs.ext4");
        cmd.env("MKE2FS_CONFIG", profile)
            .env("E2FSPROGS_FAKE_TIME", FIXED_TIME)
            .env("SOURCE_DATE_EPOCH", FIXED_TIME)
            // Directory entries are read in collation order: byte order.
            .env("LC_ALL", "C")
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
            Ok(()) => {
                let started = std::time::Instant::now();
                let done = crate::ext4_times::clamp_times(out, epoch)?;
                log.note(&format!(
                    "times clamped to {epoch}: {} of {} inodes were newer; {restamped} Python caches restamped ({} ms + {} ms)",
                    done.clamped,
                    done.inodes,
                    restamp_time.as_millis(),
                    started.elapsed().as_millis()
                ));
                return Ok(size);
            }
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
        let size = seal(&tree, &out, &seed, DEFAULT_EPOCH, &mut log).unwrap();
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

    fn set_mtime(path: &Path, seconds: i64) {
        let t = rustix::fs::Timespec {
            tv_sec: seconds,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            path,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    /// A pyc header: magic, flags, recorded source mtime, source size.
    fn pyc(flags: u32, mtime: u32) -> Vec<u8> {
        let mut b = vec![0xF3, 0x0D, 0x0D, 0x0A];
        b.extend(flags.to_le_bytes());
        b.extend(mtime.to_le_bytes());
        b.extend(5u32.to_le_bytes());
        b.extend(b"code");
        b
    }

    fn image_file(image: &Path, path: &str) -> Vec<u8> {
        Command::new("debugfs")
            .args(["-R", &format!("cat {path}")])
            .arg(image)
            .output()
            .unwrap()
            .stdout
    }

    #[test]
    fn python_caches_follow_their_clamped_sources_and_nothing_else_changes() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let cache = tree.join("lib/__pycache__");
        std::fs::create_dir_all(&cache).unwrap();
        let newer = i64::from(DEFAULT_EPOCH) + 86_400;
        for m in ["fresh", "hashed", "stale", "old"] {
            std::fs::write(tree.join(format!("lib/{m}.py")), b"x = 1").unwrap();
        }
        std::fs::write(cache.join("fresh.cpython-313.pyc"), pyc(0, newer as u32)).unwrap();
        std::fs::write(
            cache.join("fresh.cpython-313.opt-1.pyc"),
            pyc(0, newer as u32),
        )
        .unwrap();
        std::fs::write(cache.join("hashed.cpython-313.pyc"), pyc(1, newer as u32)).unwrap();
        std::fs::write(cache.join("stale.cpython-313.pyc"), pyc(0, 12345)).unwrap();
        std::fs::write(cache.join("old.cpython-313.pyc"), pyc(0, 1_600_000_000)).unwrap();
        // A link named like a cache is never followed (or written through).
        let outside = dir.path().join("outside.pyc");
        std::fs::write(&outside, pyc(0, newer as u32)).unwrap();
        std::os::unix::fs::symlink(&outside, cache.join("link.cpython-313.pyc")).unwrap();
        std::fs::write(tree.join("lib/link.py"), b"x = 1").unwrap();
        for m in ["fresh", "hashed", "stale", "link"] {
            set_mtime(&tree.join(format!("lib/{m}.py")), newer);
        }
        // A source that is a link: Python stats its target, so does the
        // restamp; an absolute link resolves inside the tree, never on the
        // host (the host's /etc/hostname is not this tree's).
        std::fs::write(tree.join("lib/real.py"), b"x = 1").unwrap();
        set_mtime(&tree.join("lib/real.py"), newer);
        std::os::unix::fs::symlink("real.py", tree.join("lib/alias.py")).unwrap();
        std::fs::write(cache.join("alias.cpython-313.pyc"), pyc(0, newer as u32)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", tree.join("lib/host.py")).unwrap();
        let host_mtime = std::fs::metadata("/etc/hostname").map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.mtime() as u32
        });
        if let Ok(t) = host_mtime {
            std::fs::write(cache.join("host.cpython-313.pyc"), pyc(0, t)).unwrap();
        }
        set_mtime(&tree.join("lib/old.py"), 1_600_000_000);

        let out = dir.path().join("rootfs.ext4");
        let mut log = BuildLog::create(&dir.path().join("log")).unwrap();
        let seed = crate::digest::sha256_bytes(b"seed");
        seal(&tree, &out, &seed, DEFAULT_EPOCH, &mut log).unwrap();

        let header_mtime = |name: &str| {
            let b = image_file(&out, &format!("/lib/__pycache__/{name}"));
            u32::from_le_bytes(b[8..12].try_into().unwrap())
        };
        assert_eq!(header_mtime("fresh.cpython-313.pyc"), DEFAULT_EPOCH);
        assert_eq!(header_mtime("fresh.cpython-313.opt-1.pyc"), DEFAULT_EPOCH);
        assert_eq!(
            header_mtime("hashed.cpython-313.pyc"),
            newer as u32,
            "hash-checked: left alone"
        );
        assert_eq!(
            header_mtime("stale.cpython-313.pyc"),
            12345,
            "already stale: left alone"
        );
        assert_eq!(
            header_mtime("old.cpython-313.pyc"),
            1_600_000_000,
            "source not clamped"
        );
        assert_eq!(
            header_mtime("alias.cpython-313.pyc"),
            DEFAULT_EPOCH,
            "through the link"
        );
        if let Ok(t) = host_mtime {
            assert_eq!(
                header_mtime("host.cpython-313.pyc"),
                t,
                "the host's file is never consulted"
            );
        }
        assert_eq!(
            std::fs::read(&outside).unwrap(),
            pyc(0, newer as u32),
            "not written through"
        );
        // The source itself now has the epoch as its mtime in the image.
        let stat = Command::new("debugfs")
            .args(["-R", "stat /lib/fresh.py"])
            .arg(&out)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&stat.stdout);
        assert!(
            text.contains(&format!("mtime: {:#010x}:", DEFAULT_EPOCH)),
            "{text}"
        );
    }
}
