//! The `scrape` function: fetches a job posting or company page without letting the
//! caller reach anything internal, and extracts its main text, markdown, metadata and
//! schema.org `JobPosting`.
//!
//! `POST /v1/scrape` takes `{"url"}` (fetch and extract) or `{"html", "url"?}` (extract
//! only). Fetched results are cached in blob storage under `scrape/cache/{sha256(url)}.json`
//! for `SCRAPE_CACHE_TTL_SECS`. A queue message `{"url"}` writes its result to
//! `scrape/results/{sha256(url)}.json`, so a redelivered message rewrites the same object.

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use catalyst_shared::auth::Principal;
use catalyst_shared::blob::{PutOptions, SharedBlobStore};
use catalyst_shared::event::QueueMessage;
use catalyst_shared::{Deps, Error, ErrorKind, Function, JsonBody, Result, Triggers};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod config;
pub mod extract;
pub mod fetch;
pub mod guard;
pub mod job;
pub mod text;

pub use config::ScrapeConfig;
pub use extract::{Link, Metadata};
pub use fetch::{Fetcher, Resolver, StaticResolver, SystemResolver};
pub use job::Job;

pub const CACHE_PREFIX: &str = "scrape/cache/";
pub const RESULTS_PREFIX: &str = "scrape/results/";

/// `{"url"}` to fetch, or `{"html", "url"?}` to extract a page the caller already has.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeRequest {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScrapeResponse {
    /// The URL asked for (normalized), or empty when only HTML was given.
    pub url: String,
    /// Where the last redirect led, when it differs from `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    pub title: String,
    /// Main content only, paragraphs separated by blank lines.
    pub text: String,
    pub markdown: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    /// Links inside the main content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// What the cache holds: the response and when it was fetched.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    fetched_at: DateTime<Utc>,
    result: ScrapeResponse,
}

#[derive(Clone)]
pub struct Scraper {
    config: Arc<ScrapeConfig>,
    fetcher: Fetcher,
    blob: SharedBlobStore,
}

impl Scraper {
    pub fn new(config: ScrapeConfig, resolver: Arc<dyn Resolver>, blob: SharedBlobStore) -> Self {
        let fetcher = Fetcher::new(&config, resolver);
        Scraper { config: Arc::new(config), fetcher, blob }
    }

    /// Handle one request: extract given HTML, or fetch (through the cache) and extract.
    pub async fn scrape(&self, req: ScrapeRequest) -> Result<ScrapeResponse> {
        match (req.html, req.url) {
            (Some(html), url) => {
                if html.len() > self.config.max_bytes {
                    return Err(Error::new(
                        ErrorKind::PayloadTooLarge,
                        format!("`html` is larger than {} bytes", self.config.max_bytes),
                    )
                    .with_code("page_too_large"));
                }
                let base = match url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
                    None => None,
                    Some(u) => Some(url::Url::parse(u).map_err(|e| {
                        Error::bad_request(format!("`url` is not a valid URL: {e}")).with_code("invalid_url")
                    })?),
                };
                let url_str = base.as_ref().map(|u| u.to_string()).unwrap_or_default();
                let extracted = run_blocking(move || extract::extract_html(&html, base.as_ref())).await?;
                Ok(response(url_str, None, extracted))
            }
            (None, Some(url)) => self.fetch_and_extract(&url).await,
            (None, None) => {
                Err(Error::bad_request("give `url` to fetch a page, or `html` to extract one")
                    .with_code("missing_field"))
            }
        }
    }

    async fn fetch_and_extract(&self, raw: &str) -> Result<ScrapeResponse> {
        // Refuse before looking at the cache, so a refused URL never gets an answer.
        let target = self.fetcher.policy().check_str(raw)?;
        let url = target.url.to_string();
        let key = format!("{CACHE_PREFIX}{}.json", url_hash(&url));
        if !self.config.cache_ttl.is_zero()
            && let Some(hit) = self.cached(&key).await
        {
            tracing::debug!(%url, "scrape cache hit");
            return Ok(hit);
        }
        let fetched = self.fetcher.fetch(&url).await?;
        let final_url = (fetched.final_url.as_str() != url).then(|| fetched.final_url.to_string());
        let base = fetched.final_url.clone();
        let extracted = run_blocking(move || match fetched.kind {
            fetch::DocKind::Html => extract::extract_html(&fetched.body, Some(&base)),
            fetch::DocKind::PlainText => extract::extract_plain(&fetched.body),
        })
        .await?;
        let result = response(url, final_url, extracted);
        if !self.config.cache_ttl.is_zero() {
            let entry = CacheEntry { fetched_at: Utc::now(), result: result.clone() };
            // A failed cache write costs a refetch later, not this answer.
            if let Err(e) = self.put_json(&key, &entry).await {
                tracing::warn!(error = %e, key, "could not write the scrape cache");
            }
        }
        Ok(result)
    }

    async fn cached(&self, key: &str) -> Option<ScrapeResponse> {
        let obj = self.blob.get(key).await.ok()?;
        let entry: CacheEntry = serde_json::from_slice(&obj.data).ok()?;
        let age = Utc::now().signed_duration_since(entry.fetched_at).to_std().ok()?;
        (age < self.config.cache_ttl).then_some(entry.result)
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| Error::internal("serializing a scrape result").with_source(e))?;
        self.blob.put(key, Bytes::from(bytes), PutOptions::content_type("application/json")).await?;
        Ok(())
    }
}

