//! The gate over real sockets: the guest side is one end of a Unix
//! socketpair (as QEMU hands it over), upstream servers are real loopback
//! listeners, and each test performs the attack it is named for.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

mod support;
use support::echo_server;

use mvm_egress::{Gate, GateError, Grant, Limits, Slots, serve};

type Outcome = (Result<Grant, GateError>, Vec<String>);

fn grants(list: &[&str]) -> Vec<Grant> {
    list.iter().map(|g| Grant::parse(g).unwrap()).collect()
}

fn gate(granted: &[&str], private: &[&str]) -> Gate {
    Gate::new(grants(granted), grants(private))
}

/// A guest connection being served on another thread.
struct Run {
    client: UnixStream,
    done: mpsc::Receiver<Outcome>,
}

fn start(gate: &Arc<Gate>) -> Run {
    let (client, server) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (tx, done) = mpsc::channel();
    let gate = gate.clone();
    thread::spawn(move || {
        let mut notes = Vec::new();
        let r = serve(server, &gate, &mut |n| notes.push(n.to_string()));
        let _ = tx.send((r, notes));
    });
    Run { client, done }
}

impl Run {
    /// Everything the gate answered, once it is done.
    fn finish(mut self) -> (Result<Grant, GateError>, Vec<String>, String) {
        let mut out = Vec::new();
        let _ = self.client.read_to_end(&mut out);
        let (r, notes) = self
            .done
            .recv_timeout(Duration::from_secs(20))
            .expect("the gate finished the connection");
        (r, notes, String::from_utf8_lossy(&out).into_owned())
    }
}

fn exchange(gate: &Arc<Gate>, request: &[u8]) -> (Result<Grant, GateError>, Vec<String>, String) {
    let mut run = start(gate);
    run.client.write_all(request).unwrap();
    run.finish()
}

/// A loopback listener that must never be reached.
fn untouched_listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn assert_untouched(l: &TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the gate connected to a refused destination: {other:?}"),
    }
}

