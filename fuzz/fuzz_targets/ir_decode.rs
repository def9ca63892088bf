//! Any bytes into the IR reader: it must never panic, and whatever it accepts
//! must survive canonical write → read → write byte-identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvm_ir::{decode, to_canonical_string, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(workload) = decode::from_str(text) else { return };
    // Validation must handle any decodable workload without panicking.
    let _ = validate(&workload);
    let canonical = to_canonical_string(&workload);
    let again = decode::from_str(&canonical)
        .unwrap_or_else(|f| panic!("canonical output does not decode: {f:?}\n{canonical}"));
    assert_eq!(again, workload, "decode(canonical(w)) != w");
    assert_eq!(to_canonical_string(&again), canonical, "canonical form is not a fixed point");
});
