//! Helpers for end-to-end tests: find the built binaries, run them as child processes on
//! free loopback ports, wait for health, and stand in for the Lambda Runtime API.
//!
//! Tests here start the real binaries, so `cargo build --workspace --bins` must run first
//! (the README's test command does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod lambda_api;
pub mod optimize_fixture;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// A built binary of the workspace, next to this test's own executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "binary `{}` not found: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// An HTTP client for the tests. TLS in this workspace uses rustls with the ring provider
/// (no C build); installing it is idempotent.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// GET a URL with [`client`].
pub async fn get(url: String) -> reqwest::Response {
    client().get(url).send().await.unwrap_or_else(|e| panic!("GET failed: {e}"))
}

/// A loopback port nobody is listening on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A child process killed when dropped, with its output captured to a file for failures.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub addr: Option<SocketAddr>,
}

impl Proc {
    /// Start `binary args` with exactly `env` plus PATH/HOME (nothing else leaks in, so a
    /// developer's AWS or cloud variables cannot change what the test sees).
    pub fn start(binary: &Path, args: &[&str], env: &HashMap<String, String>, log_dir: &Path) -> Proc {
        let log = log_dir.join(format!(
            "{}-{}.log",
            binary.file_name().unwrap().to_string_lossy(),
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary);
        cmd.args(args).env_clear().stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
        for k in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        // Never let an SDK probe the instance-metadata address from a test.
        cmd.env("AWS_EC2_METADATA_DISABLED", "true").env("AWS_REGION", "us-east-1");
        cmd.envs(env);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Proc { child, log, addr: None }
    }

    /// Start an HTTP-mode binary on a free port and wait until `/healthz` answers.
    pub async fn start_http(binary: &Path, args: &[&str], env: HashMap<String, String>, log_dir: &Path) -> Proc {
        if let Some(port) = env.get("PORT").and_then(|p| p.parse::<u16>().ok()) {
            let mut p = Proc::start(binary, args, &env, log_dir);
            p.addr = Some(SocketAddr::from(([127, 0, 0, 1], port)));
            p.wait_healthy(Duration::from_secs(30)).await;
            return p;
        }
        Proc::start_http_with(binary, |_| args.iter().map(|a| a.to_string()).collect(), env, log_dir).await
    }

    /// Start an HTTP-mode binary on a free port (given to `args` and as `PORT`) and wait until
    /// `/healthz` answers. A port found free can be taken by a test running in parallel before
    /// the child binds it; such a start is tried again on another port.
    pub async fn start_http_with(
        binary: &Path,
        args: impl Fn(u16) -> Vec<String>,
        env: HashMap<String, String>,
        log_dir: &Path,
    ) -> Proc {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let mut env = env.clone();
            env.insert("PORT".into(), port.to_string());
            let args = args(port);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut p = Proc::start(binary, &refs, &env, log_dir);
            p.addr = Some(SocketAddr::from(([127, 0, 0, 1], port)));
            match p.healthy_within(Duration::from_secs(30)).await {
                Ok(()) => return p,
                Err(_) if attempt < 5 && p.output().contains("Address already in use") => continue,
                Err(why) => panic!("{why}"),
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.expect("an HTTP process"))
    }

    pub async fn wait_healthy(&mut self, within: Duration) {
        if let Err(why) = self.healthy_within(within).await {
            panic!("{why}");
        }
    }

    /// Wait until `/healthz` answers; the reason, with the log, if the process exits first or
    /// time runs out.
    pub async fn healthy_within(&mut self, within: Duration) -> Result<(), String> {
        let client = client();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("process exited early ({status}); log:\n{}", self.output()));
            }
            if let Ok(r) = client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not healthy in {within:?}; log:\n{}", self.output()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for the process to exit by itself.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit in {within:?}; log:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, as Cloud Run and Lambda send before stopping an instance.
    pub fn terminate(&self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `catalyst models fetch` put the model files: `CATALYST_MODELS_DIR` (the test
/// command exports it), else the repository's default `.catalyst/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("CATALYST_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".catalyst/models"))
}

/// Environment for a function on a laptop: its own data directory, the shared models.
pub fn local_env(data_dir: &Path) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("CATALYST_DATA_DIR".into(), data_dir.display().to_string());
    env.insert("CATALYST_MODELS_DIR".into(), models_dir().display().to_string());
    env.insert("CATALYST_LOG".into(), "info".into());
    env
}

/// A sample payload from `events/`.
pub fn event(path: &str) -> serde_json::Value {
    let p = repo_root().join("events").join(path);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("valid JSON")
}

/// Poll `check` until it returns `Some`, or fail after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
