//! The `auth` binary: Lambda, Cloud Run or local HTTP, decided at start-up.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    catalyst_shared::runtime::main("auth", catalyst_auth::function).await
}
