//! One binary, three homes: `serve` runs a [`Function`] under the Lambda Runtime API when
//! `AWS_LAMBDA_RUNTIME_API` is set, and otherwise as an HTTP server on `$PORT` the way
//! Cloud Run and Cloud Functions gen2 expect. The local stack mounts the same
//! `Function` values in one process.

use async_trait::async_trait;
use axum::Router;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::SharedAuthenticator;
use crate::blob::SharedBlobStore;
use crate::config::{AuthMode, Config};
use crate::error::{Error, Result};
use crate::event::{ObjectCreated, QueueMessage, Scheduled};
use crate::queue::SharedQueue;
use crate::store::SharedDocumentStore;

pub mod http;
pub mod lambda;

/// The non-HTTP entry points of a function. Each defaults to "not handled here", which
/// is a non-retryable error, so a mis-wired trigger dead-letters instead of looping.
#[async_trait]
pub trait Triggers: Send + Sync + 'static {
    async fn object_created(&self, event: ObjectCreated) -> Result<()> {
        Err(not_handled("storage events", &event.key))
    }
    async fn queue_message(&self, message: QueueMessage) -> Result<()> {
        Err(not_handled("queue messages", &message.queue))
    }
    async fn scheduled(&self, event: Scheduled) -> Result<()> {
        Err(not_handled("schedules", &event.schedule))
    }
    /// An API Gateway Lambda authorizer call; returns the authorizer response JSON.
    async fn authorize(&self, request: serde_json::Value) -> Result<serde_json::Value> {
        let _ = request;
        Err(not_handled("authorizer calls", "gateway"))
    }
}

fn not_handled(what: &str, name: &str) -> Error {
    Error::bad_request(format!("this function does not handle {what} (got one for `{name}`)"))
        .with_code("unsupported_trigger")
}

/// A function with no non-HTTP triggers.
pub struct HttpOnly;
impl Triggers for HttpOnly {}

/// A capability ready to be served: its HTTP API (documented), and its triggers.
#[derive(Clone)]
pub struct Function {
    pub name: &'static str,
    /// Routes that require a principal.
    pub api: Router,
    pub openapi: OpenApi,
    pub triggers: Arc<dyn Triggers>,
}

impl Function {
    pub fn new(name: &'static str, routes: OpenApiRouter, triggers: Arc<dyn Triggers>) -> Self {
        let (api, openapi) = routes.split_for_parts();
        Function { name, api, openapi, triggers }
    }
}

/// What a function is built from: its configuration and the ports, opened on first use
/// so a function that needs no queue never opens one.
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    blob: Arc<OnceLock<SharedBlobStore>>,
    store: Arc<OnceLock<SharedDocumentStore>>,
    queue: Arc<OnceLock<SharedQueue>>,
    auth: Arc<OnceLock<SharedAuthenticator>>,
}

impl Deps {
    pub fn new(config: Config) -> Self {
        Deps {
            config: Arc::new(config),
            blob: Default::default(),
            store: Default::default(),
            queue: Default::default(),
            auth: Default::default(),
        }
    }

    pub fn blob(&self) -> Result<SharedBlobStore> {
        get_or_open(&self.blob, || crate::blob::open(&self.config.blob_url))
    }
    pub fn store(&self) -> Result<SharedDocumentStore> {
        get_or_open(&self.store, || crate::store::open(&self.config.store_url))
    }
    pub fn queue(&self) -> Result<SharedQueue> {
        get_or_open(&self.queue, || crate::queue::open(&self.config.queue_url))
    }

    /// Use these adapters instead of opening them from config (the local stack shares one set).
    pub fn with_ports(self, blob: SharedBlobStore, store: SharedDocumentStore, queue: SharedQueue) -> Self {
        let _ = self.blob.set(blob);
        let _ = self.store.set(store);
        let _ = self.queue.set(queue);
        self
    }

    pub fn with_authenticator(self, auth: SharedAuthenticator) -> Self {
        let _ = self.auth.set(auth);
        self
    }

    /// The request authenticator: development mode, or the configured verifiers.
    pub fn authenticator(&self) -> Result<SharedAuthenticator> {
        get_or_open(&self.auth, || match self.config.auth {
            AuthMode::Off => Ok(Arc::new(crate::auth::DevAuthenticator) as SharedAuthenticator),
            AuthMode::Required => crate::auth::configured(&self.config, self),
        })
    }
}

fn get_or_open<T: Clone>(cell: &OnceLock<T>, open: impl FnOnce() -> Result<T>) -> Result<T> {
    if let Some(v) = cell.get() {
        return Ok(v.clone());
    }
    let v = open()?;
    Ok(cell.get_or_init(|| v).clone())
}

/// Serve `function` where the environment says: Lambda, or HTTP on `$PORT`.
pub async fn serve(function: Function, deps: Deps) -> Result<()> {
    match deps.config.platform {
        crate::config::Platform::Lambda => lambda::serve(function, deps).await,
        _ => http::serve(function, deps).await,
    }
}

/// The whole `main` of a function binary: configuration, telemetry, the function built
/// from its dependencies, then [`serve`]. Start-up errors print the variable to fix and
/// exit non-zero.
/// Run a future to completion from synchronous start-up code (a function's constructor
/// resolving models, which may copy from a bucket), whatever runtime (if any) is current:
/// on a scoped thread with its own small runtime, so it never blocks or re-enters the
/// caller's runtime.
pub fn block_on_startup<F: std::future::Future + Send>(f: F) -> Result<F::Output>
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::internal("start-up runtime").with_source(e))?;
            Ok(rt.block_on(f))
        })
        .join()
        .map_err(|_| Error::internal("start-up thread panicked"))?
    })
}

/// Tell Lambda why the function could not start (`POST /runtime/init/error`), so the
/// invocation fails with that reason instead of timing out on a process that exited.
async fn report_init_error(api: &str, e: &crate::Error) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let body = serde_json::json!({"errorMessage": e.message(), "errorType": "Runtime.InitError", "stackTrace": []});
    let sent = reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .timeout(std::time::Duration::from_secs(2))
        .json(&body)
        .send()
        .await;
    if let Err(err) = sent {
        eprintln!("could not report the start-up failure to the Lambda Runtime API: {err}");
    }
}

pub async fn main(name: &'static str, build: impl FnOnce(&Deps) -> Result<Function>) -> ExitCode {
    #[cfg(feature = "llm-local")]
    crate::llm::local::configure_candle_threads();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&config, name);
    let deps = Deps::new(config);
    let started = std::time::Instant::now();
    let function = match build(&deps).and_then(|f| deps.authenticator().map(|_| f)) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e.message(), code = e.code(), "start-up failed");
            eprintln!("{name}: start-up failed: {}", e.message());
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                report_init_error(&api, &e).await;
            }
            return ExitCode::from(1);
        }
    };
    tracing::debug!(elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "function built");
    let served = serve(function, deps).await;
    #[cfg(feature = "otel")]
    crate::otel::flush();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {}", e.message());
            ExitCode::from(1)
        }
    }
}
