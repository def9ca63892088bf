//! `mvmctl __egress-proxy` as QEMU runs it: the real binary, one process
//! per connection, with one end of a Unix socketpair as stdin, stdout and
//! stderr.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn gate(args: &[&str]) -> (UnixStream, Child) {
    let (client, server) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let fd: OwnedFd = server.into();
    let child = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
        .arg("__egress-proxy")
        .args(args)
        .stdin(Stdio::from(fd.try_clone().unwrap()))
        .stdout(Stdio::from(fd.try_clone().unwrap()))
        .stderr(Stdio::from(fd))
        .spawn()
        .unwrap();
    (client, child)
}

fn ask(client: &mut UnixStream, request: &[u8]) -> String {
    // A gate that refuses at once (its cap reached) may answer and close
    // before the request is all written: what it said is still there.
    if let Err(e) = client.write_all(request) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut b).unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn finish(mut client: UnixStream, mut child: Child) -> (String, i32) {
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    let status = child.wait().unwrap();
    (
        String::from_utf8_lossy(&rest).into_owned(),
        status.code().unwrap_or(-1),
    )
}

fn log_text(log: &Path) -> String {
    String::from_utf8(std::fs::read(log).unwrap()).unwrap()
}

/// The attack end to end: a grant to the host's loopback (the
/// Docker API port here) is refused by the gate process, the listener
/// behind it never sees a connection, and a request full of terminal
/// escapes reaches egress.log escaped.
#[test]
fn the_gate_process_refuses_granted_loopback_and_logs_guest_text_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("egress.log");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let args = ["--grant", &target, "--log", log.to_str().unwrap()];

    let (mut client, child) = gate(&args);
    let head = ask(
        &mut client,
        format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let (body, code) = finish(client, child);
    assert!(body.contains("--allow-private-egress"), "{body}");
    assert_eq!(code, 1);
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the gate connected to loopback"
    );

    let (mut client, child) = gate(&args);
    let head = ask(
        &mut client,
        b"GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    finish(client, child);

    let text = log_text(&log);
    assert!(
        text.contains(&format!(
            "egress: refused: {target} is a loopback destination"
        )),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("\\x1b[2J"), "{text}");
    assert_eq!(text.lines().count(), 2, "one line per connection: {text}");
}

/// The cap is per microVM across processes: with two connections open
/// through two gate processes, a third process refuses at once; when one
/// closes, the next is served.
#[test]
fn the_connection_cap_holds_across_gate_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let slots = tmp.path().join("slots");
    // Upstream: holds each connection until the client's side closes.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", server.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for s in server.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s, &mut std::io::sink());
            });
        }
    });
    let args = [
        "--grant",
        &target,
        "--allow-private",
        &target,
        "--slots",
        slots.to_str().unwrap(),
        "--max-connections",
        "2",
    ];
    let connect = format!("CONNECT {target} HTTP/1.1\r\n\r\n");
    let mut open = Vec::new();
    for _ in 0..2 {
        let (mut client, child) = gate(&args);
        let head = ask(&mut client, connect.as_bytes());
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        open.push((client, child));
    }
    let (mut client, child) = gate(&args);
    let head = ask(&mut client, connect.as_bytes());
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    let (body, code) = finish(client, child);
    assert!(body.contains("2 connections are already open"), "{body}");
    assert_eq!(code, 1);

    // Closing one connection ends its process and frees its slot.
    let (first, mut first_child) = open.remove(0);
    drop(first);
    first_child.wait().unwrap();
    let (mut client, child) = gate(&args);
    let head = ask(&mut client, connect.as_bytes());
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    open.push((client, child));
    for (client, mut child) in open {
        drop(client);
        child.wait().unwrap();
    }
}

/// A guest that connects without end cannot grow egress.log past its cap:
/// with the log already over 16 MiB, a refused connection adds nothing.
#[test]
fn egress_log_stops_growing_at_its_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("egress.log");
    std::fs::write(&log, b"").unwrap();
    let full = (16 << 20) + 1;
    std::fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(full)
        .unwrap();
    let args = ["--grant", "127.0.0.1:9", "--log", log.to_str().unwrap()];
    let (mut client, child) = gate(&args);
    let head = ask(&mut client, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    finish(client, child);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), full);

    // Below the cap the same connection is logged.
    std::fs::write(&log, b"").unwrap();
    let (mut client, child) = gate(&args);
    ask(&mut client, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n");
    finish(client, child);
    assert!(std::fs::metadata(&log).unwrap().len() > 0);
}

/// A refusal by a per-instance limit is in the egress log but not the
/// audit trail, one record each: a guest in a connect loop must not flood
/// the host-wide trail. Other refusals are audited.
#[test]
fn limit_refusals_are_logged_but_not_audited_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let log = dir.path().join("egress.jsonl");
    let slots = dir.path().join("slots");
    let args = [
        "--to",
        "x.test:443",
        "--grant",
        "x.test:443",
        "--pin",
        "x.test=127.0.0.1",
        "--json-log",
        log.to_str().unwrap(),
        "--slots",
        slots.to_str().unwrap(),
        "--max-rate",
        "1",
        "--audit-home",
        home.to_str().unwrap(),
        "--instance",
        "t",
    ];
    for _ in 0..2 {
        let (client, child) = gate(&args);
        let (_, code) = finish(client, child);
        assert_eq!(code, 1, "both are refused");
    }
    let lines: Vec<serde_json::Value> = log_text(&log)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0]["reason"].as_str().unwrap().contains("loopback"));
    assert!(lines[1]["reason"].as_str().unwrap().contains("--max-rate"));
    let trail = log_text(&home.join("audit/log.jsonl"));
    let egress: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("\"event\":\"egress\""))
        .collect();
    assert_eq!(
        egress.len(),
        1,
        "only the loopback refusal is audited: {trail}"
    );
}
