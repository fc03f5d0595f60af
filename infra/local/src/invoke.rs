//! `catalyst invoke <function> --event <file>`: run one function once on a payload, the
//! way `cargo lambda invoke` does, for payloads of either cloud.
//!
//! - Lambda payloads (API Gateway, function URL, ALB, S3, SQS, EventBridge, authorizer)
//!   go through the same Lambda handler the function runs in AWS.
//! - Google payloads go through the same HTTP event endpoint Cloud Run calls: a
//!   structured CloudEvent (`specversion`), a Pub/Sub push envelope (`message`), or our
//!   `{"headers", "body"}` wrapper for binary-mode CloudEvents and Cloud Scheduler calls.

use anyhow::Context as _;
use axum::body::Bytes;
use catalyst_shared::runtime::lambda::Handler;
use catalyst_shared::{Deps, Function};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::sync::Arc;

pub async fn invoke(function: Function, deps: &Deps, payload: Value) -> anyhow::Result<Value> {
    if is_google(&payload) {
        let (headers, body) = google_request(&payload)?;
        return match catalyst_shared::runtime::http::dispatch(function.triggers.as_ref(), &headers, body).await {
            Ok(()) => Ok(serde_json::json!({"status": 204})),
            Err(e) => Ok(serde_json::json!({"status": e.status().as_u16(), "body": e.body()})),
        };
    }
    let app = catalyst_shared::runtime::http::app(&function, deps).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let handler = Arc::new(Handler { app, triggers: function.triggers.clone() });
    let context = lambda_context();
    handler
        .handle(lambda_runtime::LambdaEvent::new(payload, context))
        .await
        .map_err(|e| anyhow::anyhow!("invocation failed: {e}"))
}

fn is_google(v: &Value) -> bool {
    v.get("specversion").is_some()
        || v.get("headers").is_some_and(Value::is_object)
            && v.get("body").is_some()
            && v.get("requestContext").is_none()
            && v.get("httpMethod").is_none()
        || (v.get("message").is_some() && v.get("subscription").is_some())
}

fn google_request(v: &Value) -> anyhow::Result<(HeaderMap, Bytes)> {
    let mut headers = HeaderMap::new();
    if v.get("specversion").is_some() {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/cloudevents+json"));
        return Ok((headers, Bytes::from(serde_json::to_vec(v)?)));
    }
    if v.get("message").is_some() {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok((headers, Bytes::from(serde_json::to_vec(v)?)));
    }
    let h = v["headers"].as_object().context("`headers` must be an object")?;
    for (k, val) in h {
        let val = val.as_str().with_context(|| format!("header `{k}` must be a string"))?;
        headers.insert(HeaderName::from_bytes(k.as_bytes())?, HeaderValue::from_str(val)?);
    }
    let body = match &v["body"] {
        Value::String(s) => Bytes::from(s.clone().into_bytes()),
        other => Bytes::from(serde_json::to_vec(other)?),
    };
    Ok((headers, body))
}

fn lambda_context() -> lambda_runtime::Context {
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = uuid_like();
    ctx.deadline = (chrono::Utc::now() + chrono::Duration::minutes(15)).timestamp_millis() as u64;
    ctx.invoked_function_arn = "arn:aws:lambda:local:000000000000:function:catalyst-local".into();
    ctx
}

fn uuid_like() -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default().to_le_bytes());
    let h = hex::encode(&d[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
