//! A Lambda Runtime API server on 127.0.0.1 speaking the documented protocol
//! (`/2018-06-01/runtime/invocation/next`, `/{id}/response`, `/{id}/error`, `/init/error`),
//! so a function binary can run in Lambda mode exactly as in the AWS sandbox.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What the function answered for one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(serde_json::Value),
    Error { error_type: Option<String>, body: serde_json::Value },
}

#[derive(Default)]
struct Inner {
    pending: VecDeque<(String, serde_json::Value)>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<serde_json::Value>,
}

#[derive(Clone, Default)]
pub struct RuntimeApi {
    inner: Arc<Mutex<Inner>>,
    new_event: Arc<Notify>,
    new_outcome: Arc<Notify>,
}

impl RuntimeApi {
    /// Serve on a free loopback port; returns the `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub async fn start() -> (RuntimeApi, SocketAddr) {
        let api = RuntimeApi::default();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("runtime API server") });
        (api, addr)
    }

    /// Queue an invocation; returns its request id.
    pub fn invoke(&self, payload: serde_json::Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.inner.lock().unwrap().pending.push_back((id.clone(), payload));
        self.new_event.notify_waiters();
        self.new_event.notify_one();
        id
    }

    /// Wait for the function's answer to invocation `id`.
    pub async fn outcome(&self, id: &str, within: Duration) -> Outcome {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.new_outcome.notified();
            if let Some(o) = self.inner.lock().unwrap().outcomes.get(id).cloned() {
                return o;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no answer to invocation {id} within {within:?}");
            }
        }
    }

    /// Invoke and wait.
    pub async fn call(&self, payload: serde_json::Value) -> Outcome {
        let id = self.invoke(payload);
        self.outcome(&id, Duration::from_secs(30)).await
    }

    pub fn init_error(&self) -> Option<serde_json::Value> {
        self.inner.lock().unwrap().init_error.clone()
    }
}

async fn next(State(api): State<RuntimeApi>) -> impl IntoResponse {
    loop {
        let notified = api.new_event.notified();
        if let Some((id, payload)) = api.inner.lock().unwrap().pending.pop_front() {
            let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                .to_string();
            let mut headers = HeaderMap::new();
            headers.insert("Lambda-Runtime-Aws-Request-Id", id.parse().unwrap());
            headers.insert("Lambda-Runtime-Deadline-Ms", deadline.parse().unwrap());
            headers.insert(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:catalyst-test".parse().unwrap(),
            );
            headers.insert(
                "Lambda-Runtime-Trace-Id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".parse().unwrap(),
            );
            return (StatusCode::OK, headers, Json(payload));
        }
        // Long poll, as the real API does.
        notified.await;
    }
}

async fn response(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    api.inner.lock().unwrap().outcomes.insert(id, Outcome::Response(value));
    api.new_outcome.notify_waiters();
    StatusCode::ACCEPTED
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let error_type =
        headers.get("Lambda-Runtime-Function-Error-Type").and_then(|v| v.to_str().ok()).map(str::to_string);
    api.inner.lock().unwrap().outcomes.insert(id, Outcome::Error { error_type, body: value });
    api.new_outcome.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.inner.lock().unwrap().init_error = Some(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
    StatusCode::ACCEPTED
}
