//! `catalyst serve`: every function in one process, wired from the manifest the way the
//! clouds wire them.
//!
//! - HTTP: every function's routes on one address, plus `/healthz`, one `/openapi.json`,
//!   and local helpers under `/_local/` (upload a blob, send a queue message, fire a
//!   schedule, status).
//! - Storage: objects landing under a watched prefix — uploaded through the stack, written
//!   by a function, or copied into the data directory by hand — become ObjectCreated
//!   events, as S3 and GCS notifications do. A ledger remembers which object versions were
//!   announced, so each reaches its function once, also across restarts.
//! - Queues: messages go through the embedded queue with retries (exponential backoff),
//!   a visibility timeout of the function's timeout, and a dead-letter queue after
//!   `max_attempts`; failures no retry can fix go to the dead-letter queue at once.
//! - Schedules: cron entries fire into the function's schedule queue.

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use catalyst_shared::auth::{Principal, PrincipalKind, SharedAuthenticator};
use catalyst_shared::blob::{BlobStore, PutOptions, local::LocalBlobStore};
use catalyst_shared::config::Config;
use catalyst_shared::event::{ObjectCreated, Origin, QueueMessage, Scheduled};
use catalyst_shared::queue::local::{QueuePolicy, SqliteQueue};
use catalyst_shared::queue::{Outgoing, Queue, Requeued, backoff};
use catalyst_shared::store::local::SqliteDocumentStore;
use catalyst_shared::{Deps, Error, ErrorKind, Function};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::ledger::{DeliveryRecord, Ledger};
use crate::manifest::Manifest;

/// A mounted function, or why it could not start (its routes then answer 503).
pub enum Mounted {
    // Boxed: a Function (router + OpenAPI document) is large and built once per process.
    Ready(Box<Function>),
    Unavailable(String),
}

pub struct Stack {
    pub manifest: Arc<Manifest>,
    pub config: Arc<Config>,
    pub functions: BTreeMap<String, Mounted>,
    pub blob: Arc<LocalBlobStore>,
    pub queue: Arc<SqliteQueue>,
    pub store: Arc<SqliteDocumentStore>,
    pub ledger: Ledger,
    pub auth: SharedAuthenticator,
    /// Wakes the storage watcher right after an upload.
    pub storage_changed: Arc<Notify>,
    pub poll_interval: Duration,
    /// Development sign-in (`dev_auth`), when the stack stands in for Firebase.
    pub dev_issuer: Option<Arc<crate::dev_auth::DevIssuer>>,
}

/// Internal queue carrying a function's storage events.
pub fn storage_queue(function: &str) -> String {
    format!("storage.{function}")
}

/// Internal queue carrying a function's schedule firings.
pub fn schedule_queue(function: &str) -> String {
    format!("schedule.{function}")
}

