//! The egress gate: the only way out of a microVM that has a network.
//!
//! QEMU's user network runs with `restrict=on`, so the guest reaches
//! nothing but one forwarded address, whose connections QEMU hands to a
//! fresh `mvmctl __egress-proxy` process on its stdin/stdout. That process
//! reads one HTTP `CONNECT host:port` request, allows it only when
//! `host:port` is granted exactly, and then relays bytes. TLS stays end to
//! end between the guest and the server; the gate sees only the name.
//!
//! One process per connection keeps the gate stateless and lets a hung
//! peer hurt nobody else.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Where a guest finds the gate (QEMU's user network is 10.0.2.0/24; .2
/// is the gateway and .3 the resolver, so .100 is free).
pub const GATE_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 100);
pub const GATE_PORT: u16 = 3128;

/// The guest's address on that network.
pub const GUEST_CIDR: &str = "10.0.2.15/24";

/// The proxy URL guests are given (`HTTPS_PROXY`).
pub fn proxy_url() -> String {
    format!("http://{GATE_ADDR}:{GATE_PORT}")
}

/// Longest request head accepted; a CONNECT needs a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A concrete `host:port` grant. Hosts compare case-insensitively and
/// never as patterns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub host: String,
    pub port: u16,
}

impl Grant {
    pub fn new(host: &str, port: u16) -> Grant {
        Grant {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// `host:port`.
    pub fn parse(text: &str) -> Result<Grant, GateError> {
        let bad = || GateError::BadGrant(text.to_string());
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty()
            || port == 0
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(bad());
        }
        Ok(Grant::new(host, port))
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("`{0}` is not a grant (expected HOST:PORT, a concrete name without wildcards)")]
    BadGrant(String),
    #[error("malformed proxy request: {0}")]
    BadRequest(String),
    #[error("{0} is not granted")]
    Denied(String),
    #[error("connecting to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    Connect(Grant),
    /// Anything but CONNECT: plain HTTP is not relayed.
    Other(String),
}

/// Reads the request head (up to the blank line).
fn read_head(reader: &mut impl BufRead) -> Result<Ask, GateError> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - head.len()) as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(GateError::BadRequest(
                "the connection closed before a request".into(),
            ));
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Err(GateError::BadRequest("request head too long".into()));
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let first = head.lines().next().unwrap_or_default();
    let mut words = first.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err(GateError::BadRequest(format!("`{first}`")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(GateError::BadRequest(format!("`{first}`")));
    }
    if method != "CONNECT" {
        return Ok(Ask::Other(format!("{method} {target}")));
    }
    Ok(Ask::Connect(Grant::parse(target).map_err(|_| {
        GateError::BadRequest(format!("CONNECT target `{target}` is not HOST:PORT"))
    })?))
}

/// Serves one guest connection on `input`/`output`: checks the request
/// against `grants`, then relays until either side closes. `note` hears
/// the decision as soon as it is made (`relaying HOST:PORT` or
/// `refused: ...`), before any relaying. Returns what was connected to.
pub fn serve(
    input: impl Read + Send + 'static,
    output: impl Write,
    grants: &[Grant],
    note: &mut dyn FnMut(&str),
) -> Result<Grant, GateError> {
    let result = decide_and_relay(input, output, grants, note);
    if let Err(e) = &result {
        note(&format!("refused: {e}"));
    }
    result
}

