//! Any bytes as a frame body a guest sends the host's broker: parsing
//! must never panic, and a call that parses must be checked without
//! panicking; whatever refusal the checks give must hold no control
//! character once escaped (it reaches logs and the audit trail).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvm_proto::broker::{BrokerRequest, Call};

fuzz_target!(|data: &[u8]| {
    let call = match mvm_proto::frame::decode::<BrokerRequest>(data) {
        Ok(r) => r.call,
        Err(_) => match mvm_proto::frame::decode::<Call>(data) {
            Ok(c) => c,
            Err(_) => return,
        },
    };
    if let Some(refusal) = mvm_broker::check_call(call) {
        let escaped = mvm_ir::text::escape_control(&refusal.message);
        assert!(
            !escaped.chars().any(char::is_control),
            "control character in {escaped:?}"
        );
    }
});
