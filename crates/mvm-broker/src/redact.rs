//! Finding known secret values in text and replacing them, in one pass
//! (aho-corasick, leftmost-longest: of two values where one starts the
//! other, the longer is replaced whole).
//!
//! [`Redactor`] writes `[secret:NAME]` (text the host writes or relays:
//! logs, errors, exec output). The broker's response filter uses the same
//! machinery with each secret's token as the replacement ([`Replacer`]),
//! so the guest only ever sees tokens.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use zeroize::Zeroizing;

/// Every spelling a value is commonly carried in, each only once:
///
/// - as is;
/// - base64, standard and URL-safe, padded and not (an `Authorization:
///   Basic` header, a token, a cookie);
/// - hex;
/// - escaped for a JSON string: the minimal escapes, with `\/` for `/`
///   (PHP, Java, Ruby), with `\u0026 \u003c \u003e` for `& < >` (Go),
///   and with every non-alphanumeric ASCII character as `\u00XX`;
/// - percent-encoded: as a form (`+` for a space) and as a URL component
///   (`%20`), keeping the characters each common encoder keeps;
/// - with HTML entities for `& < > " '`: named, decimal and hex.
///
/// The filters match them without regard to ASCII case, which covers
/// lower- and upper-case hex digits in every escape (and over-redacts a
/// little: acceptable). Empty for an empty value.
pub fn spellings(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if value.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Zeroizing::new(value.to_vec())];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        out.push(Zeroizing::new(engine.encode(value).into_bytes()));
    }
    out.push(spell(value, |b, o| {
        o.extend_from_slice(format!("{b:02x}").as_bytes())
    }));
    out.extend(escapes::json(value));
    out.extend(escapes::percent(value));
    out.extend(escapes::html(value));
    out.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
    out.dedup_by(|a, b| a.as_slice() == b.as_slice());
    out
}

/// `value` with each byte written by `each`, into a zeroized buffer.
fn spell(value: &[u8], each: impl Fn(u8, &mut Vec<u8>)) -> Zeroizing<Vec<u8>> {
    // Room for the longest escape of a byte (`\u00XX`, `&quot;`), so the
    // buffer never moves and leaves an unzeroized copy behind.
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 6));
    for &b in value {
        each(b, &mut out);
    }
    out
}

/// The escaping families of [`spellings`].
mod escapes {
    use super::spell;
    use zeroize::Zeroizing;