fn response(url: String, final_url: Option<String>, e: extract::Extracted) -> ScrapeResponse {
    ScrapeResponse {
        url,
        final_url,
        title: e.title,
        text: e.text,
        markdown: e.markdown,
        language: e.language,
        metadata: e.metadata,
        job: e.job,
        links: e.links,
    }
}

/// Extraction is CPU-bound; keep it off the async workers.
async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal("extraction task failed").with_source(e))?
}

/// Hex SHA-256 of the normalized URL: the cache and result key.
pub fn url_hash(url: &str) -> String {
    hex::encode(Sha256::digest(url.as_bytes()))
}

/// Fetch or extract a page: text, markdown, metadata and the job posting.
#[utoipa::path(post, path = "/v1/scrape", tag = "scrape", request_body = ScrapeRequest,
    responses(
        (status = 200, body = ScrapeResponse),
        (status = 400, description = "invalid request or URL", body = catalyst_shared::error::ErrorBody),
        (status = 403, description = "URL refused (ssrf_blocked, port_not_allowed)", body = catalyst_shared::error::ErrorBody),
        (status = 413, description = "page larger than the cap", body = catalyst_shared::error::ErrorBody),
        (status = 415, description = "not HTML or text", body = catalyst_shared::error::ErrorBody),
        (status = 422, description = "page answered an error or cannot be resolved", body = catalyst_shared::error::ErrorBody),
        (status = 504, description = "page too slow", body = catalyst_shared::error::ErrorBody),
    ))]
async fn scrape(
    State(s): State<Scraper>,
    principal: Principal,
    JsonBody(req): JsonBody<ScrapeRequest>,
) -> Result<Json<ScrapeResponse>> {
    principal.require_scope("scrape")?;
    Ok(Json(s.scrape(req).await?))
}

pub fn routes(s: Scraper) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(scrape)).with_state(s)
}

/// Queue message body: `{"url"}`.
#[derive(Debug, Deserialize)]
pub struct ScrapeJob {
    pub url: String,
}

#[async_trait]
impl Triggers for Scraper {
    async fn queue_message(&self, message: QueueMessage) -> Result<()> {
        let job: ScrapeJob = message.json()?;
        let result = self.scrape(ScrapeRequest { url: Some(job.url), html: None }).await?;
        let key = format!("{RESULTS_PREFIX}{}.json", url_hash(&result.url));
        self.put_json(&key, &result).await?;
        tracing::info!(key, message = %message.id, "scrape result written");
        Ok(())
    }
}

pub fn function(deps: &Deps) -> Result<Function> {
    let config = ScrapeConfig::from_env()?;
    let scraper = Scraper::new(config, Arc::new(SystemResolver), deps.blob()?);
    Ok(Function::new("scrape", routes(scraper.clone()), Arc::new(scraper)))
}

#[cfg(test)]
mod tests;
