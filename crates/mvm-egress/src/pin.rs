//! Operator pins (`--pin HOST=IP`): the gate connects to IP instead of
//! resolving HOST, for a developer's own services and for tests. A pin
//! replaces only the resolver: the address is still checked like any
//! resolved one, so a loopback or private pin needs `--allow-private`.

use std::fmt;
use std::net::IpAddr;

use crate::{GateError, Grant};

/// `HOST=IP`; the host compares case-insensitively, as grants do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub host: String,
    pub ip: IpAddr,
}

impl Pin {
    /// `HOST=IP`, where HOST is a DNS name as a grant writes it and IP an
    /// IPv4 or IPv6 address in its usual spelling (no brackets).
    pub fn parse(text: &str) -> Result<Pin, GateError> {
        let bad = || GateError::BadPin(text.to_string());
        let (host, ip) = text.split_once('=').ok_or_else(bad)?;
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let host = parse_name(host).ok_or_else(bad)?;
        Ok(Pin { host, ip })
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.host, self.ip)
    }
}

/// A DNS name as a grant writes it (letters, digits, `-`, `.`), lowercased,
/// without a trailing dot; `None` for anything else, IP literals included.
pub(crate) fn parse_name(text: &str) -> Option<String> {
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.parse::<IpAddr>().is_ok() || text.starts_with('[') {
        return None;
    }
    // The grant parser is the one place host text is checked.
    let grant = Grant::parse(&format!("{text}:1")).ok()?;
    Some(grant.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_strictly() {
        let p = Pin::parse("Svc.Example.=127.0.0.1").unwrap();
        assert_eq!(p.host, "svc.example");
        assert_eq!(p.ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(p.to_string(), "svc.example=127.0.0.1");
        assert!(Pin::parse("svc=::1").is_ok());
        for bad in [
            "svc",
            "svc=",
            "=1.2.3.4",
            "svc=0x7f.1",
            "svc=[::1]",
            "1.2.3.4=1.2.3.4",
            "a b=1.2.3.4",
            "*.x=1.2.3.4",
            "svc=1.2.3.4=5",
        ] {
            assert!(Pin::parse(bad).is_err(), "{bad}");
        }
    }
}
