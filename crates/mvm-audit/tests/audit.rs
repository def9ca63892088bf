use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ed25519_dalek::SigningKey;
use mvm_audit::{AuditLog, Decision, Event, ProblemKind, Report, read, verify};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn ev(i: usize) -> Event {
    match i % 4 {
        0 => Event::Invoke {
            entrypoint: format!("main{i}"),
            ok: true,
            duration_ms: i as u64,
        },
        1 => Event::Exec {
            argv: vec!["sh".into(), "-c".into(), format!("echo {i}")],
            exit_code: Some(0),
            duration_ms: 3,
        },
        2 => Event::Admission {
            decision: Decision::Refused,
            check: Some("egress".into()),
            detail: None,
            plan_sha256: None,
            ir_hash: "ab".into(),
        },
        _ => Event::Down {},
    }
}

fn fill(dir: &Path, n: usize) {
    let log = AuditLog::open(dir, key()).unwrap();
    for i in 0..n {
        log.append(Some("web"), &ev(i)).unwrap();
    }
}

fn check(dir: &Path) -> Report {
    verify(dir, &key().verifying_key()).unwrap()
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(dir: &Path, l: &[String]) {
    let mut s = l.join("\n");
    s.push('\n');
    std::fs::write(dir.join("log.jsonl"), s).unwrap();
}

fn only(r: &Report, kind: ProblemKind) -> &mvm_audit::Problem {
    let p: Vec<_> = r.problems.iter().filter(|p| p.kind == kind).collect();
    assert!(!p.is_empty(), "no {kind:?} in {:?}", r.problems);
    p[0]
}

#[test]
fn append_verify_read_ok() {
    let t = tempfile::tempdir().unwrap();
    let log = AuditLog::open(t.path(), key()).unwrap();
    let a = log.append(None, &Event::Down {}).unwrap();
    assert_eq!(a.seq, 1);
    fill(t.path(), 9);
    let r = check(t.path());
    assert!(r.ok() && r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.records, r.last_seq), (10, Some(10)));
    let recs = read(t.path()).unwrap();
    assert_eq!(recs.len(), 10);
    assert_eq!(recs[0].hash, a.hash);
    assert_eq!(recs[0].prev, "0".repeat(64));
    assert_eq!(recs[0].typed(), Some(Event::Down {}));
    assert_eq!(recs[1].instance.as_deref(), Some("web"));
    assert_eq!(recs[1].prev, recs[0].hash);
    assert!(
        recs[0].ts.ends_with('Z') && recs[0].ts.len() == 24,
        "{}",
        recs[0].ts
    );
}

#[test]
fn edited_middle_record() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 6);
    let mut l = lines(t.path());
    l[2] = l[2].replace("\"web\"", "\"evil\"");
    write_lines(t.path(), &l);
    let r = check(t.path());
    assert!(!r.ok());
    let p = only(&r, ProblemKind::BadLink);
    assert_eq!(p.line, 4);
    assert!(p.detail.contains("line 3 was edited"), "{}", p.detail);
}

#[test]
fn deleted_record() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 6);
    let mut l = lines(t.path());
    l.remove(2);
    write_lines(t.path(), &l);
    let r = check(t.path());
    let p = only(&r, ProblemKind::BadLink);
    assert_eq!(p.line, 3);
    assert!(
        p.detail.contains("record 3 missing (deleted)"),
        "{}",
        p.detail
    );
}

#[test]
fn swapped_records() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 6);
    let mut l = lines(t.path());
    l.swap(2, 3);
    write_lines(t.path(), &l);
    let r = check(t.path());
    assert!(!r.ok());
    let links: Vec<_> = r
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::BadLink)
        .collect();
    assert!(!links.is_empty());
    assert!(
        links
            .iter()
            .all(|p| p.detail.contains("out of order (swapped)")),
        "{links:?}"
    );
    assert_eq!(links[0].line, 3);
}

#[test]
fn truncated_tail() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 6);
    let l = lines(t.path());
    write_lines(t.path(), &l[..4]);
    let r = check(t.path());
    let p = only(&r, ProblemKind::HeadMismatch);
    assert!(
        p.detail
            .contains("log ends at seq 4 but the signed head is seq 6: truncated"),
        "{}",
        p.detail
    );
}

#[test]
fn edited_last_record() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 5);
    let mut l = lines(t.path());
    l[4] = l[4].replace("\"web\"", "\"wep\"");
    write_lines(t.path(), &l);
    let r = check(t.path());
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        only(&r, ProblemKind::HeadMismatch)
            .detail
            .contains("edited")
    );
}

#[test]
fn bad_head_signature() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    let p = t.path().join("head.json");
    let mut h: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let sig = h["sig"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    h["sig"] = format!("{flipped}{}", &sig[1..]).into();
    std::fs::write(&p, serde_json::to_vec(&h).unwrap()).unwrap();
    let r = check(t.path());
    only(&r, ProblemKind::BadHeadSignature);
    assert!(!r.ok());
    // And a different key doesn't verify either.
    let other = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
    let r = verify(t.path(), &other).unwrap();
    only(&r, ProblemKind::BadHeadSignature);
}

#[test]
fn torn_line_reported_then_repaired() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    let path = t.path().join("log.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let partial = b"{\"seq\":4,\"ts\":\"2026-";
    bytes.extend_from_slice(partial);
    std::fs::write(&path, &bytes).unwrap();
    let r = check(t.path());
    assert_eq!(only(&r, ProblemKind::Torn).line, 4);
    assert!(r.ok(), "{:?}", r.problems);

    let log = AuditLog::open(t.path(), key()).unwrap();
    let a = log
        .append(None, &Event::Crash { detail: "x".into() })
        .unwrap();
    assert_eq!(a.seq, 5);
    let r = check(t.path());
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let recs = read(t.path()).unwrap();
    assert_eq!(recs.len(), 5);
    match recs[3].typed() {
        Some(Event::Repair { dropped_bytes, .. }) => {
            assert_eq!(dropped_bytes, partial.len() as u64)
        }
        other => panic!("expected repair, got {other:?}"),
    }
}

#[test]
fn writer_recovers_without_head_fast_path() {
    // Head lost (e.g. crash before it was written): the writer reads the tail instead.
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    std::fs::remove_file(t.path().join("head.json")).unwrap();
    fill(t.path(), 1);
    let r = check(t.path());
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.last_seq, Some(4));
}

const CHILD_ENV: &str = "MVM_AUDIT_TEST_CHILD_DIR";

/// Not a real test on its own: the concurrency test re-execs this binary to run it.
#[test]
fn child_writer() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        fill(Path::new(&dir), 50);
    }
}

#[test]
fn concurrent_threads_and_processes() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_writer", "--test-threads=1"])
                .env(CHILD_ENV, &dir)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || fill(&dir, 50))
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let r = check(&dir);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.records, 600);
    let seqs: Vec<u64> = read(&dir).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=600).collect::<Vec<_>>());
}

#[test]
fn owner_only_even_with_umask_zero() {
    // SAFETY: umask is process-wide; every other test also expects 0600/0700, so no harm.
    unsafe { libc::umask(0) };
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("audit");
    fill(&dir, 2);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in ["log.jsonl", "head.json", "lock"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
}
