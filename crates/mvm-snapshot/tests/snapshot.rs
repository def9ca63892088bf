//! End-to-end tests of sealing, publishing and refusing snapshots.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use mvm_snapshot::{SealKey, Snapshot, SnapshotError, Staging, clean_staging, list, remove};
use serde_json::json;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn key_in(d: &Path) -> SealKey {
    SealKey::load_or_create(&d.join("keys/seal.key")).unwrap()
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn bindings() -> BTreeMap<String, String> {
    [("image", "sha256:aaaa"), ("qemu", "9.2.0"), ("vcpus", "2")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A 1 GiB sparse file with data at a few offsets (one of them an explicit zero run).
fn sparse_scratch(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let f = File::create(path).unwrap();
    f.set_len(GIB).unwrap();
    let pieces = vec![
        (0, random_bytes(8192, 1)),
        (100 * MIB + 17, random_bytes(300_000, 2)),
        (512 * MIB, vec![0u8; 1 << 20]),
        (GIB - 10, b"last bytes".to_vec()),
    ];
    for (off, data) in &pieces {
        f.write_all_at(data, *off).unwrap();
    }
    pieces
}

struct Made {
    snap: Snapshot,
    state: Vec<u8>,
    scratch_src: PathBuf,
}

fn make(root: &Path, name: &str, key: &SealKey) -> Made {
    let parent = root.join("snaps");
    let mut st = Staging::new(&parent, name).unwrap();
    let state = random_bytes(3 * MIB as usize + 5, 42);
    fs::write(st.file_path("vm.state"), &state).unwrap();
    let e = st.add("vm.state").unwrap();
    assert_eq!(e.size, state.len() as u64);
    let scratch_src = root.join(format!("{name}-scratch-src.img"));
    sparse_scratch(&scratch_src);
    let e = st.copy_in(&scratch_src, "scratch.img").unwrap();
    assert_eq!(e.size, GIB);
    let snap = st
        .commit(
            key,
            "paused",
            bindings(),
            json!({"instance": name, "mem_mib": 512}),
        )
        .unwrap();
    Made {
        snap,
        state,
        scratch_src,
    }
}

fn same_content(a: &Path, b: &Path) -> bool {
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let len = fa.metadata().unwrap().len();
    if len != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 4 << 20], vec![0u8; 4 << 20]);
    let mut off = 0;
    while off < len {
        let n = ((len - off) as usize).min(ba.len());
        fa.read_exact_at(&mut ba[..n], off).unwrap();
        fb.read_exact_at(&mut bb[..n], off).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
        off += n as u64;
    }
    true
}

fn flip_byte(path: &Path, off: u64) {
    let f = File::options().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, off).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], off).unwrap();
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Re-seals `manifest.json` with the key file's bytes, as a legitimate writer would.
fn reseal(dir: &Path, key_file: &Path, manifest: &[u8]) {
    use hmac::{Hmac, Mac};
    let k = fs::read(key_file).unwrap();
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(&k).unwrap();
    m.update(manifest);
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(dir.join("manifest.json"), manifest).unwrap();
    fs::write(dir.join("seal"), hex).unwrap();
}

#[test]
fn round_trip() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "snap1", &key);
    let dir = t.path().join("snaps/snap1");
    assert_eq!(m.snap.dir(), dir);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&t.path().join("snaps")), 0o700);

    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "scratch.img", "seal", "vm.state"]);
    for n in &names {
        assert_eq!(mode(&dir.join(n)), 0o600, "{n}");
    }
    // No staging leftovers beside it.
    let leftovers: Vec<_> = fs::read_dir(t.path().join("snaps"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["snap1"]);

    let s = Snapshot::open(&dir, &key).unwrap();
    assert_eq!(s.manifest(), m.snap.manifest());
    let man = s.manifest();
    assert_eq!(man.format, mvm_snapshot::FORMAT);
    assert_eq!(man.kind, "paused");
    assert_eq!(man.bindings, bindings());
    assert_eq!(man.payload["instance"], "snap1");
    assert_eq!(man.files["scratch.img"].size, GIB);
    assert!(man.files["vm.state"].digest.starts_with("blake3:"));

    assert_eq!(s.verify("vm.state").unwrap(), dir.join("vm.state"));
    assert_eq!(fs::read(dir.join("vm.state")).unwrap(), m.state);
    s.verify("scratch.img").unwrap();
    // The staged copy is sparse too, explicit zeros included.
    assert!(fs::metadata(dir.join("scratch.img")).unwrap().blocks() * 512 < 4 * MIB);
    assert!(same_content(&dir.join("scratch.img"), &m.scratch_src));

    let out = t.path().join("restored.img");
    s.copy_out("scratch.img", &out).unwrap();
    assert!(same_content(&out, &m.scratch_src));
    let md = fs::metadata(&out).unwrap();
    assert_eq!(md.len(), GIB);
    assert!(
        md.blocks() * 512 < 4 * MIB,
        "copy allocates {} bytes",
        md.blocks() * 512
    );
    assert_eq!(mode(&out), 0o600);
    // create_new: never overwrites.
    assert!(matches!(
        s.copy_out("scratch.img", &out),
        Err(SnapshotError::Exists(_))
    ));

    let usage = s.disk_usage();
    assert!(usage >= m.state.len() as u64 && usage < 16 * MIB, "{usage}");

    let l = list(&t.path().join("snaps"), &key).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].0, "snap1");
    assert!(l[0].1.is_ok());
    assert!(matches!(
        s.verify("nope"),
        Err(SnapshotError::NotListed { .. })
    ));
}

