//! Store tests on real files. Each sets umask 0 first: every mode the
//! store makes must be owner-only whatever the umask (umask is per
//! process, so all tests run under the same one).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{MAX_VALUE, SecretError, Store};

struct Env {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    key: PathBuf,
}

fn env() -> Env {
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0) };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("mvm-home");
    let key = tmp.path().join("config/mvm/secrets.key");
    Env {
        home,
        key,
        _tmp: tmp,
    }
}

impl Env {
    fn store(&self) -> Store {
        Store::open_with_key_file(&self.home, &self.key).unwrap()
    }
    fn dir(&self) -> PathBuf {
        self.home.join("secrets")
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

const VALUE: &[u8] = b"sk-live-7f3a9c1e5b";

fn assert_no_value(e: &SecretError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains("sk-live"), "value in error: {text}");
}

#[test]
fn round_trip_list_touch_remove() {
    let e = env();
    let s = e.store();
    assert!(s.list().unwrap().is_empty());
    assert!(!s.dir().exists(), "open and list create nothing");
    assert!(!s.set("openai-api-key", VALUE).unwrap());
    assert_eq!(s.get("openai-api-key").unwrap().unwrap().as_slice(), VALUE);
    assert!(s.get("other").unwrap().is_none());
    assert!(s.contains("openai-api-key").unwrap());

    let list = s.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "openai-api-key");
    assert!(list[0].last_used.is_none());
    let age = time::OffsetDateTime::now_utc() - list[0].created;
    assert!(age.whole_seconds().abs() < 60, "created is now: {age}");

    s.touch_used("openai-api-key").unwrap();
    let used = s.list().unwrap()[0].last_used.expect("touched");
    assert!(used >= list[0].created);
    // Touching keeps the value.
    assert_eq!(s.get("openai-api-key").unwrap().unwrap().as_slice(), VALUE);

    s.remove("openai-api-key").unwrap();
    assert!(s.get("openai-api-key").unwrap().is_none());
    assert!(matches!(
        s.remove("openai-api-key"),
        Err(SecretError::NotFound { .. })
    ));
    assert!(matches!(
        s.touch_used("openai-api-key"),
        Err(SecretError::NotFound { .. })
    ));
}

#[test]
fn the_value_is_encrypted_on_disk() {
    let e = env();
    e.store().set("a", VALUE).unwrap();
    let file = fs::read(e.dir().join("a.secret")).unwrap();
    assert!(!file.windows(VALUE.len()).any(|w| w == VALUE));
    let text = String::from_utf8(file).unwrap();
    assert!(text.contains("\"format\": \"mvm-secret/1\""), "{text}");
}

#[test]
fn replace_is_atomic_and_leaves_no_staging_files() {
    let e = env();
    let s = e.store();
    s.set("tok", b"first").unwrap();
    assert!(s.set("tok", b"second").unwrap(), "reports a replacement");
    assert_eq!(s.get("tok").unwrap().unwrap().as_slice(), b"second");
    let mut names: Vec<String> = fs::read_dir(e.dir())
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".lock", "tok.secret"]);
    let key_dir: Vec<_> = fs::read_dir(e.key.parent().unwrap()).unwrap().collect();
    assert_eq!(key_dir.len(), 1, "only the key file beside the key");
}

