//! The grants-only DNS responder (`dns_system`): DNS over TCP (RFC 1035
//! §4.2.2, a two-byte length before each message), several queries per
//! connection. A granted name that resolves on the host is answered with
//! its guest address; every other question is answered from here and
//! never forwarded, so DNS is not a channel out. Messages are untrusted
//! bytes, parsed here only ([`answer`]).

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use simple_dns::rdata::{A, RData};
use simple_dns::{CLASS, OPCODE, Packet, PacketFlag, QCLASS, QTYPE, RCODE, ResourceRecord, TYPE};

use crate::GateError;
use crate::pin::parse_name;

/// Longest query accepted. A query is one question (a name of at most 255
/// bytes) plus perhaps an EDNS record; anything near this is not one.
pub const MAX_QUERY: usize = 1024;

/// TTL of an answer: short, so a changed grant list is seen soon.
pub const TTL: u32 = 60;

/// `--name HOST=ADDR`: a granted name and its guest address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsName {
    /// Lowercase, without a trailing dot.
    pub host: String,
    pub addr: Ipv4Addr,
}

impl DnsName {
    pub fn parse(text: &str) -> Result<DnsName, GateError> {
        let bad = || GateError::BadName(text.to_string());
        let (host, addr) = text.split_once('=').ok_or_else(bad)?;
        Ok(DnsName {
            host: parse_name(host).ok_or_else(bad)?,
            addr: addr.parse().map_err(|_| bad())?,
        })
    }
}

/// What one query got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A granted name that resolves on the host: one A record.
    Answered(Ipv4Addr),
    /// A granted name, another type (AAAA, MX, ...): NOERROR, no answer.
    NoData,
    /// A granted name that does not resolve on the host: NXDOMAIN.
    Unresolved,
    /// Not a granted name: NXDOMAIN.
    NotGranted,
    /// Not a standard query: NOTIMP.
    NotImplemented,
    /// Unreadable: FORMERR.
    Malformed(String),
}

impl Outcome {
    pub fn allowed(&self) -> bool {
        matches!(
            self,
            Outcome::Answered(_) | Outcome::NoData | Outcome::Unresolved
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered(a) => write!(f, "answered {a}"),
            Outcome::NoData => write!(f, "granted; no records of that type"),
            Outcome::Unresolved => write!(f, "granted but does not resolve on the host (NXDOMAIN)"),
            Outcome::NotGranted => write!(f, "not a granted name (NXDOMAIN)"),
            Outcome::NotImplemented => write!(f, "not a standard query (NOTIMP)"),
            Outcome::Malformed(why) => write!(f, "malformed query (FORMERR): {why}"),
        }
    }
}

/// The answer to one query message.
#[derive(Debug)]
pub struct Reply {
    /// The response message (without the length prefix); `None` when
    /// there is nothing to answer with (fewer than 2 bytes: no id).
    pub message: Option<Vec<u8>>,
    /// The name asked, raw (escape before printing).
    pub asked: Option<String>,
    pub outcome: Outcome,
}

/// Answers `query` from `names`; `resolves(host)` says whether a granted
/// name resolves on the host (asked at most once per name per connection
/// by the caller's cache). Never panics on any input.
pub fn answer(query: &[u8], names: &[DnsName], resolves: &mut dyn FnMut(&str) -> bool) -> Reply {
    let malformed = |why: &str| Reply {
        message: form_error(query),
        asked: None,
        outcome: Outcome::Malformed(why.to_string()),
    };
    if query.len() > MAX_QUERY {
        return malformed("too long");
    }
    let packet = match Packet::parse(query) {
        Ok(p) => p,
        Err(_) => return malformed("not a DNS message"),
    };
    if packet.has_flags(PacketFlag::RESPONSE) {
        return malformed("a response, not a query");
    }
    let mut reply = Packet::new_reply(packet.id());
    if packet.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if packet.opcode() != OPCODE::StandardQuery {
        *reply.rcode_mut() = RCODE::NotImplemented;
        return Reply {
            message: reply.build_bytes_vec().ok(),
            asked: None,
            outcome: Outcome::NotImplemented,
        };
    }
    let [question] = &packet.questions[..] else {
        return malformed("not exactly one question");
    };
    let labels: Vec<&[u8]> = question.qname.as_bytes().collect();
    let asked: String = labels
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join(".");
    let granted = granted(&labels, names);
    let outcome = match granted {
        None => Outcome::NotGranted,
        Some(name) if !resolves(&name.host) => Outcome::Unresolved,
        Some(name) => {
            let a = question.qtype == QTYPE::TYPE(TYPE::A)
                && matches!(question.qclass, QCLASS::CLASS(CLASS::IN) | QCLASS::ANY);
            if a {
                Outcome::Answered(name.addr)
            } else {
                Outcome::NoData
            }
        }
    };
    reply.questions.push(question.clone());
    match &outcome {
        Outcome::Answered(addr) => reply.answers.push(ResourceRecord::new(
            question.qname.clone(),
            CLASS::IN,
            TTL,
            RData::A(A::from(*addr)),
        )),
        Outcome::NotGranted | Outcome::Unresolved => *reply.rcode_mut() = RCODE::NameError,
        _ => {}
    }
    Reply {
        message: reply.build_bytes_vec().ok().or_else(|| form_error(query)),
        asked: Some(asked),
        outcome,
    }
}

/// The granted name these labels spell, compared label by label
/// (case-insensitive), so a label holding a dot cannot pass for two.
fn granted<'a>(labels: &[&[u8]], names: &'a [DnsName]) -> Option<&'a DnsName> {
    names.iter().find(|n| {
        let want: Vec<&str> = n.host.split('.').collect();
        want.len() == labels.len()
            && want
                .iter()
                .zip(labels)
                .all(|(w, l)| w.as_bytes().eq_ignore_ascii_case(l))
    })
}

