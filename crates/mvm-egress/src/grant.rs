//! `HOST:PORT` grants, as given on the gate's command line and asked for
//! in `CONNECT` requests.

use std::fmt;

use crate::GateError;

/// A concrete `host:port` grant. Hosts compare case-insensitively and
/// never as patterns; IPv6 literals are written in brackets.
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

    /// `host:port` or `[ipv6]:port`.
    pub fn parse(text: &str) -> Result<Grant, GateError> {
        let bad = || GateError::BadGrant(text.to_string());
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let ok_host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            }
        };
        if !ok_host || port == 0 {
            return Err(bad());
        }
        Ok(Grant::new(host, port))
    }

    /// The host without IPv6 brackets, as a resolver takes it.
    pub fn bare_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_strictly() {
        assert_eq!(
            Grant::parse("PyPI.org:443").unwrap(),
            Grant::new("pypi.org", 443)
        );
        assert_eq!(Grant::parse("[::1]:8443").unwrap().bare_host(), "::1");
        for bad in [
            "pypi.org",
            "*.pypi.org:443",
            "pypi.org:0",
            "pypi.org:x",
            ":443",
            "a b:1",
            "::1:443",
            "[pypi.org]:443",
            "a\u{1b}[2J:443",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }
}
