//! The host seal key.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::SnapshotError;
use crate::fsutil;

type HmacSha256 = Hmac<Sha256>;

/// 32-byte host key for the HMAC-SHA256 seals. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// Loads `path`, or creates it (32 random bytes, mode 0600, missing parents created 0700).
    ///
    /// Creation is race-safe: the key is written to a temporary file beside `path` and then
    /// hard-linked to `path`, which never overwrites; a process that loses the race loads
    /// the winner's key. Refuses a symlink, a non-regular file, a file that is not exactly
    /// 32 bytes, a file with any group/other permission bit, and a file owned by another user.
    pub fn load_or_create(path: &Path) -> Result<SealKey, SnapshotError> {
        // A few rounds cover "created by someone else" and "removed under us" races.
        for _ in 0..5 {
            match Self::load(path)? {
                Some(k) => return Ok(k),
                None => {
                    if let Some(k) = Self::create(path)? {
                        return Ok(k);
                    }
                }
            }
        }
        Err(key_err(
            path,
            "the key file keeps appearing and disappearing; check who else manages it",
        ))
    }

    #[cfg(any(test, feature = "test-support"))]
    pub fn from_bytes(b: [u8; 32]) -> SealKey {
        SealKey(b)
    }

    /// `None` when the file does not exist.
    fn load(path: &Path) -> Result<Option<SealKey>, SnapshotError> {
        let mut f = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(key_err(
                    path,
                    "is a symlink; the key must be a regular file (remove the link)",
                ));
            }
            Err(e) => {
                return Err(SnapshotError::Io {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        };
        let md = f.metadata().map_err(crate::error::io(path))?;
        if !md.file_type().is_file() {
            return Err(key_err(path, "is not a regular file"));
        }
        if md.mode() & 0o077 != 0 {
            return Err(key_err(
                path,
                &format!(
                    "mode {:04o} lets group/other access it; run `chmod 600` on it",
                    md.mode() & 0o7777
                ),
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if md.uid() != me {
            return Err(key_err(
                path,
                &format!("is owned by uid {}, not by this user (uid {me})", md.uid()),
            ));
        }
        if md.len() != 32 {
            return Err(key_err(
                path,
                &format!(
                    "is {} bytes, a seal key is exactly 32; it is damaged (removing it invalidates all snapshots)",
                    md.len()
                ),
            ));
        }
        let mut b = [0u8; 32];
        let mut rest = Vec::new();
        f.read_exact(&mut b).map_err(crate::error::io(path))?;
        f.read_to_end(&mut rest).map_err(crate::error::io(path))?;
        if !rest.is_empty() {
            return Err(key_err(path, "grew while being read"));
        }
        Ok(Some(SealKey(b)))
    }

    /// `None` when another process created the key first (the caller then loads it).
    fn create(path: &Path) -> Result<Option<SealKey>, SnapshotError> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(crate::error::io(&parent))?;
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b)
            .map_err(|e| key_err(path, &format!("cannot get random bytes: {e}")))?;
        let fname = path
            .file_name()
            .ok_or_else(|| key_err(path, "has no file name"))?;
        let tmp = parent.join(format!(
            ".{}.tmp-{}-{}",
            fname.to_string_lossy(),
            std::process::id(),
            fsutil::random_hex(8)?
        ));
        let res = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            f.write_all(&b)?;
            f.sync_all()?;
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(SnapshotError::Io {
                path: tmp,
                source: e,
            });
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                fsutil::fsync_dir(&parent)?;
                Ok(Some(SealKey(b)))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(SnapshotError::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    pub(crate) fn seal(&self, data: &[u8]) -> String {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(data);
        m.finalize()
            .into_bytes()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    }

    /// Constant-time check of a hex seal against `data`.
    pub(crate) fn check(&self, data: &[u8], seal_hex: &str) -> bool {
        let Some(tag) = unhex(seal_hex) else {
            return false;
        };
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(data);
        m.verify_slice(&tag).is_ok()
    }
}

fn key_err(path: &Path, reason: &str) -> SnapshotError {
    SnapshotError::Key {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_rejects() {
        let k = SealKey::from_bytes([1; 32]);
        let s = k.seal(b"hello");
        assert_eq!(s.len(), 64);
        assert!(k.check(b"hello", &s));
        assert!(!k.check(b"hellp", &s));
        assert!(!SealKey::from_bytes([2; 32]).check(b"hello", &s));
        assert!(!k.check(b"hello", &s[..62]));
        assert!(!k.check(b"hello", "zz"));
        assert_eq!(format!("{k:?}"), "SealKey(..)");
    }
}
