//! The API server without microVMs: its routes against docs/openapi.json
//! (both ways), the TCP listener's token, the unix socket's mode, and the
//! one error shape. Requests are real HTTP over real sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    tcp: SocketAddr,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start() -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let tcp = free_port();
    let opts = mvm_api::ServeOptions {
        home: home.clone(),
        listen: Some(tcp),
        mvmctl: PathBuf::from("/nonexistent/mvmctl"),
    };
    std::thread::spawn(move || mvm_api::serve_blocking(opts));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(tcp).is_err() || UnixStream::connect(home.join("api.sock")).is_err() {
        assert!(Instant::now() < deadline, "the server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        _tmp: tmp,
        home,
        tcp,
    }
}

/// (status, body) of one HTTP/1.1 request.
fn request(
    stream: &mut dyn ReadWrite,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn unix(s: &Server, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(s.home.join("api.sock")).unwrap();
    request(&mut stream, method, path, &[], body)
}

fn code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let e = &v["error"];
    assert!(
        e["message"].is_string() && e["hint"].is_string(),
        "not the error shape: {body}"
    );
    e["code"].as_str().unwrap().to_string()
}

fn openapi() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_openapi_file_and_the_server_have_the_same_routes() {
    let doc = openapi();
    let mut documented = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: std::collections::BTreeSet<_> = mvm_api::routes::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, served,
        "docs/openapi.json and routes::ROUTES differ"
    );

    // Every route is really routed (answered by its handler, not the
    // fallback), and what is not a route is refused as one.
    let s = start();
    for (method, path) in mvm_api::routes::ROUTES {
        let concrete = path.replace("{id}", "nosuch").replace("{cid}", "c1") + "?path=/x";
        let (status, body) = unix(&s, method, &concrete, "");
        if !body.starts_with('{') || !body.contains("\"error\"") {
            assert!(status == 200, "{method} {path}: {status} {body}");
            continue;
        }
        assert_ne!(
            code(&body),
            "E_API_ROUTE",
            "{method} {path} is not routed: {body}"
        );
    }
    for (method, path) in [
        ("GET", "/v1/nope"),
        ("PATCH", "/v1/sandboxes"),
        ("PUT", "/v1/health"),
        ("GET", "/v2/sandboxes"),
    ] {
        let (status, body) = unix(&s, method, path, "");
        assert_eq!(
            (status, code(&body)),
            (404, "E_API_ROUTE".to_string()),
            "{method} {path}"
        );
    }
}

#[test]
fn tcp_needs_the_token_and_the_unix_socket_is_owner_only() {
    let s = start();
    let token_file = s.home.join("api-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sock = std::fs::symlink_metadata(s.home.join("api.sock")).unwrap();
    assert_eq!(sock.permissions().mode() & 0o777, 0o600);

    let tcp = |headers: &[(&str, &str)], path: &str| {
        let mut stream = TcpStream::connect(s.tcp).unwrap();
        request(&mut stream, "GET", path, headers, "")
    };
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "Basic x")],
    ] {
        for path in ["/v1/health", "/v1/sandboxes", "/metrics", "/v1/nope"] {
            let (status, body) = tcp(&headers, path);
            assert_eq!(
                (status, code(&body)),
                (401, "E_API_UNAUTHORIZED".to_string()),
                "{headers:?} {path}"
            );
        }
    }
    // A prefix of the token is not the token.
    let partial = format!("Bearer {}", &token[..token.len() - 1]);
    assert_eq!(tcp(&[("Authorization", &partial)], "/v1/health").0, 401);
    let auth = format!("Bearer {token}");
    let (status, body) = tcp(&[("Authorization", &auth)], "/v1/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"server\":\"mvm\""), "{body}");
    // The unix socket needs none.
    assert_eq!(unix(&s, "GET", "/v1/sandboxes", "").0, 200);

    // A TCP client, token or not, may not name this host's paths.
    for body in [
        r#"{"template":"/home/me/compiled"}"#,
        r#"{"template":"./compiled"}"#,
        r#"{"template":"python-3.13","source_root":"/etc","recording":{"template":"python-3.13","include":["passwd"]}}"#,
        r#"{"template":"minimal","recording":{"template":"minimal","env":{"K":{"kind":"secret_ref","name":"prod-db","hosts":["evil.example"]}}}}"#,
    ] {
        let mut stream = TcpStream::connect(s.tcp).unwrap();
        let (status, answer) = request(
            &mut stream,
            "POST",
            "/v1/sandboxes",
            &[("Authorization", &auth)],
            body,
        );
        assert_eq!(
            (status, code(&answer)),
            (403, "E_API_FORBIDDEN".to_string()),
            "{body}: {answer}"
        );
    }
}

