//! `web_fetch` against a real local HTTPS server (its own test CA, given as
//! the operator CA bundle), reached as `echo.test:PORT` through a pin to
//! 127.0.0.1 the operator allowed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use mvm_broker::test_server::TestServer;
use mvm_broker::{Auth, Broker, Config, MAX_IN_FLIGHT, MAX_RESPONSE_BODY, Record, Secret};
use mvm_egress::{Grant, Pin};
use mvm_proto::broker::{BrokerError, Call, ErrorCode, FetchRequest, FetchResponse, Outcome};
use zeroize::Zeroizing;

const VALUE: &str = "sk-live-abcdef0123456789";

fn token(name: &str) -> String {
    format!("mvm-secret-ref:{name}:0123456789abcdef0123456789abcdef")
}

fn secret(name: &str, auth: Auth, hosts: &[&str], value: &str) -> Secret {
    Secret {
        name: name.into(),
        token: token(name),
        auth,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        value: Zeroizing::new(value.as_bytes().to_vec()),
    }
}

/// `echo.test` and `other.test` granted, both pinned to the server and
/// allowed private.
fn config(server: &TestServer, secrets: Vec<Secret>) -> Config {
    let grants = vec![
        Grant::new("echo.test", server.port),
        Grant::new("other.test", server.port),
    ];
    Config {
        grants: grants.clone(),
        allow_private: grants,
        pins: vec![
            Pin::parse("echo.test=127.0.0.1").unwrap(),
            Pin::parse("other.test=127.0.0.1").unwrap(),
        ],
        extra_roots_pem: server.ca_pem.clone().into_bytes(),
        secrets,
        search: None,
    }
}

fn broker(server: &TestServer, secrets: Vec<Secret>) -> Broker {
    Broker::new(config(server, secrets)).unwrap()
}

fn get(url: &str) -> FetchRequest {
    FetchRequest {
        url: url.into(),
        method: "GET".into(),
        headers: vec![],
        body: vec![],
        timeout_ms: Some(10_000),
    }
}

async fn fetch(b: &Broker, req: FetchRequest) -> (Outcome, Record) {
    b.call(Call::WebFetch(req)).await
}

