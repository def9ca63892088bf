//! A local HTTPS server for tests and benches (feature `test-server`): its
//! own throwaway CA, a certificate for the names it is started with (and
//! `localhost`, `127.0.0.1`), on `127.0.0.1:PORT`, served by plain threads
//! so a blocking test can use it as easily as an async one.
//!
//! Routes (HTTP/1.1, keep-alive):
//! - `/echo`: 200 and a JSON body `{"method", "path", "headers": [[name,
//!   value], ...], "body"}` describing the request (body as UTF-8, lossy);
//!   each request header also comes back as the response header
//!   `x-echo-NAME`.
//! - `/gzip`: the `/echo` body, gzip-compressed with `content-encoding:
//!   gzip` when the request's `accept-encoding` names gzip (as most
//!   servers do), or always with `?always=1` (as a misbehaving one does);
//!   plain otherwise; `?te=1`: always, as `transfer-encoding: gzip,
//!   chunked` instead.
//! - `/partial`: 206 with `content-range`, a piece of the `/echo` body.
//! - `/redirect`: 302 to `https://elsewhere.test/landed`.
//! - `/big?bytes=N`: N bytes of `x` with a `Content-Length`;
//!   `/big?bytes=N&length=0`: the same without one (ends at close).
//! - `/slow`: reads the request and never answers (until the server is
//!   dropped, or two minutes).
//! - `/search?q=Q&format=json`: the search provider contract (see the
//!   crate docs): three results, each `{"title": "Result I for Q", "url":
//!   "https://example.test/I", "content": "about Q", "engine": "test"}`.
//! - anything else: 404.
//!
//! Every request is recorded ([`TestServer::requests`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One request the server read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The request target: path and query.
    pub path: String,
    /// In order, names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Which connection it came on (numbered from 0 in accept order): two
    /// requests with the same number shared a connection.
    pub connection: usize,
}

impl Seen {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running server; dropping it stops it.
pub struct TestServer {
    /// The CA that signed the server's certificate (PEM): trust it as the
    /// operator CA bundle.
    pub ca_pem: String,
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// Starts a server whose certificate names `names` (plus `localhost`
    /// and `127.0.0.1`). Panics if it cannot (test setup).
    pub fn start(names: &[&str]) -> TestServer {
        TestServer::start_on(0, names)
    }

    /// As [`TestServer::start`] on `127.0.0.1:port` (0: any free port), for
    /// clients that only speak to a fixed port (a grant of `allow_https`
    /// is port 443).
    pub fn start_on(port: u16, names: &[&str]) -> TestServer {
        let (ca_pem, config) = certificates(names);
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the test server");
        let port = listener.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || accept(listener, Arc::new(config), s, st));
        TestServer {
            ca_pem,
            port,
            seen,
            stop,
        }
    }

    /// Every request read so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// `https://HOST:PORT/PATH` for this server.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
    }
}

fn certificates(names: &[&str]) -> (String, rustls::ServerConfig) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mvm-broker test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
    let mut dns: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    dns.push("localhost".into());
    let mut leaf = CertificateParams::new(dns).expect("server certificate parameters");
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    leaf.distinguished_name
        .push(DnType::CommonName, "mvm-broker test server");
    let leaf_key = KeyPair::generate().expect("a server key");
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("the server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("the server's certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), config)
}

fn accept(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
) {
    for (number, conn) in listener.incoming().enumerate() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(tcp) = conn else { continue };
        let (config, seen, stop) = (config.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let _ = serve(tcp, number, config, &seen, &stop);
        });
    }
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn serve(
    tcp: TcpStream,
    number: usize,
    config: Arc<rustls::ServerConfig>,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_nodelay(true)?;
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let Some(mut req) = read_request(&mut reader)? else {
            return Ok(());
        };
        req.connection = number;
        if let Ok(mut s) = seen.lock() {
            s.push(req.clone());
        }
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let keep = respond(reader.get_mut(), &req, stop)?;
        if close || !keep {
            reader.get_mut().conn.send_close_notify();
            let _ = reader.get_mut().flush();
            return Ok(());
        }
    }
}

