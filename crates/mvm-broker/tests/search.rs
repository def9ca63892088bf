//! `web_search` against a local provider speaking the documented contract
//! (the test server's `/search`).

use mvm_broker::test_server::TestServer;
use mvm_broker::{Auth, Broker, Config, SearchProvider, Secret};
use mvm_proto::broker::{Call, ErrorCode, Outcome, SearchRequest};
use zeroize::Zeroizing;

const VALUE: &str = "sk-live-search-0123456789";

fn token() -> String {
    "mvm-secret-ref:api-key:0123456789abcdef0123456789abcdef".into()
}

fn config(server: Option<&TestServer>, key: Option<&str>) -> Config {
    Config {
        grants: vec![],
        allow_private: vec![],
        pins: vec![],
        extra_roots_pem: server
            .map(|s| s.ca_pem.clone().into_bytes())
            .unwrap_or_default(),
        secrets: vec![Secret {
            name: "api-key".into(),
            token: token(),
            auth: Auth::Bearer,
            hosts: vec![],
            value: Zeroizing::new(VALUE.as_bytes().to_vec()),
        }],
        search: server.map(|s| SearchProvider {
            url: s.url("127.0.0.1", "/search"),
            key: key.map(|k| Zeroizing::new(k.as_bytes().to_vec())),
            key_name: None,
        }),
    }
}

fn search(query: &str, max_results: u32) -> Call {
    Call::WebSearch(SearchRequest {
        query: query.into(),
        max_results,
    })
}

#[tokio::test]
async fn a_search_goes_to_the_provider_and_comes_back_as_hits() {
    let server = TestServer::start(&[]);
    let b = Broker::new(config(Some(&server), Some("provider-key-42"))).unwrap();
    let (o, record) = b.call(search("rust microvm & more", 2)).await;
    let Outcome::Searched(r) = o else {
        panic!("expected results, got {o:?}")
    };
    assert_eq!(r.results.len(), 2);
    assert_eq!(r.results[0].title, "Result 1 for rust microvm & more");
    assert_eq!(r.results[0].url, "https://example.test/1");
    assert_eq!(r.results[1].snippet, "about rust microvm & more");
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "GET");
    assert!(
        seen.path
            .starts_with("/search?q=rust+microvm+%26+more&format=json"),
        "{}",
        seen.path
    );
    assert_eq!(seen.header("authorization"), Some("Bearer provider-key-42"));
    // The app's secrets are never sent to the provider.
    assert!(!format!("{:?}", seen.headers).contains(VALUE));
    assert_eq!(record.kind, "web_search");
    assert_eq!(record.decision, "allowed");
    assert_eq!(record.status, Some(200));
    assert_eq!(
        record.destination.as_deref(),
        Some(format!("127.0.0.1:{}", server.port).as_str())
    );
    assert!(!b.redactor().redact_str("provider-key-42").contains("42"));

    // A value in the results reaches the guest as its token.
    let (o, _) = b.call(search(VALUE, 1)).await;
    let Outcome::Searched(r) = o else {
        panic!("expected results, got {o:?}")
    };
    assert_eq!(r.results[0].snippet, format!("about {}", token()));
}

#[tokio::test]
async fn without_a_provider_search_is_unavailable_and_bad_queries_are_refused() {
    let b = Broker::new(config(None, None)).unwrap();
    let (o, record) = b.call(search("q", 3)).await;
    let Outcome::Failed(e) = o else {
        panic!("{o:?}")
    };
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert_eq!(record.decision, "refused");

    let server = TestServer::start(&[]);
    let b = Broker::new(config(Some(&server), None)).unwrap();
    for (q, n) in [("", 3), ("q", 0)] {
        let (o, _) = b.call(search(q, n)).await;
        let Outcome::Failed(e) = o else {
            panic!("{o:?}")
        };
        assert_eq!(e.code, ErrorCode::BadRequest);
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_provider_that_does_not_speak_the_contract_is_upstream() {
    let server = TestServer::start(&[]);
    let mut c = config(Some(&server), None);
    // /echo answers JSON, but not `{"results": [...]}`.
    c.search = Some(SearchProvider {
        url: server.url("127.0.0.1", "/echo"),
        key: None,
        key_name: None,
    });
    let b = Broker::new(c).unwrap();
    let (o, _) = b.call(search("q", 3)).await;
    let Outcome::Failed(e) = o else {
        panic!("{o:?}")
    };
    assert_eq!(e.code, ErrorCode::Upstream, "{}", e.message);
    assert!(e.message.contains("documented JSON"), "{}", e.message);
}
