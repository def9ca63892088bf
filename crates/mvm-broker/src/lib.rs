//! The host side of `mvm.web_fetch` and `mvm.web_search`: requests a guest
//! asks the host to make for it, where the host applies the instance's
//! secrets and the guest never sees their values.
//!
//! # `web_fetch`
//!
//! A [`Call::WebFetch`] is checked in this order; each refusal is an
//! [`Outcome::Failed`] whose [`ErrorCode`] the guest raises by name:
//!
//! 1. The URL must be `https` (`EgressDenied`), hold no user name or
//!    password (`BadRequest`), and its `host:port` (port 443 by default)
//!    must be one of the app's egress grants exactly (`EgressDenied`).
//! 2. The method is one of GET HEAD POST PUT PATCH DELETE OPTIONS; header
//!    names and values are well formed and none is one the HTTP client
//!    owns (`host`, `content-length`, `transfer-encoding`, `connection`,
//!    `upgrade`, `te`, `trailer`, `keep-alive`, `proxy-*`) or one that
//!    would make the answer compressed or partial (`accept-encoding`,
//!    `range`, `if-range`: `BadRequest`; the filter of step 7 reads only
//!    whole, uncompressed bodies); the body is at
//!    most [`MAX_REQUEST_BODY`] (`TooLarge`); the time limit is the
//!    request's `timeout_ms` or [`DEFAULT_TIMEOUT_MS`], at least
//!    [`MIN_TIMEOUT_MS`] and at most [`MAX_TIMEOUT_MS`], and covers
//!    resolving, connecting, sending and reading the whole response
//!    (`Timeout`).
//! 3. **Tokens in header values** are replaced by their secrets' values,
//!    only where a credential goes: a header value that is exactly the
//!    token (`X-Api-Key: TOKEN`), or one auth-scheme word, a single space
//!    and the token (`Authorization: Bearer TOKEN`, `token TOKEN`; the
//!    word is a letter then letters, digits or `._~+/-`). A token anywhere
//!    else (`Cookie: s=TOKEN`, `User-Agent: x TOKEN`, two in one header)
//!    is `SecretNotAllowed`: a bound host may store such a header and show
//!    it back later where no filter stands. Every `mvm-secret-ref:` in a
//!    header value must begin a whole token of this instance
//!    (`SecretNotAllowed`, "unknown secret token"), and the destination
//!    host must be among that secret's hosts, or the secret has none
//!    (`SecretNotAllowed`). **Tokens in the URL or the body are
//!    not replaced**: they are sent as the useless strings they are. A URL
//!    ends up in logs and caches and a body is the guest's data; neither is
//!    a place a credential should be put by the host.
//! 4. **Secrets applied without asking**: each secret of kind
//!    [`Auth::Bearer`], [`Auth::Basic`] or [`Auth::Header`] bound to the
//!    destination host (or to no host: then every granted destination)
//!    sets its header (`Authorization: Bearer V`, `Authorization: Basic
//!    base64(V)`, `NAME: V`), replacing any header of that name the guest
//!    sent. When two such secrets would set the same header, the first in
//!    [`Config::secrets`] wins and the other is not sent.
//! 5. The destination's addresses come from the egress gate's own check
//!    ([`mvm_egress::Gate::addresses_for`]): a loopback, private,
//!    link-local, metadata or this host's own address is refused unless
//!    the operator allowed that exact destination, and the operator's pins
//!    stand in for DNS. The connection goes to exactly those addresses; the
//!    name is not resolved again (no DNS rebinding between check and use).
//!    No proxy from the environment is used.
//! 6. **Redirects are not followed**: a 3xx goes back to the guest as it
//!    came. Following it would send the request (and the secrets applied
//!    to it) to a destination the checks above never saw; the guest may
//!    ask for the new URL, which is then checked like any other.
//! 7. The response (status, headers in order, body of at most
//!    [`MAX_RESPONSE_BODY`], else `TooLarge`) has every secret value in it
//!    replaced by that secret's token before it reaches the guest, in each
//!    of the spellings of [`spellings`] (as is, base64, hex, JSON-escaped,
//!    percent-encoded, HTML entities; any ASCII case). The host asks for
//!    `Accept-Encoding: identity`; a response with any other
//!    `Content-Encoding`, a `Transfer-Encoding` other than `chunked`, or a
//!    206 Partial Content, is `Upstream`, not
//!    relayed (the filter cannot see a value inside it). A token can be
//!    longer than its value: a body over [`MAX_RESPONSE_BODY`] or headers
//!    over [`MAX_RESPONSE_HEADER_BYTES`] once filtered are `TooLarge`. A
//!    failure to connect, a TLS error or a reset is `Upstream`; so is an
//!    error message, which is filtered the same way.
//!
//! At most [`MAX_IN_FLIGHT`] calls run at once per broker (`Busy` beyond);
//! a name lookup counts as part of its call until the lookup itself ends,
//! even when the call has already timed out.
//! Every call, refused or not, yields a [`Record`]; its `secrets` names the
//! secrets whose values went into the request (a release, for the audit).
//!
//! # `web_search`
//!
//! The operator configures a provider ([`SearchProvider`]); the contract is
//! SearXNG's JSON API, which anyone can host:
//!
//! ```text
//! GET {url}?q=<query>&format=json
//! Authorization: Bearer <key>            (only when a key is configured)
//!
//! 200 {"results": [{"title": "...", "url": "...", "content": "...", ...}, ...]}
//! ```
//!
//! `content` becomes a hit's `snippet` (a missing one is empty); other
//! fields are ignored; the list is cut to `max_results` (at most
//! [`MAX_SEARCH_RESULTS`]). Any other answer (a status other than 2xx, a
//! body that is not that JSON) is `Upstream`; no provider configured is
//! `Unavailable`. The query is 1 to 1024 bytes (`BadRequest`). The
//! provider is the operator's: its URL may be http or https and is not
//! checked against the app's grants. Results pass through the same
//! value → token filter as fetch responses, and the provider's key, should
//! it come back, as `[secret:search-provider-key]`.
//!
//! # Redaction
//!
//! [`Redactor`] replaces every known secret value (in each of its
//! [`spellings`]) in text the host writes or relays (logs, errors,
//! exec/invoke output) with `[secret:NAME]`; [`Redactor::stream`] does so
//! across the chunks of a stream. Tokens are left alone: they are useless
//! outside a mediated request, including through the HTTPS `CONNECT`
//! gate, which never substitutes anything.
//!
//! # Memory
//!
//! Values are held in [`Zeroizing`] buffers, and so are the headers built
//! from them until the HTTP client takes them (marked sensitive, so HTTP/2
//! never indexes them). Copies the HTTP client, the TLS layer and the
//! aho-corasick automata make are not zeroized.

