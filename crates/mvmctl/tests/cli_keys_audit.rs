//! `mvmctl key` and `mvmctl audit`, run as the real binary in a sandbox
//! with its own MVM_HOME. Audit records are written with mvm-audit and the
//! sandbox's host audit key, the way the supervisor writes them; then the
//! log is tampered with in the ways the chain and the signed head must catch.

#[path = "common/snap.rs"]
#[macro_use]
mod snap;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use mvm_audit::{AuditLog, Decision, Event};
use mvm_keys::{KeyRing, PublicKey};
use snap::{Outcome, Sandbox};

fn ring(s: &Sandbox) -> KeyRing {
    KeyRing::new(&s.home().join("keys")).unwrap()
}

fn audit_dir(s: &Sandbox) -> PathBuf {
    s.home().join("audit")
}

fn log_path(s: &Sandbox) -> PathBuf {
    audit_dir(s).join("log.jsonl")
}

/// A writer with the sandbox's host audit key (made on first use, as mvm does).
fn writer(s: &Sandbox) -> AuditLog {
    let signer = ring(s).host_audit_key().unwrap();
    AuditLog::open(&audit_dir(s), signer.signing_key().clone()).unwrap()
}

const IR: &str = "1f3a5c7e9b2d4f6a8c0e1f3a5c7e9b2d4f6a8c0e1f3a5c7e9b2d4f6a8c0e1f3a";

/// Six records over two instances and one host-wide record.
fn events() -> Vec<(Option<&'static str>, Event)> {
    vec![
        (
            Some("web"),
            Event::Admission {
                decision: Decision::Admitted,
                check: None,
                detail: None,
                plan_sha256: None,
                ir_hash: IR.into(),
            },
        ),
        (
            Some("web"),
            Event::Up {
                image_id: "img-0123".into(),
                ir_hash: IR.into(),
                plan_sha256: None,
                accel: "kvm".into(),
            },
        ),
        (
            Some("db"),
            Event::exec(&["sh".into(), "-c".into(), "echo hi".into()], Some(0), 7),
        ),
        (
            Some("web"),
            Event::Invoke {
                entrypoint: "greet".into(),
                ok: true,
                duration_ms: 41,
            },
        ),
        (
            None,
            Event::Crash {
                detail: "supervisor lost QEMU".into(),
            },
        ),
        (Some("db"), Event::Down {}),
    ]
}

fn fill(s: &Sandbox) {
    let log = writer(s);
    for (instance, ev) in events() {
        log.append(instance, &ev).unwrap();
    }
}

fn lines(s: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(log_path(s))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(s: &Sandbox, l: &[String]) {
    std::fs::write(log_path(s), format!("{}\n", l.join("\n"))).unwrap();
}

/// A sandbox whose timestamps read the same in snapshots.
/// `ok: N records, last seq N, head H`, H the first 16 hex of the head's hash.
fn assert_ok(out: &Outcome, n: u64, dir: &Path) {
    let (prefix, head) = out
        .stdout
        .trim_end()
        .rsplit_once(", head ")
        .unwrap_or_else(|| panic!("no head in {:?}", out.stdout));
    assert_eq!(prefix, format!("ok: {n} records, last seq {n}"));
    let signed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("head.json")).unwrap()).unwrap();
    assert_eq!(head.len(), 16);
    assert_eq!(head, &signed["hash"].as_str().unwrap()[..16]);
}

fn sandbox() -> Sandbox {
    let mut s = Sandbox::new();
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "[TS]");
    s
}

// ---- keys ---------------------------------------------------------------

/// Standard base64 with padding, to look for the private seed in output.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// No private key material in anything a key command printed.
fn assert_no_secret(outputs: &[&Outcome], key_file: &Path, seed: &[u8; 32]) {
    let pem = std::fs::read_to_string(key_file).unwrap();
    let body: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    assert!(!body.is_empty());
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64(seed);
    let b64 = b64.trim_end_matches('=');
    for o in outputs {
        for text in [&o.stdout, &o.stderr] {
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            for l in &body {
                assert!(!text.contains(l), "PEM body in output: {text}");
            }
            assert!(!text.contains(&hex), "seed (hex) in output: {text}");
            assert!(!text.contains(b64), "seed (base64) in output: {text}");
        }
    }
}

