//! The guest's network, as both sides lay it out from `launch.json`.
//!
//! The runtime (which tells QEMU what to forward) and the guest agent
//! (which writes `/etc/hosts` and `/etc/resolv.conf` and the routing rules)
//! compute the same [`Layout`] from the same [`Network`], so they agree
//! without the host sending anything. The layout is the guest's view only;
//! what is enforced is what the host forwards (QEMU user networking with
//! `restrict=on`: an address and port nobody forwards reaches nothing), and
//! the egress gate behind each forward.
//!
//! Addresses on QEMU's user network (10.0.2.0/24): `.2` is the host alias
//! and `.3` QEMU's resolver (neither forwarded under `restrict=on`), `.15`
//! the guest, [`RESOLVER`] the guest's DNS when it has one, [`PROXY`] the
//! `HTTPS_PROXY` gate, and each granted name its own address from
//! [`FIRST_GRANT`] up, in the order the allowlist first names it.

use std::net::Ipv4Addr;

use crate::{Dns, HostPort, Network, NetworkMode, PortForward};

/// The guest's address and prefix.
pub const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
pub const PREFIX: u8 = 24;
/// QEMU's host alias: the default route in `host` mode, nothing otherwise.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// QEMU's own resolver, used only in `host` mode.
pub const HOST_MODE_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The guest's resolver (TCP port 53) under `dns_system` and `dns_resolver`.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 99);
pub const DNS_PORT: u16 = 53;
/// The `HTTP CONNECT` gate (`HTTPS_PROXY`), also used by the image builder.
pub const PROXY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const PROXY_PORT: u16 = 3128;
/// The first per-name address; names get `.101` to `.254`.
pub const FIRST_GRANT: u8 = 101;
/// How many distinct granted names one guest can have.
pub const MAX_NAMES: usize = (254 - FIRST_GRANT as usize) + 1;
/// In bridge mode each published UDP port is relayed over TCP (QEMU's
/// `restrict=on` drops every datagram the guest sends, replies included):
/// the `i`-th UDP port's relay listens in the guest on TCP port
/// `UDP_RELAY_BASE + i`.
pub const UDP_RELAY_BASE: u16 = 61000;
/// How many UDP ports one guest can publish in bridge mode.
pub const MAX_UDP_RELAYS: usize = 64;

/// One granted name at its guest address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Lowercase DNS name, as the allowlist wrote it.
    pub host: String,
    pub addr: Ipv4Addr,
    /// Every granted port of this name, in allowlist order.
    pub ports: Vec<u16>,
}

/// What the guest resolves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolver {
    /// No resolver: `/etc/hosts` (granted names) only.
    None,
    /// [`RESOLVER`]:53 over TCP, answered by the host gate from the
    /// grants only: a granted name that resolves on the host gets its guest
    /// address, any other name an error. DNS is not a channel out.
    Grants,
    /// [`RESOLVER`]:53 over TCP, relayed by the host gate to this server
    /// (address-filtered like any grant).
    Relay(HostPort),
    /// QEMU's resolver ([`HOST_MODE_DNS`]), in `host` mode.
    Host,
}

/// The guest's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub mode: NetworkMode,
    /// Granted DNS names at their guest addresses (not IP literals: those
    /// are reachable through the proxy only).
    pub names: Vec<NameAddr>,
    /// Every grant, names and literals, as the proxy allows them.
    pub grants: Vec<HostPort>,
    /// Whether [`PROXY`] is forwarded (bridge mode with at least one grant).
    pub proxy: bool,
    pub resolver: Resolver,
    /// Guest ports published on the host.
    pub published: Vec<PortForward>,
}

/// Why a network cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("network.egress.allowlist[{index}].host: `{host}` is not a DNS name or IP literal")]
    BadHost { index: usize, host: String },
    #[error("network.dns: resolver `{host}` is not a DNS name or IP literal with a port")]
    BadResolver { host: String },
    #[error("network.egress.allowlist[{index}].port: 0 is not a port")]
    BadPort { index: usize },
    #[error(
        "network.egress.allowlist names {count} distinct hosts; a guest can have at most {MAX_NAMES}"
    )]
    TooManyNames { count: usize },
    #[error(
        "network.ports[{index}]: guest TCP port {port} is where the guest relays published UDP port {udp_port}; publish another port"
    )]
    RelayPortTaken {
        index: usize,
        port: u16,
        udp_port: u16,
    },
    #[error(
        "network.ports publishes {count} UDP ports; a bridge-mode guest can publish at most {MAX_UDP_RELAYS}"
    )]
    TooManyUdpPorts { count: usize },
}