#[test]
fn ungranted_hosts_are_refused_with_the_grant_list() {
    let g = Arc::new(gate(&["pypi.org:443"], &[]));
    let (r, notes, out) = exchange(
        &g,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    assert!(
        matches!(r, Err(GateError::Denied(ref t)) if t == "example.com:443"),
        "{r:?}"
    );
    assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
    assert!(
        out.contains("example.com:443 is not granted to this microVM; granted: pypi.org:443"),
        "{out}"
    );
    assert_eq!(notes, ["refused: example.com:443 is not granted"]);
    let (r, _, _) = exchange(&g, b"CONNECT pypi.org:80 HTTP/1.1\r\n\r\n");
    assert!(
        matches!(r, Err(GateError::Denied(_))),
        "same host, other port: {r:?}"
    );
}

#[test]
fn plain_http_and_garbage_are_refused() {
    let g = Arc::new(gate(&["pypi.org:443"], &[]));
    let (r, _, out) = exchange(&g, b"GET http://pypi.org/ HTTP/1.1\r\n\r\n");
    assert!(matches!(r, Err(GateError::Denied(_))), "{r:?}");
    assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
    let (r, _, out) = exchange(&g, b"\x16\x03\x01 hello\r\n\r\n");
    assert!(matches!(r, Err(GateError::BadRequest(_))), "{r:?}");
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
}

/// The attack: a grant (from a lockfile or declaration) to the
/// host's loopback in any spelling. Granted or not, it is refused and
/// the listener behind it never sees a connection.
#[test]
fn loopback_is_refused_even_when_granted_in_any_spelling() {
    let (listener, port) = untouched_listener();
    for host in [
        "127.0.0.1",
        "2130706433",
        "127.1",
        "0x7f.1",
        "0177.0.0.1",
        "0",
        "localhost",
        "LOCALHOST",
        "[::ffff:127.0.0.1]",
    ] {
        let target = format!("{host}:{port}");
        let g = Arc::new(gate(&[&target], &[]));
        let (r, notes, out) = exchange(&g, format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(
            matches!(r, Err(GateError::Private { .. })),
            "{target}: {r:?}"
        );
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(out.contains("--allow-private-egress"), "{out}");
        assert!(notes[0].starts_with("refused: "), "{notes:?}");
    }
    assert_untouched(&listener);
}

#[test]
fn metadata_and_private_addresses_are_refused() {
    for target in [
        "169.254.169.254:80",
        "2852039166:80",
        "metadata.google.internal:80",
        "10.0.0.1:443",
        "[fd00:ec2::254]:80",
        "100.100.100.200:80",
    ] {
        let g = Arc::new(gate(&[target], &[]));
        let (r, _, _) = exchange(&g, format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(
            matches!(r, Err(GateError::Private { .. })),
            "{target}: {r:?}"
        );
    }
}

/// DNS rebinding: the name resolves to a public address once, then to
/// 127.0.0.1. The gate resolves once per connection, connects only to the
/// address it checked, and refuses the connection that resolves to
/// loopback; the loopback listener never sees a connection.
#[test]
fn a_name_that_rebinds_to_loopback_is_refused_on_that_connection() {
    let (listener, port) = untouched_listener();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mut g = gate(&[&format!("rebind.example:{port}")], &[]);
    g.limits.connect = Duration::from_millis(300);
    g.resolve = Box::new(move |_, port| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let ip = if n == 0 {
            [100, 1, 2, 3]
        } else {
            [127, 0, 0, 1]
        };
        Ok(vec![SocketAddr::from((ip, port))])
    });
    let g = Arc::new(g);
    let request = format!("CONNECT rebind.example:{port} HTTP/1.1\r\n\r\n");
    // First connection: public, so the gate tries exactly that address
    // (which is not reachable from here) and does not resolve again.
    let (r, notes, _) = exchange(&g, request.as_bytes());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "resolved once per connection"
    );
    match &r {
        Err(GateError::Connect { .. }) => {}
        Ok(_) => assert!(notes[0].contains("to 100.1.2.3:"), "{notes:?}"),
        other => panic!("{other:?}"),
    }
    assert_untouched(&listener);
    // Second connection: the name now resolves to loopback.
    let (r, notes, out) = exchange(&g, request.as_bytes());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(matches!(r, Err(GateError::Private { .. })), "{r:?}");
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    assert!(
        notes[0].contains("resolves to 127.0.0.1, a loopback destination"),
        "{notes:?}"
    );
    assert_untouched(&listener);
}

/// The operator's permission for one exact destination: the gate then
/// connects to the real loopback service and relays both ways, including
/// bytes the client pipelined after the head.
#[test]
fn an_operator_allowed_private_destination_connects() {
    let (port, echo) = echo_server();
    let target = format!("localhost:{port}");
    let g = Arc::new(gate(&[&target], &[&target]));
    let mut run = start(&g);
    run.client
        .write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\nhello after the head").as_bytes())
        .unwrap();
    run.client.shutdown(std::net::Shutdown::Write).unwrap();
    let (r, notes, out) = run.finish();
    echo.join().unwrap();
    assert_eq!(r.unwrap(), Grant::new("localhost", port));
    assert_eq!(
        out,
        "HTTP/1.1 200 Connection established\r\n\r\necho:hello after the head"
    );
    assert!(
        notes[0].contains("a private destination the operator allowed"),
        "{notes:?}"
    );
    // The permission is for that exact destination and is not a grant.
    let (other, _) = untouched_listener();
    let other_port = other.local_addr().unwrap().port();
    let g = Arc::new(gate(
        &[&target, &format!("localhost:{other_port}")],
        &[&target],
    ));
    let (r, _, _) = exchange(
        &g,
        format!("CONNECT localhost:{other_port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(matches!(r, Err(GateError::Private { .. })), "{r:?}");
    assert_untouched(&other);
    let g = Arc::new(gate(&[], &[&target]));
    let (r, _, _) = exchange(&g, format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(matches!(r, Err(GateError::Denied(_))), "{r:?}");
}

#[test]
fn an_allowed_destination_with_nothing_listening_is_a_bad_gateway() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let g = Arc::new(gate(&[&target], &[&target]));
    let (r, _, out) = exchange(&g, format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(matches!(r, Err(GateError::Connect { .. })), "{r:?}");
    assert!(out.starts_with("HTTP/1.1 502 "), "{out}");
}

/// A guest that opens connections and never finishes a request (or
/// trickles one byte at a time) is cut off at the header deadline.
#[test]
fn silent_and_trickling_clients_are_closed_at_the_header_deadline() {
    let mut g = gate(&["pypi.org:443"], &[]);
    g.limits.header = Duration::from_millis(400);
    let g = Arc::new(g);
    let t = Instant::now();
    let (r, _, out) = start(&g).finish();
    assert!(matches!(r, Err(GateError::HeaderTimeout(_))), "{r:?}");
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    let run = start(&g);
    let mut writer = run.client.try_clone().unwrap();
    let trickle = thread::spawn(move || {
        for b in b"CONNECT pypi.org:443 HTTP/1.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let t = Instant::now();
    let (r, _, _) = run.finish();
    assert!(matches!(r, Err(GateError::HeaderTimeout(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    trickle.join().unwrap();
}

/// A relay where nothing moves either way ends after the idle limit;
/// one that keeps moving bytes outlives it.
#[test]
fn idle_relays_are_closed_and_busy_ones_are_not() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    // Echoes each byte back, never closes on its own.
    let echo = thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut b = [0u8; 1];
        while let Ok(1) = s.read(&mut b) {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let target = format!("127.0.0.1:{port}");
    let mut g = gate(&[&target], &[&target]);
    g.limits.idle = Duration::from_millis(400);
    let g = Arc::new(g);
    let mut run = start(&g);
    run.client
        .write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes())
        .unwrap();
    let mut head = [0u8; 39];
    run.client.read_exact(&mut head).unwrap();
    assert_eq!(&head[..], b"HTTP/1.1 200 Connection established\r\n\r\n");
    // 10 bytes 150 ms apart: 1.5 s in all, well past the idle limit.
    for i in 0..10u8 {
        run.client.write_all(&[b'0' + i]).unwrap();
        let mut b = [0u8; 1];
        run.client.read_exact(&mut b).unwrap();
        assert_eq!(b[0], b'0' + i, "the busy relay was cut at byte {i}");
        thread::sleep(Duration::from_millis(150));
    }
    let t = Instant::now();
    let (r, notes, _) = run.finish();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(r.is_ok(), "{r:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("closed: ") && n.contains("idle")),
        "{notes:?}"
    );
    echo.join().unwrap();
}

/// One microVM opens more connections than the cap: the one past it is
/// refused at once, and a freed slot is reused.
#[test]
fn the_connection_cap_refuses_the_connection_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = gate(&["pypi.org:443"], &[]);
    g.slots = Some(Slots {
        dir: dir.path().join("slots"),
        max: 2,
    });
    let g = Arc::new(g);
    // Two silent connections hold both slots.
    let first = start(&g);
    let second = start(&g);
    thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let (r, _, out) = exchange(&g, b"CONNECT pypi.org:443 HTTP/1.1\r\n\r\n");
    assert!(matches!(r, Err(GateError::Busy(2))), "{r:?}");
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // Closing one frees its slot for the next connection.
    drop(first.client);
    let _ = first.done.recv_timeout(Duration::from_secs(10)).unwrap();
    let (r, _, out) = exchange(&g, b"CONNECT example.com:443 HTTP/1.1\r\n\r\n");
    assert!(matches!(r, Err(GateError::Denied(_))), "{r:?}");
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    drop(second);
}

/// Terminal escapes and line breaks in a guest's request never reach the
/// log (or the guest's answer) raw.
#[test]
fn log_lines_escape_control_characters_from_the_guest() {
    let g = Arc::new(gate(&["pypi.org:443"], &[]));
    for request in [
        &b"GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\n\r\n"[..],
        b"CONNECT \x1b[31mevil\x9b:443 HTTP/1.1\r\n\r\n",
        b"\x1b[1A\x1b[2Kegress: relaying everything\r\n\r\n",
        "CONNECT \u{202e}gro.ipyp:443 HTTP/1.1\r\n\r\n".as_bytes(),
    ] {
        let (r, notes, out) = exchange(&g, request);
        assert!(r.is_err());
        let body = out
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches('\n');
        for text in notes.iter().map(String::as_str).chain([body]) {
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "raw control character in {text:?}"
            );
        }
        assert!(
            notes.concat().contains("\\x1b") || notes.concat().contains("\\u{"),
            "{notes:?}"
        );
    }
}

#[test]
fn limits_default_to_the_documented_values() {
    let l = Limits::default();
    assert_eq!(
        (l.header, l.connect, l.idle),
        (
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(300)
        )
    );
}
