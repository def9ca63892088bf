//! The host half of bridge mode's published UDP ports.
//!
//! QEMU's user network with `restrict=on` drops every datagram the guest
//! sends, so a UDP hostfwd would deliver requests and lose every reply.
//! Instead the supervisor listens for the datagrams itself and carries
//! each, with its client's address, in one frame
//! ([`mvm_launch::net::relay_frame`]) over a TCP connection that QEMU
//! forwards to the agent's relay in the guest; replies come back the same
//! way, addressed to their client. The connection is made again whenever
//! it drops, for as long as the instance runs.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mvm_launch::net::relay_frame::{self, LEN_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use crate::network::UdpRelay;

use super::error::SupervisorError;

/// Between connection attempts (the guest's relay may not listen yet:
/// QEMU accepts on the host and then closes when the guest refuses).
const RETRY: Duration = Duration::from_millis(200);
/// Quick failures in a row before the log says the relay is not reachable.
const WARN_AFTER: u32 = 25;
/// A whole datagram, whatever arrives (more than IPv4 can carry).
const RECV_BYTES: usize = 65536;

/// The relays' UDP sockets, bound before boot so a port already taken
/// fails `up` before it costs a boot.
pub struct Bound(Vec<(UdpRelay, std::net::UdpSocket)>);

/// Binds each relay's published UDP address.
pub fn bind(relays: &[UdpRelay]) -> Result<Bound, SupervisorError> {
    let mut out = Vec::new();
    for r in relays {
        let io = |source| SupervisorError::Io {
            what: format!(
                "listening on {}:{}/udp for published guest port {} (is the port taken? choose another host port)",
                r.host_address, r.host_port, r.guest_port
            ),
            source,
        };
        let socket = std::net::UdpSocket::bind((r.host_address, r.host_port)).map_err(io)?;
        socket.set_nonblocking(true).map_err(io)?;
        out.push((*r, socket));
    }
    Ok(Bound(out))
}

/// The running relays; dropping this stops them.
pub struct Relays(Vec<JoinHandle<()>>);

