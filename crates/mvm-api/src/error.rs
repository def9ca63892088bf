//! The one error shape every endpoint answers with:
//! `{"error": {"code", "message", "hint"}}` (docs/api.md, "Error codes").

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mvm_runtime::RuntimeError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub hint: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a ApiError,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "E_API_BAD_REQUEST", message, hint)
    }

    pub fn route(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "E_API_ROUTE",
            format!("no endpoint {method} {path}"),
            "docs/api.md (and docs/openapi.json) lists the endpoints",
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E_API_UNAUTHORIZED",
            "this request has no valid bearer token",
            "send `Authorization: Bearer TOKEN` with the token in $MVM_HOME/api-token (or use the unix socket $MVM_HOME/api.sock)",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E_RUNTIME",
            message,
            "the server's log ($MVM_HOME/api.log when the SDK started it) has details",
        )
    }

    /// The JSON object alone, for an NDJSON `error` event.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A runtime error as the API reports it: the runtime's stable code, its
/// text split into message and hint.
impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> ApiError {
        let code = e.code();
        let status = match code {
            "E_BAD_INPUT" | "E_BAD_LAUNCH" => StatusCode::BAD_REQUEST,
            "E_SANDBOX_NOT_FOUND" | "E_TEMPLATE_NOT_FOUND" | "E_FILE_NOT_FOUND" => {
                StatusCode::NOT_FOUND
            }
            "E_SANDBOX_EXISTS" | "E_SANDBOX_STATE" | "E_SNAPSHOT_EXISTS" | "E_FILE_EXISTS" => {
                StatusCode::CONFLICT
            }
            "E_FILE_KIND" => StatusCode::BAD_REQUEST,
            "E_POLICY_REFUSED" | "E_FILE_PERMISSION" => StatusCode::FORBIDDEN,
            "E_SECRETS_MISSING" => StatusCode::PRECONDITION_FAILED,
            "E_UP_FAILED" | "E_GUEST" | "E_FILE" | "E_SUPERVISOR" => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let text = e.to_string();
        let (message, hint) = match text.split_once("\n  hint: ") {
            Some((m, h)) => (m.to_string(), h.to_string()),
            None => (text, String::new()),
        };
        let code = match (
            code,
            message.contains("did not become ready") && message.contains("timed out"),
        ) {
            ("E_UP_FAILED", true) => "E_TIMEOUT",
            (c, _) => c,
        };
        let status = if code == "E_TIMEOUT" {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            status
        };
        ApiError::new(status, code, message, hint)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(Body { error: &self })).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// A JSON request body, read whatever its `Content-Type` says; empty is
/// `None`. Malformed JSON gets the API's error shape (axum's own
/// extractor answers in plain text).
pub struct JsonBody(pub Option<serde_json::Value>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::bad_request(
                    format!("reading the request body: {e}"),
                    "JSON bodies are at most 8 MiB",
                )
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| JsonBody(Some(v)))
            .map_err(|e| {
                ApiError::bad_request(
                    format!("the request body is not JSON: {e}"),
                    "send a JSON object (docs/api.md)",
                )
            })
    }
}

impl JsonBody {
    /// The body as `T`; a missing body is an error.
    pub fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, ApiError> {
        let v = self.0.ok_or_else(|| {
            ApiError::bad_request(
                "this endpoint needs a JSON body",
                "docs/api.md describes each body",
            )
        })?;
        serde_json::from_value(v).map_err(|e| {
            ApiError::bad_request(
                format!("the request body: {e}"),
                "docs/api.md describes each body",
            )
        })
    }

    /// The body as `T`, or `T::default()` when there is none.
    pub fn parse_or_default<T: serde::de::DeserializeOwned + Default>(self) -> Result<T, ApiError> {
        match self.0 {
            None => Ok(T::default()),
            Some(_) => self.parse(),
        }
    }
}

/// Query parameters as `T`; a missing or malformed one gets the API's
/// error shape (axum's own extractor answers in plain text).
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for ApiQuery<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                ApiError::bad_request(
                    e.body_text(),
                    "docs/api.md lists each endpoint's query parameters (e.g. ?path=/app/file)",
                )
            })
    }
}