impl Stack {
    /// Open the embedded storage under the data directory and build every function.
    pub fn open(config: Config, manifest: Manifest, poll_interval: Duration) -> anyhow::Result<Stack> {
        let data = config.data_dir.clone();
        let blob = Arc::new(LocalBlobStore::open(data.join("blobs")).map_err(to_anyhow)?);
        let store = Arc::new(SqliteDocumentStore::open(data.join("store.db")).map_err(to_anyhow)?);
        let policy = QueuePolicy { max_attempts: manifest.defaults.max_attempts, ..Default::default() };
        let queue = Arc::new(SqliteQueue::open(data.join("queue.db"), policy).map_err(to_anyhow)?);
        let ledger = Ledger::open(&data.join("local.db"))?;
        let deps = Deps::new(config.clone()).with_ports(blob.clone(), store.clone(), queue.clone());
        let dev_issuer = match config.firebase_project_id.as_deref() {
            Some(crate::dev_auth::DEV_PROJECT) => Some(Arc::new(crate::dev_auth::DevIssuer::load_or_create(&data)?)),
            _ => None,
        };
        let auth = match (config.auth, &dev_issuer) {
            // Authentication off, yet a bearer token is still verified (the playground's
            // sign-in goes through Firebase's path); a request without one is `dev`.
            (catalyst_shared::config::AuthMode::Off, Some(_)) => {
                let verifier = catalyst_shared::auth::firebase::FirebaseVerifier::new(
                    crate::dev_auth::DEV_PROJECT,
                    config.firebase_certs_url.clone(),
                )
                .map_err(to_anyhow)?;
                Arc::new(catalyst_shared::auth::Chain(vec![
                    Arc::new(verifier),
                    Arc::new(catalyst_shared::auth::DevAuthenticator),
                ])) as SharedAuthenticator
            }
            _ => deps.authenticator().map_err(to_anyhow)?,
        };
        let mut functions = BTreeMap::new();
        for name in manifest.functions.keys() {
            let builder = crate::registry::builder(name)
                .with_context(|| format!("manifest names function `{name}`, which this build does not have"))?;
            let mounted = match builder(&deps) {
                Ok(f) => Mounted::Ready(Box::new(f)),
                Err(e) => {
                    tracing::warn!(function = %name, error = %e.message(), "function unavailable; its routes answer 503");
                    Mounted::Unavailable(e.message().to_string())
                }
            };
            functions.insert(name.clone(), mounted);
        }
        Ok(Stack {
            manifest: Arc::new(manifest),
            config: Arc::new(config),
            functions,
            blob,
            queue,
            store,
            ledger,
            auth,
            storage_changed: Arc::new(Notify::new()),
            poll_interval,
            dev_issuer,
        })
    }

    /// The HTTP application: all functions' routes, merged.
    pub fn router(self: &Arc<Self>) -> Router {
        let mut router = Router::new();
        let mut docs = Vec::new();
        for (name, mounted) in &self.functions {
            match mounted {
                Mounted::Ready(f) => {
                    router = router.merge(
                        f.api
                            .clone()
                            .layer(from_fn_with_state(self.auth.clone(), catalyst_shared::auth::require_principal)),
                    );
                    docs.push(f.openapi.clone());
                }
                Mounted::Unavailable(reason) => {
                    let spec = &self.manifest.functions[name];
                    for route in &spec.routes {
                        let Ok((method, path)) = crate::manifest::parse_route(route) else { continue };
                        let reason = format!("function `{name}` is not available: {reason}");
                        let handler = move || {
                            let reason = reason.clone();
                            async move { Error::unavailable(reason).with_code("function_unavailable") }
                        };
                        let axum_path = path.clone();
                        let method_router = match method.as_str() {
                            "GET" => axum::routing::get(handler),
                            "POST" => axum::routing::post(handler),
                            "PUT" => axum::routing::put(handler),
                            "PATCH" => axum::routing::patch(handler),
                            _ => axum::routing::delete(handler),
                        };
                        router = router.route(&axum_path, method_router);
                    }
                }
            }
        }
        let openapi = Arc::new(catalyst_shared::runtime::http::document("local stack", &docs));
        let local = Router::new()
            .route("/_local/blobs/{*key}", put(put_blob).get(get_blob))
            .route("/_local/queues/{queue}/messages", post(send_message))
            .route("/_local/schedules/{name}", post(fire_schedule))
            .layer(from_fn_with_state(self.auth.clone(), catalyst_shared::auth::require_principal))
            .route("/_local/status", get(status))
            .route("/_local/auth/certs", get(dev_certs))
            .route("/_local/auth/token", post(dev_token))
            .with_state(self.clone());
        let router = router
            .merge(local)
            .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
            .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
            .merge(crate::playground::routes());
        catalyst_shared::runtime::http::with_common_layers(router, self.config.max_body_bytes)
    }