fn fetched(o: Outcome) -> FetchResponse {
    match o {
        Outcome::Fetched(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn failed(o: Outcome) -> BrokerError {
    match o {
        Outcome::Failed(e) => e,
        Outcome::Fetched(r) => panic!(
            "expected a refusal, got {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn header<'a>(r: &'a FetchResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_token_in_a_header_arrives_as_the_value_and_comes_back_as_the_token() {
    let server = TestServer::start(&["echo.test", "other.test"]);
    let b = broker(
        &server,
        vec![secret("api-key", Auth::Token, &["Echo.Test"], VALUE)],
    );
    let mut req = get(&server.url("echo.test", &format!("/echo?t={}", token("api-key"))));
    req.method = "POST".into();
    req.headers = vec![
        (
            "Authorization".into(),
            format!("Bearer {}", token("api-key")),
        ),
        ("X-Plain".into(), "hello".into()),
    ];
    // A token in the body is the guest's data: not replaced.
    req.body = format!("body {}", token("api-key")).into_bytes();
    let (outcome, record) = fetch(&b, req).await;
    let r = fetched(outcome);
    assert_eq!(r.status, 200);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {VALUE}").as_str())
    );
    assert_eq!(seen[0].header("x-plain"), Some("hello"));
    // Neither is a token in the URL.
    assert_eq!(seen[0].path, format!("/echo?t={}", token("api-key")));
    assert_eq!(
        seen[0].body,
        format!("body {}", token("api-key")).as_bytes()
    );
    // The echo (body and headers) holds the value; the guest gets the token.
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(!body.contains(VALUE), "{body}");
    assert!(
        body.contains(&format!("Bearer {}", token("api-key"))),
        "{body}"
    );
    assert_eq!(
        header(&r, "x-echo-authorization"),
        Some(format!("Bearer {}", token("api-key")).as_str())
    );
    assert!(r.headers.iter().all(|(_, v)| !v.contains(VALUE)));
    assert_eq!(record.kind, "web_fetch");
    assert_eq!(record.secrets, ["api-key"]);
    assert_eq!(record.decision, "allowed");
    assert_eq!(record.status, Some(200));
    assert_eq!(
        record.destination.as_deref(),
        Some(format!("echo.test:{}", server.port).as_str())
    );
    assert_eq!(record.method.as_deref(), Some("POST"));
    assert!(record.bytes_received > 0 && record.bytes_sent > 0);
    assert!(!record.json_line().contains(VALUE));
}

#[tokio::test]
async fn bearer_basic_and_header_secrets_apply_without_the_guest_naming_them() {
    let server = TestServer::start(&["echo.test", "other.test"]);
    let b = broker(
        &server,
        vec![
            secret("bearer", Auth::Bearer, &["echo.test"], "BEARER-VALUE-1"),
            secret("elsewhere", Auth::Bearer, &["other.test"], "OTHER-VALUE-2"),
            secret(
                "hdr",
                Auth::Header("X-Api-Key".into()),
                &[],
                "HEADER-VALUE-3",
            ),
            secret("unused", Auth::Token, &[], "UNUSED-VALUE-4"),
        ],
    );
    let mut req = get(&server.url("echo.test", "/echo"));
    req.headers = vec![("authorization".into(), "guest's own".into())];
    let (outcome, record) = fetch(&b, req).await;
    let r = fetched(outcome);
    let seen = &server.requests()[0];
    let auth: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .collect();
    assert_eq!(auth.len(), 1, "{:?}", seen.headers);
    assert_eq!(auth[0].1, "Bearer BEARER-VALUE-1");
    assert_eq!(seen.header("x-api-key"), Some("HEADER-VALUE-3"));
    let text = format!("{:?}", seen.headers);
    assert!(!text.contains("OTHER-VALUE-2") && !text.contains("UNUSED-VALUE-4"));
    assert_eq!(record.secrets, ["bearer", "hdr"]);
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains(&token("bearer")) && body.contains(&token("hdr")),
        "{body}"
    );
    assert!(
        !body.contains("VALUE-1") && !body.contains("VALUE-3"),
        "{body}"
    );

    // Basic: base64 of the value goes out, and comes back as the token.
    let basic = broker(
        &server,
        vec![secret(
            "login",
            Auth::Basic,
            &["echo.test"],
            "user:pw-secret",
        )],
    );
    let (outcome, record) = fetch(&basic, get(&server.url("echo.test", "/echo"))).await;
    let r = fetched(outcome);
    let b64 = base64::engine::general_purpose::STANDARD.encode("user:pw-secret");
    assert_eq!(
        server.requests()[1].header("authorization"),
        Some(format!("Basic {b64}").as_str())
    );
    let body = String::from_utf8_lossy(&r.body);
    assert!(!body.contains(&b64), "{body}");
    assert!(
        body.contains(&format!("Basic {}", token("login"))),
        "{body}"
    );
    assert_eq!(record.secrets, ["login"]);
}

#[tokio::test]
async fn destinations_not_granted_or_not_https_are_denied() {
    let server = TestServer::start(&["echo.test"]);
    let b = broker(&server, vec![]);
    let (o, record) = fetch(&b, get(&server.url("nope.test", "/echo"))).await;
    let e = failed(o);
    assert_eq!(e.code, ErrorCode::EgressDenied);
    assert!(
        e.message.contains("nope.test") && e.message.contains("not granted"),
        "{}",
        e.message
    );
    assert_eq!(record.decision, "refused");
    assert!(record.reason.is_some());
    assert_eq!(
        record.destination.as_deref(),
        Some(format!("nope.test:{}", server.port).as_str())
    );
    let (o, _) = fetch(&b, get(&format!("http://echo.test:{}/echo", server.port))).await;
    assert_eq!(failed(o).code, ErrorCode::EgressDenied);
    // The default port is 443, which is not the granted one.
    let (o, _) = fetch(&b, get("https://echo.test/echo")).await;
    assert_eq!(failed(o).code, ErrorCode::EgressDenied);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn loopback_needs_the_operators_permission() {
    let server = TestServer::start(&["echo.test"]);
    let mut c = config(&server, vec![]);
    c.allow_private.clear();
    c.grants.push(Grant::new("127.0.0.1", server.port));
    let b = Broker::new(c).unwrap();
    for url in [
        server.url("echo.test", "/echo"),
        server.url("127.0.0.1", "/echo"),
    ] {
        let (o, record) = fetch(&b, get(&url)).await;
        let e = failed(o);
        assert_eq!(e.code, ErrorCode::EgressDenied, "{url}: {}", e.message);
        assert!(e.message.contains("loopback"), "{}", e.message);
        assert_eq!(record.decision, "refused");
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn secrets_go_only_where_they_are_bound_and_unknown_tokens_are_refused() {
    let server = TestServer::start(&["echo.test", "other.test"]);
    let b = broker(
        &server,
        vec![secret("api-key", Auth::Token, &["other.test"], VALUE)],
    );
    let mut req = get(&server.url("echo.test", "/echo"));
    req.headers = vec![("authorization".into(), token("api-key"))];
    let (o, record) = fetch(&b, req).await;
    let e = failed(o);
    assert_eq!(e.code, ErrorCode::SecretNotAllowed);
    assert!(
        e.message.contains("api-key") && e.message.contains("echo.test"),
        "{}",
        e.message
    );
    assert!(record.secrets.is_empty());
    // Bound host: allowed.
    let mut req = get(&server.url("other.test", "/echo"));
    req.headers = vec![("authorization".into(), token("api-key"))];
    let (o, _) = fetch(&b, req).await;
    assert_eq!(fetched(o).status, 200);
    assert_eq!(server.requests().len(), 1);

    for bad in [
        token("other-secret"),
        format!("{}0", token("api-key")),
        "mvm-secret-ref:".to_string(),
    ] {
        let mut req = get(&server.url("other.test", "/echo"));
        req.headers = vec![("x-key".into(), format!("k={bad}"))];
        let (o, _) = fetch(&b, req).await;
        let e = failed(o);
        assert_eq!(e.code, ErrorCode::SecretNotAllowed, "{bad}");
        assert!(e.message.contains("unknown secret token"), "{}", e.message);
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_redirect_is_returned_not_followed() {
    let server = TestServer::start(&["echo.test"]);
    let b = broker(&server, vec![secret("k", Auth::Bearer, &[], VALUE)]);
    let (o, _) = fetch(&b, get(&server.url("echo.test", "/redirect"))).await;
    let r = fetched(o);
    assert_eq!(r.status, 302);
    assert_eq!(
        header(&r, "location"),
        Some("https://elsewhere.test/landed")
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn responses_over_the_cap_are_too_large() {
    let server = TestServer::start(&["echo.test"]);
    let b = broker(&server, vec![]);
    let over = MAX_RESPONSE_BODY + 1;
    for length in ["1", "0"] {
        let url = server.url("echo.test", &format!("/big?bytes={over}&length={length}"));
        let (o, _) = fetch(&b, get(&url)).await;
        assert_eq!(failed(o).code, ErrorCode::TooLarge, "length={length}");
    }
    // Right at the cap is fine.
    let url = server.url(
        "echo.test",
        &format!("/big?bytes={MAX_RESPONSE_BODY}&length=0"),
    );
    let (o, record) = fetch(&b, get(&url)).await;
    assert_eq!(fetched(o).body.len(), MAX_RESPONSE_BODY);
    assert_eq!(record.bytes_received, MAX_RESPONSE_BODY as u64);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = TestServer::start(&["echo.test"]);
    let b = broker(&server, vec![]);
    let mut req = get(&server.url("echo.test", "/slow"));
    req.timeout_ms = Some(1000);
    let started = Instant::now();
    let (o, record) = fetch(&b, req).await;
    let e = failed(o);
    assert_eq!(e.code, ErrorCode::Timeout, "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(record.reason.unwrap().contains("1000 ms"));
}

#[tokio::test]
async fn an_untrusted_certificate_is_an_upstream_failure() {
    let server = TestServer::start(&["echo.test"]);
    let mut c = config(&server, vec![secret("k", Auth::Bearer, &[], VALUE)]);
    c.extra_roots_pem.clear();
    let b = Broker::new(c).unwrap();
    let (o, record) = fetch(&b, get(&server.url("echo.test", "/echo"))).await;
    let e = failed(o);
    assert_eq!(e.code, ErrorCode::Upstream, "{}", e.message);
    assert!(e.message.contains("certificate"), "{}", e.message);
    assert!(!e.message.contains(VALUE));
    assert!(server.requests().is_empty());
    assert_eq!(record.status, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_limit_are_busy() {
    let server = TestServer::start(&["echo.test"]);
    let b = Arc::new(broker(&server, vec![]));
    let mut slow = Vec::new();
    for _ in 0..MAX_IN_FLIGHT {
        let b = b.clone();
        let mut req = get(&server.url("echo.test", "/slow"));
        req.timeout_ms = Some(5_000);
        slow.push(tokio::spawn(async move { fetch(&b, req).await }));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.requests().len() < MAX_IN_FLIGHT {
        assert!(Instant::now() < deadline, "the slow calls did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (o, _) = fetch(&b, get(&server.url("echo.test", "/echo"))).await;
    assert_eq!(failed(o).code, ErrorCode::Busy);
    for t in slow {
        let (o, _) = t.await.unwrap();
        assert_eq!(failed(o).code, ErrorCode::Timeout);
    }
    // Free again.
    let (o, _) = fetch(&b, get(&server.url("echo.test", "/echo"))).await;
    assert_eq!(fetched(o).status, 200);
}

#[tokio::test]
async fn calls_to_the_same_destination_reuse_the_connection() {
    let server = TestServer::start(&["echo.test", "other.test"]);
    let b = broker(&server, vec![]);
    for url in [
        server.url("echo.test", "/echo"),
        server.url("echo.test", "/echo"),
        server.url("other.test", "/echo"),
    ] {
        let (o, _) = fetch(&b, get(&url)).await;
        assert_eq!(fetched(o).status, 200);
    }
    let seen = server.requests();
    assert_eq!(seen[0].connection, seen[1].connection);
    assert_ne!(seen[1].connection, seen[2].connection);
}

/// A bound host that echoes the request (its applied secret included) and
/// compresses when asked, or always: the guest may not ask, the host asks
/// for identity, and a compressed answer is refused rather than relayed
/// (the filter cannot see a value inside compressed bytes).
#[tokio::test]
async fn compressed_or_partial_answers_are_refused() {
    let server = TestServer::start(&["echo.test"]);
    let b = broker(
        &server,
        vec![secret("k", Auth::Bearer, &["echo.test"], VALUE)],
    );
    // The guest asking for gzip is refused before anything is sent.
    let mut req = get(&server.url("echo.test", "/gzip"));
    req.headers = vec![("Accept-Encoding".into(), "gzip".into())];
    let e = failed(fetch(&b, req).await.0);
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
    assert!(e.message.contains("accept-encoding"), "{}", e.message);
    for (n, v) in [("Range", "bytes=0-7"), ("If-Range", "\"x\"")] {
        let mut req = get(&server.url("echo.test", "/partial"));
        req.headers = vec![(n.into(), v.into())];
        assert_eq!(failed(fetch(&b, req).await.0).code, ErrorCode::BadRequest);
    }
    assert!(server.requests().is_empty());
    // The host asks for identity; a server that honours it is relayed.
    let (o, _) = fetch(&b, get(&server.url("echo.test", "/gzip"))).await;
    let r = fetched(o);
    assert_eq!(
        server.requests()[0].header("accept-encoding"),
        Some("identity")
    );
    assert!(header(&r, "content-encoding").is_none());
    assert!(!String::from_utf8_lossy(&r.body).contains(VALUE));
    // One that compresses anyway is refused, and nothing of it is relayed.
    let (o, record) = fetch(&b, get(&server.url("echo.test", "/gzip?always=1"))).await;
    let e = failed(o);
    assert_eq!(e.code, ErrorCode::Upstream, "{}", e.message);
    assert!(
        e.message.contains("Content-Encoding `gzip`"),
        "{}",
        e.message
    );
    assert_eq!(record.status, Some(200));
    // So is one compressed as a transfer coding.
    let e = failed(
        fetch(&b, get(&server.url("echo.test", "/gzip?te=1")))
            .await
            .0,
    );
    assert_eq!(e.code, ErrorCode::Upstream, "{}", e.message);
    assert!(
        e.message.contains("Transfer-Encoding `gzip, chunked`"),
        "{}",
        e.message
    );
    // A partial answer (asked or not) is refused too.
    let e = failed(fetch(&b, get(&server.url("echo.test", "/partial"))).await.0);
    assert_eq!(e.code, ErrorCode::Upstream, "{}", e.message);
    assert!(e.message.contains("206"), "{}", e.message);
}

/// The test server's gzip is real gzip (else the test above proves
/// little): the input bytes do not appear in it, and its trailer holds
/// the CRC-32 and length of the input.
#[test]
fn the_test_servers_gzip_hides_its_input() {
    let data = format!("{{\"authorization\":\"Bearer {VALUE}\"}}");
    let z = mvm_broker::test_server::gzip(data.as_bytes());
    assert_eq!(&z[..3], &[0x1f, 0x8b, 8]);
    assert!(!z.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
    let n = u32::from_le_bytes(z[z.len() - 4..].try_into().unwrap());
    assert_eq!(n as usize, data.len());
    // CRC-32 of "123456789" is 0xcbf43926 (the check value).
    let z = mvm_broker::test_server::gzip(b"123456789");
    let crc = u32::from_le_bytes(z[z.len() - 8..z.len() - 4].try_into().unwrap());
    assert_eq!(crc, 0xcbf4_3926);
    if let Some(path) = std::env::var_os("MVM_BROKER_GZIP_SAMPLE") {
        std::fs::write(path, mvm_broker::test_server::gzip(data.as_bytes())).unwrap();
    }
}

/// A token is replaced only where a credential goes; anywhere else (where
/// a bound host may store the value and show it back later, unfiltered)
/// the call is refused and nothing is sent.
#[tokio::test]
async fn a_token_is_replaced_only_as_a_whole_credential() {
    let server = TestServer::start(&["echo.test"]);
    let b = broker(
        &server,
        vec![secret("api", Auth::Token, &["echo.test"], VALUE)],
    );
    let t = token("api");
    for (n, v) in [
        ("User-Agent", format!("x {t} y")),
        ("Cookie", format!("s={t}")),
        ("Referer", format!("https://a.example/?k={t}")),
        ("Authorization", format!("Bearer {t}, Bearer {t}")),
        ("Authorization", format!("Bearer  {t}")),
        ("X-Api-Key", format!("{t} ")),
    ] {
        let mut req = get(&server.url("echo.test", "/echo"));
        req.headers = vec![(n.into(), v.clone())];
        let e = failed(fetch(&b, req).await.0);
        assert_eq!(
            e.code,
            ErrorCode::SecretNotAllowed,
            "{n}: {v}: {}",
            e.message
        );
        assert!(e.message.contains("`Bearer TOKEN`"), "{}", e.message);
    }
    assert!(server.requests().is_empty(), "a misplaced token was sent");
    let mut req = get(&server.url("echo.test", "/echo"));
    req.headers = vec![
        ("Authorization".into(), format!("token {t}")),
        ("X-Api-Key".into(), t.clone()),
    ];
    let r = fetched(fetch(&b, req).await.0);
    assert_eq!(r.status, 200);
    let seen = &server.requests()[0];
    assert_eq!(
        seen.header("authorization"),
        Some(format!("token {VALUE}").as_str())
    );
    assert_eq!(seen.header("x-api-key"), Some(VALUE));
}

/// Tokens are longer than short values: filtering can grow a response
/// past the caps, which is then too large rather than relayed.
#[tokio::test]
async fn a_response_that_grows_past_the_caps_when_filtered_is_too_large() {
    let server = TestServer::start(&["echo.test"]);
    let b = broker(
        &server,
        vec![secret("x", Auth::Token, &["echo.test"], "xx")],
    );
    // 1 MiB of `x`: half a million tokens of some 50 bytes each.
    let n = 1024 * 1024;
    assert!(n / 2 * token("x").len() > MAX_RESPONSE_BODY);
    let e = failed(
        fetch(
            &b,
            get(&server.url("echo.test", &format!("/big?bytes={n}"))),
        )
        .await
        .0,
    );
    assert_eq!(e.code, ErrorCode::TooLarge, "{}", e.message);
    assert!(e.message.contains("replaced by tokens"), "{}", e.message);
    // Short of the cap once filtered, it is relayed.
    let (o, _) = fetch(&b, get(&server.url("echo.test", "/big?bytes=1000"))).await;
    assert_eq!(
        String::from_utf8(fetched(o).body).unwrap(),
        token("x").repeat(500)
    );
    // Headers: the echo sends a guest header back as `x-echo-NAME`.
    let mut req = get(&server.url("echo.test", "/echo"));
    req.headers = vec![("X-Pad".into(), "x".repeat(32 * 1024))];
    let e = failed(fetch(&b, req).await.0);
    assert_eq!(e.code, ErrorCode::TooLarge, "{}", e.message);
    assert!(e.message.contains("headers"), "{}", e.message);
    assert!(16 * 1024 * token("x").len() > mvm_broker::MAX_RESPONSE_HEADER_BYTES);
}
