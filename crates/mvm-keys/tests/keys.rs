use std::os::unix::fs::PermissionsExt;

use mvm_keys::{KeyError, KeyRing, PublicKey};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn generate_writes_owner_only_files() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("keys");
    let ring = KeyRing::new(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let p = ring.generate("alice").unwrap();
    assert_eq!(mode(&dir.join("alice.key")), 0o600);
    assert_eq!(p.comment.as_deref(), Some("alice"));
    assert_eq!(ring.public("alice").unwrap(), p);
    assert!(matches!(
        ring.generate("alice"),
        Err(KeyError::Exists { .. })
    ));
    let s = ring.signer("alice").unwrap();
    let sig = s.sign(b"hi");
    assert!(p.verify(b"hi", &sig));
    assert!(!p.verify(b"ho", &sig));
    let dbg = format!("{s:?}");
    assert!(dbg.contains("alice") && !dbg.contains("PRIVATE"));
    let names: Vec<_> = ring.list().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["alice"]);
}

#[test]
fn names_are_checked_and_mvm_reserved() {
    let t = tempfile::tempdir().unwrap();
    let ring = KeyRing::new(t.path()).unwrap();
    for bad in [
        "",
        "Alice",
        "1a",
        "a_b",
        "mvm-audit",
        "../x",
        &"a".repeat(64),
    ] {
        assert!(
            matches!(ring.generate(bad), Err(KeyError::InvalidName { .. })),
            "{bad}"
        );
    }
    ring.generate(&"a".repeat(63)).unwrap();
}

#[test]
fn signer_refuses_loose_mode_and_symlink() {
    let t = tempfile::tempdir().unwrap();
    let ring = KeyRing::new(t.path()).unwrap();
    ring.generate("bob").unwrap();
    let key = t.path().join("bob.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ring.signer("bob").unwrap_err();
    assert!(matches!(err, KeyError::Permissions { mode: 0o644, .. }));
    assert!(err.to_string().contains("chmod 600"));

    std::os::unix::fs::symlink(&key, t.path().join("carol.key")).unwrap();
    assert!(matches!(
        ring.signer("carol"),
        Err(KeyError::Symlink { .. })
    ));
    assert!(matches!(
        ring.signer("dave"),
        Err(KeyError::NotFound { .. })
    ));
}

#[test]
fn audit_key_is_made_once() {
    let t = tempfile::tempdir().unwrap();
    let ring = KeyRing::new(t.path()).unwrap();
    let a = ring.host_audit_key().unwrap();
    let b = ring.host_audit_key().unwrap();
    assert_eq!(a.public(), b.public());
    assert_eq!(a.signing_key().verifying_key(), b.public().key);
}

#[test]
fn public_text_round_trip_and_errors() {
    let t = tempfile::tempdir().unwrap();
    let ring = KeyRing::new(t.path()).unwrap();
    let p = ring.generate("erin").unwrap();
    let text = p.to_text();
    assert!(text.starts_with("ed25519 ") && text.ends_with(" erin"));
    assert_eq!(PublicKey::parse(&text).unwrap(), p);
    let bare = PublicKey::new(p.key, None);
    assert_eq!(PublicKey::parse(&bare.to_text()).unwrap(), bare);
    let spaced = PublicKey::new(p.key, Some("erin at work".into()));
    assert_eq!(PublicKey::parse(&spaced.to_text()).unwrap(), spaced);
    assert_eq!(p.key_id().len(), 16);
    for bad in ["", "rsa AAAA", "ed25519 !!!", "ed25519 AAAA"] {
        assert!(PublicKey::parse(bad).is_err(), "{bad}");
    }
}

/// Threads of one process (a runtime starting instances in parallel) all
/// asking for the host audit key at once get the same key, none an error.
#[test]
fn threads_racing_for_the_audit_key_all_get_the_same_one() {
    for _ in 0..20 {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("keys");
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let ring = mvm_keys::KeyRing::new(&dir).unwrap();
                        ring.host_audit_key().unwrap().public().key_id()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }
}
