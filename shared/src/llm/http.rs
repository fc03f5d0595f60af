//! What every hosted provider shares: the HTTP client, retries with jittered backoff
//! that honour `Retry-After`, provider errors mapped to typed errors (with the API key
//! scrubbed), bounded body reads, and a Server-Sent Events reader with a per-chunk timeout.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use rand::Rng;
use std::time::Duration;

use super::config::{ApiKey, Policy};
use crate::error::{Error, ErrorKind, Result};

/// No provider answer is anywhere near this large; a body that is, is not an answer.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// A single SSE event larger than this means the stream is not SSE.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

pub(crate) fn client() -> Result<reqwest::Client> {
    // reqwest is built without a default crypto provider (to avoid aws-lc's C build);
    // install ring's unless the process already chose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("catalyst/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal("cannot build the LLM HTTP client").with_source(e))
}

/// Send the request `build` makes, retrying on 429, 5xx and connection errors, and
/// return the first successful response (headers read, body not yet).
pub(crate) async fn send(
    policy: &Policy,
    provider: &'static str,
    key: Option<&ApiKey>,
    build: impl Fn() -> Result<reqwest::RequestBuilder>,
) -> Result<reqwest::Response> {
    let mut attempt = 0u32;
    loop {
        let (err, retry_after): (Error, Option<Duration>) =
            match tokio::time::timeout(policy.call_timeout, build()?.send()).await {
                Err(_) => (
                    Error::new(
                        ErrorKind::Timeout,
                        format!("{provider} did not answer within {:?}", policy.call_timeout),
                    )
                    .with_code("llm_timeout"),
                    None,
                ),
                Ok(Err(e)) => (transport_error(provider, e), None),
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(resp),
                Ok(Ok(resp)) => {
                    let retry_after = retry_after(resp.headers());
                    let status = resp.status();
                    let body = read_limited(resp, 64 * 1024).await.unwrap_or_default();
                    (status_error(provider, status, &body, key), retry_after)
                }
            };
        let retryable = matches!(err.kind(), ErrorKind::TooManyRequests | ErrorKind::Unavailable | ErrorKind::Timeout)
            && err.code() != "llm_auth_failed"
            && err.code() != "llm_model_not_found";
        if !retryable || attempt >= policy.max_retries {
            return Err(err);
        }
        let delay = match retry_after {
            // Waiting longer than we would ever back off helps nobody: let the chain move on.
            Some(d) if d > policy.max_backoff => return Err(err),
            Some(d) => d + jitter(d / 10),
            None => jitter(backoff_cap(policy, attempt)),
        };
        tracing::warn!(
            provider,
            attempt,
            code = err.code(),
            delay_ms = delay.as_millis() as u64,
            "LLM call failed; retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

fn backoff_cap(policy: &Policy, attempt: u32) -> Duration {
    policy.base_backoff.saturating_mul(1u32 << attempt.min(16)).min(policy.max_backoff)
}

/// Full jitter: uniform in [0, cap], so clients that failed together do not retry together.
fn jitter(cap: Duration) -> Duration {
    if cap.is_zero() {
        return cap;
    }
    Duration::from_micros(rand::rng().random_range(0..=cap.as_micros() as u64))
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Some(wait)
}

fn transport_error(provider: &'static str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    if e.is_timeout() {
        Error::new(ErrorKind::Timeout, format!("{provider} did not answer in time"))
            .with_code("llm_timeout")
            .with_source(e)
    } else if e.is_builder() {
        Error::internal(format!("cannot build the {provider} request")).with_source(e)
    } else {
        Error::unavailable(format!("cannot reach {provider}")).with_code("llm_unavailable").with_source(e)
    }
}

/// A failed HTTP status as a typed error. The provider's own message is kept (it helps
/// whoever reads the log) but cut short and scrubbed of the key.
pub(crate) fn status_error(
    provider: &'static str,
    status: http::StatusCode,
    body: &[u8],
    key: Option<&ApiKey>,
) -> Error {
    let detail = provider_message(body).map(|m| scrub(&m, key));
    let with = |msg: String| match &detail {
        Some(d) => format!("{msg}: {d}"),
        None => msg,
    };
    let code = status.as_u16();
    match code {
        401 | 403 => Error::unavailable(format!("{provider} refused the credentials (HTTP {code}); check its API key"))
            .with_code("llm_auth_failed"),
        404 => Error::unavailable(with(format!("{provider} does not know this model or endpoint (HTTP 404)")))
            .with_code("llm_model_not_found"),
        408 => {
            Error::new(ErrorKind::Timeout, with(format!("{provider} timed out (HTTP 408)"))).with_code("llm_timeout")
        }
        429 => Error::new(ErrorKind::TooManyRequests, with(format!("{provider} is rate limiting us (HTTP 429)")))
            .with_code("llm_rate_limited"),
        500..=599 => Error::unavailable(with(format!("{provider} failed (HTTP {code})"))).with_code("llm_unavailable"),
        _ => Error::unprocessable(with(format!("{provider} rejected the request (HTTP {code})")))
            .with_code("llm_rejected"),
    }
}

/// The message in the usual error shapes: `{"error": {"message"}}` (OpenAI, Gemini,
/// Anthropic), `{"error": "..."}`, `{"message": "..."}`.
fn provider_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let m = v
        .pointer("/error/message")
        .or_else(|| v.get("error").filter(|e| e.is_string()))
        .or_else(|| v.get("message"))?
        .as_str()?;
    let mut out: String = m.chars().take(300).collect();
    if m.chars().nth(300).is_some() {
        out.push('…');
    }
    Some(out)
}

fn scrub(text: &str, key: Option<&ApiKey>) -> String {
    match key.map(ApiKey::expose).filter(|k| k.len() >= 4) {
        Some(k) => text.replace(k, "<redacted>"),
        None => text.to_string(),
    }
}

/// Read a body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        Error::unavailable("the LLM response broke off").with_code("llm_truncated").with_source(e.without_url())
    })? {
        if buf.len() + chunk.len() > limit {
            return Err(Error::unavailable("the LLM response is too large").with_code("llm_bad_response"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A whole answer body, within the call timeout.
pub(crate) async fn read_body(policy: &Policy, provider: &'static str, resp: reqwest::Response) -> Result<Bytes> {
    tokio::time::timeout(policy.call_timeout, read_limited(resp, MAX_BODY_BYTES)).await.map_err(|_| {
        Error::new(ErrorKind::Timeout, format!("{provider} did not finish its answer within {:?}", policy.call_timeout))
            .with_code("llm_timeout")
    })?
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// The events of an SSE body. A silence longer than `chunk_timeout` ends the stream with
/// a timeout error; the end of the body ends it (the provider decides whether that was
/// complete). Dropping the stream closes the connection.
pub(crate) fn sse_events(
    resp: reqwest::Response,
    provider: &'static str,
    chunk_timeout: Duration,
) -> impl Stream<Item = Result<SseEvent>> + Send + 'static {
    struct State<S> {
        body: S,
        buf: Vec<u8>,
        done: bool,
    }
    let state = State { body: resp.bytes_stream(), buf: Vec::new(), done: false };
    futures::stream::unfold(state, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(ev) = take_event(&mut st.buf) {
                match ev {
                    Some(ev) => return Some((Ok(ev), st)),
                    None => continue, // comment or empty block
                }
            }
            if st.buf.len() > MAX_EVENT_BYTES {
                st.done = true;
                let e = Error::unavailable(format!("{provider} sent an oversized stream event"))
                    .with_code("llm_bad_response");
                return Some((Err(e), st));
            }
            match tokio::time::timeout(chunk_timeout, st.body.next()).await {
                Err(_) => {
                    st.done = true;
                    let e = Error::new(
                        ErrorKind::Timeout,
                        format!("{provider} went silent for {chunk_timeout:?} mid-stream"),
                    )
                    .with_code("llm_stream_timeout");
                    return Some((Err(e), st));
                }
                Ok(Some(Ok(chunk))) => st.buf.extend_from_slice(&chunk),
                Ok(Some(Err(e))) => {
                    st.done = true;
                    let e = Error::unavailable(format!("{provider} stream broke off"))
                        .with_code("llm_truncated")
                        .with_source(e.without_url());
                    return Some((Err(e), st));
                }
                Ok(None) => {
                    st.done = true;
                    // A last event without its blank line still counts.
                    st.buf.extend_from_slice(b"\n\n");
                    if let Some(Some(ev)) = take_event(&mut st.buf) {
                        return Some((Ok(ev), st));
                    }
                    return None;
                }
            }
        }
    })
}

/// Cut one event off the front of `buf`: `None` if no complete event is buffered,
/// `Some(None)` for a block with no data (comments, keep-alives).
fn take_event(buf: &mut Vec<u8>) -> Option<Option<SseEvent>> {
    let (end, sep) = find_blank_line(buf)?;
    let block: Vec<u8> = buf.drain(..end + sep).collect();
    let text = String::from_utf8_lossy(&block[..end]);
    let mut ev = SseEvent::default();
    let mut has_data = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => ev.event = Some(value.to_string()),
            "data" => {
                if has_data {
                    ev.data.push('\n');
                }
                ev.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    Some(has_data.then_some(ev))
}

fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks_are_cut_at_blank_lines() {
        let mut buf = b": keep-alive\n\nevent: ping\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata: partial".to_vec();
        assert_eq!(take_event(&mut buf), Some(None));
        assert_eq!(take_event(&mut buf), Some(Some(SseEvent { event: Some("ping".into()), data: "{\"a\":1}".into() })));
        assert_eq!(take_event(&mut buf), Some(Some(SseEvent { event: None, data: "x\ny".into() })));
        assert_eq!(take_event(&mut buf), None);
        assert_eq!(buf, b"data: partial");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822().replace("+0000", "GMT");
        h.insert(http::header::RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        h.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn provider_errors_are_typed_and_scrubbed() {
        let key = ApiKey::new("sk-secret-123");
        let body =
            br#"{"error":{"message":"Incorrect API key provided: sk-secret-123","type":"invalid_request_error"}}"#;
        let e = status_error("openai", http::StatusCode::UNAUTHORIZED, body, Some(&key));
        assert_eq!(e.code(), "llm_auth_failed");
        assert!(!e.message().contains("sk-secret"));
        let e = status_error("openai", http::StatusCode::BAD_REQUEST, body, Some(&key));
        assert_eq!(e.code(), "llm_rejected");
        assert!(e.message().contains("<redacted>") && !e.message().contains("sk-secret"), "{}", e.message());
        assert_eq!(
            status_error("x", http::StatusCode::TOO_MANY_REQUESTS, b"", None).kind(),
            ErrorKind::TooManyRequests
        );
        assert_eq!(status_error("x", http::StatusCode::BAD_GATEWAY, b"<html>", None).code(), "llm_unavailable");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = Policy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Policy::default()
        };
        assert_eq!(backoff_cap(&p, 0), Duration::from_millis(100));
        assert_eq!(backoff_cap(&p, 2), Duration::from_millis(400));
        assert_eq!(backoff_cap(&p, 9), Duration::from_secs(1));
        assert!(jitter(Duration::from_millis(100)) <= Duration::from_millis(100));
    }
}