/// The next request, or `None` when the client closed between requests.
fn read_request(reader: &mut BufReader<Tls>) -> io::Result<Option<Seen>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e) if lines.is_empty() && e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err(bad("cut off"))
            };
        }
        total += n;
        if total > 256 * 1024 {
            return Err(bad("head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let mut first = lines
        .first()
        .ok_or_else(|| bad("no request line"))?
        .split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut req = Seen {
        method,
        path,
        headers,
        body: Vec::new(),
        connection: 0,
    };
    if req.header("transfer-encoding").is_some() {
        return Err(bad(
            "chunked request bodies are not supported by the test server",
        ));
    }
    let len: usize = req
        .header("content-length")
        .map(|v| v.parse().map_err(|_| bad("content-length")))
        .transpose()?
        .unwrap_or(0);
    if len > 64 * 1024 * 1024 {
        return Err(bad("body too large"));
    }
    req.body = vec![0; len];
    reader.read_exact(&mut req.body)?;
    Ok(Some(req))
}

/// Answers `req`; `false` when the connection must close after it.
fn respond(out: &mut Tls, req: &Seen, stop: &AtomicBool) -> io::Result<bool> {
    let (route, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let head_only = req.method == "HEAD";
    match route {
        "/echo" => {
            let body = echo_body(req);
            let mut extra: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|(n, v)| (format!("x-echo-{n}"), v.clone()))
                .collect();
            extra.push(("content-type".into(), "application/json".into()));
            write_response(out, 200, &extra, body.as_bytes(), head_only)?;
        }
        "/gzip" => {
            let body = echo_body(req);
            let asked = req
                .header("accept-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
            if param("te").as_deref() == Some("1") {
                let z = gzip(body.as_bytes());
                let mut all = format!(
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n{:x}\r\n",
                    z.len()
                )
                .into_bytes();
                all.extend_from_slice(&z);
                all.extend_from_slice(b"\r\n0\r\n\r\n");
                out.write_all(&all)?;
                out.flush()?;
            } else if asked || param("always").as_deref() == Some("1") {
                let extra = [("content-encoding".to_string(), "gzip".to_string())];
                write_response(out, 200, &extra, &gzip(body.as_bytes()), head_only)?;
            } else {
                write_response(out, 200, &[], body.as_bytes(), head_only)?;
            }
        }
        "/partial" => {
            let body = echo_body(req);
            let piece = &body.as_bytes()[..body.len().min(8)];
            let extra = [(
                "content-range".to_string(),
                format!("bytes 0-{}/{}", piece.len().saturating_sub(1), body.len()),
            )];
            write_response(out, 206, &extra, piece, head_only)?;
        }
        "/redirect" => {
            let extra = [(
                "location".to_string(),
                "https://elsewhere.test/landed".to_string(),
            )];
            write_response(out, 302, &extra, b"moved\n", head_only)?;
        }
        "/big" => {
            let n: usize = param("bytes").and_then(|b| b.parse().ok()).unwrap_or(0);
            let with_length = param("length").as_deref() != Some("0");
            let mut head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n".to_string();
            if with_length {
                head.push_str(&format!("content-length: {n}\r\n"));
            } else {
                head.push_str("connection: close\r\n");
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes())?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = if head_only { 0 } else { n };
            while left > 0 {
                let k = left.min(chunk.len());
                out.write_all(&chunk[..k])?;
                left -= k;
            }
            out.flush()?;
            return Ok(with_length);
        }
        "/slow" => {
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(false);
        }
        "/search" => {
            if param("format").as_deref() != Some("json") {
                write_response(out, 400, &[], b"format=json expected\n", head_only)?;
            } else {
                let q = param("q").unwrap_or_default();
                let results: Vec<_> = (1..=3)
                    .map(|i| {
                        serde_json::json!({
                            "title": format!("Result {i} for {q}"),
                            "url": format!("https://example.test/{i}"),
                            "content": format!("about {q}"),
                            "engine": "test",
                        })
                    })
                    .collect();
                let body = serde_json::json!({"query": q, "results": results}).to_string();
                let extra = [("content-type".to_string(), "application/json".to_string())];
                write_response(out, 200, &extra, body.as_bytes(), head_only)?;
            }
        }
        _ => write_response(out, 404, &[], b"not found\n", head_only)?,
    }
    Ok(true)
}

/// What `/echo` answers: the request, as JSON.
fn echo_body(req: &Seen) -> String {
    serde_json::json!({
        "method": req.method,
        "path": req.path,
        "headers": req.headers,
        "body": String::from_utf8_lossy(&req.body),
    })
    .to_string()
}

/// `data` as a gzip member: one deflate block of fixed-Huffman literals
/// (no back-references; enough that no input byte appears as itself).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut bits = Bits::default();
    bits.put(1, 1); // the last block
    bits.put(1, 2); // fixed Huffman codes
    for &b in data {
        // Literal codes (RFC 1951 3.2.6): 0-143 are 8 bits from 0x30,
        // 144-255 are 9 bits from 0x190; codes go most significant first.
        let (code, len) = if b < 144 {
            (0x30 + u32::from(b), 8)
        } else {
            (0x190 + u32::from(b) - 144, 9)
        };
        bits.put_code(code, len);
    }
    bits.put_code(0, 7); // end of block
    out.extend(bits.finish());
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    /// `len` bits of `value`, least significant first.
    fn put(&mut self, value: u32, len: u32) {
        for i in 0..len {
            self.acc |= ((value >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// A Huffman code: most significant bit first.
    fn put_code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn write_response(
    out: &mut Tls,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // One write: the answer leaves in as few records as it can.
    let mut all = head.into_bytes();
    if !head_only {
        all.extend_from_slice(body);
    }
    out.write_all(&all)?;
    out.flush()
}
