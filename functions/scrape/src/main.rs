//! The `scrape` binary: Lambda, Cloud Run or local HTTP, decided at start-up.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    catalyst_shared::runtime::main("scrape", catalyst_scrape::function).await
}
