//! The sparse-aware file digest, optionally copying the file (holes preserved) in the same pass.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::SnapshotError;

pub(crate) const BLOCK: usize = 4096;
const BUF: usize = 1 << 20;
static ZERO: [u8; BLOCK] = [0; BLOCK];
pub(crate) const PREFIX: &str = "blake3:";

/// `lseek(SEEK_DATA|SEEK_HOLE)`; `None` when there is no such offset (ENXIO: past the end).
fn seek(f: &File, off: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let off =
        libc::off_t::try_from(off).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain syscall on an owned descriptor; we only use positional I/O afterwards.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENXIO) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Next data region `[start, end)` at or after `pos`, or `None` if the rest is a hole.
fn next_data(f: &File, pos: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    let start = match seek(f, pos, libc::SEEK_DATA) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        // No hole support: treat everything as data.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
            return Ok(Some((pos, len)));
        }
        Err(e) => return Err(e),
    };
    if start >= len {
        return Ok(None);
    }
    let end = seek(f, start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
    Ok(Some((start, end.max(start))))
}

/// Where a copy goes: `dst` has already been sized to the source length, so untouched ranges
/// stay holes.
pub(crate) struct Sink<'a> {
    pub file: &'a File,
    pub path: &'a Path,
}

/// Digest of the first `len` bytes of `src` (see the crate doc for the definition). With a
/// sink, every non-zero block is also written at the same offset; zero blocks and holes are
/// not written. Fails with `Truncated` if the file turns out shorter than `len` while reading.
pub(crate) fn scan(
    src: &File,
    src_path: &Path,
    len: u64,
    sink: Option<Sink<'_>>,
) -> Result<String, SnapshotError> {
    let ioe = |p: &Path| {
        let p = p.to_path_buf();
        move |source| SnapshotError::Io { path: p, source }
    };
    let mut h = blake3::Hasher::new();
    h.update(&len.to_le_bytes());
    let mut buf = vec![0u8; BUF];
    let bl = BLOCK as u64;
    let mut pos = 0u64;
    while pos < len {
        let Some((ds, de)) = next_data(src, pos, len).map_err(ioe(src_path))? else {
            break;
        };
        // Work on whole 4 KiB blocks; bytes of a hole inside a block read as zeros anyway.
        let mut off = (ds / bl * bl).max(pos);
        let end = de.div_ceil(bl).saturating_mul(bl).min(len);
        while off < end {
            let n = ((end - off) as usize).min(BUF);
            let chunk = &mut buf[..n];
            read_full_at(src, chunk, off).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => SnapshotError::Truncated {
                    path: src_path.to_path_buf(),
                    expected: len,
                    found: src.metadata().map(|m| m.len()).unwrap_or(0),
                },
                _ => SnapshotError::Io {
                    path: src_path.to_path_buf(),
                    source: e,
                },
            })?;
            // Runs of consecutive non-zero blocks are written with one pwrite.
            let mut run: Option<usize> = None;
            for (i, b) in chunk.chunks(BLOCK).enumerate() {
                let at = i * BLOCK;
                // Slice equality is a memcmp: fast even in debug builds.
                if b == &ZERO[..b.len()] {
                    if let (Some(s), Some(k)) = (run.take(), sink.as_ref()) {
                        k.file
                            .write_all_at(&chunk[s..at], off + s as u64)
                            .map_err(ioe(k.path))?;
                    }
                    continue;
                }
                h.update(&(off + at as u64).to_le_bytes());
                h.update(b);
                run.get_or_insert(at);
            }
            if let (Some(s), Some(k)) = (run, sink.as_ref()) {
                k.file
                    .write_all_at(&chunk[s..], off + s as u64)
                    .map_err(ioe(k.path))?;
            }
            off += n as u64;
        }
        pos = end;
    }
    Ok(format!("{PREFIX}{}", h.finalize().to_hex()))
}

