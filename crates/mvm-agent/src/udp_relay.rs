//! The guest half of bridge mode's published UDP ports.
//!
//! QEMU (`restrict=on`) drops every datagram the guest sends, so the host
//! carries a published port's datagrams over TCP instead, one frame each
//! with its client's address ([`mvm_launch::net::relay_frame`]). Here each
//! relay port accepts those connections; every distinct client gets its
//! own UDP socket on loopback, connected to the workload's port, so the
//! workload's replies (to that socket) go back framed with that client's
//! address. The workload sees its clients as `127.0.0.1`.
//!
//! Everything arriving is untrusted (any host process can connect to the
//! forward, and the workload answers what it likes): sizes are capped by
//! the frame format, malformed frames are dropped, the number of
//! connections and of clients per connection is bounded, and nothing
//! here panics or stops the agent.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mvm_launch::net::relay_frame::{self, LEN_BYTES};

use crate::log;

/// Clients remembered per connection; the least recently used goes first.
pub const MAX_CLIENTS: usize = 256;
/// Relay connections served at once per port (the host makes one).
pub const MAX_CONNECTIONS: usize = 8;
/// How often a client's reader looks up from its socket.
const TICK: Duration = Duration::from_millis(500);
/// A client silent both ways this long is forgotten.
const IDLE_TICKS: u32 = 240; // two minutes
/// A host that stops reading for this long loses the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Thread stacks: these threads only shuffle bytes (buffers are on the heap).
const STACK_BYTES: usize = 128 << 10;
/// A whole datagram, whatever arrives.
const RECV_BYTES: usize = 65536;

/// Starts one relay per `(guest UDP port, relay TCP port)`, listening on
/// every address (connections arrive from QEMU's host alias).
pub fn start(relays: &[(u16, u16)]) -> io::Result<()> {
    for &(udp_port, relay_port) in relays {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, relay_port)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("listening on TCP port {relay_port} to relay UDP port {udp_port}: {e}"),
            )
        })?;
        serve(listener, SocketAddrV4::new(Ipv4Addr::LOCALHOST, udp_port))?;
    }
    Ok(())
}

/// Accepts relay connections on `listener` in a thread, each relayed to
/// the UDP server at `target`.
pub fn serve(listener: TcpListener, target: SocketAddrV4) -> io::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    spawn("udp-relay-accept", move || {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    log!("UDP relay for port {}: accepting: {e}", target.port());
                    thread::sleep(TICK);
                    continue;
                }
            };
            if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::SeqCst);
                log!(
                    "UDP relay for port {}: refused a connection: {MAX_CONNECTIONS} already open",
                    target.port()
                );
                continue;
            }
            let open = open.clone();
            let spawned = spawn("udp-relay-conn", move || {
                if let Err(e) = connection(stream, target) {
                    log!(
                        "UDP relay for port {}: connection ended: {e}",
                        target.port()
                    );
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
            if let Err(e) = spawned {
                log!("UDP relay for port {}: {e}", target.port());
            }
        }
    })
    .map(|_| ())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(STACK_BYTES)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start a relay thread: {e}")))
}

/// One client of the published port, as the host saw it.
struct Client {
    addr: SocketAddrV4,
    socket: Arc<UdpSocket>,
    /// Set by either side: the reader has stopped, or the connection ended.
    closed: Arc<AtomicBool>,
    /// Datagrams sent to the workload, so the reader knows the client is alive.
    sent: Arc<AtomicU64>,
}

type Writer = Arc<Mutex<TcpStream>>;

