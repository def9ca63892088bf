//! Any bytes as what a guest sends the egress gate: reading the request
//! must never panic or read past the head cap, a CONNECT target it accepts
//! must be a grant that prints and parses back to itself, and classifying
//! its host (as written, and as an address) must never panic. Whatever the
//! gate would log about the request must hold no control character once
//! escaped.
#![no_main]

use std::io::{BufReader, Cursor};

use libfuzzer_sys::fuzz_target;
use mvm_egress::Grant;
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
    // The classifier takes any text a grant or a lockfile could hold.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = host_class(text);
    }
});