#[test]
fn modes_are_owner_only_under_umask_0() {
    let e = env();
    let s = e.store();
    s.set("a", VALUE).unwrap();
    s.touch_used("a").unwrap();
    assert_eq!(mode(&e.dir()), 0o700);
    assert_eq!(mode(&e.dir().join("a.secret")), 0o600);
    assert_eq!(mode(&e.dir().join(".lock")), 0o600);
    assert_eq!(mode(&e.key), 0o600);
    assert_eq!(mode(e.key.parent().unwrap()), 0o700);
    let key = fs::read_to_string(&e.key).unwrap();
    assert_eq!(key.len(), 65);
    assert!(key.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn a_symlinked_secrets_dir_is_refused() {
    let e = env();
    let elsewhere = e.home.with_file_name("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(&e.home).unwrap();
    std::os::unix::fs::symlink(&elsewhere, e.dir()).unwrap();
    let err = Store::open_with_key_file(&e.home, &e.key).unwrap_err();
    assert!(matches!(err, SecretError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("is a symlink"), "{err}");
}

#[test]
fn a_symlinked_secret_file_is_never_followed() {
    let e = env();
    let s = e.store();
    s.set("a", VALUE).unwrap();
    let target = e.home.with_file_name("target");
    fs::write(&target, "untouched").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    let link = e.dir().join("b.secret");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let err = s.get("b").unwrap_err();
    assert!(matches!(err, SecretError::Symlink { .. }), "{err}");
    assert!(matches!(s.list(), Err(SecretError::Symlink { .. })));
    // Setting replaces the link itself; the target is not written through.
    s.set("b", b"new").unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
    assert!(fs::symlink_metadata(&link).unwrap().is_file());
    assert_eq!(s.get("b").unwrap().unwrap().as_slice(), b"new");
}

#[test]
fn loose_modes_are_refused() {
    let e = env();
    let s = e.store();
    s.set("a", VALUE).unwrap();
    fs::set_permissions(e.dir().join("a.secret"), fs::Permissions::from_mode(0o644)).unwrap();
    let err = s.get("a").unwrap_err();
    assert!(
        matches!(err, SecretError::Permissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("hint: chmod 600"), "{err}");

    fs::set_permissions(e.dir(), fs::Permissions::from_mode(0o750)).unwrap();
    let err = Store::open_with_key_file(&e.home, &e.key).unwrap_err();
    assert!(
        matches!(err, SecretError::Permissions { mode: 0o750, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("hint: chmod 700"), "{err}");
    assert!(s.set("b", b"x").is_err(), "an open store re-checks too");
}

#[test]
fn a_dir_owned_by_someone_else_is_refused() {
    if crate::fsutil::my_uid() != 0 {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let e = env();
    e.store().set("a", VALUE).unwrap();
    std::os::unix::fs::chown(e.dir(), Some(65534), None).unwrap();
    let err = Store::open_with_key_file(&e.home, &e.key).unwrap_err();
    assert!(
        matches!(err, SecretError::NotOwned { owner: 65534, .. }),
        "{err}"
    );
}

#[test]
fn bad_names_are_refused_with_the_rule() {
    let e = env();
    let s = e.store();
    for bad in ["", "Api", ".hidden", "a/b", "../x", "a b", &"a".repeat(129)] {
        let err = s.set(bad, VALUE).unwrap_err();
        assert!(
            matches!(err, SecretError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
        assert!(
            err.to_string().contains("^[a-z0-9][a-z0-9._-]{0,127}$"),
            "{err}"
        );
        assert!(s.get(bad).is_err() && s.remove(bad).is_err() && s.touch_used(bad).is_err());
    }
    assert!(!e.dir().exists(), "nothing made for a refused name");
}

#[test]
fn a_wrong_key_fails_to_decrypt_clearly() {
    let e = env();
    e.store().set("a", VALUE).unwrap();
    let other_key = e.key.with_file_name("other.key");
    fs::write(&other_key, format!("{}\n", "ab".repeat(32))).unwrap();
    fs::set_permissions(&other_key, fs::Permissions::from_mode(0o600)).unwrap();
    let other = Store::open_with_key_file(&e.home, &other_key).unwrap();
    let err = other.get("a").unwrap_err();
    assert!(matches!(err, SecretError::Decrypt { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot decrypt secret \"a\""),
        "{err}"
    );
    assert_no_value(&err);
}

#[test]
fn a_file_swapped_between_names_fails_to_decrypt() {
    let e = env();
    let s = e.store();
    s.set("a", VALUE).unwrap();
    s.set("b", b"bbbb").unwrap();
    fs::copy(e.dir().join("a.secret"), e.dir().join("b.secret")).unwrap();
    fs::set_permissions(e.dir().join("b.secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let err = s.get("b").unwrap_err();
    assert!(matches!(err, SecretError::Decrypt { .. }), "{err}");
    assert_no_value(&err);
    assert_eq!(s.get("a").unwrap().unwrap().as_slice(), VALUE);
}

#[test]
fn a_missing_key_is_named() {
    let e = env();
    e.store().set("a", VALUE).unwrap();
    fs::remove_file(&e.key).unwrap();
    let err = e.store().get("a").unwrap_err();
    assert!(matches!(err, SecretError::KeyMissing { .. }), "{err}");
    assert!(err.to_string().contains(&e.key.display().to_string()));
    // No new key beside secrets sealed with the lost one...
    let err = e.store().set("b", VALUE).unwrap_err();
    assert!(
        matches!(err, SecretError::KeyLost { count: 1, .. }),
        "{err}"
    );
    assert!(!e.key.exists());
    // ...until they are removed.
    e.store().remove("a").unwrap();
    e.store().set("b", VALUE).unwrap();
    assert!(e.key.exists());
}

#[test]
fn a_damaged_key_or_file_is_named() {
    let e = env();
    e.store().set("a", VALUE).unwrap();
    fs::write(e.dir().join("a.secret"), "{not json").unwrap();
    assert!(matches!(
        e.store().get("a"),
        Err(SecretError::Damaged { .. })
    ));
    fs::write(&e.key, "abc\n").unwrap();
    e.store().set("z", VALUE).unwrap_err();
}

#[test]
fn size_limits() {
    let e = env();
    let s = e.store();
    assert!(matches!(s.set("a", b""), Err(SecretError::Empty { .. })));
    let max = vec![b'x'; MAX_VALUE];
    s.set("a", &max).unwrap();
    assert_eq!(s.get("a").unwrap().unwrap().len(), MAX_VALUE);
    let err = s.set("a", &vec![b'x'; MAX_VALUE + 1]).unwrap_err();
    assert!(
        matches!(err, SecretError::TooLarge { len, max, .. } if len == MAX_VALUE + 1 && max == MAX_VALUE),
        "{err}"
    );
}

#[test]
fn a_key_inside_the_home_is_refused() {
    let e = env();
    let err = Store::open_with_key_file(&e.home, &e.home.join("secrets.key")).unwrap_err();
    assert!(matches!(err, SecretError::KeyInsideHome { .. }), "{err}");
}
