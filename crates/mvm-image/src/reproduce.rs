//! `mvmctl build --check-reproducible`: the same input built twice, each
//! time with an empty store and an empty download cache of its own (as two
//! machines would), and the two results compared byte for byte; when they
//! differ, the paths and attributes that do.

use std::path::Path;
use std::time::Instant;

use crate::build::{BuildRequest, build};
use crate::compare::{Difference, compare, shown};
use crate::digest::sha256_bytes;
use crate::error::ImageError;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Reproduced {
    pub image_id: String,
    /// Both `rootfs.ext4` and both `image.lock` are the same bytes.
    pub identical: bool,
    pub rootfs_sha256: [String; 2],
    pub lock_sha256: [String; 2],
    /// File-level differences between the two root filesystems, then
    /// image.lock fields that differ (`path` = `image.lock`).
    pub differences: Vec<Difference>,
    /// Bytes of rootfs.ext4 that differ (0 when identical).
    pub rootfs_bytes_differing: u64,
    pub build_seconds: [f64; 2],
}

/// Two files read side by side in chunks (images are GiBs): their sha256
/// and how many bytes differ.
struct SideBySide {
    sha256: [String; 2],
    differing: u64,
}

/// Fills `buf` as far as the file allows; 0 at its end.
fn fill(f: &mut std::fs::File, buf: &mut [u8], p: &Path) -> Result<usize, ImageError> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).map_err(ImageError::io(p))? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn side_by_side(a: &Path, b: &Path) -> Result<SideBySide, ImageError> {
    use sha2::{Digest, Sha256};
    let open = |p: &Path| std::fs::File::open(p).map_err(ImageError::io(p));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ha, mut hb) = (Sha256::new(), Sha256::new());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut differing = 0u64;
    loop {
        let na = fill(&mut fa, &mut ba, a)?;
        let nb = fill(&mut fb, &mut bb, b)?;
        if na == 0 && nb == 0 {
            break;
        }
        ha.update(&ba[..na]);
        hb.update(&bb[..nb]);
        let both = na.min(nb);
        differing += ba[..both]
            .iter()
            .zip(&bb[..both])
            .filter(|(x, y)| x != y)
            .count() as u64;
        differing += na.abs_diff(nb) as u64;
    }
    Ok(SideBySide {
        sha256: [
            format!("{:x}", ha.finalize()),
            format!("{:x}", hb.finalize()),
        ],
        differing,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(ImageError::io(path))
}

/// image.lock fields (top level) whose values differ.
fn lock_differences(a: &[u8], b: &[u8]) -> Vec<Difference> {
    let parse = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
            .unwrap_or_default()
    };
    let (a, b) = (parse(a), parse(b));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let value = |v: Option<&serde_json::Value>| {
                v.map_or("absent".into(), |v| shown(v.to_string().as_bytes()))
            };
            Difference {
                path: "image.lock".into(),
                attribute: shown(k.as_bytes()),
                first: value(a.get(k)),
                second: value(b.get(k)),
            }
        })
        .collect()
}

/// Builds `req.input` twice under `scratch` (which the caller removes),
/// each build in its own empty home and cache; `req.home` and
/// `req.cache_dir` are not used.
pub fn check_reproducible(
    req: &BuildRequest<'_>,
    scratch: &Path,
) -> Result<Reproduced, ImageError> {
    // The two builds run at the same time: they share nothing, and on a
    // host with two cores that halves the wait.
    let one = |side: &str| -> Result<(crate::store::ImageRef, f64), ImageError> {
        let home = scratch.join(side).join("home");
        let cache = scratch.join(side).join("cache");
        for d in [&home, &cache] {
            std::fs::create_dir_all(d).map_err(ImageError::io(d))?;
        }
        let t = Instant::now();
        let image = build(&BuildRequest {
            input: req.input,
            home: &home,
            cache_dir: &cache,
            progress: crate::progress::Progress::Hidden,
            gate_program: req.gate_program,
            allow_private_egress: req.allow_private_egress,
        })?
        .image;
        Ok((image, t.elapsed().as_secs_f64()))
    };
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| one("first"));
        let second = one("second");
        (first.join().expect("the first build did not panic"), second)
    });
    let ((image_a, secs_a), (image_b, secs_b)) = (first?, second?);
    let built = [image_a, image_b];
    let seconds = [secs_a, secs_b];
    let (a, b) = (&built[0], &built[1]);
    let rootfs = side_by_side(&a.rootfs, &b.rootfs)?;
    let (lock_a, lock_b) = (read(&a.lock)?, read(&b.lock)?);
    let identical = rootfs.differing == 0 && lock_a == lock_b;
    let mut differences = Vec::new();
    if rootfs.differing != 0 {
        differences = compare(&a.rootfs, &b.rootfs)?;
    }
    let rootfs_bytes_differing = rootfs.differing;
    differences.extend(lock_differences(&lock_a, &lock_b));
    Ok(Reproduced {
        image_id: a.id.clone(),
        identical,
        rootfs_sha256: rootfs.sha256,
        lock_sha256: [sha256_bytes(&lock_a), sha256_bytes(&lock_b)],
        differences,
        rootfs_bytes_differing,
        build_seconds: seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_fields_that_differ_are_named_with_both_values() {
        let a = br#"{"image_id": "x", "kernel": "k1", "debian": []}"#;
        let b = br#"{"image_id": "x", "kernel": "k2", "extra": 1, "debian": []}"#;
        let d = lock_differences(a, b);
        let got: Vec<(&str, &str, &str)> = d
            .iter()
            .map(|d| (d.attribute.as_str(), d.first.as_str(), d.second.as_str()))
            .collect();
        assert_eq!(
            got,
            [("extra", "absent", "1"), ("kernel", "\"k1\"", "\"k2\"")]
        );
    }
}
