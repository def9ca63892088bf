//! The one place a guest's call is checked: URL, method, headers, body and
//! time limit of a fetch, and a search's query, turned into a [`Fetch`] or
//! [`Search`] the rest of the broker can trust. Guest text that goes into
//! an error message passes through [`quote`].

use std::time::Duration;

use mvm_egress::Grant;
use mvm_proto::broker::{
    DEFAULT_TIMEOUT_MS, ErrorCode, FetchRequest, MAX_REQUEST_BODY, MAX_SEARCH_RESULTS,
    MAX_TIMEOUT_MS, SearchRequest,
};
use reqwest::Method;
use reqwest::header::HeaderName;

use crate::Refusal;

/// Longest URL accepted.
pub const MAX_URL: usize = 16 * 1024;
/// Most headers a guest may send, and their total size.
pub const MAX_HEADERS: usize = 128;
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest search query, in bytes.
pub const MAX_QUERY: usize = 1024;

/// Headers the host's HTTP client owns: a guest that set them could smuggle
/// a second request or confuse the framing.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// Headers the guest may not set because of what the answer would become:
/// a compressed or partial response carries a secret value the host's
/// filter cannot see (it replaces values byte for byte in the whole,
/// uncompressed body). The host itself asks for `identity`.
const ANSWER_SHAPING: &[&str] = &["accept-encoding", "range", "if-range"];

/// The shortest time limit, in milliseconds: shorter ones would abandon
/// calls (and their name lookups) faster than the lookups end.
pub const MIN_TIMEOUT_MS: u64 = 1000;

