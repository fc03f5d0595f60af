//! Hosted providers. Each one is a [`Protocol`] (how a request looks on the wire, how
//! an answer and a stream event are read); [`Hosted`] adds what they share: retries,
//! timeouts, bounded reads, SSE and latency.

mod anthropic;
mod gemini;
mod openai;

use futures::StreamExt;
use std::sync::Arc;
use std::time::Instant;

use super::config::{ApiKey, LlmConfig, Policy, Price, ProviderConfig, ProviderKind};
use super::http::{self, SseEvent};
use super::{Completion, Delta, DeltaStream, FinishReason, LanguageModel, Request, Usage};
use crate::error::{Error, Result};

pub(crate) use anthropic::Anthropic;
pub(crate) use gemini::Gemini;
pub(crate) use openai::OpenAi;

/// An answer as a protocol reads it; [`Hosted`] adds provider and latency.
pub(crate) struct Parsed {
    pub text: String,
    pub usage: Usage,
    pub model: Option<String>,
    pub finish_reason: FinishReason,
}

/// What one SSE event means.
pub(crate) enum Step {
    /// Nothing for the caller (pings, start markers).
    Skip,
    Delta(Delta),
    /// The provider said the answer is complete; a last delta may come with it.
    Done(Option<Delta>),
}

/// Reads one stream's events in order (some protocols spread usage over several).
pub(crate) trait StreamDecoder: Send + 'static {
    fn event(&mut self, ev: SseEvent) -> Result<Step>;
    /// The body ended without a `Done`: some protocols end that way, for others it is a
    /// truncated stream.
    fn end(&mut self) -> Result<Option<Delta>>;
}

pub(crate) trait Protocol: Send + Sync + 'static {
    const NAME: &'static str;
    fn request(&self, client: &reqwest::Client, req: &Request, stream: bool) -> Result<reqwest::RequestBuilder>;
    fn parse(&self, body: &[u8], req: &Request) -> Result<Parsed>;
    fn decoder(&self, req: &Request) -> Box<dyn StreamDecoder>;
    fn model(&self) -> &str;
    fn key(&self) -> Option<&ApiKey>;
    /// Headers fetched per call rather than fixed at build (OAuth access tokens, which
    /// expire); none by default.
    fn auth_headers(&self) -> impl Future<Output = Result<Option<::http::HeaderMap>>> + Send {
        async { Ok(None) }
    }
}

/// A hosted provider: a protocol, an HTTP client and the retry/timeout policy.
pub(crate) struct Hosted<P> {
    protocol: P,
    client: reqwest::Client,
    policy: Policy,
    price: Option<Price>,
}

impl<P: Protocol> Hosted<P> {
    pub(crate) fn new(protocol: P, policy: Policy, price: Option<Price>) -> Result<Self> {
        Ok(Hosted { protocol, client: http::client()?, policy, price })
    }

    /// One token for the call and its retries: the credentials refresh it minutes
    /// before it expires, so it outlives any call.
    async fn with_auth(&self, template: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        let headers =
            tokio::time::timeout(self.policy.call_timeout, self.protocol.auth_headers()).await.map_err(|_| {
                Error::new(
                    crate::error::ErrorKind::Timeout,
                    format!("{} got no access token within {:?}", P::NAME, self.policy.call_timeout),
                )
                .with_code("llm_timeout")
            })??;
        Ok(match headers {
            Some(headers) => template.headers(headers),
            None => template,
        })
    }
}

pub(crate) fn bad_response(provider: &'static str, what: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("{provider} sent an answer we cannot read: {what}")).with_code("llm_bad_response")
}

