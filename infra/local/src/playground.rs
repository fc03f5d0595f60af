//! The playground page at `/`: static files compiled into the binary (no build step, no
//! CDN: nothing outside the stack is reached). It calls the same API as any client, with
//! a development ID token from `dev_auth`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../playground/index.html");
const APP: &str = include_str!("../playground/app.js");
const STYLE: &str = include_str!("../playground/style.css");

/// Scripts and styles only from the stack itself; media may be a recorded blob.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { page("text/html; charset=utf-8", INDEX) }))
        .route("/playground/app.js", get(|| async { page("text/javascript; charset=utf-8", APP) }))
        .route("/playground/style.css", get(|| async { page("text/css; charset=utf-8", STYLE) }))
}