    /// Serve HTTP and run the watcher, queue workers and schedulers until Ctrl-C/SIGTERM.
    pub async fn run(self: Arc<Self>, addr: SocketAddr) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local_addr = listener.local_addr()?;
        let background = self.clone().spawn_background();
        tracing::info!(%local_addr, data_dir = %self.config.data_dir.display(), "catalyst local stack listening");
        println!("catalyst local stack on http://{local_addr} (data in {})", self.config.data_dir.display());
        let result = axum::serve(listener, self.router())
            .with_graceful_shutdown(catalyst_shared::runtime::http::shutdown_signal())
            .await;
        for task in background {
            task.abort();
        }
        result.context("server failed")
    }

    /// Start the storage watcher, one worker per (function, queue) and one task per schedule.
    pub fn spawn_background(self: Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(self.clone().watch_storage())];
        for (name, spec) in self.manifest.functions.iter() {
            let mut queues: Vec<(String, Kind)> = spec.queues.iter().map(|q| (q.clone(), Kind::Message)).collect();
            if !spec.storage.is_empty() {
                queues.push((storage_queue(name), Kind::Storage));
            }
            if !spec.schedules.is_empty() {
                queues.push((schedule_queue(name), Kind::Schedule));
            }
            for (queue, kind) in queues {
                tasks.push(tokio::spawn(self.clone().work(name.clone(), queue, kind)));
            }
            for schedule in &spec.schedules {
                tasks.push(tokio::spawn(self.clone().schedule(name.clone(), schedule.clone())));
            }
        }
        tasks
    }

    /// Scan watched prefixes and announce object versions not seen before.
    pub async fn scan_storage(&self) -> anyhow::Result<usize> {
        let mut announced = 0;
        for (function, spec) in self.manifest.functions.iter() {
            for trigger in &spec.storage {
                let mut cursor: Option<String> = None;
                loop {
                    let page = self.blob.list(&trigger.prefix, cursor.as_deref(), 500).await.map_err(to_anyhow)?;
                    for meta in page.objects.iter().filter(|m| trigger.matches(&m.key)) {
                        if self.ledger.is_seen(function, &meta.key, &meta.etag)? {
                            continue;
                        }
                        let event = ObjectCreated {
                            origin: Origin::Local,
                            bucket: "local".into(),
                            key: meta.key.clone(),
                            size: Some(meta.size),
                            etag: Some(meta.etag.clone()),
                            content_type: meta.content_type.clone(),
                            sequencer: None,
                            time: meta.last_modified,
                        };
                        // The dedupe id covers a crash between this send and the ledger write.
                        let message = Outgoing::json(&event)
                            .map_err(to_anyhow)?
                            .with_dedupe_id(format!("{function}|{}|{}", meta.key, meta.etag));
                        self.queue.send(&storage_queue(function), message).await.map_err(to_anyhow)?;
                        self.ledger.mark_seen(function, &meta.key, &meta.etag)?;
                        tracing::info!(function = %function, key = %meta.key, "storage event raised");
                        announced += 1;
                    }
                    match page.next {
                        Some(n) => cursor = Some(n),
                        None => break,
                    }
                }
            }
        }
        Ok(announced)
    }

    async fn watch_storage(self: Arc<Self>) {
        loop {
            if let Err(e) = self.scan_storage().await {
                tracing::error!(error = %e, "storage scan failed");
            }
            tokio::select! {
                _ = self.storage_changed.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Deliver one queue's messages to one function until the stack stops.
    async fn work(self: Arc<Self>, function: String, queue: String, kind: Kind) {
        let timeout = Duration::from_secs(self.manifest.functions[&function].timeout_s as u64);
        loop {
            let deliveries = match self.queue.receive(&queue, 10, timeout + Duration::from_secs(5)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(queue = %queue, error = %e.message(), "receive failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if deliveries.is_empty() {
                tokio::time::sleep(self.poll_interval.min(Duration::from_millis(100))).await;
                continue;
            }
            for delivery in deliveries {
                // One span per delivery, joined to the sender's trace when the message carries it.
                let trace_id = delivery
                    .message
                    .attributes
                    .get("traceparent")
                    .and_then(|tp| catalyst_shared::telemetry::trace_id_of(tp))
                    .unwrap_or("")
                    .to_string();
                let span = tracing::info_span!("delivery", function = %function, queue = %queue, message_id = %delivery.message.id, trace_id = %trace_id);
                self.settle(&function, &queue, kind, timeout, delivery).instrument(span).await;
            }
        }
    }

    /// Run one delivery and settle it: acknowledge, retry later, or dead-letter; then log it.
    async fn settle(
        &self,
        function: &str,
        queue: &str,
        kind: Kind,
        timeout: Duration,
        delivery: catalyst_shared::queue::Delivery,
    ) {
        let function = function.to_string();
        let queue = queue.to_string();
        let attempt = delivery.message.attempt.unwrap_or(1);
        let (subject, result) =
            match tokio::time::timeout(timeout, self.deliver(&function, kind, delivery.message.clone())).await {
                Ok(r) => r,
                Err(_) => (
                    delivery.message.id.clone(),
                    Err(Error::new(ErrorKind::Timeout, format!("{function} timed out after {timeout:?}"))),
                ),
            };
        let (outcome, error) = match &result {
            Ok(()) => ("ok", None),
            Err(e) => ("error", Some(format!("{}: {}", e.code(), e.message()))),
        };
        let mut outcome = outcome.to_string();
        let give_back = match &result {
            Ok(()) => self.queue.ack(&queue, &delivery.receipt).await.map(|_| ()),
            Err(e) if !e.retryable() => {
                outcome = "dead-lettered".into();
                self.queue.dead_letter(&queue, &delivery.receipt, error.as_deref().unwrap_or_default()).await
            }
            Err(_) => {
                let delay = backoff(attempt, Duration::from_millis(200), Duration::from_secs(60));
                match self.queue.nack(&queue, &delivery.receipt, delay, error.as_deref().unwrap_or_default()).await {
                    Ok(Requeued::DeadLettered) => {
                        outcome = "dead-lettered".into();
                        Ok(())
                    }
                    Ok(Requeued::Retry) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = give_back {
            tracing::warn!(queue = %queue, error = %e.message(), "could not settle delivery (lease expired?)");
        }
        match &result {
            Ok(()) => tracing::info!(function = %function, queue = %queue, subject = %subject, attempt, "delivered"),
            Err(e) => {
                tracing::warn!(function = %function, queue = %queue, subject = %subject, attempt, %outcome, code = e.code(), error = %e.message(), "delivery failed")
            }
        }
        let record = DeliveryRecord {
            function: function.clone(),
            trigger: kind.name().into(),
            subject,
            message_id: delivery.message.id.clone(),
            attempt,
            outcome,
            error,
            at: chrono::Utc::now().to_rfc3339(),
        };
        if let Err(e) = self.ledger.record(&record) {
            tracing::warn!(error = %e, "could not record delivery");
        }
    }

    async fn deliver(
        &self,
        function: &str,
        kind: Kind,
        message: QueueMessage,
    ) -> (String, catalyst_shared::Result<()>) {
        // Decode first, so logs name the object or schedule even when the function is down.
        enum Payload {
            Object(ObjectCreated),
            Schedule(Scheduled),
            Message(QueueMessage),
        }
        let decoded = match kind {
            Kind::Storage => message.json::<ObjectCreated>().map(|e| (e.key.clone(), Payload::Object(e))),
            Kind::Schedule => message.json::<Scheduled>().map(|e| (e.schedule.clone(), Payload::Schedule(e))),
            Kind::Message => Ok((message.queue.clone(), Payload::Message(message.clone()))),
        };
        let (subject, payload) = match decoded {
            Ok(d) => d,
            Err(e) => return (message.id.clone(), Err(e)),
        };
        let f = match self.functions.get(function) {
            Some(Mounted::Ready(f)) => f,
            Some(Mounted::Unavailable(reason)) => {
                return (subject, Err(Error::unavailable(format!("function `{function}` is not available: {reason}"))));
            }
            None => return (subject, Err(Error::unavailable(format!("function `{function}` is not mounted")))),
        };
        let result = match payload {
            Payload::Object(e) => f.triggers.object_created(e).await,
            Payload::Schedule(e) => f.triggers.scheduled(e).await,
            Payload::Message(m) => f.triggers.queue_message(m).await,
        };
        (subject, result)
    }

    async fn schedule(self: Arc<Self>, function: String, spec: crate::manifest::ScheduleSpec) {
        let Ok(cron) = croner::Cron::from_str(&spec.cron) else { return }; // checked when the manifest was parsed
        loop {
            let now = chrono::Utc::now();
            let Ok(next) = cron.find_next_occurrence(&now, false) else {
                tracing::error!(schedule = %spec.name, "schedule has no next occurrence");
                return;
            };
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            if let Err(e) = self.fire(&function, &spec, next).await {
                tracing::error!(schedule = %spec.name, error = %e, "could not fire schedule");
            }
        }
    }

    /// Enqueue one firing of a schedule; firing the same time twice enqueues once.
    pub async fn fire(
        &self,
        function: &str,
        spec: &crate::manifest::ScheduleSpec,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let event = Scheduled {
            origin: Origin::Local,
            id: format!("{}@{}", spec.name, at.to_rfc3339()),
            schedule: spec.name.clone(),
            time: at,
            payload: spec.payload.clone(),
        };
        let message = Outgoing::json(&event).map_err(to_anyhow)?.with_dedupe_id(event.id.clone());
        self.queue.send(&schedule_queue(function), message).await.map_err(to_anyhow)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Storage,
    Schedule,
    Message,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Storage => "storage",
            Kind::Schedule => "schedule",
            Kind::Message => "queue",
        }
    }
}

fn to_anyhow(e: Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code(), e.message())
}

/// Users may write only below their own `uploads/<kind>/<uid>/`, as signed upload URLs allow
/// in the cloud; the development principal may write anywhere.
fn may_write(principal: &Principal, key: &str) -> bool {
    if principal.kind == PrincipalKind::Dev {
        return true;
    }
    let mut parts = key.split('/');
    matches!((parts.next(), parts.next(), parts.next(), parts.next()), (Some("uploads"), Some(_), Some(uid), Some(_)) if uid == principal.uid)
}

async fn put_blob(
    State(stack): State<Arc<Stack>>,
    principal: Principal,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    catalyst_shared::blob::validate_key(&key)?;
    if !may_write(&principal, &key) {
        return Err(Error::forbidden(format!("you may upload only under uploads/<kind>/{}/", principal.uid))
            .with_code("forbidden_key"));
    }
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let meta = stack.blob.put(&key, body, PutOptions { content_type, if_absent: false }).await?;
    stack.storage_changed.notify_one();
    Ok((StatusCode::CREATED, Json(meta)).into_response())
}

async fn get_blob(
    State(stack): State<Arc<Stack>>,
    principal: Principal,
    Path(key): Path<String>,
) -> Result<Response, Error> {
    catalyst_shared::blob::validate_key(&key)?;
    // Reads follow the same ownership rule on the uid segment, for uploads and derived data.
    let owned = principal.kind == PrincipalKind::Dev || key.split('/').nth(2) == Some(principal.uid.as_str());
    if !owned {
        return Err(Error::not_found(format!("no object `{key}`")));
    }
    let obj = stack.blob.get(&key).await?;
    let ct = obj.meta.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
    Ok(([(http::header::CONTENT_TYPE, ct), (http::header::ETAG, format!("\"{}\"", obj.meta.etag))], obj.data)
        .into_response())
}

async fn send_message(
    State(stack): State<Arc<Stack>>,
    principal: Principal,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    if principal.kind != PrincipalKind::Dev && !principal.has_scope("queues:send") {
        return Err(Error::forbidden("sending to queues needs the `queues:send` scope").with_code("missing_scope"));
    }
    if !stack.manifest.functions.values().any(|f| f.queues.contains(&queue)) {
        return Err(Error::not_found(format!("no function consumes queue `{queue}`")).with_code("unknown_queue"));
    }
    let mut message = Outgoing { body: body.to_vec(), ..Default::default() };
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        message.attributes.insert("traceparent".into(), tp.into());
    }
    if let Some(id) = headers.get("x-dedupe-id").and_then(|v| v.to_str().ok()) {
        message.dedupe_id = Some(id.into());
    }
    let id = stack.queue.send(&queue, message).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"id": id, "queue": queue}))).into_response())
}

