//! Any bytes into the recording reader and its lowering (a recording is
//! untrusted input to `mvmctl compile --from-recording`): neither may
//! panic; every file name a lowering keeps passes the bundle's name rule;
//! and the lowered workload survives canonical write → read unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvm_compile::bundle::names;
use mvm_ir::{decode, to_canonical_string, validate};
use mvm_recording::{LowerOptions, decode as read_recording, lower};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rec) = read_recording(text) else {
        return;
    };
    for sandbox in [None, Some(0), Some(1)] {
        let opts = LowerOptions {
            sandbox,
            name: None,
        };
        let Ok(lowered) = lower(&rec, &opts) else {
            continue;
        };
        for rel in lowered.files.keys() {
            assert!(names::problem(rel).is_none(), "kept a bad name {rel:?}");
        }
        let written: u64 = lowered.files.values().map(|d| d.len() as u64).sum();
        assert!(written <= mvm_recording::lower::MAX_WRITTEN_BYTES);
        let _ = validate(&lowered.workload);
        let canonical = to_canonical_string(&lowered.workload);
        let again = decode::from_str(&canonical)
            .unwrap_or_else(|f| panic!("lowered IR does not decode: {f:?}\n{canonical}"));
        assert_eq!(
            again, lowered.workload,
            "decode(canonical(lowered)) != lowered"
        );
    }
});