#[test]
fn key_generate_list_export_round_trip() {
    let s = sandbox();
    let generated = s.run(&["key", "generate", "alice"], None);
    assert_eq!(generated.code, Some(0), "{}", generated.stderr);
    // Stdout is exactly the public line; stderr says where the files are.
    assert_eq!(generated.stdout.lines().count(), 1, "{}", generated.stdout);
    let public = PublicKey::parse(&generated.stdout).unwrap();
    assert_eq!(public.comment.as_deref(), Some("alice"));
    let keys = s.home().join("keys");
    let key_file = keys.join("alice.key");
    assert!(
        generated
            .stderr
            .contains(&format!("private key: {}", key_file.display())),
        "{}",
        generated.stderr
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let exported = s.run(&["key", "export", "alice"], None);
    assert_eq!(exported.code, Some(0), "{}", exported.stderr);
    assert_eq!(exported.stdout, generated.stdout);
    assert_eq!(exported.stderr, "");
    assert_eq!(
        exported.stdout,
        std::fs::read_to_string(keys.join("alice.pub")).unwrap()
    );
    let parsed = PublicKey::parse(&exported.stdout).unwrap();
    assert_eq!(parsed, public);
    let id = public.key_id();
    assert_eq!(id, ring(&s).signer("alice").unwrap().public().key_id());

    s.run(&["key", "generate", "bob"], None);
    let listed = s.run(&["key", "list"], None);
    assert_eq!(listed.code, Some(0));
    let rows: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{}", listed.stdout);
    assert!(rows[0].starts_with("NAME"), "{}", rows[0]);
    assert!(rows[1].starts_with("alice "), "{}", rows[1]);
    assert!(rows[1].contains(&id), "{}", rows[1]);
    assert!(rows[1].ends_with(exported.stdout.trim_end()), "{}", rows[1]);
    assert!(rows[2].starts_with("bob "), "{}", rows[2]);

    let json = s.run(&["key", "list", "--json"], None);
    assert_eq!(json.code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["name"], "alice");
    assert_eq!(arr[0]["key_id"], id.as_str());
    assert_eq!(arr[0]["has_private_key"], true);
    assert_eq!(
        PublicKey::parse(arr[0]["public"].as_str().unwrap()).unwrap(),
        public
    );

    let again = s.run(&["key", "generate", "alice"], None);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(again.stderr.contains("hint:"), "{}", again.stderr);

    let seed = ring(&s).signer("alice").unwrap().signing_key().to_bytes();
    assert_no_secret(
        &[&generated, &exported, &listed, &json, &again],
        &key_file,
        &seed,
    );
}

#[test]
fn the_audit_key_is_listed_and_exported_but_never_printed() {
    let s = sandbox();
    fill(&s);
    let out = s.run(&["key", "list"], None);
    assert!(out.stdout.contains("mvm-audit "), "{}", out.stdout);
    let exported = s.run(&["key", "export", "mvm-audit"], None);
    assert_eq!(exported.code, Some(0));
    let public = PublicKey::parse(&exported.stdout).unwrap();
    let signer = ring(&s).host_audit_key().unwrap();
    assert_eq!(public.key, signer.public().key);
    assert_no_secret(
        &[&out, &exported],
        &s.home().join("keys/mvm-audit.key"),
        &signer.signing_key().to_bytes(),
    );
}

#[test]
fn reserved_and_bad_names_are_refused() {
    let s = sandbox();
    for name in ["mvm-audit", "mvm-mine"] {
        let out = s.run(&["key", "generate", name], None);
        assert_eq!(out.code, Some(1));
        assert!(out.stdout.is_empty());
        assert!(out.stderr.contains("is reserved"), "{}", out.stderr);
        assert!(!s.home().join(format!("keys/{name}.key")).exists());
    }
    snapshot!(
        "key_generate_reserved",
        s.transcript(&["key", "generate", "mvm-mine"])
    );
    snapshot!(
        "key_generate_bad_name",
        s.transcript(&["key", "generate", "Alice Smith"])
    );
    snapshot!(
        "key_export_missing",
        s.transcript(&["key", "export", "carol"])
    );
}

#[test]
fn list_warns_about_a_loose_private_key() {
    let s = sandbox();
    s.run(&["key", "generate", "alice"], None);
    let key_file = s.home().join("keys/alice.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = s.run(&["key", "list"], None);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("alice "), "{}", out.stdout);
    assert!(
        out.stderr
            .contains(&format!("warning: {} has mode 0644", key_file.display())),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("hint: chmod 600 {}", key_file.display())),
        "{}",
        out.stderr
    );
}

// ---- audit: showing -------------------------------------------------------

#[test]
fn audit_lists_filters_and_prints_json() {
    let s = sandbox();
    fill(&s);
    let out = s.run(&["audit"], None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(rows.len(), 6, "{}", out.stdout);
    assert!(rows[3].contains("web"), "{}", rows[3]);
    assert!(
        rows[3].contains("invoke") && rows[3].contains("entrypoint=greet ok 41ms"),
        "{}",
        rows[3]
    );
    // Summaries, not raw JSON.
    assert!(!out.stdout.contains('{'), "{}", out.stdout);
    snapshot!("audit_list", s.render(&["audit"], &out));

    let web = s.run(&["audit", "--instance", "web"], None);
    let seqs: Vec<&str> = web
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(seqs, ["1", "2", "4"], "{}", web.stdout);
    let none = s.run(&["audit", "--instance", "nope"], None);
    assert_eq!((none.code, none.stdout.as_str()), (Some(0), ""));

    let json = s.run(&["audit", "--json"], None);
    assert_eq!(json.code, Some(0));
    let stored = lines(&s);
    let printed: Vec<&str> = json.stdout.lines().collect();
    assert_eq!(printed, stored, "--json prints the lines as stored");
    for l in printed {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["seq"].is_u64() && v["event"].is_string(), "{l}");
    }
    let db = s.run(&["audit", "--json", "--instance", "db"], None);
    let events: Vec<String> = db
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events, ["\"exec\"", "\"down\""]);
}

