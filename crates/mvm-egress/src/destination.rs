//! Where a granted `host:port` may be connected: its addresses, resolved
//! once for this connection and each checked, so a name that resolves to
//! a public address once and to 127.0.0.1 the next time (DNS rebinding)
//! is refused the second time. The gate then connects to exactly these
//! addresses and never resolves the name again.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use mvm_ir::validate::host::{host_class, ip_class, parse_ip};

use crate::{GateError, Grant};

/// A resolver: a name and port to the addresses to try, in order.
pub type Resolve = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// The host's resolver (getaddrinfo).
pub fn system_resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// The addresses `grant` may be connected at. Unless `private_ok` (the
/// operator allowed this exact destination), a host that is, or resolves
/// to, a loopback, private, link-local, metadata, ... address is refused.
/// An operator's `pin` stands in for resolving the name and is checked
/// the same way, so a pin to loopback still needs `private_ok`.
pub(crate) fn addresses(
    grant: &Grant,
    private_ok: bool,
    pin: Option<IpAddr>,
    resolve: &Resolve,
) -> Result<Vec<SocketAddr>, GateError> {
    let host = grant.bare_host();
    let refuse = |why: String| GateError::Private {
        target: grant.to_string(),
        why,
    };
    if !private_ok && let Some(class) = host_class(host) {
        return Err(refuse(format!("is {class}")));
    }
    // A literal in any spelling is the address it spells; it is never
    // handed to a resolver that might read it differently.
    let addrs = match parse_ip(host).or(pin) {
        Some(ip) => vec![SocketAddr::new(ip, grant.port)],
        None => resolve(host, grant.port).map_err(|source| GateError::Resolve {
            target: grant.to_string(),
            source,
        })?,
    };
    if addrs.is_empty() {
        return Err(GateError::Resolve {
            target: grant.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        });
    }
    if private_ok && pin.is_none() {
        // The operator allowed this grant to be private, not whatever its
        // DNS says: a metadata service needs an explicit pin to it.
        for addr in &addrs {
            if ip_class(addr.ip()) == Some(mvm_ir::validate::host::Class::Metadata) {
                return Err(refuse(format!(
                    "resolves to {}, a cloud metadata service; pin it explicitly (--egress-pin) to allow it",
                    addr.ip()
                )));
            }
        }
    }
    if !private_ok {
        let own = host_addresses();
        for addr in &addrs {
            if let Some(class) = ip_class(addr.ip()) {
                return Err(refuse(format!("resolves to {}, {class}", addr.ip())));
            }
            // A public address of this very host would reach its services
            // listening on all interfaces.
            // Compared canonically: `::ffff:a.b.c.d` is a.b.c.d.
            let ip = addr.ip().to_canonical();
            if own.iter().any(|o| o.to_canonical() == ip) {
                return Err(refuse(format!(
                    "resolves to {}, an address of this host",
                    addr.ip()
                )));
            }
        }
    }
    Ok(addrs)
}

/// Every address on this host's interfaces (empty if they cannot be read:
/// the class check above still holds).
pub(crate) fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points at a sockaddr whose family says its type.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: an AF_INET sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ));
            } else if family == libc::AF_INET6 {
                // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn allowing_a_private_grant_does_not_allow_metadata_unless_pinned() {
        let meta = to([169, 254, 169, 254]);
        let name = Grant::new("dev.example", 80);
        let e = addresses(&name, true, None, &meta).unwrap_err().to_string();
        assert!(e.contains("metadata"), "{e}");
        let pinned = Some(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)));
        assert!(addresses(&name, true, pinned, &meta).is_ok());
        assert!(addresses(&name, true, None, &to([10, 1, 2, 3])).is_ok());
    }

    #[test]
    fn a_name_resolving_to_this_hosts_own_address_is_refused() {
        let own: Vec<IpAddr> = host_addresses()
            .into_iter()
            .filter(|ip| ip_class(*ip).is_none())
            .collect();
        assert!(
            host_addresses().iter().any(|ip| ip.is_loopback()),
            "getifaddrs reads this host's addresses (lo at least)"
        );
        let name = Grant::new("looks-public.example", 443);
        for ip in own {
            let resolve = move |_: &str, p| Ok(vec![SocketAddr::new(ip, p)]);
            let e = addresses(&name, false, None, &resolve)
                .unwrap_err()
                .to_string();
            assert!(e.contains("an address of this host"), "{e}");
            assert!(addresses(&name, true, None, &resolve).is_ok());
            // The IPv4-mapped IPv6 spelling of an own IPv4 address too.
            if let IpAddr::V4(v4) = ip {
                let mapped = IpAddr::V6(v4.to_ipv6_mapped());
                let resolve = move |_: &str, p| Ok(vec![SocketAddr::new(mapped, p)]);
                let e = addresses(&name, false, None, &resolve)
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("an address of this host"), "{e}");
            }
        }
    }

    fn to(ip: [u8; 4]) -> impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> {
        move |_, port| Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)])
    }

    #[test]
    fn written_and_resolved_private_addresses_are_refused_unless_allowed() {
        let public = to([93, 184, 215, 14]);
        let lo = to([127, 0, 0, 1]);
        for host in [
            "127.0.0.1",
            "2130706433",
            "0x7f.1",
            "localhost",
            "[::1]",
            "0",
        ] {
            let g = Grant::parse(&format!("{host}:443")).unwrap();
            let e = addresses(&g, false, None, &public).unwrap_err();
            assert!(matches!(e, GateError::Private { .. }), "{host}: {e}");
        }
        let name = Grant::new("rebind.example", 443);
        assert!(addresses(&name, false, None, &public).is_ok());
        let e = addresses(&name, false, None, &lo).unwrap_err().to_string();
        assert!(e.contains("resolves to 127.0.0.1, a loopback"), "{e}");
        // One private address among public ones is enough to refuse.
        let mixed = |_: &str, p| {
            Ok(vec![
                SocketAddr::from(([93, 184, 215, 14], p)),
                SocketAddr::from(([169, 254, 169, 254], p)),
            ])
        };
        assert!(addresses(&name, false, None, &mixed).is_err());
        assert_eq!(
            addresses(&name, true, None, &lo).unwrap(),
            [SocketAddr::from(([127, 0, 0, 1], 443))]
        );
        // A literal is never resolved: "0x7f.1" is 127.0.0.1, not a name.
        let never = |_: &str, _| -> io::Result<Vec<SocketAddr>> { panic!("resolved a literal") };
        let g = Grant::parse("0x7f.1:80").unwrap();
        assert_eq!(
            addresses(&g, true, None, &never).unwrap(),
            [SocketAddr::from(([127, 0, 0, 1], 80))]
        );
    }

    #[test]
    fn a_pin_replaces_resolving_and_is_checked_like_an_answer() {
        let never =
            |_: &str, _| -> io::Result<Vec<SocketAddr>> { panic!("resolved a pinned name") };
        let name = Grant::new("svc.example", 8443);
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let e = addresses(&name, false, lo, &never).unwrap_err().to_string();
        assert!(e.contains("resolves to 127.0.0.1, a loopback"), "{e}");
        assert_eq!(
            addresses(&name, true, lo, &never).unwrap(),
            [SocketAddr::from(([127, 0, 0, 1], 8443))]
        );
        let public = Some(IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14)));
        assert_eq!(
            addresses(&name, false, public, &never).unwrap(),
            [SocketAddr::from(([93, 184, 215, 14], 8443))]
        );
    }
}