#[async_trait::async_trait]
impl<P: Protocol> LanguageModel for Hosted<P> {
    fn provider(&self) -> &'static str {
        P::NAME
    }
    fn model(&self) -> &str {
        self.protocol.model()
    }
    fn price(&self) -> Option<Price> {
        self.price
    }

    async fn complete(&self, req: &Request) -> Result<Completion> {
        req.validate()?;
        let started = Instant::now();
        // Built once, so a bad request fails before any network; JSON bodies clone cheaply.
        let template = self.protocol.request(&self.client, req, false)?;
        let template = self.with_auth(template).await?;
        let build = || template.try_clone().ok_or_else(|| Error::internal("LLM request body is not cloneable"));
        let resp = http::send(&self.policy, P::NAME, self.protocol.key(), build).await?;
        let body = http::read_body(&self.policy, P::NAME, resp).await?;
        let p = self.protocol.parse(&body, req)?;
        Ok(Completion {
            text: p.text,
            usage: p.usage,
            model: p.model.unwrap_or_else(|| self.protocol.model().to_string()),
            provider: P::NAME,
            finish_reason: p.finish_reason,
            latency: started.elapsed(),
            cost_usd: self.price.map(|price| price.cost(p.usage)),
        })
    }

    async fn stream(&self, req: &Request) -> Result<DeltaStream> {
        req.validate()?;
        // Built once, so a bad request fails before any network; JSON bodies clone cheaply.
        let template = self.protocol.request(&self.client, req, true)?;
        let template = self.with_auth(template).await?;
        let build = || template.try_clone().ok_or_else(|| Error::internal("LLM request body is not cloneable"));
        let resp = http::send(&self.policy, P::NAME, self.protocol.key(), build).await?;
        let events = http::sse_events(resp, P::NAME, self.policy.chunk_timeout).boxed();
        let decoder = self.protocol.decoder(req);
        struct St {
            events: futures::stream::BoxStream<'static, Result<SseEvent>>,
            decoder: Box<dyn StreamDecoder>,
            done: bool,
        }
        let st = St { events, decoder, done: false };
        let out = futures::stream::unfold(st, |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                let item = match st.events.next().await {
                    None => {
                        st.done = true;
                        match st.decoder.end() {
                            Ok(Some(d)) => Ok(d),
                            Ok(None) => return None,
                            Err(e) => Err(e),
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        Err(e)
                    }
                    Some(Ok(ev)) => match st.decoder.event(ev) {
                        Ok(Step::Skip) => continue,
                        Ok(Step::Delta(d)) => Ok(d),
                        Ok(Step::Done(last)) => {
                            st.done = true;
                            match last {
                                Some(d) => Ok(d),
                                None => return None,
                            }
                        }
                        Err(e) => {
                            st.done = true;
                            Err(e)
                        }
                    },
                };
                return Some((item, st));
            }
        });
        Ok(out.boxed())
    }
}

/// Build one configured provider (without the chain around it). A key named by
/// `*_API_KEY_SECRET` is read from its secret manager here, once.
pub async fn build(p: &ProviderConfig, config: &LlmConfig) -> Result<Arc<dyn LanguageModel>> {
    let policy = config.policy.clone();
    let url = || p.url.clone().ok_or_else(|| Error::internal(format!("{}_URL missing", p.prefix)));
    // The local model has neither key nor secret (its profile never reads them).
    let key = match (&p.api_key, &p.api_key_secret) {
        (Some(key), _) => Some(key.clone()),
        (None, Some(secret)) => {
            let var = format!("{}_API_KEY_SECRET", p.prefix);
            Some(ApiKey::new(crate::secrets::read(&var, secret).await?.into_inner()))
        }
        (None, None) => None,
    };
    Ok(match p.kind {
        ProviderKind::OpenAi => Arc::new(Hosted::new(OpenAi::new(url()?, &p.model, key), policy, p.price)?),
        ProviderKind::Gemini => Arc::new(Hosted::new(Gemini::new(url()?, &p.model, key, false), policy, p.price)?),
        ProviderKind::Vertex => Arc::new(Hosted::new(vertex(url()?, &p.model, key)?, policy, p.price)?),
        ProviderKind::Anthropic => Arc::new(Hosted::new(Anthropic::new(url()?, &p.model, key), policy, p.price)?),
        ProviderKind::Local => local(config).await?,
    })
}

/// Vertex AI with its key, or with application default credentials when it has none.
#[cfg(any(feature = "gcs", feature = "pubsub"))]
fn vertex(url: url::Url, model: &str, key: Option<ApiKey>) -> Result<Gemini> {
    match key {
        Some(key) => Ok(Gemini::new(url, model, Some(key), true)),
        None => Ok(Gemini::vertex_with_google_auth(url, model, crate::gcp::GoogleAuth::adc()?)),
    }
}

#[cfg(not(any(feature = "gcs", feature = "pubsub")))]
fn vertex(url: url::Url, model: &str, key: Option<ApiKey>) -> Result<Gemini> {
    match key {
        Some(key) => Ok(Gemini::new(url, model, Some(key), true)),
        None => Err(Error::bad_request(
            "vertex without a key needs Google application default credentials: build with the `gcp` feature",
        )
        .with_code("invalid_config")),
    }
}

#[cfg(feature = "llm-local")]
async fn local(config: &LlmConfig) -> Result<Arc<dyn LanguageModel>> {
    Ok(Arc::new(super::local::LocalModel::from_config(config).await?))
}

#[cfg(not(feature = "llm-local"))]
async fn local(_config: &LlmConfig) -> Result<Arc<dyn LanguageModel>> {
    Err(Error::unavailable(
        "LLM_PROVIDER is `local` (or LLM_URL is unset) but this build has no local model; build with the `llm-local` feature or set LLM_URL",
    )
    .with_code("adapter_unavailable"))
}

/// Join a path onto a base URL that may or may not end in `/`.
pub(crate) fn join(base: &url::Url, path: &str) -> url::Url {
    let mut u = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path.trim_start_matches('/'));
    u.set_path(&joined);
    u
}
