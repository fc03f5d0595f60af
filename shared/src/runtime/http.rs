//! HTTP mode: the function's routes plus `/healthz`, `/openapi.json`, and the event
//! endpoint that Eventarc (CloudEvents), Pub/Sub push subscriptions and Cloud Scheduler
//! call. Used for Cloud Run / Cloud Functions gen2, for running a function on a laptop,
//! and (through [`app`]) inside Lambda for API Gateway requests.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{Deps, Function, Triggers};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{self, CloudEventTrigger};

/// Path the clouds' event deliveries are configured to POST to (`/` works too).
pub const EVENTS_PATH: &str = "/_/events";

/// The full HTTP application of one function.
pub fn app(function: &Function, deps: &Deps) -> Result<Router> {
    let auth = deps.authenticator()?;
    let openapi = Arc::new(document(function.name, std::slice::from_ref(&function.openapi)));
    let api = function.api.clone().layer(from_fn_with_state(auth, crate::auth::require_principal));
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .merge(events_router(function.triggers.clone()))
        .merge(api);
    let router = with_common_layers(router, deps.config.max_body_bytes);
    Ok(match cors(&deps.config.cors_allowed_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

/// CORS for browsers calling the function directly or through a gateway that passes
/// preflights on (Google's API Gateway does; AWS's HTTP API answers them itself). The
/// outermost layer, so a preflight is answered before authentication, which it cannot
/// pass (browsers send no credentials with it).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Parsed as origins by the configuration, so every one is a valid header value.
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600)),
    )
}

/// `POST /` and `POST /_/events`, dispatching to the function's triggers.
pub fn events_router(triggers: Arc<dyn Triggers>) -> Router {
    Router::new().route("/", post(events)).route(EVENTS_PATH, post(events)).with_state(triggers)
}

/// Request ids, a span per request, panics turned into a JSON 500, body limits, and JSON
/// answers for unknown routes and methods.
pub fn with_common_layers(router: Router, max_body_bytes: usize) -> Router {
    router
        .fallback(|| async { Error::not_found("no such route").with_code("no_route") })
        .method_not_allowed_fallback(|| async {
            Error::new(ErrorKind::MethodNotAllowed, "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            Error::internal("handler panicked").into_response()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(make_span).on_response(on_response))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

fn make_span<B>(req: &Request<B>) -> tracing::Span {
    let request_id = req.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("");
    let trace_id = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::telemetry::trace_id_of)
        .unwrap_or("");
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id,
        trace_id,
        uid = tracing::field::Empty,
    );
    #[cfg(feature = "otel")]
    crate::otel::set_parent_from_headers(&span, req.headers());
    span
}

fn on_response<B>(resp: &http::Response<B>, latency: Duration, _span: &tracing::Span) {
    tracing::info!(status = resp.status().as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "response");
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Merge function documents into one OpenAPI document with both credential schemes.
pub fn document(title: &str, parts: &[OpenApi]) -> OpenApi {
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title(format!("Catalyst {title}"))
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .build();
    for p in parts {
        doc.merge(p.clone());
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "firebase",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
    components.schemas.insert("ErrorBody".into(), <crate::error::ErrorBody as utoipa::PartialSchema>::schema());
    doc.security = Some(vec![
        utoipa::openapi::security::SecurityRequirement::new("firebase", Vec::<String>::new()),
        utoipa::openapi::security::SecurityRequirement::new("api_key", Vec::<String>::new()),
    ]);
    doc
}

/// Tell a delivered event apart and run the matching trigger.
pub async fn dispatch(triggers: &dyn Triggers, headers: &HeaderMap, body: Bytes) -> Result<()> {
    if event::is_cloud_scheduler(headers) {
        let scheduled = event::from_cloud_scheduler(headers, &body)?;
        tracing::info!(schedule = %scheduled.schedule, "schedule fired");
        return triggers.scheduled(scheduled).await;
    }
    let is_cloudevent = headers.contains_key("ce-specversion")
        || headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/cloudevents+json"));
    if is_cloudevent {
        return match event::from_cloudevent_http(headers, body.to_vec())? {
            CloudEventTrigger::Object(obj) => {
                tracing::info!(bucket = %obj.bucket, key = %obj.key, "object created");
                triggers.object_created(obj).await
            }
            CloudEventTrigger::Message(msg) => {
                tracing::info!(message_id = %msg.id, queue = %msg.queue, "message received");
                triggers.queue_message(msg).await
            }
        };
    }
    if body.starts_with(b"{") {
        let msg = event::from_pubsub_push(&body)?;
        if let Some(notification) = event::gcs_notification(&msg) {
            return match notification? {
                Some(obj) => {
                    tracing::info!(bucket = %obj.bucket, key = %obj.key, "object created");
                    triggers.object_created(obj).await
                }
                None => Ok(()),
            };
        }
        tracing::info!(message_id = %msg.id, queue = %msg.queue, "push message received");
        return triggers.queue_message(msg).await;
    }
    Err(Error::bad_request("not a CloudEvent, Pub/Sub push or Cloud Scheduler call").with_code("invalid_event"))
}

async fn events(State(triggers): State<Arc<dyn Triggers>>, headers: HeaderMap, body: Bytes) -> Response {
    // A 2xx acknowledges (Pub/Sub, Eventarc); anything else is redelivered until the
    // subscription's dead-letter policy takes it.
    match dispatch(triggers.as_ref(), &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Serve on `0.0.0.0:$PORT` until SIGTERM or Ctrl-C, then finish in-flight requests.
pub async fn serve(function: Function, deps: Deps) -> Result<()> {
    let app = app(&function, &deps)?;
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], deps.config.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::internal(format!("PORT: cannot listen on {addr}: {e}")).with_source(e))?;
    tracing::info!(function = function.name, %addr, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Error::internal("server failed").with_source(e))
}

/// Resolves on SIGTERM (what Cloud Run sends before stopping an instance) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
