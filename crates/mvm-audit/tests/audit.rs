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
        1 => Event::exec(&["sh".into(), "-c".into(), format!("echo {i}")], Some(0), 3),
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

/// A crash cannot lose head.json (it is renamed into place after the first
/// record), so a log with records and no head was tampered with: the next
/// writer continues the chain but records the divergence first.
#[test]
fn a_lost_head_is_recorded_by_the_next_writer() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    std::fs::remove_file(t.path().join("head.json")).unwrap();
    fill(t.path(), 1);
    let r = check(t.path());
    assert_eq!(only(&r, ProblemKind::Diverged).line, 4);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.last_seq, Some(5));
    assert!(!r.ok());
}

/// Truncating the tail or editing the last record is caught by the signed
/// head; an append after it must not hide that.
#[test]
fn tampering_the_head_catches_stays_visible_after_more_appends() {
    for case in ["truncate", "edit last, same length", "edit last, longer"] {
        let t = tempfile::tempdir().unwrap();
        fill(t.path(), 5);
        let mut l = lines(t.path());
        match case {
            "truncate" => l.truncate(3),
            "edit last, same length" => l[4] = l[4].replace("\"web\"", "\"wep\""),
            _ => l[4] = l[4].replace("\"web\"", "\"webb\""),
        }
        write_lines(t.path(), &l);
        fill(t.path(), 2);
        let r = check(t.path());
        assert!(!r.ok(), "{case}");
        if case == "edit last, same length" {
            // The head still matches the file's length, so the writer
            // chains to the hash the head signed: the edited line's
            // successor names it.
            let p = only(&r, ProblemKind::BadLink);
            assert!(p.detail.contains("line 5 was edited"), "{}", p.detail);
        } else {
            let p = only(&r, ProblemKind::Diverged);
            assert_eq!(p.line, l.len() + 1, "{case}");
            assert!(p.detail.contains("head seq 5"), "{case}: {}", p.detail);
        }
    }
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

/// A writer stopped between appending a record and rewriting head.json:
/// simulated by putting back the head from before the append.
#[test]
fn head_lags_after_a_crash_then_the_next_append_signs_it() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    let head = t.path().join("head.json");
    let before = std::fs::read(&head).unwrap();
    fill(t.path(), 1);
    std::fs::write(&head, &before).unwrap();
    let r = check(t.path());
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = only(&r, ProblemKind::HeadLags);
    assert_eq!(p.line, 4);
    assert!(
        p.detail.contains("stopped before rewriting head.json"),
        "{}",
        p.detail
    );
    assert!(!r.ok(), "an unsigned record must not verify as ok");
    assert_eq!(r.last_seq, Some(4));

    // The next writer re-signs: both records are covered, nothing extra is written.
    fill(t.path(), 1);
    let r = check(t.path());
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.records, r.last_seq), (5, Some(5)));
}

#[test]
fn head_lags_for_the_first_record_when_head_was_never_written() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 1);
    std::fs::remove_file(t.path().join("head.json")).unwrap();
    let r = check(t.path());
    assert_eq!(only(&r, ProblemKind::HeadLags).line, 1);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
}

#[test]
fn two_unsigned_records_are_a_mismatch_not_a_lag() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    let head = t.path().join("head.json");
    let before = std::fs::read(&head).unwrap();
    fill(t.path(), 2);
    std::fs::write(&head, &before).unwrap();
    let r = check(t.path());
    assert!(r.problems.iter().all(|p| p.kind != ProblemKind::HeadLags));
    let p = only(&r, ProblemKind::HeadMismatch);
    assert!(p.detail.contains("unsigned"), "{}", p.detail);
}

#[test]
fn an_unlinked_extra_record_is_not_a_lag() {
    // One more record than the head, but its prev doesn't name the head's record.
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    let mut l = lines(t.path());
    let forged = l[2].replace("\"seq\":3", "\"seq\":4");
    l.push(forged);
    write_lines(t.path(), &l);
    let r = check(t.path());
    assert!(
        r.problems.iter().all(|p| p.kind != ProblemKind::HeadLags),
        "{:?}",
        r.problems
    );
    assert_eq!(only(&r, ProblemKind::BadLink).line, 4);
    only(&r, ProblemKind::HeadMismatch);
}

#[test]
fn head_lag_and_a_torn_line_together() {
    // Crash after the record but before the head, then a second crash mid-write.
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 2);
    let head = t.path().join("head.json");
    let before = std::fs::read(&head).unwrap();
    fill(t.path(), 1);
    std::fs::write(&head, &before).unwrap();
    let path = t.path().join("log.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":4,");
    std::fs::write(&path, &bytes).unwrap();
    let r = check(t.path());
    assert_eq!(only(&r, ProblemKind::HeadLags).line, 3);
    assert_eq!(only(&r, ProblemKind::Torn).line, 4);
    fill(t.path(), 1);
    let r = check(t.path());
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.last_seq, Some(5)); // 3, repair 4, then 5
}

