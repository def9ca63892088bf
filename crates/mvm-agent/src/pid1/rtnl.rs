//! The few rtnetlink requests PID 1 makes: policy-routing rules
//! (`RTM_NEWRULE`) and one default route (`RTM_NEWROUTE`).
//!
//! Encoded by hand: two fixed headers and a handful of attributes, against
//! the kernel's uapi (linux/netlink.h, linux/rtnetlink.h,
//! linux/fib_rules.h), with no dependency to keep building statically.
//! Every request asks for an ACK and waits for it, so a refused rule is an
//! error naming that rule, not a silent gap in the policy.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

// linux/netlink.h
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_HDRLEN: usize = 16;
// linux/rtnetlink.h
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWRULE: u16 = 32;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
pub const RT_TABLE_MAIN: u8 = 254;
// linux/fib_rules.h
const FRA_DST: u16 = 1;
const FRA_SRC: u16 = 2;
const FRA_PRIORITY: u16 = 6;
const FRA_TABLE: u16 = 15;
const FRA_IP_PROTO: u16 = 22;
const FRA_SPORT_RANGE: u16 = 23;
const FRA_DPORT_RANGE: u16 = 24;
const FR_ACT_TO_TBL: u8 = 1;
const FR_ACT_PROHIBIT: u8 = 8;

/// The kernel answers at once; this only bounds a broken kernel.
const ACK_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn number(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn number(self) -> u8 {
        match self {
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Route by the main table (the connected route of eth0).
    LookupMain,
    /// Fail the lookup: `connect`/`sendto` get EACCES at once.
    Prohibit,
}

/// One FIB rule, as `ip rule` would show it. Address selectors are IPv4
/// /32s; an IPv6 rule carries none (only the catch-all is IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub family: Family,
    pub to: Option<Ipv4Addr>,
    pub from: Option<Ipv4Addr>,
    pub proto: Option<Proto>,
    pub dport: Option<u16>,
    pub sport: Option<u16>,
    pub action: Action,
}

impl Rule {
    /// `priority: prohibit` for a whole family.
    pub fn prohibit_all(family: Family, priority: u32) -> Rule {
        Rule {
            priority,
            family,
            to: None,
            from: None,
            proto: None,
            dport: None,
            sport: None,
            action: Action::Prohibit,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.family {
            Family::V4 => "",
            Family::V6 => "-6 ",
        };
        write!(f, "{family}{}:", self.priority)?;
        if let Some(ip) = self.from {
            write!(f, " from {ip}/32")?;
        }
        if let Some(ip) = self.to {
            write!(f, " to {ip}/32")?;
        }
        if self.from.is_none() && self.to.is_none() {
            f.write_str(" from all")?;
        }
        if let Some(p) = self.proto {
            write!(f, " ipproto {}", p.name())?;
        }
        if let Some(p) = self.sport {
            write!(f, " sport {p}")?;
        }
        if let Some(p) = self.dport {
            write!(f, " dport {p}")?;
        }
        match self.action {
            Action::LookupMain => f.write_str(" lookup main"),
            Action::Prohibit => f.write_str(" prohibit"),
        }
    }
}

/// A netlink message under construction: header, fixed part, attributes.
struct Message(Vec<u8>);

impl Message {
    fn new(kind: u16, flags: u16, seq: u32) -> Message {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        Message(buf)
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    /// A `struct rtattr` and its payload, padded to 4 bytes.
    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() as u32).to_ne_bytes();
        self.0[..4].copy_from_slice(&len);
        self.0
    }
}

/// `struct fib_rule_port_range`: host byte order, inclusive.
fn port_range(port: u16) -> [u8; 4] {
    let mut b = [0; 4];
    b[..2].copy_from_slice(&port.to_ne_bytes());
    b[2..].copy_from_slice(&port.to_ne_bytes());
    b
}

pub(crate) fn encode_rule(rule: &Rule, seq: u32) -> Vec<u8> {
    let mut m = Message::new(
        RTM_NEWRULE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
    );
    let (table, action) = match rule.action {
        Action::LookupMain => (RT_TABLE_MAIN, FR_ACT_TO_TBL),
        Action::Prohibit => (0, FR_ACT_PROHIBIT),
    };
    let v4 = rule.family == Family::V4;
    let dst_len = if v4 && rule.to.is_some() { 32 } else { 0 };
    let src_len = if v4 && rule.from.is_some() { 32 } else { 0 };
    // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1,
    // res2, action, flags (u32).
    m.bytes(&[
        rule.family.number(),
        dst_len,
        src_len,
        0,
        table,
        0,
        0,
        action,
    ]);
    m.bytes(&0u32.to_ne_bytes());
    m.attr(FRA_PRIORITY, &rule.priority.to_ne_bytes());
    if rule.action == Action::LookupMain {
        m.attr(FRA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
    }
    if v4 {
        if let Some(ip) = rule.to {
            m.attr(FRA_DST, &ip.octets());
        }
        if let Some(ip) = rule.from {
            m.attr(FRA_SRC, &ip.octets());
        }
    }
    if let Some(p) = rule.proto {
        m.attr(FRA_IP_PROTO, &[p.number()]);
    }
    if let Some(p) = rule.sport {
        m.attr(FRA_SPORT_RANGE, &port_range(p));
    }
    if let Some(p) = rule.dport {
        m.attr(FRA_DPORT_RANGE, &port_range(p));
    }
    m.finish()
}

pub(crate) fn encode_default_route(gateway: Ipv4Addr, ifindex: u32, seq: u32) -> Vec<u8> {
    let mut m = Message::new(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
    );
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
    // type, flags (u32).
    m.bytes(&[
        libc::AF_INET as u8,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ]);
    m.bytes(&0u32.to_ne_bytes());
    m.attr(RTA_GATEWAY, &gateway.octets());
    m.attr(RTA_OIF, &ifindex.to_ne_bytes());
    m.finish()
}

/// What the kernel said to request `seq` in `reply`: `None` when the reply
/// holds no answer to it (keep reading). Malformed replies are errors.
pub(crate) fn parse_ack(mut reply: &[u8], seq: u32) -> Option<io::Result<()>> {
    let malformed = |why: &str| {
        Some(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed netlink reply: {why}"),
        )))
    };
    while reply.len() >= NLMSG_HDRLEN {
        let word = |at: usize| {
            u32::from_ne_bytes([reply[at], reply[at + 1], reply[at + 2], reply[at + 3]])
        };
        let len = word(0) as usize;
        let kind = u16::from_ne_bytes([reply[4], reply[5]]);
        let their_seq = word(8);
        if len < NLMSG_HDRLEN || len > reply.len() {
            return malformed("a message length runs past the datagram");
        }
        if kind == NLMSG_ERROR && their_seq == seq {
            if len < NLMSG_HDRLEN + 4 {
                return malformed("an error message without its code");
            }
            let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
            return Some(if code == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(code.saturating_neg()))
            });
        }
        let step = len.next_multiple_of(4).min(reply.len());
        reply = &reply[step..];
    }
    None
}