impl Layout {
    /// Lays out `net`. Mode `none` (and `deny`, which the IR lowers to it)
    /// has no device at all, so an empty layout.
    pub fn of(net: &Network) -> Result<Layout, LayoutError> {
        let mut layout = Layout {
            mode: net.mode,
            names: Vec::new(),
            grants: Vec::new(),
            proxy: false,
            resolver: Resolver::None,
            published: Vec::new(),
        };
        match net.mode {
            NetworkMode::None => return Ok(layout),
            NetworkMode::Host => {
                layout.resolver = Resolver::Host;
                layout.published = net.ports.clone();
                return Ok(layout);
            }
            NetworkMode::Bridge => {}
        }
        for (index, hp) in net.egress.allowlist.iter().enumerate() {
            let host = normalize(&hp.host);
            let literal = is_ip_literal(&host);
            if !literal && !is_dns_name(&host) {
                return Err(LayoutError::BadHost {
                    index,
                    host: hp.host.clone(),
                });
            }
            if hp.port == 0 {
                return Err(LayoutError::BadPort { index });
            }
            let grant = HostPort {
                host: host.clone(),
                port: hp.port,
            };
            if !layout.grants.contains(&grant) {
                layout.grants.push(grant);
            }
            if literal {
                continue;
            }
            match layout.names.iter_mut().find(|n| n.host == host) {
                Some(n) => {
                    if !n.ports.contains(&hp.port) {
                        n.ports.push(hp.port);
                    }
                }
                None => {
                    let count = layout.names.len() + 1;
                    if count > MAX_NAMES {
                        return Err(LayoutError::TooManyNames { count });
                    }
                    layout.names.push(NameAddr {
                        host,
                        addr: Ipv4Addr::new(10, 0, 2, FIRST_GRANT + (count - 1) as u8),
                        ports: vec![hp.port],
                    });
                }
            }
        }
        layout.proxy = !layout.grants.is_empty();
        layout.resolver = match &net.dns {
            Dns::None => Resolver::None,
            Dns::System => Resolver::Grants,
            Dns::Resolver { host, port } => {
                let host = normalize(host);
                if !is_ip_literal(&host) && !is_dns_name(&host) {
                    return Err(LayoutError::BadResolver { host });
                }
                if *port == 0 {
                    return Err(LayoutError::BadResolver {
                        host: format!("{host}:0"),
                    });
                }
                Resolver::Relay(HostPort { host, port: *port })
            }
        };
        layout.published = net.ports.clone();
        let relays = layout.udp_relays();
        if relays.len() > MAX_UDP_RELAYS {
            return Err(LayoutError::TooManyUdpPorts {
                count: relays.len(),
            });
        }
        for (index, p) in layout.published.iter().enumerate() {
            if p.proto != crate::Proto::Tcp {
                continue;
            }
            if let Some(&(udp_port, port)) = relays.iter().find(|r| r.1 == p.guest) {
                return Err(LayoutError::RelayPortTaken {
                    index,
                    port,
                    udp_port,
                });
            }
        }
        Ok(layout)
    }

    /// Bridge mode: `(guest UDP port, guest TCP relay port)` for each
    /// published UDP port, in the order `published` lists them. Empty in
    /// other modes (`host` forwards UDP as it is).
    pub fn udp_relays(&self) -> Vec<(u16, u16)> {
        if self.mode != NetworkMode::Bridge {
            return Vec::new();
        }
        self.published
            .iter()
            .filter(|p| p.proto == crate::Proto::Udp)
            .enumerate()
            // Saturates past the cap; `of` refuses that many anyway.
            .map(|(i, p)| (p.guest, UDP_RELAY_BASE.saturating_add(i as u16)))
            .collect()
    }

    /// Whether the guest gets a network device at all.
    pub fn has_device(&self) -> bool {
        self.mode != NetworkMode::None
    }