async fn fire_schedule(
    State(stack): State<Arc<Stack>>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Response, Error> {
    if principal.kind != PrincipalKind::Dev && !principal.has_scope("schedules:fire") {
        return Err(Error::forbidden("firing schedules needs the `schedules:fire` scope").with_code("missing_scope"));
    }
    let found = stack
        .manifest
        .functions
        .iter()
        .find_map(|(f, spec)| spec.schedules.iter().find(|s| s.name == name).map(|s| (f.clone(), s.clone())));
    let Some((function, spec)) = found else {
        return Err(Error::not_found(format!("no schedule `{name}`")).with_code("unknown_schedule"));
    };
    let id = stack.fire(&function, &spec, chrono::Utc::now()).await.map_err(|e| Error::internal(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"id": id, "schedule": name, "function": function})))
        .into_response())
}

/// The development certificates, in Google's document shape.
async fn dev_certs(State(stack): State<Arc<Stack>>) -> Result<Response, Error> {
    let issuer = stack.dev_issuer.as_ref().ok_or_else(dev_sign_in_off)?;
    Ok(([("cache-control", "public, max-age=3600")], Json(issuer.certs())).into_response())
}

fn dev_sign_in_off() -> Error {
    Error::not_found("development sign-in is off: FIREBASE_PROJECT_ID names a real project").with_code("dev_auth_off")
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    uid: Option<String>,
    email: Option<String>,
}