#[test]
fn audit_with_no_log_yet() {
    let s = sandbox();
    snapshot!("audit_no_log", s.transcript(&["audit"]));
    snapshot!("audit_verify_no_log", s.transcript(&["audit", "verify"]));
}

#[test]
fn audit_escapes_what_it_shows() {
    let s = sandbox();
    writer(&s)
        .append(
            Some("web"),
            &Event::Crash {
                detail: "\u{1b}[2Jgone\u{202e}".into(),
            },
        )
        .unwrap();
    let out = s.run(&["audit"], None);
    assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{202e}'));
    assert!(
        out.stdout.contains("\\x1b[2Jgone\\u{202e}"),
        "{}",
        out.stdout
    );
    let json = s.run(&["audit", "--json"], None);
    assert!(!json.stdout.contains('\u{202e}'), "{}", json.stdout);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["detail"], "\u{1b}[2Jgone\u{202e}");
}

// ---- audit verify -----------------------------------------------------------

fn verify(s: &Sandbox) -> Outcome {
    s.run(&["audit", "verify"], None)
}

#[test]
fn verify_passes_on_an_untouched_log() {
    let s = sandbox();
    fill(&s);
    let out = verify(&s);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_ok(&out, 6, &audit_dir(&s));
    assert_eq!(out.stderr, "");
}

