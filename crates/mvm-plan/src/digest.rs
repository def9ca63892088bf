use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::PlanError;
use crate::replay::hex;

/// sha256 of big files, cached by (path, dev, ino, size, mtime, ctime):
/// any write changes mtime/ctime, so a changed file is rehashed.
pub struct DigestCache {
    dir: PathBuf,
}

fn stamp(canon: &Path, m: &fs::Metadata) -> String {
    let key = format!(
        "{}\0{}\0{}\0{}\0{}\0{}",
        canon.display(),
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128
    );
    hex(&Sha256::digest(key.as_bytes()))
}

impl DigestCache {
    pub fn new(dir: &Path) -> Result<Self, PlanError> {
        fs::create_dir_all(dir).map_err(|e| PlanError::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| PlanError::io(dir, e))?;
        Ok(DigestCache {
            dir: dir.to_path_buf(),
        })
    }

    /// Hex sha256 of `path` and whether it came from the cache.
    pub fn sha256_file(&self, path: &Path) -> Result<(String, bool), PlanError> {
        let canon = fs::canonicalize(path).map_err(|e| PlanError::io(path, e))?;
        let mut f = File::open(&canon).map_err(|e| PlanError::io(&canon, e))?;
        let before = f.metadata().map_err(|e| PlanError::io(&canon, e))?;
        let entry = self.dir.join(stamp(&canon, &before));
        if let Ok(s) = fs::read_to_string(&entry) {
            let s = s.trim();
            if s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Ok((s.to_string(), true));
            }
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| PlanError::io(&canon, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let digest = hex(&h.finalize());
        // Cache only if the file did not change while we read it.
        let after = f.metadata().map_err(|e| PlanError::io(&canon, e))?;
        if stamp(&canon, &after) == stamp(&canon, &before) {
            // Unique per call: threads of one process hash at the same time,
            // and a shared staging name would swap their answers.
            let stage = self
                .dir
                .join(format!(".stage.{}", crate::plan::new_nonce()));
            let ok = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&stage)
                .and_then(|mut s| s.write_all(digest.as_bytes()))
                .and_then(|_| fs::rename(&stage, &entry));
            if ok.is_err() {
                let _ = fs::remove_file(&stage);
            }
        }
        Ok((digest, false))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hit_then_miss_after_write() {
        let t = tempfile::tempdir().unwrap();
        let c = super::DigestCache::new(&t.path().join("c")).unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        let (d1, hit1) = c.sha256_file(&f).unwrap();
        assert!(!hit1);
        assert_eq!(
            d1,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(c.sha256_file(&f).unwrap(), (d1.clone(), true));
        std::fs::write(&f, b"abd").unwrap();
        let (d2, hit2) = c.sha256_file(&f).unwrap();
        assert!(!hit2);
        assert_ne!(d1, d2);
    }

    /// Threads hashing different files at once each cache their own answer.
    #[test]
    fn threads_never_swap_cached_digests() {
        let t = tempfile::tempdir().unwrap();
        let c = super::DigestCache::new(&t.path().join("c")).unwrap();
        let files: Vec<_> = (0..8)
            .map(|i| {
                let f = t.path().join(format!("f{i}"));
                std::fs::write(&f, vec![i as u8; 1 << 16]).unwrap();
                f
            })
            .collect();
        for _ in 0..10 {
            std::fs::remove_dir_all(t.path().join("c")).unwrap();
            let c = super::DigestCache::new(&t.path().join("c")).unwrap();
            std::thread::scope(|s| {
                for f in &files {
                    let c = &c;
                    s.spawn(move || c.sha256_file(f).unwrap());
                }
            });
            for f in &files {
                let (cached, hit) = c.sha256_file(f).unwrap();
                assert!(hit);
                let fresh = super::hex(&<sha2::Sha256 as sha2::Digest>::digest(
                    std::fs::read(f).unwrap(),
                ));
                assert_eq!(cached, fresh, "{}", f.display());
            }
        }
        drop(c);
    }
}
