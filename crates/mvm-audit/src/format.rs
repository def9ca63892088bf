//! Line encoding, hashing, timestamps and bounding.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{AuditError, Event};

/// Maximum bytes of one record line (without the '\n').
pub const MAX_LINE: usize = 16 * 1024;
/// Per-string cap applied before encoding, so one huge field can't make a record unwritable.
const MAX_STR: usize = 2048;
/// Per-array cap (e.g. argv).
const MAX_ITEMS: usize = 64;

pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Serialize)]
struct LineOut<'a> {
    seq: u64,
    ts: &'a str,
    prev: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(flatten)]
    body: serde_json::Value,
}

/// Encode one record line (no trailing newline), bounded to MAX_LINE.
pub fn encode_line(
    seq: u64,
    ts: &str,
    prev: &str,
    instance: Option<&str>,
    event: &Event,
) -> Result<Vec<u8>, AuditError> {
    let mut body = serde_json::to_value(event).map_err(AuditError::Encode)?;
    clamp(&mut body);
    let instance = instance.map(|s| truncate(s, 256));
    let mut line = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut line, AsciiOnly);
    LineOut {
        seq,
        ts,
        prev,
        instance,
        body,
    }
    .serialize(&mut ser)
    .map_err(AuditError::Encode)?;
    if line.len() > MAX_LINE {
        return Err(AuditError::TooLarge {
            bytes: line.len(),
            max: MAX_LINE,
        });
    }
    Ok(line)
}

/// JSON with every non-ASCII character (and DEL) written as a `\uXXXX`
/// escape, UTF-16 surrogate pairs above U+FFFF; serde_json already escapes
/// C0, `"` and `\`. The stored line is then printable ASCII only, so a
/// viewer can print it byte for byte (and a copy made from that output
/// still hashes the same) with nothing in it able to drive a terminal.
struct AsciiOnly;

impl serde_json::ser::Formatter for AsciiOnly {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() && c != '\u{7f}' {
                continue;
            }
            w.write_all(&bytes[start..i])?;
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&bytes[start..])
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn clamp(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.len() > MAX_STR => {
            let t = format!("{}…[truncated]", truncate(s, MAX_STR));
            *s = t;
        }
        Value::Array(a) => {
            a.truncate(MAX_ITEMS);
            a.iter_mut().for_each(clamp);
        }
        Value::Object(m) => m.values_mut().for_each(clamp),
        _ => {}
    }
}

/// Now as RFC3339 UTC with milliseconds, e.g. 2026-12-02T20:57:37.123Z.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_millis())
}

pub fn rfc3339(secs: i64, ms: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_245_057, 123), "2026-12-02T20:57:37.123Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    }

    #[test]
    fn long_fields_are_truncated() {
        let ev = Event::Crash {
            detail: "x".repeat(100_000),
        };
        let line = encode_line(1, "t", ZERO_HASH, None, &ev).unwrap();
        assert!(line.len() <= MAX_LINE);
    }

    #[test]
    fn lines_are_ascii_with_escapes_that_decode_back() {
        let text = "a\u{7f}b\u{202e}c\u{1F600}d\u{85}é\u{1b}";
        let ev = Event::Crash {
            detail: text.into(),
        };
        let line = encode_line(1, "t", ZERO_HASH, Some(text), &ev).unwrap();
        let s = std::str::from_utf8(&line).unwrap();
        assert!(
            s.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "not printable ASCII: {s}"
        );
        assert!(
            s.contains(r"a\u007fb\u202ec\ud83d\ude00d\u0085\u00e9\u001b"),
            "{s}"
        );
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["detail"], text);
        assert_eq!(v["instance"], text);
    }
}