/// A bare FORMERR header with the query's id (and opcode), or `None`
/// without an id to answer to.
fn form_error(query: &[u8]) -> Option<Vec<u8>> {
    let id = query.get(..2)?;
    let opcode = query.get(2).map_or(0, |b| b & 0b0111_1000);
    let mut m = vec![0u8; 12];
    m[..2].copy_from_slice(id);
    m[2] = 0x80 | opcode;
    m[3] = RCODE::FormatError as u8;
    Some(m)
}

/// Remembers, per connection, whether each granted name resolves.
pub(crate) struct Cache<'a> {
    seen: HashMap<String, bool>,
    lookup: Box<dyn FnMut(&str) -> bool + 'a>,
}

impl<'a> Cache<'a> {
    pub(crate) fn new(lookup: impl FnMut(&str) -> bool + 'a) -> Cache<'a> {
        Cache {
            seen: HashMap::new(),
            lookup: Box::new(lookup),
        }
    }
    pub(crate) fn resolves(&mut self, host: &str) -> bool {
        if let Some(&known) = self.seen.get(host) {
            return known;
        }
        let known = (self.lookup)(host);
        self.seen.insert(host.to_string(), known);
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{Name, Question};

    fn names() -> Vec<DnsName> {
        vec![
            DnsName::parse("api.openai.com=10.0.2.101").unwrap(),
            DnsName::parse("gone.example=10.0.2.102").unwrap(),
        ]
    }

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(0x1234);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype.into(),
            CLASS::IN.into(),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    fn ask(q: &[u8]) -> Reply {
        let mut resolves = |h: &str| h != "gone.example";
        answer(q, &names(), &mut resolves)
    }

    fn parsed(r: &Reply) -> Packet<'_> {
        Packet::parse(r.message.as_deref().expect("an answer")).expect("a DNS message")
    }

    #[test]
    fn granted_names_get_their_guest_address_and_others_nxdomain() {
        let r = ask(&query("API.OpenAI.com.", TYPE::A));
        let p = parsed(&r);
        assert_eq!(r.outcome, Outcome::Answered(Ipv4Addr::new(10, 0, 2, 101)));
        assert_eq!(p.id(), 0x1234);
        assert!(p.has_flags(PacketFlag::RESPONSE | PacketFlag::RECURSION_DESIRED));
        assert_eq!(p.rcode(), RCODE::NoError);
        assert_eq!(p.answers.len(), 1);
        assert_eq!(p.answers[0].ttl, TTL);
        match &p.answers[0].rdata {
            RData::A(a) => assert_eq!(Ipv4Addr::from(a.address), Ipv4Addr::new(10, 0, 2, 101)),
            other => panic!("{other:?}"),
        }
        let r = ask(&query("api.openai.com", TYPE::AAAA));
        assert_eq!(r.outcome, Outcome::NoData);
        let p = parsed(&r);
        assert_eq!((p.rcode(), p.answers.len()), (RCODE::NoError, 0));
        for other in [
            "example.com",
            "openai.com",
            "x.api.openai.com",
            "api.openai.com.evil",
        ] {
            let r = ask(&query(other, TYPE::A));
            assert_eq!(r.outcome, Outcome::NotGranted, "{other}");
            let p = parsed(&r);
            assert_eq!(
                (p.rcode(), p.answers.len()),
                (RCODE::NameError, 0),
                "{other}"
            );
        }
        let r = ask(&query("gone.example", TYPE::A));
        assert_eq!(r.outcome, Outcome::Unresolved);
        assert_eq!(parsed(&r).rcode(), RCODE::NameError);
    }

    #[test]
    fn malformed_queries_get_formerr_or_nothing() {
        let r = ask(&[0xab, 0xcd, 0x01]);
        assert!(matches!(r.outcome, Outcome::Malformed(_)));
        let p = parsed(&r);
        assert_eq!((p.id(), p.rcode()), (0xabcd, RCODE::FormatError));
        let r = ask(&[0xab]);
        assert!(r.message.is_none());
        // Two questions.
        let mut two = Packet::new_query(7);
        for n in ["api.openai.com", "example.com"] {
            two.questions.push(Question::new(
                Name::new_unchecked(n),
                TYPE::A.into(),
                CLASS::IN.into(),
                false,
            ));
        }
        let r = ask(&two.build_bytes_vec().unwrap());
        assert!(
            matches!(r.outcome, Outcome::Malformed(_)),
            "{:?}",
            r.outcome
        );
        let r = ask(&vec![0u8; MAX_QUERY + 1]);
        assert!(matches!(r.outcome, Outcome::Malformed(_)));
        // A label with a dot in it is not two labels.
        let mut q = query("api.openai.com", TYPE::A);
        // Rewrite "\x03api\x06openai" as "\x0aapi.openai".
        let at = q.iter().position(|&b| b == 3).unwrap();
        q[at] = 10;
        q[at + 4] = b'.';
        let r = ask(&q);
        assert!(
            matches!(r.outcome, Outcome::NotGranted | Outcome::Malformed(_)),
            "{:?}",
            r.outcome
        );
    }

    #[test]
    fn names_parse_strictly() {
        assert_eq!(
            DnsName::parse("PyPI.org.=10.0.2.102").unwrap(),
            DnsName {
                host: "pypi.org".into(),
                addr: Ipv4Addr::new(10, 0, 2, 102)
            }
        );
        for bad in [
            "pypi.org",
            "pypi.org=",
            "pypi.org=::1",
            "1.2.3.4=10.0.2.101",
            "a b=10.0.2.1",
        ] {
            assert!(DnsName::parse(bad).is_err(), "{bad}");
        }
    }
}