/// Relays one connection's frames until it ends.
fn connection(stream: TcpStream, target: SocketAddrV4) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let writer: Writer = Arc::new(Mutex::new(stream.try_clone()?));
    let mut reader = BufReader::new(stream);
    let mut clients: VecDeque<Client> = VecDeque::new();
    let mut dropped = 0u64;
    let ended = loop {
        let body = match read_body(&mut reader) {
            Ok(Some(body)) => body,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let (addr, payload) = match relay_frame::decode(&body) {
            Ok(frame) => frame,
            Err(e) => {
                // Logged sparingly: the sender may be anyone on the host.
                if dropped.is_multiple_of(1000) {
                    log!(
                        "UDP relay for port {}: dropped a frame: {e} ({} so far)",
                        target.port(),
                        dropped + 1
                    );
                }
                dropped += 1;
                continue;
            }
        };
        let client = match client_for(&mut clients, addr, target, &writer) {
            Ok(c) => c,
            Err(e) => {
                log!("UDP relay for port {}: client {addr}: {e}", target.port());
                continue;
            }
        };
        client.sent.fetch_add(1, Ordering::Relaxed);
        // A refused or failed send is a lost datagram, as UDP goes.
        let _ = client.socket.send(payload);
    };
    for c in &clients {
        c.closed.store(true, Ordering::SeqCst);
    }
    if let Ok(w) = writer.lock() {
        let _ = w.shutdown(std::net::Shutdown::Both);
    }
    ended
}

/// One frame's body, `None` at a clean end between frames. The u16 length
/// caps what is read, and any length is read in full so the stream keeps
/// its place.
fn read_body(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; LEN_BYTES];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; relay_frame::body_len(header)];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// The client's socket, made (and its reader started) on first sight; the
/// most recently used client is kept last.
fn client_for<'a>(
    clients: &'a mut VecDeque<Client>,
    addr: SocketAddrV4,
    target: SocketAddrV4,
    writer: &Writer,
) -> io::Result<&'a Client> {
    if let Some(i) = clients.iter().position(|c| c.addr == addr) {
        let c = clients
            .remove(i)
            .filter(|c| !c.closed.load(Ordering::SeqCst));
        if let Some(c) = c {
            clients.push_back(c);
            return clients.back().ok_or_else(|| io::Error::other("no client"));
        }
    }
    while clients.len() >= MAX_CLIENTS {
        if let Some(old) = clients.pop_front() {
            old.closed.store(true, Ordering::SeqCst);
        }
    }
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(TICK))?;
    let client = Client {
        addr,
        socket: Arc::new(socket),
        closed: Arc::new(AtomicBool::new(false)),
        sent: Arc::new(AtomicU64::new(0)),
    };
    let (socket, closed, sent, writer) = (
        client.socket.clone(),
        client.closed.clone(),
        client.sent.clone(),
        writer.clone(),
    );
    spawn("udp-relay-client", move || {
        replies(&socket, addr, &closed, &sent, &writer);
        closed.store(true, Ordering::SeqCst);
    })?;
    clients.push_back(client);
    clients.back().ok_or_else(|| io::Error::other("no client"))
}