fn read_full_at(f: &File, mut buf: &mut [u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match f.read_at(buf, off) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                buf = &mut buf[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(crate) fn valid_digest(d: &str) -> bool {
    d.strip_prefix(PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rw(p: std::path::PathBuf) -> File {
        File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(p)
            .unwrap()
    }

    fn digest_of(f: &File) -> String {
        scan(f, Path::new("t"), f.metadata().unwrap().len(), None).unwrap()
    }

    /// Reference implementation straight from the definition, reading every byte.
    fn reference(data: &[u8]) -> String {
        let mut h = blake3::Hasher::new();
        h.update(&(data.len() as u64).to_le_bytes());
        for (i, b) in data.chunks(BLOCK).enumerate() {
            if b.iter().any(|&x| x != 0) {
                h.update(&((i * BLOCK) as u64).to_le_bytes());
                h.update(b);
            }
        }
        format!("{PREFIX}{}", h.finalize().to_hex())
    }

    #[test]
    fn holes_and_zeros_hash_the_same_and_one_byte_changes_it() {
        let d = tempfile::tempdir().unwrap();
        let len = 3 * 1024 * 1024 + 123; // short last block
        let mut dense = vec![0u8; len];
        dense[5000..9000].fill(7);
        dense[2 * 1024 * 1024 + 1] = 1;
        dense[len - 1] = 9;

        let a = rw(d.path().join("dense"));
        (&a).write_all(&dense).unwrap();
        let b = rw(d.path().join("sparse"));
        b.set_len(len as u64).unwrap();
        b.write_all_at(&dense[5000..9000], 5000).unwrap();
        b.write_all_at(&[1], 2 * 1024 * 1024 + 1).unwrap();
        b.write_all_at(&[9], len as u64 - 1).unwrap();
        assert!(b.metadata().unwrap().len() == len as u64);

        let da = digest_of(&a);
        assert_eq!(da, digest_of(&b));
        assert_eq!(da, reference(&dense));
        assert!(valid_digest(&da));

        b.write_all_at(&[8], 123_456).unwrap();
        assert_ne!(da, digest_of(&b));
        // Same content, different length: different digest.
        a.set_len(len as u64 + 1).unwrap();
        assert_ne!(da, digest_of(&a));
    }

    #[test]
    fn empty_and_all_zero_files_differ_by_length() {
        let d = tempfile::tempdir().unwrap();
        let f = rw(d.path().join("z"));
        let e = digest_of(&f);
        assert_eq!(e, reference(&[]));
        f.set_len(10_000).unwrap();
        assert_ne!(e, digest_of(&f));
        assert_eq!(digest_of(&f), reference(&[0; 10_000]));
    }

    #[test]
    fn copy_preserves_content_and_skips_zero_blocks() {
        let d = tempfile::tempdir().unwrap();
        let len: u64 = 64 * 1024 * 1024;
        let src = rw(d.path().join("src"));
        src.set_len(len).unwrap();
        src.write_all_at(&[3u8; 10_000], 1_000_000).unwrap();
        // Explicit zeros are allocated in the source but must not be in the copy.
        src.write_all_at(&vec![0u8; 8 << 20], 20 << 20).unwrap();
        src.write_all_at(b"end", len - 3).unwrap();
        let dst = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(d.path().join("dst"))
            .unwrap();
        dst.set_len(len).unwrap();
        let dg = scan(
            &src,
            Path::new("src"),
            len,
            Some(Sink {
                file: &dst,
                path: Path::new("dst"),
            }),
        )
        .unwrap();
        assert_eq!(dg, digest_of(&dst));
        let a = std::fs::read(d.path().join("src")).unwrap();
        let b = std::fs::read(d.path().join("dst")).unwrap();
        assert!(a == b);
        let alloc = crate::fsutil::allocated(&dst.metadata().unwrap());
        assert!(alloc < 1 << 20, "copy allocates {alloc} bytes");
    }

    #[test]
    fn shorter_than_expected_is_truncated() {
        let d = tempfile::tempdir().unwrap();
        let f = rw(d.path().join("s"));
        (&f).write_all(&[1u8; 5000]).unwrap();
        let e = scan(&f, Path::new("s"), 9000, None).unwrap_err();
        assert!(
            matches!(
                e,
                SnapshotError::Truncated {
                    expected: 9000,
                    found: 5000,
                    ..
                }
            ),
            "{e}"
        );
    }
}
