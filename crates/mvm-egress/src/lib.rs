//! The egress gate: the only way out of a microVM that has a network.
//!
//! QEMU's user network runs with `restrict=on`, so the guest reaches
//! nothing but one forwarded address, whose connections QEMU hands to a
//! fresh `mvmctl __egress-proxy` process on its stdin/stdout (one end of a
//! socketpair). That process reads one HTTP `CONNECT host:port` request,
//! allows it only when `host:port` is granted exactly, resolves it, refuses
//! loopback, private, link-local, metadata and other local addresses
//! (as written and as resolved) unless the operator allowed that exact
//! destination, and then relays bytes to the checked address. TLS stays
//! end to end between the guest and the server; the gate sees only the name.
//!
//! The same process serves two more ways in (see [`Mode`]): a direct
//! relay for a guest that connected to a granted name's own address
//! (`--to`), and a DNS-over-TCP responder that answers granted names only.
//! Each connection ends in a [`Record`] for the structured log and the
//! audit trail.
//!
//! One process per connection keeps the gate simple and lets a hung peer
//! hurt nobody else; time limits bound every phase, and a slot directory
//! caps the connections one microVM may hold at once.

mod conn;
mod destination;
pub mod dns;
mod grant;
mod pin;
mod rate;
mod record;
mod relay;
pub mod request;
mod slots;

use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use conn::Conn;
pub use destination::{Resolve, system_resolve};
pub use dns::DnsName;
pub use grant::Grant;
pub use pin::Pin;
pub use rate::Rate;
pub use record::{Kind, Record};
pub use slots::{Slot, Slots};

use mvm_ir::text::escape_control;
use relay::{Budget, End, Timed};
use request::{Ask, is_timeout};

/// Where a guest finds the gate (QEMU's user network is 10.0.2.0/24; .2
/// is the gateway and .3 the resolver, so .100 is free).
pub const GATE_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 100);
pub const GATE_PORT: u16 = 3128;

/// The guest's address on that network.
pub const GUEST_CIDR: &str = "10.0.2.15/24";

/// Connections one microVM may hold open through the gate at once. The
/// installers are told to stay well below it (see mvm-image's deps).
pub const MAX_CONNECTIONS: usize = 64;

/// The proxy URL guests are given (`HTTPS_PROXY`).
pub fn proxy_url() -> String {
    format!("http://{GATE_ADDR}:{GATE_PORT}")
}

/// Time limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accepting to the end of the request head.
    pub header: Duration,
    /// To open the upstream connection, per address tried.
    pub connect: Duration,
    /// With no byte moving either way while relaying.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header: Duration::from_secs(10),
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(300),
        }
    }
}

/// What one gate process enforces.
pub struct Gate {
    pub grants: Vec<Grant>,
    /// Exact destinations the operator allowed to be private (given at
    /// build/up time, never by a declaration); each must also be granted.
    pub allow_private: Vec<Grant>,
    /// Operator pins: these names are connected at (and, for DNS, resolve
    /// as) the pinned address instead of resolving them.
    pub pins: Vec<Pin>,
    pub limits: Limits,
    /// The per-microVM connection cap; `None` for no cap.
    pub slots: Option<Slots>,
    /// The per-microVM new-connection rate; `None` for no limit.
    pub rate: Option<Rate>,
    pub resolve: Box<Resolve>,
}

impl Gate {
    /// A gate with the default limits, no cap, no pins and the host's resolver.
    pub fn new(grants: Vec<Grant>, allow_private: Vec<Grant>) -> Gate {
        Gate {
            grants,
            allow_private,
            pins: Vec::new(),
            limits: Limits::default(),
            slots: None,
            rate: None,
            resolve: Box::new(system_resolve),
        }
    }

    fn pin(&self, host: &str) -> Option<std::net::IpAddr> {
        self.pins.iter().find(|p| p.host == host).map(|p| p.ip)
    }

    /// The addresses `grant` may be connected at, by exactly this gate's
    /// rules: it must be granted, its pin (if any) stands in for resolving
    /// it, and a loopback/private/metadata/own address is refused unless
    /// the operator allowed that exact destination. For other host-side
    /// clients (the `web_fetch` broker) that must connect to exactly these
    /// addresses and never resolve the name again. May block resolving.
    pub fn addresses_for(&self, grant: &Grant) -> Result<Vec<SocketAddr>, GateError> {
        if !self.grants.contains(grant) {
            return Err(GateError::Denied(grant.to_string()));
        }
        let private_ok = self.allow_private.contains(grant);
        let pin = self.pin(grant.bare_host());
        destination::addresses(grant, private_ok, pin, &*self.resolve)
    }
}

