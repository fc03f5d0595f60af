//! One error type for every function: a kind that maps to an HTTP status and a stable
//! code, whether a retry can help, and a message that is safe to show a caller.
//! Internal causes are logged, never sent.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use std::borrow::Cow;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or fails validation (400).
    BadRequest,
    /// No valid credentials (401).
    Unauthenticated,
    /// Valid credentials, not allowed (403).
    Forbidden,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The route exists but not for this method (405).
    MethodNotAllowed,
    /// A write lost a race or a precondition failed (409).
    Conflict,
    /// The body is larger than allowed (413).
    PayloadTooLarge,
    /// The media type is not one we take (415).
    UnsupportedMediaType,
    /// Well-formed but cannot be processed, e.g. a corrupt file (422).
    Unprocessable,
    /// Throttled by us or by a dependency (429).
    TooManyRequests,
    /// A dependency failed or timed out (502/503/504 are all "try again").
    Unavailable,
    /// A dependency did not answer in time (504).
    Timeout,
    /// A bug or an unexpected state (500).
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Default machine-readable code when the error does not set a more specific one.
    pub fn default_code(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the same request may succeed later. Queue consumers use this to choose
    /// between a retry and the dead-letter queue.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorKind::TooManyRequests | ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Internal)
    }
}

/// The error every port, handler and runtime path returns.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?} ({code}): {message}")]
pub struct Error {
    kind: ErrorKind,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error { kind, code: Cow::Borrowed(kind.default_code()), message: message.into(), source: None }
    }

    /// A more specific machine-readable code, e.g. `no_text_layer` or `ssrf_blocked`.
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }

    /// Keep the cause for logs; it is never sent to the caller.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    pub fn unauthenticated(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// An unexpected failure. The caller sees a generic message; `context` and the
    /// source go to the log.
    pub fn internal(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Internal, context)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn code(&self) -> &str {
        &self.code
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The message a caller may see: internal errors never leak their details.
    pub fn public_message(&self) -> &str {
        if self.kind == ErrorKind::Internal { "internal error" } else { &self.message }
    }

    /// The JSON body `{"error": {"code", "message"}}`.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.public_message().to_string() } }
    }

    fn log(&self) {
        let source = self.source.as_ref().map(|s| error_chain(s.as_ref()));
        if self.kind == ErrorKind::Internal || self.kind == ErrorKind::Unavailable {
            tracing::error!(code = %self.code, message = %self.message, source = source.as_deref(), "request failed");
        } else {
            tracing::info!(code = %self.code, message = %self.message, source = source.as_deref(), "request refused");
        }
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

/// Wire shape of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`.
    pub code: String,
    /// Human-readable explanation, safe to show.
    pub message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let mut resp = (self.status(), Json(self.body())).into_response();
        if self.kind == ErrorKind::Unauthenticated {
            resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::bad_request(format!("invalid JSON: {e}")).with_code("invalid_json")
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found("not found").with_source(e),
            _ => Error::internal("I/O error").with_source(e),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for Error {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        match e {
            J::MissingJsonContentType(_) => {
                Error::new(ErrorKind::UnsupportedMediaType, "expected Content-Type: application/json")
                    .with_code("unsupported_media_type")
            }
            J::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::new(ErrorKind::PayloadTooLarge, "request body too large")
            }
            other => Error::bad_request(other.body_text()).with_code("invalid_json"),
        }
    }
}

/// A JSON body extractor whose rejections use our error shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct JsonBody<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_details() {
        let e = Error::internal("database path /secret/x is broken");
        assert_eq!(e.public_message(), "internal error");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.retryable());
    }

    #[test]
    fn body_has_code_and_message() {
        let e = Error::bad_request("field `url` is required").with_code("missing_field");
        let v = serde_json::to_value(e.body()).unwrap();
        assert_eq!(v, serde_json::json!({"error": {"code": "missing_field", "message": "field `url` is required"}}));
        assert!(!e.retryable());
    }

    #[tokio::test]
    async fn into_response_sets_status_and_json() {
        let resp = Error::not_found("no such interview").into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
    }
}