#[test]
fn manifest_is_pretty_deterministic_json() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let mut st = Staging::new(&t.path().join("s"), "a").unwrap();
    fs::write(st.file_path("vm.state"), b"abc").unwrap();
    st.add("vm.state").unwrap();
    let s = st
        .commit(&key, "tagged", bindings(), json!({"z": 1, "a": 2}))
        .unwrap();
    let text = fs::read_to_string(s.dir().join("manifest.json")).unwrap();
    let order: Vec<_> = [
        "\"format\"",
        "\"kind\"",
        "\"created_unix_ms\"",
        "\"bindings\"",
        "\"files\"",
        "\"payload\"",
    ]
    .iter()
    .map(|k| text.find(k).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains("\n  \"kind\": \"tagged\""), "{text}");
    assert!(text.find("\"image\"").unwrap() < text.find("\"qemu\"").unwrap());
}

#[test]
fn tampered_state_fails_verify() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    flip_byte(&m.snap.dir().join("vm.state"), 1_000_001);
    // Same size: open still succeeds, the content check catches it.
    let s = Snapshot::open(m.snap.dir(), &key).unwrap();
    let e = s.verify("vm.state").unwrap_err();
    assert!(matches!(e, SnapshotError::Tampered { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("vm.state") && msg.contains("tampered") && msg.contains("remove the snapshot"),
        "{msg}"
    );
    s.verify("scratch.img").unwrap();
}

#[test]
fn tampered_scratch_fails_copy_out_and_removes_dest() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let img = m.snap.dir().join("scratch.img");
    let out = t.path().join("out.img");

    flip_byte(&img, 100 * MIB + 5000);
    let e = m.snap.copy_out("scratch.img", &out).unwrap_err();
    assert!(matches!(e, SnapshotError::Tampered { .. }), "{e}");
    assert!(!out.exists());
    flip_byte(&img, 100 * MIB + 5000);
    m.snap.copy_out("scratch.img", &out).unwrap();
    fs::remove_file(&out).unwrap();

    // Writing into a hole is a change too.
    File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(b"x", 700 * MIB)
        .unwrap();
    assert!(matches!(
        m.snap.copy_out("scratch.img", &out),
        Err(SnapshotError::Tampered { .. })
    ));
    assert!(!out.exists());
    assert!(matches!(
        m.snap.verify("scratch.img"),
        Err(SnapshotError::Tampered { .. })
    ));
}

#[test]
fn truncated_or_extended_file_fails_open() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let st = m.snap.dir().join("vm.state");
    let f = File::options().write(true).open(&st).unwrap();
    f.set_len(m.state.len() as u64 - 100).unwrap();
    match Snapshot::open(m.snap.dir(), &key).unwrap_err() {
        SnapshotError::Truncated {
            path,
            expected,
            found,
        } => {
            assert_eq!(path, st);
            assert_eq!(expected, m.state.len() as u64);
            assert_eq!(found, expected - 100);
        }
        e => panic!("{e}"),
    }
    // An already opened snapshot re-checks the size when the file is used.
    assert!(matches!(
        m.snap.verify("vm.state"),
        Err(SnapshotError::Truncated { .. })
    ));
    f.set_len(m.state.len() as u64 + 1).unwrap();
    assert!(matches!(
        Snapshot::open(m.snap.dir(), &key),
        Err(SnapshotError::Truncated { .. })
    ));
}