/// Sign in as anyone (local development only: the stack mints only on loopback, and
/// only for requests addressed to a loopback name, so a web page that rebinds its own
/// DNS name to 127.0.0.1 cannot mint tokens).
async fn dev_token(
    State(stack): State<Arc<Stack>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, Error> {
    let issuer = stack.dev_issuer.as_ref().ok_or_else(dev_sign_in_off)?;
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    if !matches!(name.as_str(), "127.0.0.1" | "localhost" | "[::1]") {
        return Err(Error::forbidden(format!("development sign-in answers only on a loopback name, not `{host}`"))
            .with_code("dev_auth_host"));
    }
    let req: DevTokenRequest = if body.is_empty() {
        DevTokenRequest { uid: None, email: None }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Error::bad_request(format!("expected {{\"uid\"?, \"email\"?}}: {e}")).with_code("invalid_body")
        })?
    };
    let uid = req.uid.unwrap_or_else(|| "dev".into());
    if !crate::dev_auth::valid_uid(&uid) {
        return Err(Error::bad_request("`uid` is 1-128 letters, digits, `-` or `_`").with_code("invalid_uid"));
    }
    let token = issuer
        .mint(&uid, req.email.as_deref())
        .map_err(|e| Error::internal(format!("could not mint a development token: {e}")))?;
    Ok(Json(serde_json::json!({
        "id_token": token, "token_type": "Bearer", "expires_in": crate::dev_auth::TOKEN_LIFETIME_S, "uid": uid
    })))
}

async fn status(State(stack): State<Arc<Stack>>) -> Result<Json<serde_json::Value>, Error> {
    let functions: serde_json::Map<String, serde_json::Value> = stack
        .functions
        .iter()
        .map(|(n, m)| {
            let v = match m {
                Mounted::Ready(_) => serde_json::json!({"status": "ready"}),
                Mounted::Unavailable(r) => serde_json::json!({"status": "unavailable", "reason": r}),
            };
            (n.clone(), v)
        })
        .collect();
    let queues: serde_json::Map<String, serde_json::Value> =
        stack.queue.queues().await?.into_iter().map(|(q, n)| (q, serde_json::json!(n))).collect();
    let deliveries = stack.ledger.recent(200).map_err(|e| Error::internal(e.to_string()))?;
    Ok(Json(serde_json::json!({"functions": functions, "queues": queues, "deliveries": deliveries})))
}