#[test]
fn verify_fails_when_the_whole_trail_is_removed() {
    let s = sandbox();
    fill(&s);
    // An attacker with the host's files removes log, head, pending and
    // genesis together; the audit key is still there and says a trail was kept.
    std::fs::remove_dir_all(audit_dir(&s)).unwrap();
    let out = verify(&s);
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    assert!(
        out.stderr.contains("error[missing]") && out.stderr.contains("hint:"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.starts_with("FAILED"), "{}", out.stdout);
    // Removing the genesis marker alone leaves a log that still checks out.
    let s = sandbox();
    fill(&s);
    std::fs::remove_file(log_path(&s)).unwrap();
    let out = verify(&s);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("genesis.json: error[missing]"),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_names_an_edited_record() {
    let s = sandbox();
    fill(&s);
    let mut l = lines(&s);
    assert!(l[2].contains("\"db\""));
    l[2] = l[2].replace("\"db\"", "\"dc\"");
    write_lines(&s, &l);
    let out = verify(&s);
    assert_eq!(out.code, Some(2));
    let log = log_path(&s);
    assert!(
        out.stderr.contains(&format!(
            "{}:4: error[bad_link]: line 3 was edited",
            log.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.starts_with("FAILED: 1 problem(s)"),
        "{}",
        out.stdout
    );
    snapshot!("audit_verify_edited", s.render(&["audit", "verify"], &out));
}

#[test]
fn verify_names_a_deleted_record() {
    let s = sandbox();
    fill(&s);
    let mut l = lines(&s);
    l.remove(2);
    write_lines(&s, &l);
    let out = verify(&s);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(&format!(
            "{}:3: error[bad_link]: record 3 missing (deleted)",
            log_path(&s).display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_names_swapped_records() {
    let s = sandbox();
    fill(&s);
    let mut l = lines(&s);
    l.swap(2, 3);
    write_lines(&s, &l);
    let out = verify(&s);
    assert_eq!(out.code, Some(2));
    let first = out.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("{}:3: error[bad_link]", log_path(&s).display()))
            && first.contains("out of order (swapped)"),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_catches_truncation_and_an_edited_last_record() {
    let s = sandbox();
    fill(&s);
    let l = lines(&s);
    write_lines(&s, &l[..4]);
    let out = verify(&s);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(&format!(
            "{}:4: error[head_mismatch]: log ends at seq 4 but the signed head is seq 6: truncated",
            log_path(&s).display()
        )),
        "{}",
        out.stderr
    );

    let s = sandbox();
    fill(&s);
    let mut l = lines(&s);
    l[5] = l[5].replace("\"db\"", "\"dc\"");
    write_lines(&s, &l);
    let out = verify(&s);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(":6: error[head_mismatch]") && out.stderr.contains("edited"),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_reports_a_lagging_head_then_the_next_append_fixes_it() {
    let s = sandbox();
    fill(&s);
    let head = audit_dir(&s).join("head.json");
    let before = std::fs::read(&head).unwrap();
    writer(&s).append(Some("web"), &Event::Down {}).unwrap();
    std::fs::write(&head, before).unwrap();
    let out = verify(&s);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(":7: error[head_lags]")
            && out.stderr.contains("stopped before rewriting head.json"),
        "{}",
        out.stderr
    );
    writer(&s).append(None, &Event::Down {}).unwrap();
    let out = verify(&s);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_ok(&out, 8, &audit_dir(&s));
}

#[test]
fn verify_accepts_a_torn_last_line_with_a_warning() {
    let s = sandbox();
    fill(&s);
    let mut bytes = std::fs::read(log_path(&s)).unwrap();
    bytes.extend_from_slice(b"{\"seq\":7,\"ts\":");
    std::fs::write(log_path(&s), bytes).unwrap();
    let out = verify(&s);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_ok(&out, 6, &audit_dir(&s));
    assert!(out.stderr.contains(":7: warning[torn]"), "{}", out.stderr);
    // The listing skips the partial line.
    assert_eq!(s.run(&["audit"], None).stdout.lines().count(), 6);
}

#[test]
fn verify_a_copied_log_with_the_exported_key() {
    let host = sandbox();
    fill(&host);
    let exported = host.run(&["key", "export", "mvm-audit"], None);
    assert_eq!(exported.code, Some(0));

    // Another machine: its own home (no audit key), the copy and the .pub.
    let other = sandbox();
    let copy = other.path().join("copied-audit");
    std::fs::create_dir(&copy).unwrap();
    for f in ["log.jsonl", "head.json"] {
        std::fs::copy(audit_dir(&host).join(f), copy.join(f)).unwrap();
    }
    other.write("host.pub", &exported.stdout);
    let dir = copy.to_str().unwrap();
    let ok = other.run(
        &["audit", "verify", "--dir", dir, "--key", "host.pub"],
        None,
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_ok(&ok, 6, &copy);

    // Without --key there is no audit key on this machine to check with.
    let no_key = other.run(&["audit", "verify", "--dir", dir], None);
    assert_eq!(no_key.code, Some(1));
    assert!(
        no_key.stderr.contains("no host audit key") && no_key.stderr.contains("--key FILE"),
        "{}",
        no_key.stderr
    );

    // The wrong key: the head's signature doesn't check out.
    other.run(&["key", "generate", "alice"], None);
    let alice = other.home().join("keys/alice.pub");
    let wrong = other.run(
        &[
            "audit",
            "verify",
            "--dir",
            dir,
            "--key",
            alice.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(wrong.code, Some(2));
    assert!(
        wrong
            .stderr
            .contains("head.json: error[bad_head_signature]"),
        "{}",
        wrong.stderr
    );

    // Not an audit directory, and not a key.
    let missing = other.run(
        &["audit", "verify", "--dir", "nowhere", "--key", "host.pub"],
        None,
    );
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("not a directory"),
        "{}",
        missing.stderr
    );
    other.write("junk.pub", "ssh-rsa AAAA me\n");
    let junk = other.run(
        &["audit", "verify", "--dir", dir, "--key", "junk.pub"],
        None,
    );
    assert_eq!(junk.code, Some(1));
    assert!(
        junk.stderr.contains("junk.pub: bad public key"),
        "{}",
        junk.stderr
    );
}

// ---- audit --follow -----------------------------------------------------------

#[test]
fn follow_prints_records_as_they_are_appended() {
    let s = sandbox();
    // Started before the log exists: it must wait for it.
    let mut child = s
        .command(&["audit", "--follow", "--instance", "web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait = Duration::from_secs(10);
    std::thread::sleep(Duration::from_millis(300));
    let log = writer(&s);
    log.append(Some("db"), &Event::Down {}).unwrap();
    log.append(
        Some("web"),
        &Event::Invoke {
            entrypoint: "greet".into(),
            ok: false,
            duration_ms: 5,
        },
    )
    .unwrap();
    let first = rx.recv_timeout(wait).expect("the record appears");
    assert!(
        first.trim_start().starts_with("2 ") && first.contains("entrypoint=greet FAILED 5ms"),
        "{first}"
    );
    log.append(Some("web"), &Event::Down {}).unwrap();
    let second = rx.recv_timeout(wait).expect("the next record appears");
    assert!(
        second.trim_start().starts_with("3 ") && second.contains("down"),
        "{second}"
    );
    // Still running: it follows until stopped.
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
}