#[test]
fn edited_manifest_or_wrong_key_fails_seal() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let dir = m.snap.dir().to_path_buf();
    let mp = dir.join("manifest.json");
    let orig = fs::read_to_string(&mp).unwrap();

    let other = SealKey::load_or_create(&t.path().join("other/key")).unwrap();
    assert_ne!(other, key);
    let e = Snapshot::open(&dir, &other).unwrap_err();
    assert!(matches!(e, SnapshotError::Seal { .. }), "{e}");
    assert!(e.to_string().contains(&dir.display().to_string()), "{e}");

    let edited = orig.replace("9.2.0", "9.2.1");
    assert_ne!(edited, orig);
    fs::write(&mp, &edited).unwrap();
    assert!(matches!(
        Snapshot::open(&dir, &key),
        Err(SnapshotError::Seal { .. })
    ));
    // Whitespace matters too: the seal covers the exact bytes.
    fs::write(&mp, format!("{orig} ")).unwrap();
    assert!(matches!(
        Snapshot::open(&dir, &key),
        Err(SnapshotError::Seal { .. })
    ));
    fs::write(&mp, &orig).unwrap();
    Snapshot::open(&dir, &key).unwrap();

    // Garbage / oversized seal.
    fs::write(dir.join("seal"), "00").unwrap();
    assert!(matches!(
        Snapshot::open(&dir, &key),
        Err(SnapshotError::Seal { .. })
    ));
    fs::remove_file(dir.join("seal")).unwrap();
    let e = Snapshot::open(&dir, &key).unwrap_err();
    assert!(matches!(e, SnapshotError::Seal { .. }), "{e}");
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn oversized_manifest_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    fs::write(
        m.snap.dir().join("manifest.json"),
        vec![b' '; (1 << 20) + 1],
    )
    .unwrap();
    let e = Snapshot::open(m.snap.dir(), &key).unwrap_err();
    assert!(matches!(e, SnapshotError::Manifest { .. }), "{e}");

    // And commit refuses to write one.
    let mut st = Staging::new(&t.path().join("snaps"), "big").unwrap();
    fs::write(st.file_path("vm.state"), b"x").unwrap();
    st.add("vm.state").unwrap();
    let staging = st.path().to_path_buf();
    let e = st
        .commit(&key, "k", BTreeMap::new(), json!("x".repeat(2 << 20)))
        .unwrap_err();
    assert!(matches!(e, SnapshotError::Manifest { .. }), "{e}");
    assert!(!staging.exists() && !t.path().join("snaps/big").exists());
}

#[test]
fn sealed_but_invalid_manifests_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let dir = m.snap.dir().to_path_buf();
    let kf = t.path().join("keys/seal.key");
    let orig = fs::read_to_string(dir.join("manifest.json")).unwrap();

    // Our reseal helper is right: the unchanged manifest opens.
    reseal(&dir, &kf, orig.as_bytes());
    Snapshot::open(&dir, &key).unwrap();

    reseal(
        &dir,
        &kf,
        orig.replace("\"format\": 1", "\"format\": 2").as_bytes(),
    );
    let e = Snapshot::open(&dir, &key).unwrap_err();
    assert!(
        matches!(&e, SnapshotError::Manifest { reason, .. } if reason.contains("format 2")),
        "{e}"
    );

    reseal(
        &dir,
        &kf,
        orig.replace("\"vm.state\"", "\"../vm.state\"").as_bytes(),
    );
    assert!(matches!(
        Snapshot::open(&dir, &key),
        Err(SnapshotError::Manifest { .. })
    ));

    reseal(&dir, &kf, b"not json");
    assert!(matches!(
        Snapshot::open(&dir, &key),
        Err(SnapshotError::Manifest { .. })
    ));
}

