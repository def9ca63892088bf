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
//! One process per connection keeps the gate simple and lets a hung peer
//! hurt nobody else; time limits bound every phase, and a slot directory
//! caps the connections one microVM may hold at once.

mod conn;
mod destination;
mod grant;
mod relay;
pub mod request;
mod slots;

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub use conn::Conn;
pub use destination::{Resolve, system_resolve};
pub use grant::Grant;
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
    pub limits: Limits,
    /// The per-microVM connection cap; `None` for no cap.
    pub slots: Option<Slots>,
    pub resolve: Box<Resolve>,
}

impl Gate {
    /// A gate with the default limits, no cap and the host's resolver.
    pub fn new(grants: Vec<Grant>, allow_private: Vec<Grant>) -> Gate {
        Gate {
            grants,
            allow_private,
            limits: Limits::default(),
            slots: None,
            resolve: Box::new(system_resolve),
        }
    }
}

/// Why a connection was refused. Messages may hold the guest's raw text:
/// escape them (`mvm_ir::text::escape_control`) before printing, as
/// [`serve`] does for its notes.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("`{0}` is not a grant (expected HOST:PORT, a concrete name without wildcards)")]
    BadGrant(String),
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

/// Serves one guest connection `conn`: checks the request against `gate`,
/// then relays until either side closes or the connection goes idle.
/// `note` hears each decision as soon as it is made (`relaying HOST:PORT
/// to ADDR`, `refused: ...`, `closed: ...`), escaped for a log line.
/// Returns what was connected to.
pub fn serve<S: Conn>(
    conn: S,
    gate: &Gate,
    note: &mut dyn FnMut(&str),
) -> Result<Grant, GateError> {
    // Guest text (request lines, targets) is escaped here, where it leaves
    // for the log, and in `respond`, nowhere earlier: escaping twice would
    // double the backslashes.
    let result = decide_and_relay(conn, gate, &mut |line: &str| note(&escape_control(line)));
    if let Err(e) = &result {
        note(&escape_control(&format!("refused: {e}")));
    }
    result
}

fn decide_and_relay<S: Conn>(
    conn: S,
    gate: &Gate,
    note: &mut dyn FnMut(&str),
) -> Result<Grant, GateError> {
    let started = Instant::now();
    let mut output = conn.try_clone()?;
    output.set_write_timeout(Some(gate.limits.header))?;
    // Held until this process ends; counted before the request is read,
    // so silent connections count too.
    let _slot = match &gate.slots {
        None => None,
        Some(slots) => match slots.acquire() {
            Ok(Some(slot)) => Some(slot),
            Ok(None) => {
                return refuse(
                    &mut output,
                    "503 Service Unavailable",
                    GateError::Busy(slots.max),
                );
            }
            Err(e) => {
                let e = GateError::Io(io::Error::new(
                    e.kind(),
                    format!("taking a connection slot: {e}"),
                ));
                return refuse(&mut output, "503 Service Unavailable", e);
            }
        },
    };
    let mut reader = BufReader::new(Timed {
        conn,
        budget: Budget::Deadline(started + gate.limits.header),
    });
    let grant = match request::read_request(&mut reader) {
        Ok(Ask::Connect(grant)) => grant,
        Ok(Ask::Other(what)) => {
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
    if !gate.grants.contains(&grant) {
        let message = format!(
            "{grant} is not granted to this microVM; granted: {}",
            list(&gate.grants)
        );
        respond(&mut output, "403 Forbidden", &message)?;
        return Err(GateError::Denied(grant.to_string()));
    }
    let private_ok = gate.allow_private.contains(&grant);
    let addrs = match destination::addresses(&grant, private_ok, &*gate.resolve) {
        Ok(addrs) => addrs,
        Err(e @ GateError::Private { .. }) => return refuse(&mut output, "403 Forbidden", e),
        Err(e) => return refuse(&mut output, "502 Bad Gateway", e),
    };
    let (upstream, addr) = match connect(&grant, &addrs, gate.limits.connect) {
        Ok(pair) => pair,
        Err(e) => return refuse(&mut output, "502 Bad Gateway", e),
    };
    let allowed = if private_ok {
        " (a private destination the operator allowed)"
    } else {
        ""
    };
    note(&format!("relaying {grant} to {addr}{allowed}"));
    output.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    output.flush()?;
    match relay::relay(reader, output, upstream, gate.limits.idle)? {
        End::Closed => {}
        End::Idle => note(&format!("closed: {grant} idle for {:?}", gate.limits.idle)),
    }
    Ok(grant)
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