impl Drop for Relays {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts relaying (within a tokio runtime, once the guest is up).
pub fn start(bound: Bound) -> Result<Relays, SupervisorError> {
    let mut tasks = Vec::new();
    for (relay, socket) in bound.0 {
        let udp = UdpSocket::from_std(socket).map_err(|source| SupervisorError::Io {
            what: format!("relaying published UDP port {}", relay.guest_port),
            source,
        })?;
        tasks.push(tokio::spawn(run(relay, Arc::new(udp))));
    }
    Ok(Relays(tasks))
}

async fn run(relay: UdpRelay, udp: Arc<UdpSocket>) {
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, relay.relay_host_port));
    let mut quick_failures = 0u32;
    loop {
        let ended = match TcpStream::connect(to).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                carry(&udp, tcp).await
            }
            Err(e) => Ended::Quick(format!("connecting to {to}: {e}")),
        };
        match ended {
            Ended::Quick(why) => {
                quick_failures += 1;
                if quick_failures == WARN_AFTER {
                    tracing::warn!(
                        guest_port = relay.guest_port,
                        "the guest's UDP relay is not reachable yet ({why}); still trying"
                    );
                } else {
                    tracing::debug!(guest_port = relay.guest_port, "UDP relay: {why}");
                }
            }
            Ended::After(why) => {
                quick_failures = 0;
                tracing::info!(
                    guest_port = relay.guest_port,
                    "UDP relay connection ended ({why}); reconnecting"
                );
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// How a relay connection ended: before any frame came back (the guest
/// side was not there) or after.
enum Ended {
    Quick(String),
    After(String),
}

/// Carries datagrams both ways over `tcp` until it fails.
async fn carry(udp: &UdpSocket, tcp: TcpStream) -> Ended {
    let (mut rd, mut wr) = tcp.into_split();
    let mut answered = false;
    let up = async {
        let mut buf = vec![0u8; RECV_BYTES];
        loop {
            let (n, from) = match udp.recv_from(&mut buf).await {
                Ok(got) => got,
                // An ICMP error from an earlier send_to; the socket is fine.
                Err(e) => {
                    tracing::debug!("UDP relay: receiving: {e}");
                    continue;
                }
            };
            let SocketAddr::V4(from) = from else {
                continue;
            };
            let Some(frame) = relay_frame::encode(from, &buf[..n]) else {
                tracing::debug!("UDP relay: dropped a {n}-byte datagram from {from}: too large");
                continue;
            };
            if let Err(e) = wr.write_all(&frame).await {
                return format!("sending to the guest: {e}");
            }
        }
    };
    let down = async {
        loop {
            let body = match read_body(&mut rd).await {
                Ok(Some(body)) => body,
                Ok(None) => return "the guest closed it".to_string(),
                Err(e) => return format!("receiving from the guest: {e}"),
            };
            answered = true;
            match relay_frame::decode(&body) {
                Ok((client, payload)) => {
                    if let Err(e) = udp.send_to(payload, SocketAddr::V4(client)).await {
                        tracing::debug!("UDP relay: replying to {client}: {e}");
                    }
                }
                Err(e) => tracing::warn!("UDP relay: dropped a frame from the guest: {e}"),
            }
        }
    };
    let why = tokio::select! {
        why = up => why,
        why = down => why,
    };
    if answered {
        Ended::After(why)
    } else {
        Ended::Quick(why)
    }
}

/// One frame's body; `None` at a clean end between frames. Any length is
/// read (the u16 caps it), so the stream never loses its place.
async fn read_body(rd: &mut OwnedReadHalf) -> std::io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; LEN_BYTES];
    match rd.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; relay_frame::body_len(header)];
    rd.read_exact(&mut body).await?;
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV4;

    use super::*;

    fn relay(host_port: u16, relay_host_port: u16) -> UdpRelay {
        UdpRelay {
            guest_port: 9999,
            host_address: Ipv4Addr::LOCALHOST,
            host_port,
            guest_relay_port: 61000,
            relay_host_port,
        }
    }

    async fn frame_from(guest: &mut TcpStream) -> (SocketAddrV4, Vec<u8>) {
        let mut header = [0u8; LEN_BYTES];
        guest.read_exact(&mut header).await.unwrap();
        let mut body = vec![0u8; relay_frame::body_len(header)];
        guest.read_exact(&mut body).await.unwrap();
        let (client, payload) = relay_frame::decode(&body).unwrap();
        (client, payload.to_vec())
    }

    /// A stand-in guest relay on real sockets: datagrams arrive framed with
    /// their client, replies reach that client, a malformed or oversized
    /// frame is dropped without losing the stream, and a dropped
    /// connection is made again.
    #[tokio::test]
    async fn datagrams_travel_framed_and_the_connection_comes_back() {
        let guest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_port = guest.local_addr().unwrap().port();
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = free.local_addr().unwrap().port();
        drop(free);
        let relays = start(bind(&[relay(udp_port, relay_port)]).unwrap()).unwrap();
        // The port is the relay's now.
        assert!(bind(&[relay(udp_port, relay_port)]).is_err());

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = match client.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        client
            .send_to(b"ping", ("127.0.0.1", udp_port))
            .await
            .unwrap();
        let (mut conn, _) = guest.accept().await.unwrap();
        assert_eq!(frame_from(&mut conn).await, (me, b"ping".to_vec()));

        let mut bad = vec![0, 3, 1, 2, 3]; // shorter than an address
        bad.extend_from_slice(&[0, 6, 0, 0, 0, 0, 1, 1]); // unspecified client
        let mut huge = ((relay_frame::ADDR_BYTES + relay_frame::MAX_PAYLOAD + 1) as u16)
            .to_be_bytes()
            .to_vec();
        huge.resize(
            LEN_BYTES + relay_frame::ADDR_BYTES + relay_frame::MAX_PAYLOAD + 1,
            7,
        );
        huge[2..6].copy_from_slice(&[127, 0, 0, 1]);
        huge[6..8].copy_from_slice(&me.port().to_be_bytes());
        bad.extend_from_slice(&huge);
        bad.extend_from_slice(&relay_frame::encode(me, b"pong").unwrap());
        conn.write_all(&bad).await.unwrap();
        let mut reply = [0u8; 64];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&reply[..n], b"pong", "only the good frame is delivered");

        drop(conn);
        let (mut again, _) = tokio::time::timeout(Duration::from_secs(5), guest.accept())
            .await
            .unwrap()
            .unwrap();
        client
            .send_to(b"again", ("127.0.0.1", udp_port))
            .await
            .unwrap();
        assert_eq!(frame_from(&mut again).await, (me, b"again".to_vec()));

        drop(relays);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Stopped: the UDP port is free again.
        bind(&[relay(udp_port, relay_port)]).unwrap();
    }
}