#[test]
fn symlinked_file_or_dir_is_not_regular() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let st = m.snap.dir().join("vm.state");
    let copy = t.path().join("identical.state");
    fs::copy(&st, &copy).unwrap();
    fs::remove_file(&st).unwrap();
    std::os::unix::fs::symlink(&copy, &st).unwrap();
    let e = Snapshot::open(m.snap.dir(), &key).unwrap_err();
    assert!(
        matches!(&e, SnapshotError::NotRegular { path } if *path == st),
        "{e}"
    );
    // Already opened: using the file does not follow the link either.
    assert!(matches!(
        m.snap.verify("vm.state"),
        Err(SnapshotError::NotRegular { .. })
    ));
    assert!(matches!(
        m.snap.copy_out("vm.state", &t.path().join("o")),
        Err(SnapshotError::NotRegular { .. })
    ));

    // The snapshot directory itself reached through a symlink.
    fs::remove_file(&st).unwrap();
    fs::copy(&copy, &st).unwrap();
    Snapshot::open(m.snap.dir(), &key).unwrap();
    let link = t.path().join("snaps/linked");
    std::os::unix::fs::symlink(m.snap.dir(), &link).unwrap();
    assert!(matches!(
        Snapshot::open(&link, &key),
        Err(SnapshotError::NotRegular { .. })
    ));

    // A symlinked seal.
    let seal = m.snap.dir().join("seal");
    fs::rename(&seal, t.path().join("seal")).unwrap();
    std::os::unix::fs::symlink(t.path().join("seal"), &seal).unwrap();
    assert!(Snapshot::open(m.snap.dir(), &key).is_err());
}

#[test]
fn extra_or_missing_files_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let dir = m.snap.dir();
    fs::write(dir.join("extra"), b"").unwrap();
    let e = Snapshot::open(dir, &key).unwrap_err();
    assert!(
        matches!(&e, SnapshotError::UnexpectedFile { file, .. } if file == "extra"),
        "{e}"
    );
    fs::remove_file(dir.join("extra")).unwrap();
    fs::create_dir(dir.join(".hidden")).unwrap();
    assert!(matches!(
        Snapshot::open(dir, &key),
        Err(SnapshotError::UnexpectedFile { .. })
    ));
    fs::remove_dir(dir.join(".hidden")).unwrap();
    Snapshot::open(dir, &key).unwrap();

    fs::remove_file(dir.join("scratch.img")).unwrap();
    let e = Snapshot::open(dir, &key).unwrap_err();
    assert!(
        matches!(&e, SnapshotError::Missing { file, .. } if file == "scratch.img"),
        "{e}"
    );
    assert!(matches!(
        m.snap.verify("scratch.img"),
        Err(SnapshotError::Missing { .. })
    ));
}

#[test]
fn bindings_mismatch_names_key_and_values() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    m.snap.check_bindings(&bindings()).unwrap();
    m.snap.check_bindings(&BTreeMap::new()).unwrap();

    let mut here = bindings();
    here.insert("qemu".into(), "10.0.0".into());
    here.insert("vcpus".into(), "4".into());
    let e = m.snap.check_bindings(&here).unwrap_err();
    match &e {
        SnapshotError::Mismatch {
            key,
            snapshot,
            here,
            ..
        } => {
            assert_eq!(key, "qemu");
            assert_eq!(snapshot.as_deref(), Some("9.2.0"));
            assert_eq!(here, "10.0.0");
        }
        e => panic!("{e}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("qemu") && msg.contains("9.2.0") && msg.contains("10.0.0"),
        "{msg}"
    );

    let mut here = bindings();
    here.insert("kernel".into(), "sha256:bbbb".into());
    let e = m.snap.check_bindings(&here).unwrap_err();
    assert!(
        matches!(&e, SnapshotError::Mismatch { key, snapshot: None, .. } if key == "kernel"),
        "{e}"
    );
    assert!(
        e.to_string().contains("kernel") && e.to_string().contains("sha256:bbbb"),
        "{e}"
    );
}

#[test]
fn staging_is_never_accepted() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let parent = t.path().join("snaps");
    make(t.path(), "good", &key);

    let mut st = Staging::new(&parent, "wip").unwrap();
    let sp = st.path().to_path_buf();
    assert!(
        sp.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!(".staging-wip-{}-", std::process::id()))
    );
    assert_eq!(mode(&sp), 0o700);
    fs::write(st.file_path("vm.state"), b"state").unwrap();
    st.add("vm.state").unwrap();

    let l = list(&parent, &key).unwrap();
    assert_eq!(
        l.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["good"]
    );
    assert!(Snapshot::open(&sp, &key).is_err());
    // Our own (live) staging survives cleaning.
    assert_eq!(clean_staging(&parent).unwrap(), 0);
    assert!(sp.exists());

    drop(st);
    assert!(!sp.exists());
    assert!(!parent.join("wip").exists());
}

