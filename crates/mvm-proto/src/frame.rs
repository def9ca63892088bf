//! Length-delimited JSON frames: a 4-byte big-endian body length, then the
//! body. This is where bytes from the other side (for the host: a guest it
//! does not trust) become values, so every limit is checked here and
//! nowhere else.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest frame body either side sends or accepts. A reader must refuse a
/// length before allocating for it, or a hostile guest could make the host
/// allocate 4 GiB with four bytes; 16 MiB still fits the biggest message
/// (an 8 MiB file read, base64-encoded) with room to spare.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The length prefix: a big-endian `u32`.
pub const HEADER_BYTES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame too large: {len} bytes, max {max}")]
    TooLarge { len: usize, max: usize },
    #[error("truncated frame header: the stream ended after {got} of {HEADER_BYTES} bytes")]
    TruncatedHeader { got: usize },
    #[error(
        "truncated frame: the header announced {expected} bytes but the stream ended after {got}"
    )]
    Truncated { expected: usize, got: usize },
    #[error("invalid JSON in frame: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("could not encode frame as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("frame I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// Encodes `value` and writes it as one frame. Header and body go out in a
/// single `write_all`, so frames from threads sharing a locked writer never
/// interleave and a virtio-serial port sees one write per frame.
pub fn write_frame<W: Write, T: Serialize>(writer: &mut W, value: &T) -> Result<(), FrameError> {
    writer.write_all(&encode_frame(value)?)?;
    writer.flush()?;
    Ok(())
}

/// One whole frame, header and body, for writers that are not `Write`
/// (an async socket): [`write_frame`] is this plus one `write_all`.
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; HEADER_BYTES];
    serde_json::to_writer(&mut buf, value).map_err(FrameError::Encode)?;
    let len = buf.len() - HEADER_BYTES;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    // Fits: MAX_FRAME_BYTES < u32::MAX.
    buf[..HEADER_BYTES].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// The body length a header announces, refused over [`MAX_FRAME_BYTES`],
/// for readers that are not `Read` (an async socket) and must check it
/// before reading the body, as [`read_frame_bytes`] does.
pub fn body_len(header: [u8; HEADER_BYTES]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(len)
}

/// Reads one frame body. `Ok(None)` means the stream ended cleanly between
/// frames (the peer went away); ending inside a frame is an error.
pub fn read_frame_bytes<R: Read>(reader: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    let mut got = 0;
    while got < HEADER_BYTES {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::TruncatedHeader { got }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = body_len(header)?;
    // Grow with the data actually received rather than trusting `len` up
    // front, so a short stream costs only what it sent.
    let mut body = Vec::new();
    reader.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(FrameError::Truncated {
            expected: len,
            got: body.len(),
        });
    }
    Ok(Some(body))
}

/// Decodes a frame body received by [`read_frame_bytes`].
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(FrameError::InvalidJson)
}