/// Frames each reply from the workload to `addr` until the client is
/// closed, idle, or the connection fails.
fn replies(
    socket: &UdpSocket,
    addr: SocketAddrV4,
    closed: &AtomicBool,
    sent: &AtomicU64,
    writer: &Writer,
) {
    let mut buf = vec![0u8; RECV_BYTES];
    let mut idle = 0u32;
    let mut seen = sent.load(Ordering::Relaxed);
    while !closed.load(Ordering::SeqCst) {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let now = sent.load(Ordering::Relaxed);
                idle = if now == seen { idle + 1 } else { 0 };
                seen = now;
                if idle >= IDLE_TICKS {
                    return;
                }
                continue;
            }
            // Nobody listened to an earlier datagram yet (ICMP port
            // unreachable): the workload may still start.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(_) => return,
        };
        idle = 0;
        let Some(frame) = relay_frame::encode(addr, &buf[..n]) else {
            continue;
        };
        let Ok(mut w) = writer.lock() else {
            return;
        };
        if w.write_all(&frame).is_err() {
            let _ = w.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback standing in for the workload; returns
    /// its address.
    fn echo() -> SocketAddrV4 {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(at) = s.local_addr().unwrap() else {
            unreachable!()
        };
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = s.send_to(&reply, from);
            }
        });
        at
    }

    fn relay_to(target: SocketAddrV4) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = listener.local_addr().unwrap();
        serve(listener, target).unwrap();
        let s = TcpStream::connect(at).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    fn next(s: &mut TcpStream) -> (SocketAddrV4, Vec<u8>) {
        let body = read_body(s).unwrap().expect("a frame");
        let (addr, payload) = relay_frame::decode(&body).unwrap();
        (addr, payload.to_vec())
    }

    fn client(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), port)
    }

    /// Real sockets, no VM: each client's datagrams reach the workload
    /// from a socket of its own, and the replies come back framed with
    /// that client's address; malformed frames are skipped in place.
    #[test]
    fn replies_come_back_to_their_client() {
        let mut s = relay_to(echo());
        let mut frames = Vec::new();
        frames.extend(relay_frame::encode(client(1), b"one").unwrap());
        frames.extend([0, 2, 9, 9]); // shorter than an address
        frames.extend([0, 6, 127, 0, 0, 1, 0, 0]); // port 0
        let oversized = relay_frame::ADDR_BYTES + relay_frame::MAX_PAYLOAD + 1;
        frames.extend((oversized as u16).to_be_bytes());
        frames.extend(vec![1u8; oversized]);
        frames.extend(relay_frame::encode(client(2), b"two").unwrap());
        s.write_all(&frames).unwrap();
        let mut got = vec![next(&mut s), next(&mut s)];
        got.sort();
        assert_eq!(
            got,
            [
                (client(1), b"echo:one".to_vec()),
                (client(2), b"echo:two".to_vec())
            ]
        );
        // The same client again uses its socket again (the server sees the
        // same source, so a conversation keeps its peer).
        s.write_all(&relay_frame::encode(client(1), b"three").unwrap())
            .unwrap();
        assert_eq!(next(&mut s), (client(1), b"echo:three".to_vec()));
    }

    /// More clients than the bound: the oldest are forgotten, the relay
    /// keeps working, and the newest still get answers.
    #[test]
    fn clients_are_bounded() {
        let mut s = relay_to(echo());
        let mut frames = Vec::new();
        for port in 1..=(MAX_CLIENTS as u16 + 10) {
            frames.extend(relay_frame::encode(client(port), b"x").unwrap());
        }
        s.write_all(&frames).unwrap();
        let mut answered = 0;
        // Replies to forgotten clients may be lost; the newest are not.
        let last = client(MAX_CLIENTS as u16 + 10);
        s.write_all(&relay_frame::encode(last, b"last").unwrap())
            .unwrap();
        loop {
            let (addr, payload) = next(&mut s);
            answered += 1;
            if addr == last && payload == b"echo:last" {
                break;
            }
            assert!(
                answered <= MAX_CLIENTS + 20,
                "no answer to the newest client"
            );
        }
    }

    /// The workload not listening yet (ICMP refusals) does not end the
    /// client: once it binds, the next datagram is answered.
    #[test]
    fn a_workload_that_starts_late_is_reached() {
        // The port is free when picked, but another test may take it
        // before the workload binds it: then try another.
        let (mut s, server) = (0..20)
            .find_map(|_| {
                let port = UdpSocket::bind("127.0.0.1:0").unwrap();
                let std::net::SocketAddr::V4(target) = port.local_addr().unwrap() else {
                    unreachable!()
                };
                drop(port);
                let mut s = relay_to(target);
                for _ in 0..3 {
                    s.write_all(&relay_frame::encode(client(5), b"early").unwrap())
                        .unwrap();
                }
                thread::sleep(Duration::from_millis(100));
                match UdpSocket::bind(target) {
                    Ok(server) => Some((s, server)),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => None,
                    Err(e) => panic!("binding {target}: {e}"),
                }
            })
            .expect("a free UDP port within 20 tries");
        s.write_all(&relay_frame::encode(client(5), b"late").unwrap())
            .unwrap();
        let mut buf = [0u8; 64];
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"late");
        assert!(from.ip().is_loopback());
        server.send_to(b"hi", from).unwrap();
        assert_eq!(next(&mut s), (client(5), b"hi".to_vec()));
    }

    #[test]
    fn a_truncated_frame_ends_the_stream_cleanly() {
        let whole = relay_frame::encode(client(1), b"abc").unwrap();
        let mut cut = &whole[..whole.len() - 1];
        assert!(read_body(&mut cut).is_err());
        let mut empty: &[u8] = &[];
        assert!(read_body(&mut empty).unwrap().is_none());
    }
}