#[test]
fn clean_staging_removes_only_dead_pids() {
    let t = tempfile::tempdir().unwrap();
    let parent = t.path().join("snaps");
    fs::create_dir(&parent).unwrap();
    let dead = dead_pid();
    let stale = parent.join(format!(".staging-a-b-{dead}-0011223344556677"));
    let live = parent.join(format!(
        ".staging-c-{}-0011223344556677",
        std::process::id()
    ));
    let stale_rm = parent.join(format!(".removing-x-{dead}-aa"));
    for d in [&stale, &live, &stale_rm] {
        fs::create_dir(d).unwrap();
        fs::write(d.join("vm.state"), b"x").unwrap();
    }
    // Not ours to touch.
    fs::create_dir(parent.join(format!("published-{dead}-00"))).unwrap();
    fs::create_dir(parent.join(".other")).unwrap();

    assert_eq!(clean_staging(&parent).unwrap(), 2);
    assert!(!stale.exists() && !stale_rm.exists());
    assert!(live.exists());
    assert!(parent.join(format!("published-{dead}-00")).exists() && parent.join(".other").exists());
    assert_eq!(clean_staging(&parent).unwrap(), 0);
    assert_eq!(clean_staging(&t.path().join("missing")).unwrap(), 0);
}

/// A writer that dies mid-snapshot: its staging directory (here leaked with `forget`, then
/// given a dead pid as a crashed process would leave it) is invisible until cleaned.
#[test]
fn crash_before_commit_leaves_nothing_visible() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let parent = t.path().join("snaps");
    let mut st = Staging::new(&parent, "crashy").unwrap();
    fs::write(st.file_path("vm.state"), random_bytes(100_000, 3)).unwrap();
    st.add("vm.state").unwrap();
    let sp = st.path().to_path_buf();
    std::mem::forget(st);

    let check_invisible = |dir: &Path| {
        assert!(list(&parent, &key).unwrap().is_empty());
        assert!(Snapshot::open(dir, &key).is_err());
        assert!(!parent.join("crashy").exists());
    };
    check_invisible(&sp);
    assert_eq!(clean_staging(&parent).unwrap(), 0, "pid still alive");
    assert!(sp.exists());

    let name = sp.file_name().unwrap().to_str().unwrap();
    let dead_name = name.replace(
        &format!("-{}-", std::process::id()),
        &format!("-{}-", dead_pid()),
    );
    let dead = parent.join(dead_name);
    fs::rename(&sp, &dead).unwrap();
    check_invisible(&dead);
    assert_eq!(clean_staging(&parent).unwrap(), 1);
    assert!(!dead.exists());
    assert_eq!(fs::read_dir(&parent).unwrap().count(), 0);
}

#[test]
fn commit_refuses_existing_target() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let parent = t.path().join("snaps");
    let a = Staging::new(&parent, "x").unwrap();
    let b = Staging::new(&parent, "x").unwrap();
    let bp = b.path().to_path_buf();
    let first = a.commit(&key, "k", BTreeMap::new(), json!(null)).unwrap();
    let e = b
        .commit(&key, "k", BTreeMap::new(), json!({"second": true}))
        .unwrap_err();
    assert!(
        matches!(&e, SnapshotError::Exists(p) if *p == parent.join("x")),
        "{e}"
    );
    assert!(!bp.exists(), "failed commit leaves no staging dir");
    assert_eq!(
        Snapshot::open(first.dir(), &key)
            .unwrap()
            .manifest()
            .payload,
        json!(null)
    );

    assert!(matches!(
        Staging::new(&parent, "x"),
        Err(SnapshotError::Exists(_))
    ));
    // An empty directory in the way: plain rename(2) would replace it.
    let c = Staging::new(&parent, "y").unwrap();
    fs::create_dir(parent.join("y")).unwrap();
    assert!(matches!(
        c.commit(&key, "k", BTreeMap::new(), json!(null)),
        Err(SnapshotError::Exists(_))
    ));
    assert_eq!(fs::read_dir(parent.join("y")).unwrap().count(), 0);
}

