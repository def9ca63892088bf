//! Which destinations only the operator may open: loopback, unspecified,
//! private, link-local, CGNAT, multicast, broadcast, reserved and
//! cloud-metadata addresses, and names that are always local.
//!
//! Benchmarking (198.18/15) and documentation (192.0.2/24, 198.51.100/24,
//! 203.0.113/24, 2001:db8::/32) ranges are not on the list: they reach
//! nothing of the host's, and some networks route real services through
//! them (on the machines mvm is developed on, the package registries
//! resolve to 203.0.113.80).
//!
//! One implementation for the IR validator (a grant as written) and the
//! egress gate (a grant as written, then every address it resolves to on
//! every connection). Hosts are parsed as the OS would parse them, so
//! `2130706433`, `127.1`, `0x7f.1`, `0177.0.0.1` and `::ffff:127.0.0.1` are
//! all loopback; addresses that embed an IPv4 address (IPv4-mapped and
//! -compatible, NAT64, 6to4, Teredo) are judged by the address they embed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a destination is closed to declarations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// 127.0.0.0/8, ::1, `localhost` and `*.localhost`.
    Loopback,
    /// 0.0.0.0/8 ("this network": connecting to it reaches the host), ::.
    Unspecified,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16), ULA fc00::/7, site-local
    /// fec0::/10, local-use NAT64 64:ff9b:1::/48.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// Carrier-grade NAT, 100.64.0.0/10.
    Cgnat,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4, 192.0.0.0/24, 192.88.99.0/24, 100::/64, and
    /// IPv4-compatible IPv6 (::a.b.c.d, deprecated).
    Reserved,
    /// Cloud instance metadata: 169.254.169.254 (AWS, GCP, Azure, OCI, ...),
    /// fd00:ec2::254 (AWS), 100.100.100.200 (Alibaba), and the names
    /// `metadata`, `metadata.google.internal`, `instance-data`, ...
    Metadata,
}

impl Class {
    /// "a loopback address", for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Class::Loopback => "a loopback destination",
            Class::Unspecified => "the unspecified address (it reaches the host itself)",
            Class::Private => "a private address",
            Class::LinkLocal => "a link-local address",
            Class::Cgnat => "a carrier-grade NAT (shared) address",
            Class::Multicast => "a multicast address",
            Class::Broadcast => "the broadcast address",
            Class::Reserved => "a reserved address",
            Class::Metadata => "a cloud metadata service",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The class of `host` as written: an IP literal in any spelling the OS
/// accepts, or a name that is always local or always a metadata service.
/// `None` means "public as far as the text shows"; a name can still
/// resolve to anything, which only the gate can see.
pub fn host_class(host: &str) -> Option<Class> {
    match parse_ip(host) {
        Some(ip) => ip_class(ip),
        None => name_class(host),
    }
}

/// The class of one address, `None` when it is an ordinary public one.
pub fn ip_class(ip: IpAddr) -> Option<Class> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

/// `host` as an address, parsed the way the C library's resolver does
/// (inet_aton forms for IPv4; IPv6 with or without brackets, with an
/// optional `%scope`). A trailing dot is tolerated on IPv4 forms: glibc
/// would send `127.1.` to DNS, but other resolvers and URL parsers read it
/// as an address, so it is treated as one.
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.contains(':') {
        let addr = bare.split_once('%').map_or(bare, |(a, _)| a);
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if bare.len() != host.len() {
        return None; // brackets around something that is not IPv6
    }
    parse_inet_aton(host.strip_suffix('.').unwrap_or(host)).map(IpAddr::V4)
}

/// inet_aton: one to four parts separated by dots, each decimal, octal
/// (leading `0`) or hex (`0x`); the last part fills the remaining bytes,
/// so `127.1` is 127.0.0.1 and `2130706433` is too.
fn parse_inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        values.push(parse_part(part)?);
    }
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|&v| v > 0xff) {
        return None;
    }
    let last_bits = 32 - 8 * leading.len() as u32;
    if last_bits < 32 && *last >= 1u64 << last_bits {
        return None;
    }
    if *last > u32::MAX as u64 {
        return None;
    }
    let mut n: u32 = 0;
    for (i, &v) in leading.iter().enumerate() {
        n |= (v as u32) << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(n | *last as u32))
}

fn parse_part(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        // "0x" alone is 0 to glibc; "" (as in "1..2") is no number.
        return (radix == 16).then_some(0);
    }
    let mut value: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)? as u64;
        value = value.checked_mul(radix as u64)?.checked_add(d)?;
        if value > u32::MAX as u64 {
            return None;
        }
    }
    Some(value)
}