fn decide_and_relay(
    input: impl Read + Send + 'static,
    mut output: impl Write,
    grants: &[Grant],
    note: &mut dyn FnMut(&str),
) -> Result<Grant, GateError> {
    let mut reader = BufReader::new(input);
    let ask = match read_head(&mut reader) {
        Ok(ask) => ask,
        Err(e) => {
            let _ = respond(&mut output, "400 Bad Request", &e.to_string());
            return Err(e);
        }
    };
    let grant = match ask {
        Ask::Other(what) => {
            let message = format!(
                "{what}: only HTTPS through CONNECT leaves the microVM; plain HTTP is refused"
            );
            respond(&mut output, "405 Method Not Allowed", &message)?;
            return Err(GateError::Denied(what));
        }
        Ask::Connect(grant) if !grants.contains(&grant) => {
            let message = format!(
                "{grant} is not granted to this microVM; granted: {}",
                list(grants)
            );
            respond(&mut output, "403 Forbidden", &message)?;
            return Err(GateError::Denied(grant.to_string()));
        }
        Ask::Connect(grant) => grant,
    };
    note(&format!("relaying {grant}"));
    let upstream = match connect(&grant) {
        Ok(s) => s,
        Err(e) => {
            respond(&mut output, "502 Bad Gateway", &e.to_string())?;
            return Err(e);
        }
    };
    output.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    output.flush()?;

    // Bytes the client sent after the head (a pipelined TLS hello) are
    // still in the reader's buffer; relaying from the reader keeps them.
    let mut to_server = upstream.try_clone()?;
    let uploader = std::thread::spawn(move || {
        let _ = io::copy(&mut reader, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let mut from_server = upstream;
    io::copy(&mut from_server, &mut output)?;
    output.flush()?;
    // The server is done; the guest side may still be open, and nothing
    // more can reach it, so the process may end without the uploader.
    drop(uploader);
    Ok(grant)
}

fn connect(grant: &Grant) -> Result<TcpStream, GateError> {
    use std::net::ToSocketAddrs;
    let target = grant.to_string();
    let wrap = |source| GateError::Connect {
        target: target.clone(),
        source,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in (grant.host.as_str(), grant.port)
        .to_socket_addrs()
        .map_err(wrap)?
    {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(wrap(last))
}

fn respond(output: &mut impl Write, status: &str, message: &str) -> io::Result<()> {
    let body = format!("mvm egress: {message}\n");
    // One write: the guest should see the whole answer in one segment.
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    output.write_all(response.as_bytes())?;
    output.flush()
}

fn list(grants: &[Grant]) -> String {
    if grants.is_empty() {
        return "nothing".into();
    }
    grants
        .iter()
        .map(Grant::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::net::TcpListener;

    fn run(request: &[u8], grants: &[Grant]) -> (Result<Grant, GateError>, String) {
        let mut out = Vec::new();
        let mut notes = Vec::new();
        let r = serve(Cursor::new(request.to_vec()), &mut out, grants, &mut |n| {
            notes.push(n.to_string())
        });
        match &r {
            Ok(g) => assert_eq!(notes, [format!("relaying {g}")]),
            Err(GateError::Connect { target, .. }) => {
                assert_eq!(notes[0], format!("relaying {target}"));
                assert!(notes[1].starts_with("refused: connecting to "), "{notes:?}");
            }
            Err(e) => assert_eq!(notes, [format!("refused: {e}")]),
        }
        (r, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn grants_parse_strictly() {
        assert_eq!(
            Grant::parse("PyPI.org:443").unwrap(),
            Grant::new("pypi.org", 443)
        );
        for bad in [
            "pypi.org",
            "*.pypi.org:443",
            "pypi.org:0",
            "pypi.org:x",
            ":443",
            "a b:1",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ungranted_hosts_are_refused_with_the_grant_list() {
        let grants = [Grant::new("pypi.org", 443)];
        let (r, out) = run(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &grants,
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
        // Same host, other port: still refused.
        let (r, _) = run(b"CONNECT pypi.org:80 HTTP/1.1\r\n\r\n", &grants);
        assert!(matches!(r, Err(GateError::Denied(_))), "{r:?}");
    }

    #[test]
    fn plain_http_and_garbage_are_refused() {
        let grants = [Grant::new("pypi.org", 443)];
        let (r, out) = run(b"GET http://pypi.org/ HTTP/1.1\r\n\r\n", &grants);
        assert!(matches!(r, Err(GateError::Denied(_))), "{r:?}");
        assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
        let (r, out) = run(b"\x16\x03\x01 hello\r\n\r\n", &grants);
        assert!(matches!(r, Err(GateError::BadRequest(_))), "{r:?}");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        let (r, _) = run(b"CONNECT pypi.org:443 HTTP/1.1\r\n", &grants);
        assert!(
            matches!(r, Err(GateError::BadRequest(_))),
            "unterminated head: {r:?}"
        );
        let long = format!(
            "CONNECT pypi.org:443 HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        let (r, _) = run(long.as_bytes(), &grants);
        assert!(matches!(r, Err(GateError::BadRequest(_))), "{r:?}");
    }

    #[test]
    fn granted_connections_relay_both_ways_including_pipelined_bytes() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(b"echo:").unwrap();
            s.write_all(&got).unwrap();
        });
        let grants = [Grant::new("localhost", port)];
        let request = format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\nhello after the head");
        let (r, out) = run(request.as_bytes(), &grants);
        echo.join().unwrap();
        assert_eq!(r.unwrap(), Grant::new("localhost", port));
        assert_eq!(
            out,
            "HTTP/1.1 200 Connection established\r\n\r\necho:hello after the head"
        );
    }

    #[test]
    fn unreachable_granted_hosts_are_a_bad_gateway() {
        // A port nothing listens on: bind, learn it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let grants = [Grant::new("localhost", port)];
        let (r, out) = run(
            format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n").as_bytes(),
            &grants,
        );
        assert!(matches!(r, Err(GateError::Connect { .. })), "{r:?}");
        assert!(out.starts_with("HTTP/1.1 502 "), "{out}");
    }
}