/// A `NETLINK_ROUTE` socket that sends one request at a time.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        // SAFETY: plain socket(2); the descriptor is owned right below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(annotate(
                io::Error::last_os_error(),
                "opening a netlink socket",
            ));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let timeout = libc::timeval {
            tv_sec: ACK_WAIT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: SO_RCVTIMEO takes a timeval of the given size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(annotate(
                io::Error::last_os_error(),
                "setting the netlink timeout",
            ));
        }
        Ok(Rtnl { fd, seq: 0 })
    }

    pub fn add_rule(&mut self, rule: &Rule) -> io::Result<()> {
        self.seq += 1;
        let msg = encode_rule(rule, self.seq);
        self.request(&msg)
            .map_err(|e| annotate(e, &format!("adding rule `{rule}`")))
    }

    /// `default via GATEWAY dev IFNAME` in the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, ifname: &str) -> io::Result<()> {
        let what = format!("adding route `default via {gateway} dev {ifname}`");
        let name = std::ffi::CString::new(ifname)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `name` is a valid C string for the call's duration.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(annotate(io::Error::last_os_error(), &what));
        }
        self.seq += 1;
        let msg = encode_default_route(gateway, index, self.seq);
        self.request(&msg).map_err(|e| annotate(e, &what))
    }

    fn request(&mut self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: all-zero sockaddr_nl addresses the kernel (port id 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `msg` and `kernel` are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: `buf` is writable for its length.
            let got =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the kernel did not answer within {ACK_WAIT:?}"),
                    ));
                }
                return Err(e);
            }
            if let Some(answer) = parse_ack(&buf[..got as usize], self.seq) {
                return answer;
            }
        }
    }
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// (type, payload) of each attribute after the 16+12 bytes of headers.
    fn attrs(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 28;
        while at < b.len() {
            let len = u16_at(b, at) as usize;
            out.push((u16_at(b, at + 2), b[at + 4..at + len].to_vec()));
            at += len.next_multiple_of(4);
        }
        assert_eq!(at, b.len(), "attributes fill the message exactly");
        out
    }

    #[test]
    fn encodes_a_port_rule_like_iproute2() {
        let rule = Rule {
            priority: 101,
            family: Family::V4,
            to: Some(Ipv4Addr::new(10, 0, 2, 101)),
            from: None,
            proto: Some(Proto::Tcp),
            dport: Some(443),
            sport: None,
            action: Action::LookupMain,
        };
        let b = encode_rule(&rule, 7);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(u16_at(&b, 4), RTM_NEWRULE);
        assert_eq!(u16_at(&b, 6), 0x1 | 0x4 | 0x200 | 0x400);
        assert_eq!(u32_at(&b, 8), 7);
        // fib_rule_hdr
        assert_eq!(&b[16..24], &[2, 32, 0, 0, 254, 0, 0, 1]);
        assert_eq!(u32_at(&b, 24), 0);
        let mut port = Vec::from(443u16.to_ne_bytes());
        port.extend_from_slice(&443u16.to_ne_bytes());
        assert_eq!(
            attrs(&b),
            vec![
                (6, 101u32.to_ne_bytes().to_vec()),
                (15, 254u32.to_ne_bytes().to_vec()),
                (1, vec![10, 0, 2, 101]),
                (22, vec![6]),
                (24, port),
            ]
        );
        assert_eq!(
            rule.to_string(),
            "101: to 10.0.2.101/32 ipproto tcp dport 443 lookup main"
        );
    }

    #[test]
    fn encodes_source_port_and_prohibit_rules() {
        let reply = Rule {
            priority: 120,
            family: Family::V4,
            to: None,
            from: Some(Ipv4Addr::new(10, 0, 2, 15)),
            proto: Some(Proto::Udp),
            dport: None,
            sport: Some(5353),
            action: Action::LookupMain,
        };
        let b = encode_rule(&reply, 1);
        assert_eq!(&b[16..20], &[2, 0, 32, 0]);
        let a = attrs(&b);
        assert!(a.contains(&(2, vec![10, 0, 2, 15])));
        assert!(a.contains(&(22, vec![17])));
        assert!(
            a.iter()
                .any(|(t, p)| *t == 23 && u16_at(p, 0) == 5353 && u16_at(p, 2) == 5353)
        );
        assert!(!a.iter().any(|(t, _)| *t == 24));

        let deny = Rule::prohibit_all(Family::V6, 32000);
        let b = encode_rule(&deny, 2);
        assert_eq!(&b[16..24], &[10, 0, 0, 0, 0, 0, 0, 8]);
        assert_eq!(attrs(&b), vec![(6, 32000u32.to_ne_bytes().to_vec())]);
        assert_eq!(deny.to_string(), "-6 32000: from all prohibit");
    }

    #[test]
    fn encodes_the_default_route() {
        let b = encode_default_route(Ipv4Addr::new(10, 0, 2, 2), 3, 9);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(u16_at(&b, 4), RTM_NEWROUTE);
        assert_eq!(&b[16..24], &[2, 0, 0, 0, 254, 3, 0, 1]);
        assert_eq!(
            attrs(&b),
            vec![(5, vec![10, 0, 2, 2]), (4, 3u32.to_ne_bytes().to_vec())]
        );
    }

    fn error_reply(seq: u32, code: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&36u32.to_ne_bytes());
        b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&code.to_ne_bytes());
        b.extend_from_slice(&[0; 16]); // the echoed request header
        b
    }

    #[test]
    fn reads_acks_and_errors_for_its_own_request_only() {
        assert!(matches!(parse_ack(&error_reply(4, 0), 4), Some(Ok(()))));
        let e = parse_ack(&error_reply(4, -libc::EEXIST), 4)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(parse_ack(&error_reply(3, 0), 4).is_none());
        // An old answer, then ours, in one datagram.
        let mut two = error_reply(3, -libc::EINVAL);
        two.extend(error_reply(4, -libc::EACCES));
        let e = parse_ack(&two, 4).unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        // Truncated and nonsense lengths are refused, not indexed past.
        let mut bad = error_reply(4, 0);
        bad[0] = 200;
        assert!(matches!(parse_ack(&bad, 4), Some(Err(_))));
        assert!(parse_ack(&bad[..10], 4).is_none());
        let mut short = error_reply(4, 0);
        short[..4].copy_from_slice(&16u32.to_ne_bytes());
        assert!(matches!(parse_ack(&short, 4), Some(Err(_))));
        let mut zero = error_reply(9, 0);
        zero[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(matches!(parse_ack(&zero, 4), Some(Err(_))));
    }
}
