//! Google Gemini: `POST {base}/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse` with `x-goog-api-key`; on Vertex AI the base is the
//! publisher models URL and the path is `{base}/{model}:generateContent`. Vertex takes an
//! express-mode API key (`x-goog-api-key`), a static OAuth access token (`ya29.` prefix,
//! sent as `Authorization: Bearer`), or, with no key at all (feature `gcp`), OAuth
//! tokens from application default credentials, cached and refreshed before they expire
//! by google-cloud-auth (the metadata server on Cloud Run). Structured output uses
//! `responseMimeType: application/json` with `responseJsonSchema`.

use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Parsed, Protocol, Step, StreamDecoder, bad_response, join};
use crate::error::{Error, Result};
use crate::llm::config::ApiKey;
use crate::llm::http::SseEvent;
use crate::llm::{Delta, FinishReason, Request, Role, Usage};

pub struct Gemini {
    base: Url,
    model: String,
    key: Option<ApiKey>,
    vertex: bool,
    /// Vertex AI without a key: a bearer token per call from these credentials.
    #[cfg(any(feature = "gcs", feature = "pubsub"))]
    google: Option<crate::gcp::GoogleAuth>,
}

impl Gemini {
    pub fn new(base: Url, model: &str, key: Option<ApiKey>, vertex: bool) -> Self {
        Gemini {
            base,
            model: model.to_string(),
            key,
            vertex,
            #[cfg(any(feature = "gcs", feature = "pubsub"))]
            google: None,
        }
    }

    /// Vertex AI authenticated with OAuth access tokens from `auth` (no API key).
    #[cfg(any(feature = "gcs", feature = "pubsub"))]
    pub(crate) fn vertex_with_google_auth(base: Url, model: &str, auth: crate::gcp::GoogleAuth) -> Self {
        Gemini { google: Some(auth), ..Gemini::new(base, model, None, true) }
    }

    fn url(&self, stream: bool) -> Url {
        let method = if stream { "streamGenerateContent" } else { "generateContent" };
        let model = self.model.trim_start_matches("models/");
        let path = if self.vertex { format!("{model}:{method}") } else { format!("models/{model}:{method}") };
        let mut u = join(&self.base, &path);
        if stream {
            u.query_pairs_mut().append_pair("alt", "sse");
        }
        u
    }
}

fn finish(reason: &str) -> FinishReason {
    match reason {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        other => FinishReason::Other(other.to_string()),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Resp {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<WireUsage>,
    model_version: Option<String>,
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
    /// Thinking models return their reasoning as parts marked `thought`; not the answer.
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    #[serde(default)]
    prompt_token_count: u32,
    #[serde(default)]
    candidates_token_count: u32,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        Usage { input_tokens: u.prompt_token_count, output_tokens: u.candidates_token_count }
    }
}

impl Resp {
    fn text(&self) -> String {
        let Some(c) = self.candidates.first() else { return String::new() };
        let Some(content) = &c.content else { return String::new() };
        content.parts.iter().filter(|p| !p.thought).filter_map(|p| p.text.as_deref()).collect()
    }
    fn finish(&self) -> Option<FinishReason> {
        if self.candidates.is_empty() && self.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_ref()).is_some() {
            return Some(FinishReason::ContentFilter);
        }
        self.candidates.first().and_then(|c| c.finish_reason.as_deref()).map(finish)
    }
}

impl Protocol for Gemini {
    const NAME: &'static str = "gemini";

    fn model(&self) -> &str {
        &self.model
    }
    fn key(&self) -> Option<&ApiKey> {
        self.key.as_ref()
    }

    #[cfg(any(feature = "gcs", feature = "pubsub"))]
    async fn auth_headers(&self) -> Result<Option<::http::HeaderMap>> {
        let Some(auth) = &self.google else { return Ok(None) };
        auth.headers().await.map(Some).map_err(|e| {
            Error::unavailable(format!("vertex: {}", e.message())).with_code("llm_auth_failed").with_source(e)
        })
    }

    fn request(&self, client: &reqwest::Client, req: &Request, stream: bool) -> Result<reqwest::RequestBuilder> {
        let contents: Vec<_> = req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "model",
                };
                json!({"role": role, "parts": [{"text": m.content}]})
            })
            .collect();
        let mut generation = json!({"maxOutputTokens": req.max_tokens, "temperature": req.temperature});
        if let Some(s) = &req.schema {
            generation["responseMimeType"] = json!("application/json");
            generation["responseJsonSchema"] = s.schema.clone();
        }
        let mut body = json!({"contents": contents, "generationConfig": generation});
        if let Some(system) = &req.system {
            body["systemInstruction"] = json!({"parts": [{"text": system}]});
        }
        let mut rb = client.post(self.url(stream)).json(&body);
        if let Some(k) = &self.key {
            rb = if self.vertex && k.expose().starts_with("ya29.") {
                rb.bearer_auth(k.expose())
            } else {
                rb.header("x-goog-api-key", k.expose())
            };
        }
        Ok(rb)
    }

    fn parse(&self, body: &[u8], _req: &Request) -> Result<Parsed> {
        let r: Resp = serde_json::from_slice(body).map_err(|e| bad_response(Self::NAME, e))?;
        let finish_reason = r.finish().ok_or_else(|| bad_response(Self::NAME, "no candidate and no block reason"))?;
        Ok(Parsed {
            text: r.text(),
            usage: r.usage_metadata.map(Usage::from).unwrap_or_default(),
            model: r.model_version,
            finish_reason,
        })
    }

    fn decoder(&self, _req: &Request) -> Box<dyn StreamDecoder> {
        Box::new(Decoder { finished: false })
    }
}

/// Gemini's stream has no end marker: every event is a partial response, and the one
/// with a `finishReason` is the last. A body that ends before it was cut short.
struct Decoder {
    finished: bool,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, ev: SseEvent) -> Result<Step> {
        let v: serde_json::Value = serde_json::from_str(&ev.data).map_err(|e| bad_response("gemini", e))?;
        if let Some(err) = v.get("error") {
            let msg: String =
                err.get("message").and_then(|m| m.as_str()).unwrap_or("error").chars().take(300).collect();
            return Err(Error::unavailable(format!("gemini failed mid-stream: {msg}")).with_code("llm_unavailable"));
        }
        let r: Resp = serde_json::from_value(v).map_err(|e| bad_response("gemini", e))?;
        let finish_reason = r.finish();
        let d = Delta { text: r.text(), usage: r.usage_metadata.map(Usage::from), finish_reason };
        if d.finish_reason.is_some() {
            self.finished = true;
            return Ok(Step::Done(Some(d)));
        }
        if d.text.is_empty() && d.usage.is_none() { Ok(Step::Skip) } else { Ok(Step::Delta(d)) }
    }

    fn end(&mut self) -> Result<Option<Delta>> {
        if self.finished {
            Ok(None)
        } else {
            Err(Error::unavailable("gemini stream ended before the answer was complete").with_code("llm_truncated"))
        }
    }
}