    /// `/etc/hosts` for the guest: localhost, then each granted name.
    pub fn hosts_file(&self) -> String {
        let mut s = String::from(
            "# Written by mvm at boot. Granted names are reached through the host's egress gate.\n\
             127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        );
        for n in &self.names {
            let ports: Vec<String> = n.ports.iter().map(u16::to_string).collect();
            s.push_str(&format!(
                "{}\t{}\t# granted ports {}\n",
                n.addr,
                n.host,
                ports.join(",")
            ));
        }
        s
    }

    /// `/etc/resolv.conf` for the guest, saying what is true.
    pub fn resolv_conf(&self) -> String {
        match &self.resolver {
            Resolver::None => "# Written by mvm at boot: no DNS (dns_none). Only the granted names in /etc/hosts resolve.\n\
                 options attempts:1 timeout:1\n"
                .to_string(),
            Resolver::Grants => format!(
                "# Written by mvm at boot (dns_system): the host answers granted names only, over TCP.\n\
                 nameserver {RESOLVER}\noptions use-vc attempts:1 timeout:2\n"
            ),
            Resolver::Relay(hp) => format!(
                "# Written by mvm at boot (dns_resolver): relayed by the host to {}:{} over TCP.\n\
                 nameserver {RESOLVER}\noptions use-vc attempts:2 timeout:3\n",
                hp.host, hp.port
            ),
            Resolver::Host => format!(
                "# Written by mvm at boot (host mode): QEMU's resolver, which uses the host's.\n\
                 nameserver {HOST_MODE_DNS}\n"
            ),
        }
    }

    /// `HTTPS_PROXY` and friends for the guest environment, when a grant exists.
    pub fn proxy_env(&self) -> Vec<(&'static str, String)> {
        if !self.proxy {
            return Vec::new();
        }
        let url = format!("http://{PROXY}:{PROXY_PORT}");
        // Granted names are reached directly; the proxy is for clients
        // that prefer it and for IP-literal grants.
        let mut no_proxy: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
        no_proxy.extend(self.names.iter().map(|n| n.host.clone()));
        let no_proxy = no_proxy.join(",");
        vec![
            ("HTTPS_PROXY", url.clone()),
            ("https_proxy", url),
            ("NO_PROXY", no_proxy.clone()),
            ("no_proxy", no_proxy),
        ]
    }
}

/// The UDP relay's wire format, the same on both ends of its TCP
/// connection: one frame per datagram,
/// `[u16 BE length of the rest][IPv4 (4 bytes)][u16 BE port][payload]`,
/// where the address is the UDP client on the host's side. The length
/// always says where the next frame starts, so a malformed frame is
/// skipped without losing the stream.
pub mod relay_frame {
    use std::net::{Ipv4Addr, SocketAddrV4};

    /// The length field itself.
    pub const LEN_BYTES: usize = 2;
    /// Address and port, before the payload.
    pub const ADDR_BYTES: usize = 6;
    /// The largest UDP payload over IPv4.
    pub const MAX_PAYLOAD: usize = 65507;

    /// Why a frame's body was dropped.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum FrameError {
        #[error("relay frame of {0} bytes is shorter than its {ADDR_BYTES}-byte address")]
        Short(usize),
        #[error(
            "relay frame carries {0} payload bytes; a UDP datagram holds at most {MAX_PAYLOAD}"
        )]
        TooLarge(usize),
        #[error("relay frame names client {0}, which no datagram can come from")]
        BadClient(SocketAddrV4),
    }

    /// One whole frame for `payload` from (or to) `client`; `None` when the
    /// payload cannot be a datagram.
    pub fn encode(client: SocketAddrV4, payload: &[u8]) -> Option<Vec<u8>> {
        if payload.len() > MAX_PAYLOAD {
            return None;
        }
        let len = (ADDR_BYTES + payload.len()) as u16;
        let mut out = Vec::with_capacity(LEN_BYTES + len as usize);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&client.ip().octets());
        out.extend_from_slice(&client.port().to_be_bytes());
        out.extend_from_slice(payload);
        Some(out)
    }

    /// How many body bytes follow a length field.
    pub fn body_len(header: [u8; LEN_BYTES]) -> usize {
        u16::from_be_bytes(header) as usize
    }

    /// The client and payload of a frame's body (what follows its length):
    /// the one place relay frames are parsed.
    pub fn decode(body: &[u8]) -> Result<(SocketAddrV4, &[u8]), FrameError> {
        let Some((addr, payload)) = body.split_at_checked(ADDR_BYTES) else {
            return Err(FrameError::Short(body.len()));
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(payload.len()));
        }
        let ip = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
        let client = SocketAddrV4::new(ip, u16::from_be_bytes([addr[4], addr[5]]));
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || client.port() == 0 {
            return Err(FrameError::BadClient(client));
        }
        Ok((client, payload))
    }
}

