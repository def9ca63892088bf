//! Seal key file handling.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::{Arc, Barrier};

use mvm_snapshot::{SealKey, SnapshotError};

#[test]
fn created_0600_with_32_bytes_and_reloaded_equal() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("a/b/seal.key");
    let k = SealKey::load_or_create(&p).unwrap();
    let md = fs::symlink_metadata(&p).unwrap();
    assert!(md.is_file());
    assert_eq!(md.mode() & 0o7777, 0o600);
    assert_eq!(md.len(), 32);
    assert_eq!(
        fs::metadata(t.path().join("a/b")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        fs::metadata(t.path().join("a")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(SealKey::load_or_create(&p).unwrap(), k);
    // Fresh keys differ, and no temp files are left behind.
    let other = SealKey::load_or_create(&t.path().join("a/b/other.key")).unwrap();
    assert_ne!(other, k);
    assert_eq!(fs::read_dir(t.path().join("a/b")).unwrap().count(), 2);
    assert_eq!(format!("{k:?}"), "SealKey(..)");
}

fn refused(p: &std::path::Path, what: &str) {
    match SealKey::load_or_create(p) {
        Err(SnapshotError::Key { path, reason }) => {
            assert_eq!(path, p);
            assert!(reason.contains(what), "{reason}");
        }
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn refuses_bad_key_files() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("seal.key");
    SealKey::load_or_create(&p).unwrap();

    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    refused(&p, "0644");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o620)).unwrap();
    refused(&p, "chmod 600");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    SealKey::load_or_create(&p).unwrap();

    let link = t.path().join("link.key");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    refused(&link, "symlink");

    let short = t.path().join("short.key");
    fs::write(&short, [7u8; 31]).unwrap();
    fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
    refused(&short, "31 bytes");
    assert_eq!(
        fs::read(&short).unwrap(),
        [7u8; 31],
        "a bad key is never replaced"
    );

    let dir = t.path().join("dir.key");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    refused(&dir, "not a regular file");
}

#[test]
fn concurrent_creation_agrees() {
    for round in 0..20 {
        let t = tempfile::tempdir().unwrap();
        let p = Arc::new(t.path().join(format!("k{round}/seal.key")));
        let barrier = Arc::new(Barrier::new(4));
        let keys: Vec<SealKey> = (0..4)
            .map(|_| {
                let (p, b) = (p.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    SealKey::load_or_create(&p).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "round {round}");
        assert_eq!(SealKey::load_or_create(&p).unwrap(), keys[0]);
    }
}