/// Reads and decodes one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<R: Read, T: DeserializeOwned>(reader: &mut R) -> Result<Option<T>, FrameError> {
    match read_frame_bytes(reader)? {
        Some(body) => decode(&body).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn round_trips_a_value() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &serde_json::json!({"a": [1, 2, "three"]})).unwrap();
        assert_eq!(&buf[..4], &((buf.len() - 4) as u32).to_be_bytes());
        let mut cursor = Cursor::new(buf);
        let back: serde_json::Value = read_frame(&mut cursor).unwrap().unwrap();
        assert_eq!(back, serde_json::json!({"a": [1, 2, "three"]}));
        assert!(
            read_frame::<_, serde_json::Value>(&mut cursor)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn clean_end_of_stream_is_none() {
        let mut empty = Cursor::new(Vec::new());
        assert!(read_frame_bytes(&mut empty).unwrap().is_none());
    }

    #[test]
    fn refuses_oversized_length_before_reading_body() {
        let header = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
        let err = read_frame_bytes(&mut Cursor::new(header.to_vec())).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len, max } if len == MAX_FRAME_BYTES + 1 && max == MAX_FRAME_BYTES)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "frame too large: {} bytes, max {}",
                MAX_FRAME_BYTES + 1,
                MAX_FRAME_BYTES
            )
        );
    }

    #[test]
    fn refuses_to_write_oversized_frame() {
        let big = "x".repeat(MAX_FRAME_BYTES);
        let mut sink = Vec::new();
        let err = write_frame(&mut sink, &big).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, .. } if len == MAX_FRAME_BYTES + 2));
        assert!(
            sink.is_empty(),
            "nothing may be written when the frame is refused"
        );
    }

    #[test]
    fn encode_frame_is_what_write_frame_writes() {
        let value = serde_json::json!({"op": "stop", "grace_ms": 10});
        let mut written = Vec::new();
        write_frame(&mut written, &value).unwrap();
        assert_eq!(encode_frame(&value).unwrap(), written);
        let big = "x".repeat(MAX_FRAME_BYTES);
        assert!(matches!(
            encode_frame(&big),
            Err(FrameError::TooLarge { len, .. }) if len == MAX_FRAME_BYTES + 2
        ));
    }

    #[test]
    fn body_len_checks_the_cap() {
        assert_eq!(body_len(7u32.to_be_bytes()).unwrap(), 7);
        assert_eq!(
            body_len((MAX_FRAME_BYTES as u32).to_be_bytes()).unwrap(),
            MAX_FRAME_BYTES
        );
        assert!(matches!(
            body_len(((MAX_FRAME_BYTES + 1) as u32).to_be_bytes()),
            Err(FrameError::TooLarge { len, max }) if len == MAX_FRAME_BYTES + 1 && max == MAX_FRAME_BYTES
        ));
    }

    #[test]
    fn accepts_a_frame_of_exactly_the_maximum() {
        let body = format!("\"{}\"", "y".repeat(MAX_FRAME_BYTES - 2));
        let back: String = read_frame(&mut Cursor::new(framed(body.as_bytes())))
            .unwrap()
            .unwrap();
        assert_eq!(back.len(), MAX_FRAME_BYTES - 2);
    }

    #[test]
    fn reports_truncated_header_and_body() {
        let err = read_frame_bytes(&mut Cursor::new(vec![0, 0])).unwrap_err();
        assert!(matches!(err, FrameError::TruncatedHeader { got: 2 }));

        let mut short = framed(b"{\"a\":1}");
        short.truncate(7);
        let err = read_frame_bytes(&mut Cursor::new(short)).unwrap_err();
        assert!(matches!(
            err,
            FrameError::Truncated {
                expected: 7,
                got: 3
            }
        ));
        assert_eq!(
            err.to_string(),
            "truncated frame: the header announced 7 bytes but the stream ended after 3"
        );
    }

    #[test]
    fn reports_invalid_json_with_position() {
        let err =
            read_frame::<_, serde_json::Value>(&mut Cursor::new(framed(b"{\"a\":"))).unwrap_err();
        assert!(matches!(err, FrameError::InvalidJson(_)));
        assert!(
            err.to_string().starts_with("invalid JSON in frame: "),
            "{err}"
        );
        assert!(err.to_string().contains("line 1 column"), "{err}");
    }

    #[test]
    fn reads_consecutive_frames_from_one_stream() {
        let mut stream = Vec::new();
        for i in 0..3 {
            write_frame(&mut stream, &i).unwrap();
        }
        let mut cursor = Cursor::new(stream);
        for i in 0..3 {
            assert_eq!(read_frame::<_, i32>(&mut cursor).unwrap(), Some(i));
        }
        assert_eq!(read_frame::<_, i32>(&mut cursor).unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut cursor = Cursor::new(data);
            // Any outcome but a panic is acceptable for garbage input.
            while let Ok(Some(body)) = read_frame_bytes(&mut cursor) {
                let _ = decode::<crate::GuestFrame>(&body);
                let _ = decode::<crate::HostFrame>(&body);
            }
        }

        #[test]
        fn written_frames_read_back(values in proptest::collection::vec(".*", 0..8)) {
            let mut stream = Vec::new();
            for v in &values {
                write_frame(&mut stream, v).unwrap();
            }
            let mut cursor = Cursor::new(stream);
            for v in &values {
                let back: String = read_frame(&mut cursor).unwrap().unwrap();
                proptest::prop_assert_eq!(&back, v);
            }
            proptest::prop_assert!(read_frame::<_, String>(&mut cursor).unwrap().is_none());
        }
    }
}