/// One spelling per host, as the gate's grants and the operator's options
/// compare them: lowercase, no trailing dot, IPv6 literals in brackets.
pub fn normalize(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if !host.starts_with('[') && host.parse::<std::net::Ipv6Addr>().is_ok() {
        return format!("[{host}]");
    }
    host.to_string()
}

fn is_ip_literal(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<std::net::IpAddr>().is_ok()
}

/// Letters, digits, `-` and `.`; labels 1..63; at most 253; and a last
/// label that is not a number (decimal or `0x` hex), so no inet_aton
/// spelling of an address (`0x7f.1`, `2130706433`) passes as a name.
fn is_dns_name(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let last = trimmed.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return false;
    }
    trimmed.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Egress, Proto};

    fn net(mode: NetworkMode, grants: &[(&str, u16)], dns: Dns) -> Network {
        Network {
            mode,
            ports: vec![PortForward {
                guest: 8080,
                host: 0,
                proto: Proto::Tcp,
            }],
            egress: Egress::of(grants),
            dns,
        }
    }

    #[test]
    fn names_get_one_address_each_in_allowlist_order() {
        let l = Layout::of(&net(
            NetworkMode::Bridge,
            &[
                ("API.openai.com", 443),
                ("pypi.org", 443),
                ("api.openai.com", 80),
                ("93.184.215.14", 443),
            ],
            Dns::System,
        ))
        .unwrap();
        assert_eq!(l.names.len(), 2);
        assert_eq!(l.names[0].host, "api.openai.com");
        assert_eq!(l.names[0].addr, Ipv4Addr::new(10, 0, 2, 101));
        assert_eq!(l.names[0].ports, [443, 80]);
        assert_eq!(l.names[1].addr, Ipv4Addr::new(10, 0, 2, 102));
        assert_eq!(l.grants.len(), 4);
        assert!(l.proxy);
        assert_eq!(l.resolver, Resolver::Grants);
        assert!(l.hosts_file().contains("10.0.2.101\tapi.openai.com\t"));
        assert!(!l.hosts_file().contains("93.184"));
        assert!(
            l.resolv_conf()
                .contains("nameserver 10.0.2.99\noptions use-vc")
        );
        let env = l.proxy_env();
        assert!(env.contains(&("HTTPS_PROXY", "http://10.0.2.100:3128".into())));
    }

    #[test]
    fn hosts_are_spelled_one_way() {
        let l = Layout::of(&net(
            NetworkMode::Bridge,
            &[
                ("PyPI.org.", 443),
                ("2606:4700::1111", 443),
                ("_svc.example.com", 443),
            ],
            Dns::Resolver {
                host: "1.1.1.1".into(),
                port: 53,
            },
        ))
        .unwrap();
        let grants: Vec<String> = l
            .grants
            .iter()
            .map(|g| format!("{}:{}", g.host, g.port))
            .collect();
        assert_eq!(
            grants,
            [
                "pypi.org:443",
                "[2606:4700::1111]:443",
                "_svc.example.com:443"
            ]
        );
        let bad = Layout::of(&net(
            NetworkMode::Bridge,
            &[],
            Dns::Resolver {
                host: "a\nnameserver 6.6.6.6".into(),
                port: 53,
            },
        ));
        assert!(
            matches!(bad, Err(LayoutError::BadResolver { .. })),
            "{bad:?}"
        );
    }

    #[test]
    fn none_and_host_modes() {
        let none = Layout::of(&net(NetworkMode::None, &[("pypi.org", 443)], Dns::None)).unwrap();
        assert!(!none.has_device() && none.names.is_empty() && none.published.is_empty());
        let host = Layout::of(&net(NetworkMode::Host, &[], Dns::System)).unwrap();
        assert_eq!(host.resolver, Resolver::Host);
        assert!(host.proxy_env().is_empty());
        assert_eq!(host.published.len(), 1);
        let bare = Layout::of(&net(NetworkMode::Bridge, &[], Dns::None)).unwrap();
        assert!(!bare.proxy && bare.resolv_conf().contains("no DNS"));
    }

    #[test]
    fn hostile_hosts_are_refused_before_they_reach_a_file() {
        for bad in [
            "a\n10.0.0.1 evil",
            "a b",
            "-a.com",
            "",
            "*.x.com",
            "0x7f.1",
            "a..b",
            "2130706433",
            "127.1",
        ] {
            let e = Layout::of(&net(NetworkMode::Bridge, &[(bad, 443)], Dns::None));
            assert!(matches!(e, Err(LayoutError::BadHost { .. })), "{bad:?}");
        }
        let many: Vec<(String, u16)> = (0..=MAX_NAMES)
            .map(|i| (format!("h{i}.com"), 443))
            .collect();
        let many: Vec<(&str, u16)> = many.iter().map(|(h, p)| (h.as_str(), *p)).collect();
        assert!(matches!(
            Layout::of(&net(NetworkMode::Bridge, &many, Dns::None)),
            Err(LayoutError::TooManyNames { .. })
        ));
        assert!(Layout::of(&net(NetworkMode::Bridge, &many[..MAX_NAMES], Dns::None)).is_ok());
    }

    fn with_ports(mode: NetworkMode, ports: &[(u16, Proto)]) -> Network {
        let mut n = net(mode, &[], Dns::None);
        n.ports = ports
            .iter()
            .map(|&(guest, proto)| PortForward {
                guest,
                host: 0,
                proto,
            })
            .collect();
        n
    }

    #[test]
    fn udp_ports_get_relay_ports_in_bridge_mode_only() {
        let ports = [
            (9999, Proto::Udp),
            (8080, Proto::Tcp),
            (5353, Proto::Udp),
            (61001, Proto::Udp),
        ];
        let l = Layout::of(&with_ports(NetworkMode::Bridge, &ports)).unwrap();
        assert_eq!(
            l.udp_relays(),
            [(9999, 61000), (5353, 61001), (61001, 61002)]
        );
        let host = Layout::of(&with_ports(NetworkMode::Host, &ports)).unwrap();
        assert!(host.udp_relays().is_empty());
        // A published TCP port on a relay port would clash with the relay.
        let clash = [(9999, Proto::Udp), (5353, Proto::Udp), (61001, Proto::Tcp)];
        assert_eq!(
            Layout::of(&with_ports(NetworkMode::Bridge, &clash)),
            Err(LayoutError::RelayPortTaken {
                index: 2,
                port: 61001,
                udp_port: 5353
            })
        );
        // ... but not in host mode, where there is no relay.
        assert!(Layout::of(&with_ports(NetworkMode::Host, &clash)).is_ok());
        let many: Vec<(u16, Proto)> = (0..=MAX_UDP_RELAYS as u16)
            .map(|i| (1000 + i, Proto::Udp))
            .collect();
        assert!(matches!(
            Layout::of(&with_ports(NetworkMode::Bridge, &many)),
            Err(LayoutError::TooManyUdpPorts { count: 65 })
        ));
        assert!(Layout::of(&with_ports(NetworkMode::Bridge, &many[..MAX_UDP_RELAYS])).is_ok());
    }

    #[test]
    fn relay_frames_round_trip_and_malformed_ones_are_named() {
        use relay_frame::*;
        use std::net::SocketAddrV4;
        let client = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 40000);
        let frame = encode(client, b"ping").unwrap();
        assert_eq!(
            frame,
            [0, 10, 127, 0, 0, 1, 0x9c, 0x40, b'p', b'i', b'n', b'g']
        );
        assert_eq!(body_len([frame[0], frame[1]]), frame.len() - LEN_BYTES);
        assert_eq!(decode(&frame[LEN_BYTES..]), Ok((client, &b"ping"[..])));
        // Empty datagrams are datagrams too.
        let empty = encode(client, b"").unwrap();
        assert_eq!(decode(&empty[LEN_BYTES..]), Ok((client, &b""[..])));
        let max = encode(client, &vec![7; MAX_PAYLOAD]).unwrap();
        assert_eq!(body_len([max[0], max[1]]), MAX_PAYLOAD + ADDR_BYTES);
        assert!(encode(client, &vec![7; MAX_PAYLOAD + 1]).is_none());
        assert_eq!(decode(&[127, 0, 0]), Err(FrameError::Short(3)));
        assert_eq!(decode(&[]), Err(FrameError::Short(0)));
        let big = vec![1u8; ADDR_BYTES + MAX_PAYLOAD + 1];
        assert_eq!(decode(&big), Err(FrameError::TooLarge(MAX_PAYLOAD + 1)));
        for bad in [
            [0, 0, 0, 0, 1, 1],
            [127, 0, 0, 1, 0, 0],
            [224, 0, 0, 1, 1, 1],
        ] {
            assert!(
                matches!(decode(&bad), Err(FrameError::BadClient(_))),
                "{bad:?}"
            );
        }
    }
}
