//! Any bytes into the launch contract's reader (every image build, `up`
//! and the guest agent read a launch.json through it): it never panics,
//! and whatever it accepts serializes and parses back to the same value,
//! so no two readers can see two different launches in one file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(launch) = mvm_launch::parse(data) else {
        return;
    };
    let again = mvm_launch::parse(launch.to_value().to_string().as_bytes())
        .unwrap_or_else(|e| panic!("an accepted launch does not read back: {e}"));
    assert_eq!(again, launch);
    assert!(launch.primary().is_some_and(|p| p.is_primary()));
});
