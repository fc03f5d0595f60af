//! The LLM port: one trait, [`LanguageModel`], over hosted providers (OpenAI-compatible
//! Chat Completions, Google Gemini and Vertex AI, Anthropic Messages) and, with the
//! `llm-local` feature, an embedded quantized llama on a GGUF file.
//!
//! [`from_config`] builds what `LLM_*` variables describe: the primary provider and a
//! fallback chain ([`Chain`]) with per-call and per-chunk timeouts, retries with jittered
//! backoff honouring `Retry-After`, and token usage recorded as tracing span fields.
//! Prompts and completions hold resumes, so nothing here logs them; API keys come from
//! the environment, a mounted file or the cloud's secret manager (`*_API_KEY_SECRET`, read
//! once when the model is built; see [`crate::secrets`]), are kept in [`ApiKey`], whose
//! `Debug` is redacted, and never enter an error message. Vertex AI without a key uses
//! OAuth tokens from application default credentials, refreshed before they expire.
//!
//! Structured output ([`complete_json`]) asks the provider for JSON against a schema,
//! validates it, repairs common damage (code fences, surrounding prose) or retries once,
//! and otherwise returns a typed error.

#[cfg(test)]
mod bench;
mod chain;
pub mod config;
mod http;
pub mod providers;
pub mod schema;
#[cfg(test)]
mod secret_tests;
mod structured;
#[cfg(test)]
mod tests;

#[cfg(feature = "llm-local")]
mod grammar;
#[cfg(feature = "llm-local")]
pub mod local;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;

pub use chain::Chain;
pub use config::{ApiKey, LlmConfig, Price, ProviderConfig, ProviderKind};
pub use structured::{complete_json, extract_json};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: Role::User, content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message { role: Role::Assistant, content: content.into() }
    }
}

/// A JSON schema the answer must follow; `name` is what providers that want one see.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchema {
    pub name: String,
    pub schema: serde_json::Value,
}

/// One call: a system prompt, the conversation, and how to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    /// 0 asks for greedy decoding (deterministic on the local model).
    pub temperature: f32,
    /// When set, the answer must be JSON valid against this schema.
    pub schema: Option<JsonSchema>,
}

impl Request {
    pub fn new(messages: Vec<Message>) -> Self {
        Request { system: None, messages, max_tokens: 512, temperature: 0.0, schema: None }
    }
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = n;
        self
    }
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = t;
        self
    }
    pub fn schema(mut self, name: impl Into<String>, schema: serde_json::Value) -> Self {
        self.schema = Some(JsonSchema { name: name.into(), schema });
        self
    }

    /// Requests every provider refuses anyway are refused here, before any network.
    pub fn validate(&self) -> Result<()> {
        use crate::error::Error;
        if self.messages.is_empty() {
            return Err(Error::bad_request("an LLM request needs at least one message").with_code("llm_bad_request"));
        }
        if self.max_tokens == 0 {
            return Err(Error::bad_request("max_tokens must be at least 1").with_code("llm_bad_request"));
        }
        if !(0.0..=2.0).contains(&self.temperature) || self.temperature.is_nan() {
            return Err(Error::bad_request("temperature must be between 0 and 2").with_code("llm_bad_request"));
        }
        Ok(())
    }
}

/// Tokens a call consumed, as the provider counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer (or hit a stop sequence).
    Stop,
    /// `max_tokens` was reached; the text is cut short.
    Length,
    /// The provider withheld content (safety, recitation...).
    ContentFilter,
    /// Anything else the provider reported, verbatim.
    Other(String),
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Which provider answered (`openai`, `gemini`, `anthropic`, `local`...).
    pub provider: &'static str,
    pub finish_reason: FinishReason,
    pub latency: Duration,
    /// US dollars, when the provider's price is configured (`*_PRICE`); 0 for the local model.
    pub cost_usd: Option<f64>,
}

/// One piece of a streamed answer. The last item carries `finish_reason` and, where the
/// provider reports it, `usage`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub text: String,
    pub finish_reason: Option<FinishReason>,
    pub usage: Option<Usage>,
}

/// A streamed answer. Dropping it cancels the call (the connection is closed, or the
/// local generation stops at the next token).
pub type DeltaStream = BoxStream<'static, Result<Delta>>;

/// A language model: a hosted provider, the local model, or a chain of them.
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// Short provider name for spans and [`Completion::provider`].
    fn provider(&self) -> &'static str;
    /// The configured model name.
    fn model(&self) -> &str;
    /// What its tokens cost, when known; used for the cost of streamed calls.
    fn price(&self) -> Option<Price> {
        None
    }
    /// The whole answer at once.
    async fn complete(&self, request: &Request) -> Result<Completion>;
    /// The answer as it is generated. Errors before the first delta are returned here;
    /// later failures (timeouts, a truncated stream) arrive as an `Err` item.
    async fn stream(&self, request: &Request) -> Result<DeltaStream>;
}

/// Build the model `LLM_*` describes: the primary provider, then each fallback in order.
pub async fn from_config(config: &LlmConfig) -> Result<Arc<dyn LanguageModel>> {
    let mut links: Vec<Arc<dyn LanguageModel>> = Vec::with_capacity(1 + config.fallbacks.len());
    for p in std::iter::once(&config.primary).chain(config.fallbacks.iter()) {
        links.push(providers::build(p, config).await?);
    }
    Ok(Arc::new(Chain::new(links)?))
}

/// Collect a stream into one text, its finish reason and usage.
pub async fn collect(mut stream: DeltaStream) -> Result<(String, Option<FinishReason>, Option<Usage>)> {
    use futures::StreamExt;
    let (mut text, mut finish, mut usage) = (String::new(), None, None);
    while let Some(d) = stream.next().await {
        let d = d?;
        text.push_str(&d.text);
        if d.finish_reason.is_some() {
            finish = d.finish_reason;
        }
        if d.usage.is_some() {
            usage = d.usage;
        }
    }
    Ok((text, finish, usage))
}