    /// A JSON string's contents: `\"`, `\\` and the short control escapes,
    /// other controls as `\u00XX`; `slash` adds `\/`, and bytes `as_u`
    /// picks are written `\u00XX` whatever they are. Bytes >= 0x80 are
    /// left as they are (JSON carries UTF-8 unescaped).
    fn escape(value: &[u8], slash: bool, as_u: impl Fn(u8) -> bool) -> Zeroizing<Vec<u8>> {
        spell(value, |b, o| {
            let short: Option<&[u8]> = match b {
                _ if as_u(b) => None,
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'/' if slash => Some(b"\\/"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                0x08 => Some(b"\\b"),
                0x0c => Some(b"\\f"),
                0x00..=0x1f => None,
                _ => {
                    o.push(b);
                    return;
                }
            };
            match short {
                Some(s) => o.extend_from_slice(s),
                None => o.extend_from_slice(format!("\\u{:04x}", b).as_bytes()),
            }
        })
    }

    pub(super) fn json(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
        let go = |b: u8| matches!(b, b'&' | b'<' | b'>');
        let every = |b: u8| b.is_ascii() && !b.is_ascii_alphanumeric();
        vec![
            escape(value, false, |_| false),
            escape(value, true, |_| false),
            escape(value, false, go),
            escape(value, true, go),
            escape(value, false, every),
        ]
    }

    /// Percent-encoding, keeping the bytes `keep` picks, a space as `+`
    /// or `%20`.
    fn percent_with(value: &[u8], keep: &[u8], plus: bool) -> Zeroizing<Vec<u8>> {
        spell(value, |b, o| {
            if b.is_ascii_alphanumeric() || keep.contains(&b) {
                o.push(b);
            } else if b == b' ' && plus {
                o.push(b'+');
            } else {
                o.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        })
    }

    pub(super) fn percent(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
        // Forms (WHATWG), RFC 3986 unreserved, JavaScript's
        // encodeURIComponent, and what encodeURI and most path encoders
        // leave alone.
        let sets: [&[u8]; 4] = [b"*-._", b"-._~", b"-_.!~*'()", b"-_.!~*'();/?:@&=+$,#"];
        let mut out = Vec::new();
        for keep in sets {
            out.push(percent_with(value, keep, true));
            out.push(percent_with(value, keep, false));
        }
        out
    }

    pub(super) fn html(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
        let mut out = Vec::new();
        // The named forms, with each way encoders write the quotes.
        for quot in ["&quot;", "&#34;", "&#x22;"] {
            for apos in ["&#39;", "&#x27;", "&apos;", "&#039;"] {
                out.push(spell(value, |b, o| match b {
                    b'&' => o.extend_from_slice(b"&amp;"),
                    b'<' => o.extend_from_slice(b"&lt;"),
                    b'>' => o.extend_from_slice(b"&gt;"),
                    b'"' => o.extend_from_slice(quot.as_bytes()),
                    b'\'' => o.extend_from_slice(apos.as_bytes()),
                    _ => o.push(b),
                }));
            }
        }
        let special = |b: u8| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'');
        out.push(spell(value, |b, o| {
            if special(b) {
                o.extend_from_slice(format!("&#{b};").as_bytes());
            } else {
                o.push(b);
            }
        }));
        out.push(spell(value, |b, o| {
            if special(b) {
                o.extend_from_slice(format!("&#x{b:x};").as_bytes());
            } else {
                o.push(b);
            }
        }));
        out
    }
}

/// What a text becomes when the redactor could not be built.
const WITHHELD: &[u8] = b"[withheld: the secret redactor could not be built]";

/// Patterns and what each one is replaced by.
///
/// The automaton keeps its own copy of the patterns, which is not zeroized
/// when dropped (aho-corasick has no such option); the values live as long
/// as the broker, which holds them anyway.
#[derive(Clone)]
pub(crate) struct Replacer {
    automaton: Option<AhoCorasick>,
    replacements: Vec<Vec<u8>>,
    /// The longest pattern, in bytes: how much a stream must hold back.
    longest: usize,
    /// The automaton could not be built: every text is withheld whole.
    broken: bool,
}

impl Replacer {
    /// `pairs` of (pattern, replacement); empty patterns are ignored.
    pub(crate) fn new(pairs: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>) -> Replacer {
        let pairs: Vec<_> = pairs.into_iter().filter(|(p, _)| !p.is_empty()).collect();
        let longest = pairs.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        let mut broken = false;
        let automaton = if pairs.is_empty() {
            None
        } else {
            // Building fails only past size limits far beyond any set of
            // secrets; then this replacer fails closed (see `replace`).
            match AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                // Hex digits of escapes come in either case (crate docs).
                .ascii_case_insensitive(true)
                .build(pairs.iter().map(|(p, _)| p.as_slice()))
            {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::error!("cannot build the secret redactor: {e}");
                    broken = true;
                    None
                }
            }
        };
        Replacer {
            automaton,
            replacements: pairs.into_iter().map(|(_, r)| r).collect(),
            longest,
            broken,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.automaton.is_none() && !self.broken
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    pub(crate) fn replace<'t>(&self, text: &'t [u8]) -> Cow<'t, [u8]> {
        let Some(ac) = &self.automaton else {
            if self.broken {
                return Cow::Owned(WITHHELD.to_vec());
            }
            return Cow::Borrowed(text);
        };
        let mut matches = ac.find_iter(text).peekable();
        if matches.peek().is_none() {
            return Cow::Borrowed(text);
        }
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for m in matches {
            out.extend_from_slice(&text[at..m.start()]);
            out.extend_from_slice(&self.replacements[m.pattern().as_usize()]);
            at = m.end();
        }
        out.extend_from_slice(&text[at..]);
        Cow::Owned(out)
    }