fn v4_class(ip: Ipv4Addr) -> Option<Class> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip == Ipv4Addr::BROADCAST => Class::Broadcast,
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => Class::Metadata,
        _ if ip == Ipv4Addr::new(100, 100, 100, 200) => Class::Metadata,
        _ if a == 0 => Class::Unspecified,
        _ if a == 127 => Class::Loopback,
        _ if a == 10 || (a == 172 && (16..32).contains(&b)) || (a == 192 && b == 168) => {
            Class::Private
        }
        _ if a == 169 && b == 254 => Class::LinkLocal,
        _ if a == 100 && (64..128).contains(&b) => Class::Cgnat,
        _ if (224..240).contains(&a) => Class::Multicast,
        _ if a >= 240 => Class::Reserved,
        _ if (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 88, 99) => Class::Reserved,
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<Class> {
    let s = ip.segments();
    let o = ip.octets();
    let embedded = |at: usize| Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]);
    if ip.is_unspecified() {
        return Some(Class::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Class::Loopback);
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Class::Metadata);
    }
    match s {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-translated ::ffff:0:a.b.c.d:
        // the kernel connects to the IPv4 address.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => v4_class(embedded(12)),
        // IPv4-compatible ::a.b.c.d: deprecated, and never public.
        [0, 0, 0, 0, 0, 0, _, _] => v4_class(embedded(12)).or(Some(Class::Reserved)),
        // NAT64 well-known prefix: a translator connects to the IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => v4_class(embedded(12)),
        [0x64, 0xff9b, 1, ..] => Some(Class::Private),
        // 6to4: the IPv4 address is bits 16..48.
        [0x2002, ..] => v4_class(embedded(2)),
        // Teredo: the client's IPv4 address, inverted, is the last 32 bits.
        [0x2001, 0, ..] => v4_class(Ipv4Addr::from(!u32::from(embedded(12)))),
        [0x0100, 0, 0, 0, ..] => Some(Class::Reserved),
        [x, ..] if x & 0xfe00 == 0xfc00 => Some(Class::Private),
        [x, ..] if x & 0xffc0 == 0xfec0 => Some(Class::Private),
        [x, ..] if x & 0xffc0 == 0xfe80 => Some(Class::LinkLocal),
        [x, ..] if x & 0xff00 == 0xff00 => Some(Class::Multicast),
        _ => None,
    }
}

/// Names that resolve to the host itself or to a metadata service
/// wherever they are resolved.
fn name_class(host: &str) -> Option<Class> {
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    const LOOPBACK: &[&str] = &[
        "localhost",
        "localhost.localdomain",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
    ];
    const METADATA: &[&str] = &[
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    ];
    if LOOPBACK.contains(&name.as_str()) || name.ends_with(".localhost") {
        return Some(Class::Loopback);
    }
    METADATA.contains(&name.as_str()).then_some(Class::Metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(h: &str) -> Option<Class> {
        host_class(h)
    }

    #[test]
    fn every_ipv4_spelling_the_resolver_accepts_is_parsed() {
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        for h in [
            "127.0.0.1",
            "2130706433",
            "127.1",
            "127.0.1",
            "0x7f.1",
            "0X7F.0.0.1",
            "0177.0.0.1",
            "0x7f000001",
            "017700000001",
            "127.0.0.1.",
        ] {
            assert_eq!(parse_ip(h), lo, "{h}");
        }
        assert_eq!(parse_ip("0"), Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(parse_ip("0x"), Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(
            parse_ip("10.1"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        for not_ip in [
            "",
            "1..2",
            "256.0.0.1",
            "1.2.3.4.5",
            "08",
            "0x1g",
            "4294967296",
            "1.16777216",
            "pypi.org",
            "127.0.0.1x",
            "+1",
            "[127.0.0.1]",
        ] {
            assert_eq!(parse_ip(not_ip), None, "{not_ip}");
        }
    }

    #[test]
    fn ipv6_literals_with_brackets_and_scopes() {
        assert_eq!(parse_ip("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(parse_ip("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(class("fe80::1%eth0"), Some(Class::LinkLocal));
        assert_eq!(class("[fe80::1%25eth0]"), Some(Class::LinkLocal));
    }

    #[test]
    fn every_refused_class_in_every_spelling() {
        use Class::*;
        let cases: &[(&str, Class)] = &[
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("2130706433", Loopback),
            ("127.1", Loopback),
            ("0x7f.1", Loopback),
            ("0177.0.0.1", Loopback),
            ("::1", Loopback),
            ("[::1]", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("[::ffff:7f00:1]", Loopback),
            ("::ffff:0:127.0.0.1", Loopback),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a00:1", Private),
            ("2002:7f00:1::", Loopback),
            ("2002:c0a8:101::1", Private),
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", Private), // Teredo client 10.0.0.1
            ("localhost", Loopback),
            ("LocalHost.", Loopback),
            ("api.localhost", Loopback),
            ("ip6-localhost", Loopback),
            ("0", Unspecified),
            ("0.0.0.0", Unspecified),
            ("0x0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("[::]", Unspecified),
            ("10.0.0.1", Private),
            ("012.1", Private),
            ("167772161", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("64:ff9b:1::1", Private),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("100.64.0.1", Cgnat),
            ("100.127.255.255", Cgnat),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("255.255.255.255", Broadcast),
            ("4294967295", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("100::1", Reserved),
            ("::8.8.8.8", Reserved),
            ("169.254.169.254", Metadata),
            ("2852039166", Metadata),
            ("0xa9.0xfe.0xa9.0xfe", Metadata),
            ("::ffff:169.254.169.254", Metadata),
            ("fd00:ec2::254", Metadata),
            ("100.100.100.200", Metadata),
            ("metadata.google.internal", Metadata),
            ("metadata.google.internal.", Metadata),
            ("METADATA", Metadata),
            ("instance-data", Metadata),
        ];
        for (host, want) in cases {
            assert_eq!(class(host), Some(*want), "{host}");
        }
    }

    #[test]
    fn public_destinations_pass() {
        for h in [
            "pypi.org",
            "files.pythonhosted.org",
            "8.8.8.8",
            "134744072", // 8.8.8.8
            "1.1",       // 1.0.0.1
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "192.169.0.1",
            "11.0.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "localhost.example.com",
            "mylocalhost",
            "metadata.example.com",
            // Benchmarking and documentation ranges (see the module doc).
            "203.0.113.80",
            "198.18.0.1",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert_eq!(class(h), None, "{h}");
        }
    }
}