#[test]
fn bad_requests_get_the_one_error_shape() {
    let s = start();
    let cases = [
        (
            "POST",
            "/v1/sandboxes",
            "{not json",
            "E_API_BAD_REQUEST",
            "not JSON",
        ),
        (
            "POST",
            "/v1/sandboxes",
            "",
            "E_API_BAD_REQUEST",
            "needs a JSON body",
        ),
        (
            "POST",
            "/v1/sandboxes",
            r#"{"template":"x","bogus":1}"#,
            "E_API_BAD_REQUEST",
            "bogus",
        ),
        (
            "POST",
            "/v1/sandboxes",
            r#"{"template":"x","timeout":-1}"#,
            "E_API_BAD_REQUEST",
            "timeout",
        ),
        (
            "POST",
            "/v1/sandboxes",
            r#"{"template":"x","id":"../etc"}"#,
            "E_BAD_INPUT",
            "",
        ),
        (
            "GET",
            "/v1/sandboxes/nosuch",
            "",
            "E_SANDBOX_NOT_FOUND",
            "nosuch",
        ),
        ("GET", "/v1/sandboxes/..%2Fetc", "", "E_BAD_INPUT", ""),
        (
            "POST",
            "/v1/sandboxes/nosuch/commands",
            r#"{"cmd":""}"#,
            "E_API_BAD_REQUEST",
            "empty",
        ),
        (
            "POST",
            "/v1/sandboxes/nosuch/commands",
            r#"{"cmd":"true"}"#,
            "E_SANDBOX_NOT_FOUND",
            "",
        ),
        (
            "GET",
            "/v1/sandboxes/nosuch/files?path=relative",
            "",
            "E_API_BAD_REQUEST",
            "absolute",
        ),
        (
            "GET",
            "/v1/sandboxes/nosuch/files",
            "",
            "E_API_BAD_REQUEST",
            "path",
        ),
        (
            "GET",
            "/v1/sandboxes/nosuch/commands/c9",
            "",
            "E_COMMAND_NOT_FOUND",
            "",
        ),
    ];
    for (method, path, body, want, mentions) in cases {
        let (status, answer) = unix(&s, method, path, body);
        assert!(status >= 400, "{method} {path}: {status}");
        assert_eq!(code(&answer), want, "{method} {path} {body}: {answer}");
        assert!(answer.contains(mentions), "{method} {path}: {answer}");
    }
    // Metrics count what was answered, by status.
    let (status, metrics) = unix(&s, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("mvm_api_requests_total{code=\"400\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mvm_instances{state=\"running\"} 0"),
        "{metrics}"
    );
}

#[test]
fn a_second_server_on_the_same_home_is_refused() {
    let s = start();
    let opts = mvm_api::ServeOptions {
        home: s.home.clone(),
        listen: None,
        mvmctl: PathBuf::from("/nonexistent/mvmctl"),
    };
    let e = mvm_api::serve_blocking(opts).unwrap_err();
    assert_eq!(e.code, "E_API_RUNNING");
    // The first still answers.
    assert_eq!(unix(&s, "GET", "/v1/health", "").0, 200);
}
