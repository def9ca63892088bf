//! Any bytes as what a guest sends the egress gate: reading the request
//! must never panic or read past the head cap, a CONNECT target it accepts
//! must be a grant that prints and parses back to itself, and classifying
//! its host (as written, and as an address) must never panic. Whatever the
//! gate would log about the request must hold no control character once
//! escaped. The same bytes as a DNS query to the grants-only responder:
//! answering must never panic, every answer must parse as a response to
//! the query's id, and only a granted name may be looked up.
#![no_main]

use std::io::{BufReader, Cursor};

use libfuzzer_sys::fuzz_target;
use mvm_egress::Grant;
use mvm_egress::dns::{DnsName, answer};
use mvm_egress::request::{Ask, MAX_HEAD, read_request};
use mvm_ir::text::escape_control;
use mvm_ir::validate::host::{host_class, ip_class, parse_ip};

/// Small, so lines are split across reads.
const BUFFER: usize = 7;

fn loggable(text: &str) {
    let escaped = escape_control(text);
    assert!(
        !escaped.chars().any(char::is_control),
        "control character in {escaped:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut reader = BufReader::with_capacity(BUFFER, Cursor::new(data));
    let ask = read_request(&mut reader);
    assert!(
        reader.get_ref().position() as usize <= MAX_HEAD + 1 + BUFFER,
        "read past the head cap"
    );
    match ask {
        Ok(Ask::Connect(grant)) => {
            let again = Grant::parse(&grant.to_string())
                .unwrap_or_else(|e| panic!("{grant} does not parse back: {e}"));
            assert_eq!(again, grant);
            let _ = host_class(grant.bare_host());
            if let Some(ip) = parse_ip(grant.bare_host()) {
                let _ = ip_class(ip);
            }
            loggable(&format!("relaying {grant}"));
        }
        Ok(Ask::Other(what)) => loggable(&what),
        Err(e) => loggable(&format!("refused: {e}")),
    }
    let names = [DnsName {
        host: "pypi.org".into(),
        addr: std::net::Ipv4Addr::new(10, 0, 2, 101),
    }];
    let reply = answer(data, &names, &mut |host| {
        assert_eq!(host, "pypi.org", "looked up a name that is not granted");
        true
    });
    if let Some(message) = &reply.message {
        assert!(message.len() >= 12, "an answer shorter than a DNS header");
        assert_eq!(message[..2], data[..2], "an answer to another id");
        assert!(message[2] & 0x80 != 0, "an answer that is not a response");
    }
    if let Some(asked) = &reply.asked {
        loggable(asked);
    }
    loggable(&reply.outcome.to_string());
    // The classifier takes any text a grant or a lockfile could hold.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = host_class(text);
    }
});