mod fetch;
mod record;
mod redact;
mod request;
mod search;
mod secrets;
#[cfg(feature = "test-server")]
pub mod test_server;
mod tls;

use std::sync::Arc;
use std::time::Instant;

use mvm_proto::broker::{BrokerError, Call, ErrorCode, Outcome};
pub use mvm_proto::broker::{
    DEFAULT_TIMEOUT_MS, MAX_REQUEST_BODY, MAX_RESPONSE_BODY, MAX_SEARCH_RESULTS, MAX_TIMEOUT_MS,
};
use zeroize::Zeroizing;

pub use fetch::MAX_RESPONSE_HEADER_BYTES;
pub use record::Record;
pub use redact::{Redactor, StreamRedactor, spellings};
pub use request::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_QUERY, MAX_URL, MIN_TIMEOUT_MS};
pub use secrets::{Auth, Secret};

/// How every token the guest sees begins.
pub const TOKEN_PREFIX: &str = "mvm-secret-ref:";

/// Calls one broker (one instance) runs at once.
pub const MAX_IN_FLIGHT: usize = 16;

/// The name the search provider's key is redacted as.
pub const SEARCH_KEY_NAME: &str = "search-provider-key";

/// The operator's search provider (see the crate docs for its contract).
pub struct SearchProvider {
    /// E.g. `https://search.local/search`.
    pub url: String,
    /// Sent as `Authorization: Bearer KEY`.
    pub key: Option<Zeroizing<Vec<u8>>>,
    /// The stored secret the key is (for the audit and redaction);
    /// `None`: [`SEARCH_KEY_NAME`].
    pub key_name: Option<String>,
}

/// What one instance's broker may do.
pub struct Config {
    /// The app's egress allowlist (`host:port`).
    pub grants: Vec<mvm_egress::Grant>,
    /// Destinations the operator allowed to be private.
    pub allow_private: Vec<mvm_egress::Grant>,
    pub pins: Vec<mvm_egress::Pin>,
    /// The operator's CA bundle (PEM), trusted in addition to the system
    /// roots; may be empty.
    pub extra_roots_pem: Vec<u8>,
    pub secrets: Vec<Secret>,
    pub search: Option<SearchProvider>,
}

/// Why a broker could not be set up (the operator's configuration).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the operator CA bundle: {0}")]
    Roots(String),
    #[error("secret `{name}`: {why}")]
    Secret { name: String, why: String },
    #[error("the search provider `{url}`: {why}")]
    Search { url: String, why: String },
}

