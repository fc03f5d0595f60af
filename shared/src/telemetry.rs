//! Logging and tracing set-up.
//!
//! In the clouds every line is one JSON object carrying both `level` (CloudWatch, Lambda's
//! JSON log format) and `severity` (Cloud Logging), the message, the event's fields and
//! the fields of the spans it sits in (so `request_id` and `uid` appear on every line of a
//! request). Locally the output is the readable `tracing` format. The formatter is ours
//! because no maintained crate emits both clouds' field names in one shape.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

/// Install the global subscriber. Safe to call more than once (later calls do nothing),
/// so tests and the local stack can share it.
pub fn init(config: &Config, service: &'static str) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    #[cfg(feature = "otel")]
    let otel = config.otlp_endpoint.as_deref().and_then(|endpoint| match crate::otel::layer(endpoint, service) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("{service}: {e}; traces will not be exported");
            None
        }
    });
    #[cfg(not(feature = "otel"))]
    let otel: Option<tracing_subscriber::layer::Identity> = {
        if config.otlp_endpoint.is_some() {
            eprintln!(
                "{service}: OTEL_EXPORTER_OTLP_ENDPOINT is set but this binary was built without the `otel` feature"
            );
        }
        None
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = match config.log_format {
        LogFormat::Json => registry
            .with(SpanFieldsLayer)
            .with(tracing_subscriber::fmt::layer().event_format(CloudJson { service }).with_writer(std::io::stdout))
            .try_init(),
        LogFormat::Pretty => {
            registry.with(tracing_subscriber::fmt::layer().with_target(false).with_writer(std::io::stderr)).try_init()
        }
    };
    // Already initialised (tests, or the local stack mounting several functions).
    let _ = result;
}

/// Span fields stored as JSON in the span's extensions, so events can include them.
struct SpanFields(Map<String, Value>);

struct SpanFieldsLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFieldsLayer {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut fields = JsonVisitor(Map::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(map)) = ext.get_mut::<SpanFields>() {
                let mut v = JsonVisitor(std::mem::take(map));
                values.record(&mut v);
                *map = v.0;
            }
        }
    }
}

struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}

struct CloudJson {
    service: &'static str,
}

fn severity(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARNING",
        tracing::Level::INFO => "INFO",
        tracing::Level::DEBUG | tracing::Level::TRACE => "DEBUG",
    }
}

impl<S, N> FormatEvent<S, N> for CloudJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut out = Map::new();
        out.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        out.insert("level".into(), Value::String(meta.level().to_string()));
        out.insert("severity".into(), Value::String(severity(meta.level()).into()));
        out.insert("service".into(), Value::String(self.service.into()));
        out.insert("target".into(), Value::String(meta.target().into()));
        // Outer spans first, so inner fields win on a clash.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in fields {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let mut fields = JsonVisitor(Map::new());
        event.record(&mut fields);
        for (k, v) in fields.0 {
            out.insert(k, v);
        }
        if let Some(trace) = out.get("trace_id").and_then(|t| t.as_str()).map(str::to_string) {
            // Cloud Logging links log lines to traces through this field.
            if let Ok(project) = std::env::var("GOOGLE_CLOUD_PROJECT") {
                out.insert(
                    "logging.googleapis.com/trace".into(),
                    Value::String(format!("projects/{project}/traces/{trace}")),
                );
            }
        }
        writeln!(writer, "{}", Value::Object(out))
    }
}

/// The trace id of a W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`), if well-formed.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2) && hex(trace, 32) && hex(span, 16) && hex(flags, 2) && trace != "0".repeat(32)).then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id_of("00-xyz-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id_of(""), None);
    }

    #[test]
    fn json_lines_carry_span_fields_and_both_level_names() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let b2 = buf.clone();
        let subscriber = tracing_subscriber::registry().with(SpanFieldsLayer).with(
            tracing_subscriber::fmt::layer()
                .event_format(CloudJson { service: "test" })
                .with_writer(move || b2.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "r-1", uid = tracing::field::Empty);
            let _g = span.enter();
            span.record("uid", "u_9");
            tracing::warn!(status = 503, "dependency slow");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "dependency slow");
        assert_eq!(line["request_id"], "r-1");
        assert_eq!(line["uid"], "u_9");
        assert_eq!(line["status"], 503);
    }
}
