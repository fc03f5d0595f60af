//! The `agent` binary: Lambda, Cloud Run or local HTTP, decided at start-up.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    catalyst_shared::runtime::main("agent", catalyst_agent::function).await
}