    pub(crate) fn replace_str(&self, text: &str) -> String {
        match self.replace(text.as_bytes()) {
            Cow::Borrowed(_) => text.to_string(),
            // A replacement is whole UTF-8 and a pattern match may cut a
            // character only if the value itself is not UTF-8.
            Cow::Owned(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// Replaces every known secret value with `[secret:NAME]`.
#[derive(Clone)]
pub struct Redactor {
    inner: Replacer,
}

impl Redactor {
    /// One (name, value) per secret; empty values are ignored. Each value
    /// is also found in the spellings text commonly quotes it in
    /// ([`spellings`]).
    pub fn new(secrets: Vec<(String, Zeroizing<Vec<u8>>)>) -> Redactor {
        let mut pairs = Vec::new();
        for (name, value) in secrets {
            for v in spellings(&value) {
                pairs.push((v, format!("[secret:{name}]").into_bytes()));
            }
        }
        Redactor::from_pairs(pairs)
    }

    pub(crate) fn from_pairs(pairs: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>) -> Redactor {
        Redactor {
            inner: Replacer::new(pairs),
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.inner.is_broken()
    }

    /// `text` with every known value replaced (borrowed when none occurs).
    pub fn redact<'t>(&self, text: &'t [u8]) -> Cow<'t, [u8]> {
        self.inner.replace(text)
    }

    pub fn redact_str(&self, text: &str) -> String {
        self.inner.replace_str(text)
    }

    /// A redactor for output that arrives in chunks: a value split across
    /// chunks is still replaced. It holds back the last few bytes of each
    /// chunk (fewer than the longest value) until it knows they cannot
    /// begin a value; [`StreamRedactor::finish`] releases them.
    pub fn stream(&self) -> StreamRedactor<'_> {
        StreamRedactor {
            redactor: self,
            held: Vec::new(),
        }
    }

    /// No secret to redact: every call returns its input.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("Redactor")
            .field("patterns", &self.inner.replacements.len())
            .finish()
    }
}

/// See [`Redactor::stream`].
pub struct StreamRedactor<'r> {
    redactor: &'r Redactor,
    held: Vec<u8>,
}

