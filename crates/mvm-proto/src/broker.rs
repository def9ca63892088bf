//! The guest → host direction: requests a workload makes of the host
//! (`mvm.web_fetch`, `mvm.web_search`), carried on their own channel (the
//! virtio-serial port [`BROKER_PORT_NAME`]) so they never wait behind the
//! host's own requests to the agent, nor they behind these.
//!
//! In the guest, a program connects to the agent's [`GUEST_SOCKET`], writes
//! one [`Call`] frame and reads one [`Outcome`] frame. The agent numbers
//! each call ([`BrokerRequest`]) on the port and hands the host's
//! [`BrokerReply`] back to the program that made it. Everything here came
//! from the guest, so the host parses it strictly (unknown fields refused)
//! and checks every field before acting on it.

use serde::{Deserialize, Serialize};

/// Name of the virtio-serial port that carries broker frames.
pub const BROKER_PORT_NAME: &str = "mvm.broker";

/// The agent's listening socket in the guest, for any guest program.
pub const GUEST_SOCKET: &str = "/run/mvm/broker.sock";

/// Largest request body a guest may send (base64 on the wire keeps the
/// frame under [`crate::MAX_FRAME_BYTES`]).
pub const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;

/// Largest response body the host hands back.
pub const MAX_RESPONSE_BODY: usize = 11 * 1024 * 1024;

/// Default and largest time a fetch may take, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const MAX_TIMEOUT_MS: u64 = 300_000;

/// Most results a search returns.
pub const MAX_SEARCH_RESULTS: u32 = 50;

/// Agent → host: one call, numbered by the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerRequest {
    pub id: u64,
    pub call: Call,
}

/// Host → agent: the outcome of the call numbered `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerReply {
    pub id: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    WebFetch(FetchRequest),
    WebSearch(SearchRequest),
}

/// An HTTPS request the host makes for the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// In order; a name may repeat.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, with = "crate::base64_bytes")]
    pub body: Vec<u8>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default = "default_max_results")]
    pub max_results: u32,
}

fn default_max_results() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    Fetched(FetchResponse),
    Searched(SearchResponse),
    Failed(BrokerError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(with = "crate::base64_bytes")]
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchResponse {
    pub results: Vec<SearchHit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchHit {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

/// A refusal or failure, raised in the guest as the exception (Python) or
/// error (TypeScript) named by `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The destination is not among the grants (or not https).
    EgressDenied,
    /// A secret was asked for (its token used, or bound) where it may not go.
    SecretNotAllowed,
    /// The request did not complete in time.
    Timeout,
    /// A body over the limits.
    TooLarge,
    /// The request itself is malformed (URL, method, header).
    BadRequest,
    /// The destination could not be reached or answered badly (TLS, reset).
    Upstream,
    /// Too many calls in flight from this guest.
    Busy,
    /// Not configured on this host (e.g. no search provider).
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::EgressDenied => "EgressDenied",
            ErrorCode::SecretNotAllowed => "SecretNotAllowed",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::TooLarge => "TooLarge",
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::Upstream => "Upstream",
            ErrorCode::Busy => "Busy",
            ErrorCode::Unavailable => "Unavailable",
        }
    }
}

impl BrokerError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> BrokerError {
        BrokerError {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_round_trips_and_unknown_fields_are_refused() {
        let call = BrokerRequest {
            id: 7,
            call: Call::WebFetch(FetchRequest {
                url: "https://api.example/v1".into(),
                method: "POST".into(),
                headers: vec![("authorization".into(), "Bearer t".into())],
                body: b"{}".to_vec(),
                timeout_ms: Some(5000),
            }),
        };
        let text = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<BrokerRequest>(&text).unwrap(), call);
        let extra = text.replace("\"url\"", "\"proxy\":1,\"url\"");
        assert!(serde_json::from_str::<BrokerRequest>(&extra).is_err());
    }

    #[test]
    fn a_guest_call_needs_only_a_url() {
        let c: Call =
            serde_json::from_str(r#"{"call":"web_fetch","url":"https://a.example/"}"#).unwrap();
        let Call::WebFetch(f) = c else { panic!() };
        assert_eq!(
            (f.method.as_str(), f.headers.len(), f.body.len()),
            ("GET", 0, 0)
        );
    }

    #[test]
    fn error_codes_are_the_guest_exception_names() {
        let e = Outcome::Failed(BrokerError::new(ErrorCode::SecretNotAllowed, "no"));
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"outcome":"failed","code":"SecretNotAllowed","message":"no"}"#
        );
    }
}
