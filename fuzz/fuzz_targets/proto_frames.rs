//! Any bytes as a stream of frames from the other side: reading must never
//! panic or allocate past the frame cap, and every frame the host accepts
//! from a guest (or the agent from a host) must re-encode to a frame that
//! decodes to the same value.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use mvm_proto::frame::{decode, read_frame_bytes, write_frame};
use mvm_proto::{GuestFrame, HostFrame, MAX_FRAME_BYTES};

fn round_trips<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut wire = Vec::new();
    write_frame(&mut wire, value).expect("a decoded frame re-encodes within the cap");
    let body = read_frame_bytes(&mut Cursor::new(&wire)).unwrap().unwrap();
    let again: T = decode(&body).expect("a re-encoded frame decodes");
    assert_eq!(&again, value);
}

fuzz_target!(|data: &[u8]| {
    let mut stream = Cursor::new(data);
    while let Ok(Some(body)) = read_frame_bytes(&mut stream) {
        assert!(body.len() <= MAX_FRAME_BYTES);
        if let Ok(frame) = decode::<GuestFrame>(&body) {
            round_trips(&frame);
        }
        if let Ok(frame) = decode::<HostFrame>(&body) {
            round_trips(&frame);
        }
    }
});
