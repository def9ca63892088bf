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

/// Every spelling a value is commonly carried in: as is, base64 (an
/// `Authorization: Basic` header), escaped for a JSON string (a JSON log
/// line, an echoing server) and percent-encoded (a URL or form); each only
/// when it differs from the others. Empty for an empty value.
pub fn spellings(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    if value.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Zeroizing::new(value.to_vec())];
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
    out.push(Zeroizing::new(b64.as_bytes().to_vec()));
    if let Ok(text) = std::str::from_utf8(value)
        && let Ok(json) = serde_json::to_string(text)
    {
        let json = Zeroizing::new(json);
        out.push(Zeroizing::new(json.as_bytes()[1..json.len() - 1].to_vec()));
    }
    let percent: Zeroizing<String> =
        Zeroizing::new(url::form_urlencoded::byte_serialize(value).collect());
    out.push(Zeroizing::new(percent.as_bytes().to_vec()));
    out.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
    out.dedup_by(|a, b| a.as_slice() == b.as_slice());
    out
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
        assert_eq!(spellings(b"plain").len(), 2);
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
        // Far from any value: all but the last 19 bytes (the longest
        // spelling, base64 of "sk-live-123456", is 20) come out at once.
        let out = s.push(b"0123456789012345678901234567890123456789");
        assert_eq!(out.len(), 40 - 19);
        assert_eq!(s.finish(), b"1234567890123456789");
    }
}
