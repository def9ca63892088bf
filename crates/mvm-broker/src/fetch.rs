//! `web_fetch`: the checks of the crate docs, in order, then the request
//! itself and the response filter.

use std::net::SocketAddr;

use mvm_egress::{GateError, Grant};
use mvm_proto::broker::{ErrorCode, FetchRequest, FetchResponse, MAX_RESPONSE_BODY, Outcome};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::request::{self, Fetch};
use crate::secrets::Misuse;
use crate::{Broker, Record, Refusal};

pub(crate) async fn run(
    broker: &Broker,
    req: FetchRequest,
    record: &mut Record,
    permit: Permit,
) -> Result<Outcome, Refusal> {
    // Held to the end of the call (and by a lookup past it: `addresses`).
    let permit = &permit;
    if let Ok(u) = url::Url::parse(&req.url)
        && let Some(host) = u.host_str()
        && host.len() <= 255
    {
        // Early, so a refusal below still says where it was for.
        let port = u.port_or_known_default().unwrap_or(443);
        record.destination =
            Some(mvm_ir::text::escape_control(&format!("{host}:{port}")).into_owned());
    }
    let fetch = request::fetch(req)?;
    record.destination = Some(fetch.grant.to_string());
    record.method = Some(fetch.method.as_str().to_string());
    if !broker.gate.grants.contains(&fetch.grant) {
        return Err((
            ErrorCode::EgressDenied,
            format!("{} is not granted to this app", fetch.grant),
        ));
    }
    let (headers, released) = apply_secrets(broker, &fetch)?;
    let timeout = fetch.timeout;
    let grant = fetch.grant.clone();
    let sent = async {
        let addrs = addresses(broker, &grant, permit.clone()).await?;
        let client = client(broker, &grant, &addrs)?;
        record.secrets = released;
        record.bytes_sent = fetch.body.len() as u64;
        // From here the request (and any value in it) may have left.
        record.decision = "allowed";
        send(client, fetch, headers, record).await
    };
    match tokio::time::timeout(timeout, sent).await {
        Ok(Ok(response)) => Ok(Outcome::Fetched(filter(broker, &grant, response)?)),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => Err((
            ErrorCode::Timeout,
            format!(
                "{grant} did not answer completely within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

/// The headers to send: the guest's, with tokens replaced by values (each
/// checked against its secret's hosts), then the secrets applied without
/// asking. Also the names of the secrets that went in.
fn apply_secrets(broker: &Broker, fetch: &Fetch) -> Result<(HeaderMap, Vec<String>), Refusal> {
    let host = fetch.grant.host.as_str();
    let secrets = &broker.secrets.secrets;
    // First secret per header name wins (crate docs).
    let mut auto: Vec<(HeaderName, HeaderValue, usize)> = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        if !s.bound_to(host) {
            continue;
        }
        let Some((name, value)) = s.auto_header() else {
            continue;
        };
        if auto.iter().any(|(n, _, _)| *n == name) {
            continue;
        }
        // Checked at setup; a value a header cannot carry never gets here.
        let Ok(mut value) = HeaderValue::from_bytes(&value) else {
            continue;
        };
        value.set_sensitive(true);
        auto.push((name, value, i));
    }
    let mut map = HeaderMap::new();
    let mut used: Vec<usize> = Vec::new();
    for (name, value) in &fetch.headers {
        let (bytes, token) = broker.secrets.substitute(value).map_err(|m| match m {
            Misuse::Unknown => (
                ErrorCode::SecretNotAllowed,
                format!("header {name} holds an unknown secret token (not one of this instance's)"),
            ),
            Misuse::Misplaced => (
                ErrorCode::SecretNotAllowed,
                format!(
                    "header {name} holds a secret token where the host does not put a secret: a token must be the whole header value (`TOKEN`) or follow one auth-scheme word and a space (`Bearer TOKEN`), once per header"
                ),
            ),
        })?;
        let tokens: Vec<usize> = token.into_iter().collect();
        for &i in &tokens {
            let s = &secrets[i];
            if !s.bound_to(host) {
                return Err((
                    ErrorCode::SecretNotAllowed,
                    format!(
                        "secret `{}` may not be sent to {host} (it is bound to {})",
                        s.name,
                        s.hosts.join(", ")
                    ),
                ));
            }
        }
        if auto.iter().any(|(n, _, _)| n == name) {
            // Replaced by the host's own header: nothing of it is sent.
            continue;
        }
        let Ok(mut v) = HeaderValue::from_bytes(&bytes) else {
            let names: Vec<&str> = tokens.iter().map(|&i| secrets[i].name.as_str()).collect();
            return Err((
                ErrorCode::SecretNotAllowed,
                format!(
                    "header {name}: the value of secret `{}` holds a character a header cannot carry",
                    names.join("`, `")
                ),
            ));
        };
        if !tokens.is_empty() {
            v.set_sensitive(true);
        }
        for i in tokens {
            if !used.contains(&i) {
                used.push(i);
            }
        }
        map.append(name.clone(), v);
    }
    for (name, value, i) in auto {
        map.insert(name, value);
        if !used.contains(&i) {
            used.push(i);
        }
    }
    used.sort_unstable();
    let names = used.into_iter().map(|i| secrets[i].name.clone()).collect();
    Ok((map, names))
}

/// The call's place among the broker's [`crate::MAX_IN_FLIGHT`].
pub(crate) type Permit = std::sync::Arc<tokio::sync::OwnedSemaphorePermit>;

/// The gate's own check, off the async threads (it may resolve a name).
/// A blocking lookup cannot be cancelled: when the call times out it goes
/// on, so it holds the call's permit until it ends, and lookups that
/// linger count against the broker's limit instead of piling up.
async fn addresses(
    broker: &Broker,
    grant: &Grant,
    permit: Permit,
) -> Result<Vec<SocketAddr>, Refusal> {
    let gate = broker.gate.clone();
    let g = grant.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let held = permit;
        let found = gate.addresses_for(&g);
        drop(held);
        found
    })
    .await
    .map_err(|e| (ErrorCode::Upstream, format!("checking {grant}: {e}")))?;
    checked.map_err(|e| match e {
        GateError::Denied(_) | GateError::Private { .. } => {
            (ErrorCode::EgressDenied, e.to_string())
        }
        e => (ErrorCode::Upstream, e.to_string()),
    })
}

/// A client that connects `grant` to exactly `addrs`, with the broker's
/// TLS, no proxy and no redirects. Clients are kept per (grant, checked
/// addresses), so a guest's next call to the same place reuses the open
/// connection; the addresses are checked anew on every call, and a
/// different answer gets a different client.
fn client(
    broker: &Broker,
    grant: &Grant,
    addrs: &[SocketAddr],
) -> Result<reqwest::Client, Refusal> {
    let mut cache = broker
        .clients
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, c)) = cache.iter().find(|(g, a, _)| g == grant && a == addrs) {
        return Ok(c.clone());
    }
    let c = reqwest::Client::builder()
        .use_preconfigured_tls(broker.tls.clone())
        .resolve_to_addrs(grant.bare_host(), addrs)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| {
            (
                ErrorCode::Upstream,
                format!("setting up the client for {grant}: {}", chain(&e)),
            )
        })?;
    if cache.len() >= CLIENTS {
        // The oldest goes (and its idle connections with it).
        cache.remove(0);
    }
    cache.push((grant.clone(), addrs.to_vec(), c.clone()));
    Ok(c)
}

