//! Anthropic Messages API: `POST {base}/messages` with `x-api-key` and
//! `anthropic-version: 2023-06-01`; streaming is SSE with typed events (`message_start`,
//! `content_block_delta`, `message_delta`, `message_stop`, `error`).
//!
//! Structured output: for an object schema, the documented way to get JSON that follows
//! a schema is a single tool whose `input_schema` is the schema, forced with
//! `tool_choice`; the answer is the tool call's `input`. Other schemas are described in
//! the system prompt and the reply validated like any other.

use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Parsed, Protocol, Step, StreamDecoder, bad_response, join};
use crate::error::{Error, ErrorKind, Result};
use crate::llm::config::ApiKey;
use crate::llm::http::SseEvent;
use crate::llm::{Delta, FinishReason, Request, Role, Usage};

pub const API_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    url: Url,
    model: String,
    key: Option<ApiKey>,
}

impl Anthropic {
    pub fn new(base: Url, model: &str, key: Option<ApiKey>) -> Self {
        let url = if base.path().trim_end_matches('/').ends_with("/messages") { base } else { join(&base, "messages") };
        Anthropic { url, model: model.to_string(), key }
    }
}

/// Whether this request is answered through a forced tool call.
fn tool_mode(req: &Request) -> Option<&crate::llm::JsonSchema> {
    req.schema.as_ref().filter(|s| s.schema.get("type").and_then(|t| t.as_str()) == Some("object"))
}

fn tool_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(64)
        .collect();
    if s.is_empty() { "answer".into() } else { s }
}

fn finish(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" | "tool_use" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

fn stream_error(v: &serde_json::Value) -> Error {
    let kind = v.pointer("/error/type").and_then(|t| t.as_str()).unwrap_or("error");
    let msg: String = v.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or("").chars().take(300).collect();
    let e = match kind {
        "rate_limit_error" => Error::new(ErrorKind::TooManyRequests, format!("anthropic is rate limiting us: {msg}")),
        _ => Error::unavailable(format!("anthropic failed mid-stream ({kind}): {msg}")),
    };
    e.with_code(if kind == "rate_limit_error" { "llm_rate_limited" } else { "llm_unavailable" })
}

impl Protocol for Anthropic {
    const NAME: &'static str = "anthropic";

    fn model(&self) -> &str {
        &self.model
    }
    fn key(&self) -> Option<&ApiKey> {
        self.key.as_ref()
    }

    fn request(&self, client: &reqwest::Client, req: &Request, stream: bool) -> Result<reqwest::RequestBuilder> {
        let messages: Vec<_> = req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({"role": role, "content": m.content})
            })
            .collect();
        let mut system = req.system.clone();
        let mut body = json!({
            "model": self.model,
            "max_tokens": req.max_tokens,
            "messages": messages,
            // Anthropic's range is 0-1; other providers go to 2.
            "temperature": req.temperature.min(1.0),
            "stream": stream,
        });
        match (&req.schema, tool_mode(req)) {
            (_, Some(s)) => {
                let name = tool_name(&s.name);
                body["tools"] = json!([{
                    "name": name,
                    "description": "Record the answer. Its input is the complete answer.",
                    "input_schema": s.schema,
                }]);
                body["tool_choice"] = json!({"type": "tool", "name": name});
            }
            (Some(s), None) => {
                let instruction = format!(
                    "Reply with only a JSON value valid against this JSON schema, and nothing else:\n{}",
                    s.schema
                );
                system = Some(match system {
                    Some(sys) => format!("{sys}\n\n{instruction}"),
                    None => instruction,
                });
            }
            (None, None) => {}
        }
        if let Some(system) = system {
            body["system"] = json!(system);
        }
        let mut rb = client.post(self.url.clone()).header("anthropic-version", API_VERSION).json(&body);
        if let Some(k) = &self.key {
            rb = rb.header("x-api-key", k.expose());
        }
        Ok(rb)
    }

    fn parse(&self, body: &[u8], req: &Request) -> Result<Parsed> {
        #[derive(Deserialize)]
        struct Resp {
            model: Option<String>,
            #[serde(default)]
            content: Vec<Block>,
            stop_reason: Option<String>,
            usage: Option<WireUsage>,
        }
        #[derive(Deserialize)]
        struct Block {
            #[serde(rename = "type")]
            kind: String,
            text: Option<String>,
            input: Option<serde_json::Value>,
        }
        let r: Resp = serde_json::from_slice(body).map_err(|e| bad_response(Self::NAME, e))?;
        let text = if tool_mode(req).is_some() {
            let input = r.content.iter().find(|b| b.kind == "tool_use").and_then(|b| b.input.as_ref());
            input.map(|i| i.to_string()).unwrap_or_default()
        } else {
            r.content.iter().filter(|b| b.kind == "text").filter_map(|b| b.text.as_deref()).collect()
        };
        let usage = r.usage.map(|u| Usage { input_tokens: u.input_tokens, output_tokens: u.output_tokens });
        Ok(Parsed {
            text,
            usage: usage.unwrap_or_default(),
            model: r.model,
            finish_reason: r.stop_reason.as_deref().map(finish).unwrap_or(FinishReason::Stop),
        })
    }

    fn decoder(&self, req: &Request) -> Box<dyn StreamDecoder> {
        Box::new(Decoder { tools: tool_mode(req).is_some(), input_tokens: 0, finished: false })
    }
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
}

struct Decoder {
    tools: bool,
    input_tokens: u32,
    finished: bool,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, ev: SseEvent) -> Result<Step> {
        let v: serde_json::Value = serde_json::from_str(&ev.data).map_err(|e| bad_response("anthropic", e))?;
        let kind = ev.event.as_deref().or_else(|| v.get("type").and_then(|t| t.as_str())).unwrap_or("");
        match kind {
            "message_start" => {
                self.input_tokens =
                    v.pointer("/message/usage/input_tokens").and_then(|n| n.as_u64()).unwrap_or(0) as u32;
                Ok(Step::Skip)
            }
            "content_block_delta" => {
                let text = match v.pointer("/delta/type").and_then(|t| t.as_str()) {
                    Some("text_delta") if !self.tools => v.pointer("/delta/text"),
                    Some("input_json_delta") if self.tools => v.pointer("/delta/partial_json"),
                    _ => None,
                };
                match text.and_then(|t| t.as_str()) {
                    Some(t) if !t.is_empty() => Ok(Step::Delta(Delta { text: t.to_string(), ..Delta::default() })),
                    _ => Ok(Step::Skip),
                }
            }
            "message_delta" => {
                let finish_reason = v.pointer("/delta/stop_reason").and_then(|r| r.as_str()).map(finish);
                let output = v.pointer("/usage/output_tokens").and_then(|n| n.as_u64()).unwrap_or(0) as u32;
                self.finished |= finish_reason.is_some();
                Ok(Step::Delta(Delta {
                    text: String::new(),
                    finish_reason,
                    usage: Some(Usage { input_tokens: self.input_tokens, output_tokens: output }),
                }))
            }
            "message_stop" => Ok(Step::Done(None)),
            "error" => Err(stream_error(&v)),
            // ping, content_block_start/stop, and event types added later.
            _ => Ok(Step::Skip),
        }
    }

    fn end(&mut self) -> Result<Option<Delta>> {
        // A stop_reason is final even if the closing event was lost.
        if self.finished {
            return Ok(None);
        }
        Err(Error::unavailable("anthropic stream ended before message_stop").with_code("llm_truncated"))
    }
}
