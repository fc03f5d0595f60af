//! OpenTelemetry export (feature `otel`): `tracing` spans become OTLP spans sent over
//! HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`, and W3C `traceparent` headers join incoming
//! requests to their caller's trace, so one interview turn is one trace across functions.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The layer exporting spans, or an error naming the variable when the endpoint is unusable.
pub fn layer<S>(
    endpoint: &str,
    service: &'static str,
) -> Result<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>, String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let base = endpoint.trim_end_matches('/');
    let traces = if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces)
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer(service);
    let _ = PROVIDER.set(provider);
    Ok(tracing_opentelemetry::layer().with_tracer(tracer))
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Make `span` a child of the trace named by the request's `traceparent`, if any.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` of the current span, to send along with outgoing calls and messages.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Export what is buffered: after each Lambda invocation (the sandbox may freeze) and at exit.
pub fn flush() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Spans reach a real OTLP/HTTP endpoint on 127.0.0.1, as protobuf, with the parent
    /// trace id taken from `traceparent`.
    #[test]
    fn spans_are_exported_with_the_callers_trace_id() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut s = stream.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                // Read headers, then the declared body length.
                loop {
                    let n = s.read(&mut chunk).unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            let n = s.read(&mut chunk).unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
                        let _ = tx.send((head, buf[end + 4..end + 4 + len].to_vec()));
                        break;
                    }
                }
            }
        });
        let layer = layer(&format!("http://{addr}"), "otel-test").unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        tracing::subscriber::with_default(subscriber, || {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
            let span = tracing::info_span!("request", path = "/v1/evaluate");
            set_parent_from_headers(&span, &headers);
            let _g = span.enter();
            let tp = current_traceparent().expect("a traceparent for outgoing calls");
            assert!(tp.contains(trace_id), "{tp}");
        });
        flush();
        let (head, body) = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("an OTLP export");
        assert!(head.starts_with("POST /v1/traces"), "{head}");
        assert!(head.to_ascii_lowercase().contains("application/x-protobuf"), "{head}");
        let raw_trace_id = hex::decode(trace_id).unwrap();
        assert!(
            body.windows(16).any(|w| w == raw_trace_id.as_slice()),
            "the exported span carries the caller's trace id"
        );
        assert!(body.windows(7).any(|w| w == b"request"), "span name exported");
    }
}