/// Clients (destinations) one broker keeps.
const CLIENTS: usize = 32;

/// Kept clients: destination, the addresses it connects to, the client.
pub(crate) type Clients = std::sync::Mutex<Vec<(Grant, Vec<SocketAddr>, reqwest::Client)>>;

struct Response {
    status: u16,
    headers: Vec<(HeaderName, Vec<u8>)>,
    body: Vec<u8>,
}

async fn send(
    client: reqwest::Client,
    fetch: Fetch,
    headers: HeaderMap,
    record: &mut Record,
) -> Result<Response, Refusal> {
    let grant = fetch.grant;
    let mut headers = headers;
    // Only an uncompressed body can be filtered (the guest may not ask for
    // another encoding: `request`).
    headers.insert(
        reqwest::header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    let mut builder = client.request(fetch.method, fetch.url).headers(headers);
    if !fetch.body.is_empty() {
        builder = builder.body(fetch.body);
    }
    let upstream = |e: reqwest::Error| {
        let text = chain(&e);
        let hint = if text.contains("UnknownIssuer") {
            "; a server with a private CA is trusted only when the operator adds that CA to the operator CA bundle"
        } else {
            ""
        };
        (ErrorCode::Upstream, format!("{grant}: {text}{hint}"))
    };
    let mut response = builder.send().await.map_err(upstream)?;
    record.status = Some(response.status().as_u16());
    refuse_unfilterable(&grant, &response)?;
    let too_large = || {
        (
            ErrorCode::TooLarge,
            format!("the response from {grant} is larger than {MAX_RESPONSE_BODY} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BODY as u64)
    {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let head: Vec<(HeaderName, Vec<u8>)> = response
        .headers()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(upstream)? {
        record.bytes_received += chunk.len() as u64;
        if body.len() + chunk.len() > MAX_RESPONSE_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        headers: head,
        body,
    })
}

/// A response whose body the filter cannot read as sent: compressed
/// (a server may compress even when asked not to) or a part of a whole
/// (the guest could put a value together from pieces no filter sees whole).
fn refuse_unfilterable(grant: &Grant, response: &reqwest::Response) -> Result<(), Refusal> {
    if response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
        return Err((
            ErrorCode::Upstream,
            format!(
                "{grant} answered 206 Partial Content, which the host does not relay (the guest may not ask for ranges)"
            ),
        ));
    }
    for v in response
        .headers()
        .get_all(reqwest::header::CONTENT_ENCODING)
    {
        let identity = v.to_str().is_ok_and(|t| {
            t.split(',')
                .all(|e| e.trim().eq_ignore_ascii_case("identity"))
        });
        if !identity {
            return Err((
                ErrorCode::Upstream,
                format!(
                    "{grant} sent a response with Content-Encoding {}, though the host asked for identity; an encoded body cannot be checked for secret values, so it is not relayed",
                    crate::request::quote(&String::from_utf8_lossy(v.as_bytes()))
                ),
            ));
        }
    }
    // A transfer coding other than chunked (`gzip, chunked`) is left on
    // the body by the HTTP client, compressed all the same.
    for v in response
        .headers()
        .get_all(reqwest::header::TRANSFER_ENCODING)
    {
        let plain = v.to_str().is_ok_and(|t| {
            t.split(',').all(|e| {
                let e = e.trim();
                e.eq_ignore_ascii_case("chunked") || e.eq_ignore_ascii_case("identity")
            })
        });
        if !plain {
            return Err((
                ErrorCode::Upstream,
                format!(
                    "{grant} sent a response with Transfer-Encoding {}; an encoded body cannot be checked for secret values, so it is not relayed",
                    crate::request::quote(&String::from_utf8_lossy(v.as_bytes()))
                ),
            ));
        }
    }
    Ok(())
}

/// The most the response's headers may add up to (names and values) once
/// values are replaced by tokens.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 256 * 1024;

/// Every secret value in the response, replaced by its token. A token may
/// be longer than its value, so a response under the caps can grow past
/// them here: checked again after filtering (`TooLarge`).
fn filter(broker: &Broker, grant: &Grant, r: Response) -> Result<FetchResponse, Refusal> {
    let f = &broker.secrets.to_tokens;
    let mut total = 0usize;
    let mut headers = Vec::with_capacity(r.headers.len());
    for (n, v) in r.headers {
        let v = f.replace(&v);
        total = total.saturating_add(n.as_str().len() + v.len());
        if total > MAX_RESPONSE_HEADER_BYTES {
            return Err((
                ErrorCode::TooLarge,
                format!(
                    "the response headers from {grant} are larger than {MAX_RESPONSE_HEADER_BYTES} bytes once secret values in them are replaced by tokens"
                ),
            ));
        }
        headers.push((
            n.as_str().to_string(),
            String::from_utf8_lossy(&v).into_owned(),
        ));
    }
    let body = f.replace(&r.body).into_owned();
    if body.len() > MAX_RESPONSE_BODY {
        return Err((
            ErrorCode::TooLarge,
            format!(
                "the response from {grant} is larger than {MAX_RESPONSE_BODY} bytes once secret values in it are replaced by tokens"
            ),
        ));
    }
    Ok(FetchResponse {
        status: r.status,
        headers,
        body,
    })
}

/// An error and its causes on one line (reqwest's own message alone says
/// little: "error sending request").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !text.contains(&m) {
            text.push_str(": ");
            text.push_str(&m);
        }
        source = s.source();
    }
    text
}