#[test]
fn read_keeps_the_raw_line() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 2);
    let recs = read(t.path()).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.raw.clone()).collect::<Vec<_>>(),
        lines(t.path())
    );
    assert_eq!(mvm_audit::ProblemKind::HeadLags.code(), "head_lags");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A record forged by hand, correctly linked to the signed head, is what
/// a crash between record and head would leave, except that no signed
/// pending head announced it: verify refuses it, and the next writer
/// records the divergence instead of adopting it.
#[test]
fn a_hand_added_linked_record_is_never_adopted() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    let mut l = lines(t.path());
    let forged = format!(
        "{{\"seq\":4,\"ts\":\"2026-12-03T00:00:00.000Z\",\"prev\":\"{}\",\"instance\":\"web\",\"event\":\"admission\",\"decision\":\"admitted\",\"check\":null,\"detail\":null,\"plan_sha256\":null,\"ir_hash\":\"ab\"}}",
        sha256_hex(l[2].as_bytes())
    );
    l.push(forged);
    write_lines(t.path(), &l);
    let r = check(t.path());
    assert!(!r.ok(), "{:?}", r.problems);
    assert!(
        !r.problems.iter().any(|p| p.kind == ProblemKind::HeadLags),
        "a forged record is not a crash: {:?}",
        r.problems
    );
    fill(t.path(), 1);
    let r = check(t.path());
    assert!(!r.ok());
    assert_eq!(only(&r, ProblemKind::Diverged).line, 5);
}

/// A writer killed after staging its signed pending head but before the
/// record (or after the record but before the head) leaves nothing to
/// report once the next writer has run.
#[test]
fn a_crash_around_the_pending_head_leaves_a_clean_trail() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    // Crash after the record, before head.json: head.json is the old one.
    let head = std::fs::read(t.path().join("head.json")).unwrap();
    fill(t.path(), 1);
    std::fs::write(t.path().join("head.json"), &head).unwrap();
    let r = check(t.path());
    assert_eq!(only(&r, ProblemKind::HeadLags).line, 4);
    fill(t.path(), 1);
    let r = check(t.path());
    assert!(r.ok() && r.problems.is_empty(), "{:?}", r.problems);
    assert!(
        t.path().join("pending.json").is_file(),
        "the writer stages a pending head"
    );
    // Crash after pending.json, before the record: the log and head are
    // as before, pending describes a record never written.
    let t2 = tempfile::tempdir().unwrap();
    fill(t2.path(), 2);
    let before_head = std::fs::read(t2.path().join("head.json")).unwrap();
    let before_log = std::fs::read(t2.path().join("log.jsonl")).unwrap();
    fill(t2.path(), 1);
    std::fs::write(t2.path().join("head.json"), &before_head).unwrap();
    std::fs::write(t2.path().join("log.jsonl"), &before_log).unwrap();
    let r = check(t2.path());
    assert!(r.ok() && r.problems.is_empty(), "{:?}", r.problems);
    fill(t2.path(), 1);
    let r = check(t2.path());
    assert!(r.ok() && r.problems.is_empty(), "{:?}", r.problems);
}

/// Removing the log and its head together leaves the genesis marker,
/// which says a trail existed.
#[test]
fn deleting_log_and_head_together_is_reported_missing() {
    let t = tempfile::tempdir().unwrap();
    fill(t.path(), 3);
    std::fs::remove_file(t.path().join("log.jsonl")).unwrap();
    std::fs::remove_file(t.path().join("head.json")).unwrap();
    let r = check(t.path());
    assert!(!r.ok());
    only(&r, ProblemKind::Missing);
}

/// An audit directory copied from elsewhere is untrusted: a log that is a
/// FIFO does not hang verify, and one that is a symlink is not followed.
#[test]
fn hostile_files_in_a_copied_trail_are_refused_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("log.jsonl");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo touches no memory of ours.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = t.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(verify(&dir, &key().verifying_key()).is_err());
    });
    let refused = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("verify must not hang on a FIFO");
    assert!(refused);

    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("secret");
    std::fs::write(&secret, "{\"seq\":1}\n").unwrap();
    std::os::unix::fs::symlink(&secret, t.path().join("log.jsonl")).unwrap();
    assert!(verify(t.path(), &key().verifying_key()).is_err());
    assert!(read(t.path()).is_err());
}

/// Records are stored as printable ASCII whatever they hold, so the
/// stored line can be printed and copied byte for byte.
#[test]
fn records_are_stored_as_ascii_and_still_verify() {
    let t = tempfile::tempdir().unwrap();
    let log = AuditLog::open(t.path(), key()).unwrap();
    let nasty = "a\u{202e}b\u{7f}c😀";
    log.append(
        Some("web"),
        &Event::Crash {
            detail: nasty.into(),
        },
    )
    .unwrap();
    let raw = std::fs::read(t.path().join("log.jsonl")).unwrap();
    assert!(raw.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\n'));
    let r = check(t.path());
    assert!(r.ok() && r.problems.is_empty(), "{:?}", r.problems);
    match read(t.path()).unwrap()[0].typed() {
        Some(Event::Crash { detail }) => assert_eq!(detail, nasty),
        other => panic!("{other:?}"),
    }
}