impl StreamRedactor<'_> {
    /// The redacted output that is certain so far.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let inner = &self.redactor.inner;
        let Some(ac) = &inner.automaton else {
            return inner.replace(chunk).into_owned();
        };
        self.held.extend_from_slice(chunk);
        let text = std::mem::take(&mut self.held);
        // A match starting before `safe` is final: every value starting
        // there fits in `text`, so more input cannot make a longer one.
        // One starting at or after `safe` may still grow or complete.
        let safe = text.len().saturating_sub(inner.longest - 1);
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for m in ac.find_iter(&text) {
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&text[at..m.start()]);
            out.extend_from_slice(&inner.replacements[m.pattern().as_usize()]);
            at = m.end();
        }
        let keep_from = at.max(safe);
        out.extend_from_slice(&text[at..keep_from]);
        self.held = text[keep_from..].to_vec();
        out
    }

    /// The rest, redacted.
    pub fn finish(self) -> Vec<u8> {
        self.redactor.redact(&self.held).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(vec![
            ("api-key".into(), Zeroizing::new(b"sk-live-123456".to_vec())),
            ("short".into(), Zeroizing::new(b"sk-live".to_vec())),
            ("empty".into(), Zeroizing::new(Vec::new())),
        ])
    }

    #[test]
    fn values_become_their_names_and_the_longest_wins() {
        let r = redactor();
        assert_eq!(
            r.redact_str("a sk-live-123456 b sk-live c"),
            "a [secret:api-key] b [secret:short] c"
        );
        assert!(matches!(r.redact(b"nothing here"), Cow::Borrowed(_)));
        assert!(!r.is_empty());
        let none = Redactor::new(vec![("e".into(), Zeroizing::new(Vec::new()))]);
        assert!(none.is_empty());
        assert_eq!(none.redact_str("sk-live"), "sk-live");
        assert!(!format!("{r:?}").contains("sk-live"));
    }

    #[test]
    fn quoted_spellings_of_a_value_are_caught_too() {
        let r = Redactor::new(vec![("k".into(), Zeroizing::new(b"p\"w/d:1".to_vec()))]);
        let line = serde_json::json!({"msg": "p\"w/d:1"}).to_string();
        assert_eq!(r.redact_str(&line), r#"{"msg":"[secret:k]"}"#);
        assert_eq!(r.redact_str("?key=p%22w%2Fd%3A1"), "?key=[secret:k]");
        assert_eq!(r.redact_str("Basic cCJ3L2Q6MQ=="), "Basic [secret:k]");
        assert!(spellings(b"").is_empty());
        // As is, base64 padded and not (URL-safe is the same here), hex.
        assert_eq!(spellings(b"plain").len(), 4);
    }

    /// A value with the characters encoders treat differently, in each
    /// spelling a common encoder writes it, built here by hand.
    #[test]
    fn every_common_encoding_of_a_value_is_caught() {
        use base64::Engine;
        use base64::engine::general_purpose as b64;
        let v = "aB/c+d&e<f\"g h'i>j";
        let r = Redactor::new(vec![("k".into(), Zeroizing::new(v.as_bytes().to_vec()))]);
        let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
        let json = r#"aB/c+d&e<f\"g h'i>j"#;
        let every: String = v
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("\\u{b:04X}")
                }
            })
            .collect();
        let cases = [
            ("as is", v.to_string()),
            ("upper case", v.to_ascii_uppercase()),
            ("base64", b64::STANDARD.encode(v)),
            ("base64, unpadded", b64::STANDARD_NO_PAD.encode(v)),
            ("base64url", b64::URL_SAFE.encode(v)),
            ("base64url, unpadded", b64::URL_SAFE_NO_PAD.encode(v)),
            ("hex", hex.clone()),
            ("HEX", hex.to_ascii_uppercase()),
            ("JSON", json.to_string()),
            ("JSON, \\/", json.replace('/', "\\/")),
            (
                "JSON, Go",
                json.replace('&', "\\u0026")
                    .replace('<', "\\u003c")
                    .replace('>', "\\u003e"),
            ),
            ("JSON, every non-alphanumeric as \\u", every),
            ("form", "aB%2Fc%2Bd%26e%3Cf%22g+h%27i%3Ej".into()),
            ("form, lower hex", "aB%2fc%2bd%26e%3cf%22g+h%27i%3ej".into()),
            ("URL, %20", "aB%2Fc%2Bd%26e%3Cf%22g%20h%27i%3Ej".into()),
            (
                "encodeURIComponent",
                "aB%2Fc%2Bd%26e%3Cf%22g%20h'i%3Ej".into(),
            ),
            ("encodeURI", "aB/c+d&e%3Cf%22g%20h'i%3Ej".into()),
            (
                "HTML, Python",
                "aB/c+d&amp;e&lt;f&quot;g h&#x27;i&gt;j".into(),
            ),
            ("HTML, Go", "aB/c+d&amp;e&lt;f&#34;g h&#39;i&gt;j".into()),
            ("HTML, PHP", "aB/c+d&amp;e&lt;f&quot;g h&#039;i&gt;j".into()),
            (
                "HTML, &apos;",
                "aB/c+d&amp;e&lt;f&quot;g h&apos;i&gt;j".into(),
            ),
            (
                "HTML, decimal",
                "aB/c+d&#38;e&#60;f&#34;g h&#39;i&#62;j".into(),
            ),
            (
                "HTML, hex",
                "aB/c+d&#x26;e&#x3c;f&#x22;g h&#x27;i&#x3e;j".into(),
            ),
            (
                "HTML, HEX",
                "aB/c+d&#X26;e&#X3C;f&#X22;g h&#X27;i&#X3E;j".into(),
            ),
        ];
        let missed: Vec<&str> = cases
            .iter()
            .filter(|(_, spelled)| r.redact_str(&format!("<{spelled}>")) != "<[secret:k]>")
            .map(|(what, _)| *what)
            .collect();
        assert!(missed.is_empty(), "spellings not caught: {missed:?}");
        // Leftmost-longest still: a longer value starting with a shorter
        // one is replaced whole, in any case.
        let r = redactor();
        assert_eq!(
            r.redact_str("SK-LIVE-123456 sk-live"),
            "[secret:api-key] [secret:short]"
        );
    }

    #[test]
    fn a_value_split_across_chunks_is_still_caught() {
        let r = redactor();
        let text = b"out: sk-live-123456 and sk-live-12 then sk-live\n".as_slice();
        let want = r.redact(text).into_owned();
        // Every way of cutting the text in two and in single bytes.
        for cut in 0..=text.len() {
            let mut s = r.stream();
            let mut got = s.push(&text[..cut]);
            got.extend(s.push(&text[cut..]));
            got.extend(s.finish());
            assert_eq!(got, want, "cut at {cut}");
        }
        let mut s = r.stream();
        let mut got = Vec::new();
        for b in text {
            got.extend(s.push(std::slice::from_ref(b)));
        }
        got.extend(s.finish());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
        assert!(!String::from_utf8_lossy(&got).contains("sk-live"));
    }

    #[test]
    fn a_stream_holds_back_only_what_could_start_a_value() {
        let r = redactor();
        let mut s = r.stream();
        // Far from any value: all but the last 27 bytes (the longest
        // spelling, hex of "sk-live-123456", is 28) come out at once.
        let text = b"0123456789012345678901234567890123456789";
        let out = s.push(text);
        assert_eq!(out, text[..40 - 27]);
        assert_eq!(s.finish(), text[40 - 27..]);
    }
}