/// How a gate process serves its connection.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Reads one HTTP `CONNECT host:port` request (the proxy address).
    Proxy,
    /// The guest connected to this grant's own address: no request, the
    /// bytes are the client's (TLS). `--to HOST:PORT`.
    Direct(Grant),
    /// The grants-only DNS responder over TCP.
    Dns(Vec<DnsName>),
}

/// Why a connection was refused. Messages may hold the guest's raw text:
/// escape them (`mvm_ir::text::escape_control`) before printing, as
/// [`serve`] does for its notes.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("`{0}` is not a grant (expected HOST:PORT, a concrete name without wildcards)")]
    BadGrant(String),
    #[error("`{0}` is not a pin (expected HOST=IP, e.g. svc.example=127.0.0.1)")]
    BadPin(String),
    #[error("`{0}` is not a DNS name entry (expected HOST=IPV4, e.g. pypi.org=10.0.2.102)")]
    BadName(String),
    #[error("malformed proxy request: {0}")]
    BadRequest(String),
    #[error("no complete request within {0:?}")]
    HeaderTimeout(Duration),
    #[error("{0} is not granted")]
    Denied(String),
    #[error(
        "{target} {why}; the gate reaches such destinations only when the operator allows that exact one (--allow-private-egress {target})"
    )]
    Private { target: String, why: String },
    #[error("{0} connections are already open through this microVM's gate")]
    Busy(usize),
    #[error(
        "more than {0} new connections a second through this microVM's gate (the --max-rate limit)"
    )]
    RateLimited(u32),
    #[error("resolving {target}: {source}")]
    Resolve {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("connecting to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Serves one guest connection `conn` as a `CONNECT` proxy: checks the
/// request against `gate`, then relays until either side closes or the
/// connection goes idle. `note` hears each decision as soon as it is made
/// (`relaying HOST:PORT to ADDR`, `refused: ...`, `closed: ...`), escaped
/// for a log line. Returns what was connected to.
pub fn serve<S: Conn>(
    conn: S,
    gate: &Gate,
    note: &mut dyn FnMut(&str),
) -> Result<Grant, GateError> {
    let mut record = Record::new(Kind::Proxy);
    // Proxy mode always yields the grant it relayed.
    serve_mode(conn, gate, &Mode::Proxy, note, &mut |_| {}, &mut record)?
        .ok_or_else(|| GateError::Io(io::Error::other("the proxy relayed no grant")))
}

/// Serves one guest connection in `mode` and says how it went: the
/// returned [`Record`] is the connection's outcome (for the log and the
/// audit trail). `note` hears each decision as an escaped text line, as in
/// [`serve`]; in DNS mode `query` hears each query's own record.
pub fn handle<S: Conn>(
    conn: S,
    gate: &Gate,
    mode: &Mode,
    note: &mut dyn FnMut(&str),
    query: &mut dyn FnMut(&Record),
) -> Record {
    let kind = match mode {
        Mode::Proxy => Kind::Proxy,
        Mode::Direct(_) => Kind::Connect,
        Mode::Dns(_) => Kind::Dns,
    };
    let mut record = Record::new(kind);
    let _ = serve_mode(conn, gate, mode, note, query, &mut record);
    record
}

fn serve_mode<S: Conn>(
    conn: S,
    gate: &Gate,
    mode: &Mode,
    note: &mut dyn FnMut(&str),
    query: &mut dyn FnMut(&Record),
    record: &mut Record,
) -> Result<Option<Grant>, GateError> {
    let started = Instant::now();
    // Guest text (request lines, targets) is escaped here, where it leaves
    // for the log, and in `respond`, nowhere earlier: escaping twice would
    // double the backslashes.
    let mut note = |line: &str| note(&escape_control(line));
    let result = match mode {
        Mode::Proxy => decide_and_relay(conn, gate, &mut note, record).map(Some),
        Mode::Direct(to) => direct(conn, gate, to, &mut note, record).map(Some),
        Mode::Dns(names) => dns_conn(conn, gate, names, &mut note, query, record).map(|()| None),
    };
    match &result {
        Ok(_) => record.allowed = true,
        Err(e) => {
            record.refuse(&e.to_string());
            record.limited = matches!(e, GateError::RateLimited(_) | GateError::Busy(_));
            note(&format!("refused: {e}"));
        }
    }
    record.duration = started.elapsed();
    result
}

/// The limits every connection passes before anything is read: the rate,
/// then a slot (held until this process ends; counted before the request
/// is read, so silent connections count too).
fn admit(gate: &Gate) -> Result<Option<Slot>, GateError> {
    if let Some(rate) = &gate.rate {
        match rate.take() {
            Ok(true) => {}
            Ok(false) => return Err(GateError::RateLimited(rate.per_second)),
            Err(e) => {
                return Err(GateError::Io(io::Error::new(
                    e.kind(),
                    format!("checking the connection rate: {e}"),
                )));
            }
        }
    }
    match &gate.slots {
        None => Ok(None),
        Some(slots) => match slots.acquire() {
            Ok(Some(slot)) => Ok(Some(slot)),
            Ok(None) => Err(GateError::Busy(slots.max)),
            Err(e) => Err(GateError::Io(io::Error::new(
                e.kind(),
                format!("taking a connection slot: {e}"),
            ))),
        },
    }
}

/// The checked addresses of a granted destination, connected.
fn reach(gate: &Gate, grant: &Grant) -> Result<(TcpStream, SocketAddr, bool), GateError> {
    let private_ok = gate.allow_private.contains(grant);
    let pin = gate.pin(grant.bare_host());
    let addrs = destination::addresses(grant, private_ok, pin, &*gate.resolve)?;
    let (upstream, addr) = connect(grant, &addrs, gate.limits.connect)?;
    Ok((upstream, addr, private_ok))
}

fn relaying_note(grant: &Grant, addr: SocketAddr, private_ok: bool) -> String {
    let allowed = if private_ok {
        " (a private destination the operator allowed)"
    } else {
        ""
    };
    format!("relaying {grant} to {addr}{allowed}")
}

fn decide_and_relay<S: Conn>(
    conn: S,
    gate: &Gate,
    note: &mut dyn FnMut(&str),
    record: &mut Record,
) -> Result<Grant, GateError> {
    let started = Instant::now();
    let mut output = conn.try_clone()?;
    output.set_write_timeout(Some(gate.limits.header))?;
    let _slot = match admit(gate) {
        Ok(slot) => slot,
        Err(e @ GateError::RateLimited(_)) => {
            return refuse(&mut output, "429 Too Many Requests", e);
        }
        Err(e) => return refuse(&mut output, "503 Service Unavailable", e),
    };
    let mut reader = BufReader::new(Timed {
        conn,
        budget: Budget::Deadline(started + gate.limits.header),
    });
    let grant = match request::read_request(&mut reader) {
        Ok(Ask::Connect(grant)) => grant,
        Ok(Ask::Other(what)) => {
            record.ask(&what);
            let message = format!(
                "{what}: only HTTPS through CONNECT leaves the microVM; plain HTTP is refused"
            );
            respond(&mut output, "405 Method Not Allowed", &message)?;
            return Err(GateError::Denied(what));
        }
        Err(GateError::Io(e)) if is_timeout(&e) => {
            let e = GateError::HeaderTimeout(gate.limits.header);
            return refuse(&mut output, "408 Request Timeout", e);
        }
        Err(e) => return refuse(&mut output, "400 Bad Request", e),
    };
    record.ask(&grant.to_string());
    if !gate.grants.contains(&grant) {
        let message = format!(
            "{grant} is not granted to this microVM; granted: {}",
            list(&gate.grants)
        );
        respond(&mut output, "403 Forbidden", &message)?;
        return Err(GateError::Denied(grant.to_string()));
    }
    let (upstream, addr, private_ok) = match reach(gate, &grant) {
        Ok(r) => r,
        Err(e @ GateError::Private { .. }) => return refuse(&mut output, "403 Forbidden", e),
        Err(e) => return refuse(&mut output, "502 Bad Gateway", e),
    };
    record.address = Some(addr.to_string());
    note(&relaying_note(&grant, addr, private_ok));
    output.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    output.flush()?;
    finish_relay(reader, output, upstream, gate, &grant, note, record)?;
    Ok(grant)
}

/// `--to`: the connection is for `to` and nothing is read before relaying.
/// A refusal has nobody to answer to: the connection is closed at once.
fn direct<S: Conn>(
    conn: S,
    gate: &Gate,
    to: &Grant,
    note: &mut dyn FnMut(&str),
    record: &mut Record,
) -> Result<Grant, GateError> {
    record.ask(&to.to_string());
    let output = conn.try_clone()?;
    let result = (|| {
        let slot = admit(gate)?;
        if !gate.grants.contains(to) {
            return Err(GateError::Denied(to.to_string()));
        }
        let (upstream, addr, private_ok) = reach(gate, to)?;
        Ok((slot, upstream, addr, private_ok))
    })();
    let (_slot, upstream, addr, private_ok) = match result {
        Ok(r) => r,
        Err(e) => {
            // Other descriptors of this socket (the CLI's stdout) must not
            // keep the guest waiting.
            let _ = output.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    record.address = Some(addr.to_string());
    note(&relaying_note(to, addr, private_ok));
    let reader = BufReader::new(Timed {
        conn,
        budget: Budget::Deadline(Instant::now() + gate.limits.idle),
    });
    finish_relay(reader, output, upstream, gate, to, note, record)?;
    Ok(to.clone())
}

fn finish_relay<S: Conn>(
    reader: BufReader<Timed<S>>,
    output: S,
    upstream: TcpStream,
    gate: &Gate,
    grant: &Grant,
    note: &mut dyn FnMut(&str),
    record: &mut Record,
) -> Result<(), GateError> {
    let relayed = relay::relay(reader, output, upstream, gate.limits.idle)?;
    record.bytes_up = relayed.up;
    record.bytes_down = relayed.down;
    match relayed.end {
        End::Closed => {}
        End::Idle => note(&format!("closed: {grant} idle for {:?}", gate.limits.idle)),
    }
    Ok(())
}

/// Names a DNS connection's record lists (the rest are left out).
/// DNS queries one connection may make.
pub const MAX_DNS_QUERIES: usize = 64;

pub const MAX_DNS_ASKED: usize = 10;

/// DNS over TCP: queries until the client closes or stays idle.
fn dns_conn<S: Conn>(
    conn: S,
    gate: &Gate,
    names: &[DnsName],
    note: &mut dyn FnMut(&str),
    query: &mut dyn FnMut(&Record),
    record: &mut Record,
) -> Result<(), GateError> {
    let mut output = conn.try_clone()?;
    let _slot = match admit(gate) {
        Ok(slot) => slot,
        Err(e) => {
            let _ = output.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    output.set_write_timeout(Some(gate.limits.header))?;
    let mut input = Timed {
        conn,
        budget: Budget::Deadline(Instant::now()),
    };
    let mut cache = dns::Cache::new(|host: &str| {
        gate.pin(host).is_some() || (gate.resolve)(host, 0).is_ok_and(|a| !a.is_empty())
    });
    let mut asked: Vec<String> = Vec::new();
    let mut more_asked = false;
    let mut queries = 0usize;
    loop {
        let started = Instant::now();
        // A resolver asks a few names per connection; a guest that keeps
        // one open to flood the egress log is cut off (it may reconnect,
        // under the connection rate limit).
        queries += 1;
        if queries > MAX_DNS_QUERIES {
            note(&format!(
                "closed: {MAX_DNS_QUERIES} DNS queries on one connection"
            ));
            break;
        }
        // Between queries the client may wait up to the idle limit; once a
        // message starts it must be complete within the header limit.
        input.budget = Budget::Deadline(started + gate.limits.idle);
        let mut len = [0u8; 2];
        match read_full(&mut input, &mut len[..1]) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if is_timeout(&e) => {
                note(&format!("closed: dns idle for {:?}", gate.limits.idle));
                break;
            }
            Err(e) => return Err(e.into()),
        }
        input.budget = Budget::Deadline(Instant::now() + gate.limits.header);
        let message = read_message(&mut input, &mut len)?;
        let reply = dns::answer(&message, names, &mut |h| cache.resolves(h));
        let mut q = Record::new(Kind::Dns);
        if let Some(name) = &reply.asked {
            q.ask(name);
            if asked.len() < MAX_DNS_ASKED {
                let escaped = escape_control(name).into_owned();
                if !asked.contains(&escaped) {
                    asked.push(escaped);
                }
            } else {
                more_asked = true;
            }
        }
        q.allowed = reply.outcome.allowed();
        if !q.allowed {
            q.refuse(&reply.outcome.to_string());
        }
        if let dns::Outcome::Answered(addr) = reply.outcome {
            q.address = Some(addr.to_string());
        }
        q.bytes_up = 2 + message.len() as u64;
        note(&format!(
            "dns {}: {}",
            reply.asked.as_deref().unwrap_or("?"),
            reply.outcome
        ));
        let Some(answer) = reply.message else {
            // No id to answer to: nothing more is understood here.
            q.duration = started.elapsed();
            record.bytes_up += q.bytes_up;
            query(&q);
            return Err(GateError::BadRequest(
                "a DNS message shorter than its id".into(),
            ));
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&(answer.len().min(u16::MAX as usize) as u16).to_be_bytes());
        framed.extend_from_slice(&answer);
        // One write: the answer leaves in one segment.
        output.write_all(&framed)?;
        output.flush()?;
        q.bytes_down = framed.len() as u64;
        q.duration = started.elapsed();
        record.bytes_up += q.bytes_up;
        record.bytes_down += q.bytes_down;
        query(&q);
        if matches!(q.reason.as_deref(), Some(r) if r.starts_with("malformed")) {
            // After a message we could not read, the stream may be out of step.
            return Err(GateError::BadRequest(reply.outcome.to_string()));
        }
    }
    if !asked.is_empty() {
        let mut list = asked.join(",");
        if more_asked {
            list.push_str(",...");
        }
        // Already escaped, name by name.
        record.asked = Some(list);
    }
    Ok(())
}

/// Fills `buf`; `Ok(false)` when the stream ended before its first byte.
fn read_full(input: &mut impl io::Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The rest of a length-prefixed message whose first length byte is in
/// `len[0]`. Over-long messages are refused before they are read.
fn read_message(input: &mut impl io::Read, len: &mut [u8; 2]) -> Result<Vec<u8>, GateError> {
    let short = |e: io::Error| {
        if is_timeout(&e) {
            GateError::BadRequest("a DNS message did not arrive in time".into())
        } else {
            GateError::BadRequest(format!("a DNS message ended early: {e}"))
        }
    };
    read_full(input, &mut len[1..]).map_err(short)?;
    let n = usize::from(u16::from_be_bytes(*len));
    if n == 0 || n > dns::MAX_QUERY {
        return Err(GateError::BadRequest(format!(
            "a DNS message of {n} bytes (at most {} accepted)",
            dns::MAX_QUERY
        )));
    }
    let mut message = vec![0u8; n];
    match read_full(input, &mut message) {
        Ok(true) => Ok(message),
        Ok(false) => Err(GateError::BadRequest("a DNS message ended early".into())),
        Err(e) => Err(short(e)),
    }
}

/// Answers `status` with `e`'s message and returns `e`.
fn refuse<T>(output: &mut impl Write, status: &str, e: GateError) -> Result<T, GateError> {
    let _ = respond(output, status, &e.to_string());
    Err(e)
}

/// Tries the checked addresses in order.
fn connect(
    grant: &Grant,
    addrs: &[std::net::SocketAddr],
    timeout: Duration,
) -> Result<(TcpStream, std::net::SocketAddr), GateError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => return Ok((s, *addr)),
            Err(e) => last = e,
        }
    }
    Err(GateError::Connect {
        target: grant.to_string(),
        source: last,
    })
}

fn respond(output: &mut impl Write, status: &str, message: &str) -> io::Result<()> {
    let body = format!("mvm egress: {}\n", escape_control(message));
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

    #[test]
    fn addresses_for_applies_the_gates_own_rules() {
        let never =
            |_: &str, _| -> io::Result<Vec<SocketAddr>> { panic!("resolved a pinned name") };
        let svc = Grant::new("svc.example", 8443);
        let mut gate = Gate::new(vec![svc.clone()], Vec::new());
        gate.resolve = Box::new(never);
        gate.pins = vec![Pin::parse("svc.example=127.0.0.1").unwrap()];
        let other = Grant::new("other.example", 8443);
        assert!(matches!(
            gate.addresses_for(&other),
            Err(GateError::Denied(_))
        ));
        // Pinned to loopback, not allowed private: refused.
        let e = gate.addresses_for(&svc).unwrap_err();
        assert!(matches!(e, GateError::Private { .. }), "{e}");
        gate.allow_private = vec![svc.clone()];
        assert_eq!(
            gate.addresses_for(&svc).unwrap(),
            [SocketAddr::from(([127, 0, 0, 1], 8443))]
        );
        // Resolved names are checked the same way.
        let public = Grant::new("pub.example", 443);
        let mut gate = Gate::new(vec![public.clone()], Vec::new());
        gate.resolve = Box::new(|_: &str, p| Ok(vec![SocketAddr::from(([10, 0, 0, 9], p))]));
        let e = gate.addresses_for(&public).unwrap_err().to_string();
        assert!(e.contains("resolves to 10.0.0.9"), "{e}");
    }
}