#[test]
fn commit_refuses_unrecorded_or_changed_files() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let parent = t.path().join("snaps");
    let st = Staging::new(&parent, "x").unwrap();
    fs::write(st.file_path("vm.state"), b"never added").unwrap();
    let e = st
        .commit(&key, "k", BTreeMap::new(), json!(null))
        .unwrap_err();
    assert!(
        matches!(&e, SnapshotError::UnexpectedFile { file, .. } if file == "vm.state"),
        "{e}"
    );

    let mut st = Staging::new(&parent, "x").unwrap();
    fs::write(st.file_path("vm.state"), b"short").unwrap();
    st.add("vm.state").unwrap();
    fs::write(st.file_path("vm.state"), b"longer now").unwrap();
    assert!(matches!(
        st.commit(&key, "k", BTreeMap::new(), json!(null)),
        Err(SnapshotError::Truncated { .. })
    ));
    assert!(!parent.join("x").exists());

    let mut st = Staging::new(&parent, "x").unwrap();
    let outside = t.path().join("outside");
    fs::write(&outside, b"x").unwrap();
    std::os::unix::fs::symlink(&outside, st.file_path("vm.state")).unwrap();
    assert!(matches!(
        st.add("vm.state"),
        Err(SnapshotError::NotRegular { .. })
    ));
    fs::remove_file(st.file_path("vm.state")).unwrap();
    fs::create_dir(st.file_path("vm.state")).unwrap();
    assert!(matches!(
        st.add("vm.state"),
        Err(SnapshotError::NotRegular { .. })
    ));
}

#[test]
fn bad_names() {
    let t = tempfile::tempdir().unwrap();
    for n in ["../x", "a/b", ".x", "", ".", ".."] {
        assert!(
            matches!(Staging::new(t.path(), n), Err(SnapshotError::BadName(_))),
            "{n:?}"
        );
    }
    let mut st = Staging::new(t.path(), "ok-name_1.2").unwrap();
    for n in ["../x", "a/b", ".x", "", "manifest.json", "seal"] {
        assert!(matches!(st.add(n), Err(SnapshotError::BadName(_))), "{n:?}");
        assert!(
            matches!(
                st.copy_in(Path::new("/dev/null"), n),
                Err(SnapshotError::BadName(_))
            ),
            "{n:?}"
        );
    }
    assert!(matches!(
        remove(&t.path().join(".hidden")),
        Err(SnapshotError::BadName(_))
    ));
    // Nothing escaped: only the staging dir exists.
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
}

#[test]
fn remove_hides_then_deletes() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let dir = m.snap.dir().to_path_buf();
    remove(&dir).unwrap();
    assert!(!dir.exists());
    assert_eq!(fs::read_dir(t.path().join("snaps")).unwrap().count(), 0);
    assert!(matches!(remove(&dir), Err(SnapshotError::NotFound(_))));
    assert!(list(&t.path().join("snaps"), &key).unwrap().is_empty());
    // A hidden half-removed dir is skipped by list.
    fs::create_dir(t.path().join("snaps/.removing-s-1-aa")).unwrap();
    assert!(list(&t.path().join("snaps"), &key).unwrap().is_empty());
}

#[test]
fn list_reports_broken_snapshots_individually() {
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    make(t.path(), "a", &key);
    make(t.path(), "b", &key);
    fs::remove_file(t.path().join("snaps/a/seal")).unwrap();
    fs::write(t.path().join("snaps/stray-file"), b"").unwrap();
    let l = list(&t.path().join("snaps"), &key).unwrap();
    let names: Vec<_> = l.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "stray-file"]);
    assert!(matches!(l[0].1, Err(SnapshotError::Seal { .. })));
    assert!(l[1].1.is_ok());
    assert!(matches!(l[2].1, Err(SnapshotError::NotRegular { .. })));
    assert!(list(&t.path().join("nothing"), &key).unwrap().is_empty());
}

/// Guest memory is in a snapshot: one readable by others (a chmod after it
/// was made), or its directory, is refused, naming the file.
#[test]
fn a_snapshot_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let key = key_in(t.path());
    let m = make(t.path(), "s", &key);
    let dir = m.snap.dir().to_path_buf();
    assert!(Snapshot::open(&dir, &key).is_ok());
    for (path, mode) in [
        (dir.join("vm.state"), 0o644),
        (dir.join("seal"), 0o640),
        (dir.clone(), 0o755),
    ] {
        let was = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let e = Snapshot::open(&dir, &key).unwrap_err();
        assert!(
            matches!(&e, SnapshotError::NotPrivate { path: p, .. } if *p == path),
            "{e}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(was)).unwrap();
    }
    assert!(Snapshot::open(&dir, &key).is_ok());
}
