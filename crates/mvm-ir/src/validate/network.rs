//! Host names in egress rules and DNS resolvers: what is a catch-all
//! (`E_NETWORK_WILDCARD`) and what is not a host at all (`E_INVALID_VALUE`).

use std::net::IpAddr;

pub(super) enum HostProblem {
    /// Matches more than one host: `*`, an unspecified address, a CIDR.
    Wildcard(&'static str),
    /// Not a DNS name or an IP literal.
    Invalid(&'static str),
}

pub(super) fn host_problem(host: &str) -> Option<HostProblem> {
    if host.contains('*') {
        return Some(HostProblem::Wildcard("contains \"*\""));
    }
    if let Some((addr, _)) = host.split_once('/') {
        return Some(match ip_literal(addr) {
            Some(_) => HostProblem::Wildcard("is an address range (CIDR), not one host"),
            None => HostProblem::Invalid("contains \"/\"; give a bare host name, not a URL"),
        });
    }
    if let Some(ip) = ip_literal(host) {
        return ip.is_unspecified().then_some(HostProblem::Wildcard(
            "is the unspecified address, which means any host",
        ));
    }
    dns_name_problem(host).map(HostProblem::Invalid)
}

/// An IP literal in any spelling the OS accepts (`0`, `0x0` and `0.0`
/// are the unspecified address too), IPv6 optionally in brackets.
/// A `%scope` suffix is refused: it names an interface, not a host.
fn ip_literal(host: &str) -> Option<IpAddr> {
    if host.contains('%') {
        return None;
    }
    super::host::parse_ip(host)
}

/// RFC 1123 host name rules (underscores allowed, as real DNS has them).
fn dns_name_problem(host: &str) -> Option<&'static str> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > 253 {
        return Some("is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Some("has an empty label or one longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("has a label starting or ending with \"-\"");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Some("has characters other than letters, digits, \"-\", \"_\" and \".\"");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wildcard(h: &str) -> bool {
        matches!(host_problem(h), Some(HostProblem::Wildcard(_)))
    }
    fn invalid(h: &str) -> bool {
        matches!(host_problem(h), Some(HostProblem::Invalid(_)))
    }

    #[test]
    fn wildcards() {
        for h in [
            "*",
            "*.example.com",
            "api.*",
            "0.0.0.0",
            "::",
            "[::]",
            "0:0:0:0:0:0:0:0",
            "0.0.0.0/0",
            "::/0",
            "0",
            "0x0",
            "0.0",
            "10.0.0.0/8",
        ] {
            assert!(wildcard(h), "{h}");
        }
    }

    #[test]
    fn hosts() {
        for h in [
            "example.com",
            "pypi.org.",
            "10.0.0.1",
            "::1",
            "[2001:db8::1]",
            "_dmarc.example.com",
            "localhost",
        ] {
            assert!(host_problem(h).is_none(), "{h}");
        }
        for h in [
            "",
            ".",
            "a..b",
            "-a.com",
            "a-.com",
            "exa mple.com",
            "https://example.com:443",
            &"a".repeat(64),
        ] {
            assert!(invalid(h) || wildcard(h), "{h}");
        }
        assert!(invalid("exa mple.com") && invalid("a:b") && invalid("https://example.com"));
    }
}
