//! RFC 8785 (JCS) canonical JSON and the IR hash.
//!
//! The canonical form is what `workload.json` holds and what `ir_hash` is
//! computed over: object keys sorted by UTF-16 code units, no whitespace,
//! ECMAScript string escaping and number formatting, UTF-8.
//!
//! One deliberate difference from a strict JCS implementation: integers that
//! serde_json holds as `i64`/`u64` are written with all their digits, even
//! above 2^53 where an IEEE double would round them. Every IR integer field
//! fits a `u64`, and rounding it on write would change the value a reader sees.

use sha2::{Digest, Sha256};

use crate::types::Workload;

/// The JCS form of any JSON value.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// The canonical form of a workload: every field present, then JCS.
pub fn to_canonical_string(w: &Workload) -> String {
    canonical_json(&workload_value(w))
}

/// [`to_canonical_string`] as bytes, ready to be written to `workload.json`.
pub fn to_canonical_bytes(w: &Workload) -> Vec<u8> {
    to_canonical_string(w).into_bytes()
}

/// Lowercase hex SHA-256 of the canonical bytes.
pub fn ir_hash(w: &Workload) -> String {
    let digest = Sha256::digest(to_canonical_bytes(w));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn workload_value(w: &Workload) -> serde_json::Value {
    // The IR types hold only strings, integers, bools, sequences and
    // string-keyed maps, none of which can fail to serialize.
    serde_json::to_value(w).expect("Workload serializes to a JSON value")
}

fn write_value(out: &mut String, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map orders by UTF-8 bytes (or by insertion with
            // `preserve_order`); JCS orders by UTF-16 code units, which differs
            // for characters above U+FFFF versus U+E000..U+FFFF.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, value);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else {
        // serde_json never holds NaN or infinities, so every other number is
        // a finite double; ryu-js formats it as ECMAScript's Number#toString.
        let f = n
            .as_f64()
            .expect("a serde_json number is an integer or a finite double");
        let mut buf = ryu_js::Buffer::new();
        out.push_str(buf.format_finite(f));
    }
}

/// ECMAScript `JSON.stringify` string escaping, as JCS requires.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jcs(text: &str) -> String {
        canonical_json(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn sorts_keys_by_utf16_code_units() {
        // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB01
        // in UTF-16 although its UTF-8 bytes sort after.
        let v = json!({"\u{fb01}": 1, "\u{1f600}": 2, "b": 3, "a": 4, "": 5, "\u{80}": 6});
        assert_eq!(
            canonical_json(&v),
            "{\"\":5,\"a\":4,\"b\":3,\"\u{80}\":6,\"\u{1f600}\":2,\"\u{fb01}\":1}"
        );
    }

    #[test]
    fn rfc8785_sorting_example() {
        // The key set of RFC 8785 section 3.2.3, written in its expected order.
        let text = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh",
            "1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let expected = concat!(
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",",
            "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",",
            "\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(jcs(text), expected);
    }

    #[test]
    fn escapes_like_ecmascript() {
        let v = json!("q\" b\\ \u{8}\u{c}\n\r\t \u{1}\u{1f} \u{7f} \u{2028} é 😀 /");
        assert_eq!(
            canonical_json(&v),
            "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f \u{7f} \u{2028} é 😀 /\""
        );
    }

    #[test]
    fn formats_numbers_like_ecmascript() {
        let cases = [
            ("1e21", "1e+21"),
            ("1E21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("0.1", "0.1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1E-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("1.0", "1"),
            ("-1.5", "-1.5"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("333333333.33333329", "333333333.3333333"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("18446744073709551615", "18446744073709551615"),
            ("42", "42"),
        ];
        for (input, expected) in cases {
            assert_eq!(jcs(input), expected, "formatting {input}");
        }
    }

    #[test]
    fn no_whitespace_and_nested_structure() {
        let text = "{ \"b\" : [ 1 , { \"d\" : null , \"c\" : true } ] , \"a\" : false }";
        assert_eq!(jcs(text), r#"{"a":false,"b":[1,{"c":true,"d":null}]}"#);
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        let text = r#"{"z":[0.1,1e21,-0,"\u0000"],"y":{"\ud83d\ude00":1,"\uffff":2}}"#;
        let once = jcs(text);
        assert_eq!(jcs(&once), once);
    }
}