/// A fetch that passed every check that needs no secret and no network.
#[derive(Debug)]
pub(crate) struct Fetch {
    pub url: url::Url,
    pub grant: Grant,
    pub method: Method,
    /// The guest's headers, in order, names lowercase; values still hold
    /// their tokens.
    pub headers: Vec<(HeaderName, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

pub(crate) fn fetch(req: FetchRequest) -> Result<Fetch, Refusal> {
    let bad = |m: String| (ErrorCode::BadRequest, m);
    if req.url.len() > MAX_URL {
        return Err(bad(format!("the URL is longer than {MAX_URL} bytes")));
    }
    let url = url::Url::parse(&req.url)
        .map_err(|e| bad(format!("{} is not a URL: {e}", quote(&req.url))))?;
    if url.scheme() != "https" {
        return Err((
            ErrorCode::EgressDenied,
            format!(
                "{}: only https URLs are fetched (the host makes the TLS connection itself)",
                quote(&req.url)
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "the URL holds a user name or password; send credentials in a header instead".into(),
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => return Err(bad(format!("{} names no host", quote(&req.url)))),
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let grant = Grant::parse(&format!("{host}:{port}")).map_err(|_| {
        bad(format!(
            "{} is not a host the broker can reach",
            quote(&host)
        ))
    })?;
    let method = method(&req.method)?;
    let headers = headers(req.headers)?;
    if req.body.len() > MAX_REQUEST_BODY {
        return Err((
            ErrorCode::TooLarge,
            format!(
                "the request body is {} bytes; at most {MAX_REQUEST_BODY} are sent",
                req.body.len()
            ),
        ));
    }
    let ms = req
        .timeout_ms
        .unwrap_or(DEFAULT_TIMEOUT_MS)
        .clamp(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
    Ok(Fetch {
        url,
        grant,
        method,
        headers,
        body: req.body,
        timeout: Duration::from_millis(ms),
    })
}

fn method(text: &str) -> Result<Method, Refusal> {
    let m = match text.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        "OPTIONS" => Method::OPTIONS,
        _ => {
            return Err((
                ErrorCode::BadRequest,
                format!(
                    "method {} is not one of GET HEAD POST PUT PATCH DELETE OPTIONS",
                    quote(text)
                ),
            ));
        }
    };
    Ok(m)
}

/// A header only the HTTP client may set.
pub(crate) fn reserved(lower: &str) -> bool {
    RESERVED.contains(&lower) || lower.starts_with("proxy-")
}

/// A header that would make the answer one the filter cannot read.
pub(crate) fn shapes_answer(lower: &str) -> bool {
    ANSWER_SHAPING.contains(&lower)
}

fn headers(list: Vec<(String, String)>) -> Result<Vec<(HeaderName, String)>, Refusal> {
    let bad = |m: String| (ErrorCode::BadRequest, m);
    if list.len() > MAX_HEADERS {
        return Err(bad(format!("more than {MAX_HEADERS} headers")));
    }
    let total: usize = list.iter().map(|(n, v)| n.len() + v.len()).sum();
    if total > MAX_HEADER_BYTES {
        return Err(bad(format!(
            "headers of more than {MAX_HEADER_BYTES} bytes"
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for (name, value) in list {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("{} is not a header name", quote(&name))))?;
        let lower = parsed.as_str();
        if reserved(lower) {
            return Err(bad(format!(
                "header {lower} is set by the host's HTTP client, not by the guest"
            )));
        }
        if shapes_answer(lower) {
            return Err(bad(format!(
                "header {lower} may not be set by the guest: a compressed or partial response \
                 would hide secret values from the host's filter (the host always asks for \
                 `Accept-Encoding: identity` and whole responses)"
            )));
        }
        // Visible ASCII, spaces and tabs, or bytes >= 0x80: what a header
        // value may hold (no CR, LF or NUL: no second request smuggled in).
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad(format!(
                "the value of header {lower} holds a control character"
            )));
        }
        out.push((parsed, value));
    }
    Ok(out)
}

/// A checked search.
#[derive(Debug)]
pub(crate) struct Search {
    pub query: String,
    pub max_results: usize,
}

pub(crate) fn search(req: SearchRequest) -> Result<Search, Refusal> {
    let bad = |m: String| (ErrorCode::BadRequest, m);
    if req.query.trim().is_empty() {
        return Err(bad("the search query is empty".into()));
    }
    if req.query.len() > MAX_QUERY {
        return Err(bad(format!(
            "the search query is {} bytes; at most {MAX_QUERY}",
            req.query.len()
        )));
    }
    if req.max_results == 0 {
        return Err(bad("max_results must be at least 1".into()));
    }
    Ok(Search {
        query: req.query,
        max_results: req.max_results.min(MAX_SEARCH_RESULTS) as usize,
    })
}

/// Guest text for a message: escaped and cut to a readable length.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 120;
    let mut cut = text;
    if cut.len() > MAX {
        let mut end = MAX;
        while !cut.is_char_boundary(end) {
            end -= 1;
        }
        cut = &cut[..end];
    }
    let escaped = mvm_ir::text::escape_control(cut);
    if cut.len() < text.len() {
        format!("`{escaped}...`")
    } else {
        format!("`{escaped}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str) -> FetchRequest {
        FetchRequest {
            url: url.into(),
            method: "GET".into(),
            headers: vec![],
            body: vec![],
            timeout_ms: None,
        }
    }

    fn code(r: Result<Fetch, Refusal>) -> ErrorCode {
        r.unwrap_err().0
    }

    #[test]
    fn urls_must_be_https_without_userinfo() {
        let f = fetch(req("https://API.Example/v1?q=1#frag")).unwrap();
        assert_eq!(f.grant, Grant::new("api.example", 443));
        assert_eq!(f.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert_eq!(
            fetch(req("https://[::1]:8443/")).unwrap().grant.to_string(),
            "[::1]:8443"
        );
        // A number spelled as a host is the address it spells.
        assert_eq!(
            fetch(req("https://2130706433/")).unwrap().grant.host,
            "127.0.0.1"
        );
        assert_eq!(
            code(fetch(req("http://api.example/"))),
            ErrorCode::EgressDenied
        );
        assert_eq!(
            code(fetch(req("ftp://api.example/"))),
            ErrorCode::EgressDenied
        );
        assert_eq!(
            code(fetch(req("https://u:p@api.example/"))),
            ErrorCode::BadRequest
        );
        assert_eq!(code(fetch(req("not a url"))), ErrorCode::BadRequest);
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL));
        assert_eq!(code(fetch(req(&long))), ErrorCode::BadRequest);
    }

    #[test]
    fn methods_headers_bodies_and_timeouts_are_checked() {
        let mut r = req("https://a.example/");
        r.method = "post".into();
        r.timeout_ms = Some(u64::MAX);
        r.headers = vec![("X-Thing".into(), "v\tw".into())];
        let f = fetch(r).unwrap();
        assert_eq!(f.method, Method::POST);
        assert_eq!(f.timeout, Duration::from_millis(MAX_TIMEOUT_MS));
        assert_eq!(f.headers[0].0.as_str(), "x-thing");
        for m in ["CONNECT", "TRACE", "GET ", ""] {
            let mut r = req("https://a.example/");
            r.method = m.into();
            assert_eq!(code(fetch(r)), ErrorCode::BadRequest, "{m}");
        }
        for (n, v) in [
            ("Host", "x"),
            ("Content-Length", "1"),
            ("transfer-encoding", "chunked"),
            ("Proxy-Authorization", "x"),
            ("Accept-Encoding", "gzip"),
            ("accept-encoding", "identity"),
            ("Range", "bytes=0-7"),
            ("If-Range", "\"etag\""),
            ("bad name", "x"),
            ("x", "a\r\nInjected: 1"),
            ("x", "nul\0"),
        ] {
            let mut r = req("https://a.example/");
            r.headers = vec![(n.into(), v.into())];
            assert_eq!(code(fetch(r)), ErrorCode::BadRequest, "{n}: {v:?}");
        }
        let mut r = req("https://a.example/");
        r.headers = vec![("Accept-Encoding".into(), "br".into())];
        let (_, why) = fetch(r).unwrap_err();
        assert!(why.contains("compressed or partial"), "{why}");
        for (ms, want) in [(0, MIN_TIMEOUT_MS), (1, MIN_TIMEOUT_MS), (1500, 1500)] {
            let mut r = req("https://a.example/");
            r.timeout_ms = Some(ms);
            assert_eq!(fetch(r).unwrap().timeout, Duration::from_millis(want));
        }
        let mut r = req("https://a.example/");
        r.body = vec![0; MAX_REQUEST_BODY + 1];
        assert_eq!(code(fetch(r)), ErrorCode::TooLarge);
    }

    #[test]
    fn searches_need_a_short_non_empty_query() {
        let s = |q: &str, n| {
            search(SearchRequest {
                query: q.into(),
                max_results: n,
            })
        };
        assert_eq!(
            s("rust", 500).unwrap().max_results,
            MAX_SEARCH_RESULTS as usize
        );
        assert!(s(" ", 3).is_err());
        assert!(s("q", 0).is_err());
        assert!(s(&"q".repeat(MAX_QUERY + 1), 3).is_err());
    }

    #[test]
    fn quoted_guest_text_is_escaped_and_cut() {
        assert_eq!(quote("a\u{1b}[2J"), "`a\\x1b[2J`");
        let q = quote(&"é".repeat(200));
        assert!(q.ends_with("...`") && q.len() < 140, "{q}");
    }
}