/// One instance's broker: cheap to share in an `Arc`, calls may run
/// concurrently.
pub struct Broker {
    gate: Arc<mvm_egress::Gate>,
    tls: rustls::ClientConfig,
    secrets: secrets::Prepared,
    search: Option<search::Provider>,
    /// Shared with the name lookups a call starts, which hold a permit
    /// until they end (even after their call timed out).
    in_flight: Arc<tokio::sync::Semaphore>,
    clients: fetch::Clients,
}

impl Broker {
    /// Checks the configuration and builds what every call shares: the TLS
    /// configuration (system roots and the operator's), the filters.
    pub fn new(config: Config) -> Result<Broker, SetupError> {
        let tls = tls::client_config(&config.extra_roots_pem)?;
        let search = config.search.map(search::Provider::new).transpose()?;
        let extra = search
            .as_ref()
            .and_then(|s| Some((s.key_name.clone(), s.key.clone()?)))
            .into_iter()
            .collect();
        let secrets = secrets::Prepared::new(config.secrets, extra)?;
        let mut gate = mvm_egress::Gate::new(config.grants, config.allow_private);
        gate.pins = config.pins;
        Ok(Broker {
            gate: Arc::new(gate),
            tls,
            secrets,
            search,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            clients: Default::default(),
        })
    }

    /// Performs one guest call. Never panics on any input and always
    /// answers: a refusal is an [`Outcome::Failed`]. Runs on a tokio
    /// runtime (the HTTP client's), any flavour.
    pub async fn call(&self, call: Call) -> (Outcome, Record) {
        let started = Instant::now();
        let mut record = Record::new(match &call {
            Call::WebFetch(_) => "web_fetch",
            Call::WebSearch(_) => "web_search",
        });
        let result = match self.in_flight.clone().try_acquire_owned() {
            Err(_) => Err((
                ErrorCode::Busy,
                format!("{MAX_IN_FLIGHT} calls are already in flight from this instance"),
            )),
            Ok(permit) => match call {
                Call::WebFetch(req) => fetch::run(self, req, &mut record, Arc::new(permit)).await,
                Call::WebSearch(req) => search::run(self, req, &mut record).await,
            },
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err((code, message)) => {
                // Messages are built from checked or already escaped text
                // (escaping again would double its backslashes); redacted
                // and checked anyway, as some quote upstream error text.
                let reason = self.secrets.redactor.redact_str(&message);
                record.reason = Some(if reason.chars().any(char::is_control) {
                    mvm_ir::text::escape_control(&reason).into_owned()
                } else {
                    reason
                });
                let message = self.secrets.to_tokens.replace_str(&message);
                Outcome::Failed(BrokerError::new(code, message))
            }
        };
        record.duration = started.elapsed();
        (outcome, record)
    }

    /// Replaces every secret value of this instance (and the search key)
    /// with `[secret:NAME]`.
    pub fn redactor(&self) -> &Redactor {
        &self.secrets.redactor
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("grants", &self.gate.grants)
            .field("secrets", &self.secrets.secrets)
            .finish_non_exhaustive()
    }
}

/// A refusal: the code and a message for the guest.
type Refusal = (ErrorCode, String);

/// The checks of a call that need no secret and no network (a fetch's
/// URL, method, headers, body and time limit; a search's query), which
/// [`Broker::call`] makes first: the refusal, or `None` when the call
/// would go on. The guest-input parser on its own, for fuzzing.
pub fn check_call(call: Call) -> Option<BrokerError> {
    let checked = match call {
        Call::WebFetch(f) => request::fetch(f).map(drop),
        Call::WebSearch(s) => request::search(s).map(drop),
    };
    checked.err().map(|(code, m)| BrokerError::new(code, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pure_checks_stand_alone() {
        let fetch = |url: &str| {
            Call::WebFetch(mvm_proto::broker::FetchRequest {
                url: url.into(),
                method: "GET".into(),
                headers: vec![],
                body: vec![],
                timeout_ms: None,
            })
        };
        assert_eq!(check_call(fetch("https://a.example/")), None);
        let e = check_call(fetch("http://a.example/")).unwrap();
        assert_eq!(e.code, ErrorCode::EgressDenied);
        let search = Call::WebSearch(mvm_proto::broker::SearchRequest {
            query: String::new(),
            max_results: 3,
        });
        assert_eq!(check_call(search).unwrap().code, ErrorCode::BadRequest);
    }

    #[test]
    fn a_broker_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Broker>();
        // The supervisor spawns calls on a multi-threaded runtime.
        fn assert_send<T: Send>(_: &T) {}
        let b = Broker::new(Config {
            grants: vec![],
            allow_private: vec![],
            pins: vec![],
            extra_roots_pem: vec![],
            secrets: vec![],
            search: None,
        })
        .unwrap();
        let call = Call::WebSearch(mvm_proto::broker::SearchRequest {
            query: "q".into(),
            max_results: 1,
        });
        assert_send(&b.call(call));
    }
}
