//! OpenAI Chat Completions (`POST {base}/chat/completions`), which OpenAI, Azure OpenAI,
//! vLLM, llama.cpp's server, Ollama and most gateways speak. Structured output uses
//! `response_format: {type: "json_schema"}`; streaming is SSE ending in `data: [DONE]`,
//! with `stream_options.include_usage` so the last chunk carries token counts.

use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Parsed, Protocol, Step, StreamDecoder, bad_response, join};
use crate::error::{Error, Result};
use crate::llm::config::ApiKey;
use crate::llm::http::SseEvent;
use crate::llm::{Delta, FinishReason, Request, Role, Usage};

pub struct OpenAi {
    url: Url,
    model: String,
    key: Option<ApiKey>,
    /// Azure OpenAI authenticates with `api-key`, everyone else with `Authorization: Bearer`.
    azure: bool,
}

impl OpenAi {
    /// `base` is the API root (`https://api.openai.com/v1`) or the full
    /// `.../chat/completions` URL (Azure deployments, with their `api-version` query).
    pub fn new(base: Url, model: &str, key: Option<ApiKey>) -> Self {
        let azure = base.host_str().is_some_and(|h| h.ends_with(".openai.azure.com"));
        let url = if base.path().trim_end_matches('/').ends_with("/chat/completions") {
            base
        } else {
            join(&base, "chat/completions")
        };
        OpenAi { url, model: model.to_string(), key, azure }
    }
}

fn finish(reason: &str) -> FinishReason {
    match reason {
        "stop" | "tool_calls" | "function_call" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        Usage { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens }
    }
}

impl Protocol for OpenAi {
    const NAME: &'static str = "openai";

    fn model(&self) -> &str {
        &self.model
    }
    fn key(&self) -> Option<&ApiKey> {
        self.key.as_ref()
    }

    fn request(&self, client: &reqwest::Client, req: &Request, stream: bool) -> Result<reqwest::RequestBuilder> {
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(system) = &req.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        for m in &req.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": m.content}));
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": stream,
        });
        if is_reasoning_model(&self.model) {
            // o-series and GPT-5 models refuse `max_tokens` and any temperature but the
            // default; their budget also covers hidden reasoning tokens.
            body["max_completion_tokens"] = json!(req.max_tokens);
        } else {
            // `max_tokens` is what every OpenAI-compatible server (vLLM, llama.cpp, Ollama,
            // gateways) understands.
            body["max_tokens"] = json!(req.max_tokens);
            body["temperature"] = json!(req.temperature);
        }
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if let Some(s) = &req.schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": sanitize_name(&s.name), "schema": s.schema, "strict": false},
            });
        }
        let mut rb = client.post(self.url.clone()).json(&body);
        if stream {
            rb = rb.header(http::header::ACCEPT, "text/event-stream");
        }
        if let Some(k) = &self.key {
            rb = if self.azure { rb.header("api-key", k.expose()) } else { rb.bearer_auth(k.expose()) };
        }
        Ok(rb)
    }

    fn parse(&self, body: &[u8], _req: &Request) -> Result<Parsed> {
        #[derive(Deserialize)]
        struct Resp {
            model: Option<String>,
            choices: Vec<Choice>,
            usage: Option<WireUsage>,
        }
        #[derive(Deserialize)]
        struct Choice {
            message: Msg,
            finish_reason: Option<String>,
        }
        #[derive(Deserialize)]
        struct Msg {
            content: Option<String>,
            refusal: Option<String>,
        }
        let r: Resp = serde_json::from_slice(body).map_err(|e| bad_response(Self::NAME, e))?;
        let choice = r.choices.into_iter().next().ok_or_else(|| bad_response(Self::NAME, "no choices"))?;
        let mut finish_reason = choice.finish_reason.as_deref().map(finish).unwrap_or(FinishReason::Stop);
        if choice.message.refusal.is_some() && choice.message.content.is_none() {
            finish_reason = FinishReason::ContentFilter;
        }
        Ok(Parsed {
            text: choice.message.content.unwrap_or_default(),
            usage: r.usage.map(Usage::from).unwrap_or_default(),
            model: r.model,
            finish_reason,
        })
    }

    fn decoder(&self, _req: &Request) -> Box<dyn StreamDecoder> {
        Box::new(Decoder { finished: false })
    }
}

/// OpenAI wants `^[a-zA-Z0-9_-]{1,64}$` for schema names.
fn sanitize_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(64)
        .collect();
    if s.is_empty() { "answer".into() } else { s }
}

struct Decoder {
    finished: bool,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, ev: SseEvent) -> Result<Step> {
        if ev.data.trim() == "[DONE]" {
            return Ok(Step::Done(None));
        }
        #[derive(Deserialize)]
        struct Chunk {
            #[serde(default)]
            choices: Vec<ChunkChoice>,
            usage: Option<WireUsage>,
            error: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        struct ChunkChoice {
            #[serde(default)]
            delta: ChunkDelta,
            finish_reason: Option<String>,
        }
        #[derive(Deserialize, Default)]
        struct ChunkDelta {
            content: Option<String>,
        }
        let c: Chunk = serde_json::from_str(&ev.data).map_err(|e| bad_response("openai", e))?;
        if let Some(err) = c.error {
            let msg = err.get("message").and_then(|m| m.as_str()).unwrap_or("error");
            let msg: String = msg.chars().take(300).collect();
            return Err(Error::unavailable(format!("openai failed mid-stream: {msg}")).with_code("llm_unavailable"));
        }
        let mut d = Delta { usage: c.usage.map(Usage::from), ..Delta::default() };
        if let Some(choice) = c.choices.into_iter().next() {
            d.text = choice.delta.content.unwrap_or_default();
            if let Some(r) = choice.finish_reason {
                self.finished = true;
                d.finish_reason = Some(finish(&r));
            }
        }
        if d == Delta::default() { Ok(Step::Skip) } else { Ok(Step::Delta(d)) }
    }

    fn end(&mut self) -> Result<Option<Delta>> {
        // Some servers omit `[DONE]`; a finish_reason is just as final.
        if self.finished {
            Ok(None)
        } else {
            Err(Error::unavailable("openai stream ended before the answer was complete").with_code("llm_truncated"))
        }
    }
}

/// OpenAI's reasoning models (o1, o3, o4-mini, GPT-5 …), by name, with or without a
/// gateway's `openai/` prefix or an Azure deployment of the same name.
fn is_reasoning_model(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    let o_series = name.len() >= 2
        && name.starts_with('o')
        && name.as_bytes()[1].is_ascii_digit()
        && name[1..].chars().take_while(char::is_ascii_digit).count() <= 2;
    o_series || name.starts_with("gpt-5")
}

#[cfg(test)]
mod reasoning_tests {
    use super::is_reasoning_model;

    #[test]
    fn reasoning_models_are_told_apart_by_name() {
        for m in ["o1", "o1-mini", "o3", "o3-2025-04-16", "o4-mini", "gpt-5", "gpt-5-mini", "openai/o3-mini"] {
            assert!(is_reasoning_model(m), "{m}");
        }
        for m in ["gpt-4o", "gpt-4.1-mini", "llama-3.1-8b", "olmo-2", "ollama", "qwen2.5", "gpt-test"] {
            assert!(!is_reasoning_model(m), "{m}");
        }
    }
}
