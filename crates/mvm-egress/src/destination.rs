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
    if !private_ok {
        for addr in &addrs {
            if let Some(class) = ip_class(addr.ip()) {
                return Err(refuse(format!("resolves to {}, {class}", addr.ip())));
            }
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

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
