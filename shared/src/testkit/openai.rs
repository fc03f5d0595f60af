//! An OpenAI-compatible Chat Completions server on 127.0.0.1 with scripted replies, for
//! tests and benchmarks of code that calls an LLM: it speaks the real wire protocol
//! (`POST /v1/chat/completions`, JSON or SSE with `data: [DONE]`, usage counts), records
//! every request so a test can check what was sent, and can fail on demand.

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the script decides for one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this content.
    Text(String),
    /// Answer with this HTTP status and an OpenAI error body.
    Status(u16),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub body: Value,
}

impl Recorded {
    /// The system message.
    pub fn system(&self) -> String {
        self.messages().into_iter().find(|(r, _)| r == "system").map(|(_, c)| c).unwrap_or_default()
    }
    /// All user messages, joined.
    pub fn user(&self) -> String {
        self.messages().into_iter().filter(|(r, _)| r == "user").map(|(_, c)| c).collect::<Vec<_>>().join("\n")
    }
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        (m["role"].as_str().unwrap_or("").to_string(), m["content"].as_str().unwrap_or("").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// The JSON schema asked for, if any.
    pub fn schema(&self) -> Option<&Value> {
        self.body.get("response_format").and_then(|r| r.get("json_schema")).and_then(|j| j.get("schema"))
    }
    pub fn streamed(&self) -> bool {
        self.body["stream"].as_bool().unwrap_or(false)
    }
}

type Script = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

pub struct ScriptedOpenAi {
    pub url: String,
    seen: Arc<Mutex<Vec<Recorded>>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn words(s: &str) -> u32 {
    s.split_whitespace().count() as u32
}

impl ScriptedOpenAi {
    /// Start on a free 127.0.0.1 port (inside a Tokio runtime). `url` is the base to give
    /// `LLM_URL` (`http://127.0.0.1:port/v1`).
    pub async fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> ScriptedOpenAi {
        let seen: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let (s, h) = (seen.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |body: Bytes| {
                let (seen, hits, script) = (s.clone(), h.clone(), script.clone());
                async move {
                    let rec = Recorded { body: serde_json::from_slice(&body).unwrap_or(Value::Null) };
                    hits.fetch_add(1, Ordering::SeqCst);
                    let reply = script(&rec);
                    let streamed = rec.streamed();
                    let model = rec.body["model"].as_str().unwrap_or("scripted").to_string();
                    let prompt_tokens = rec.messages().iter().map(|(_, c)| words(c)).sum::<u32>();
                    if let Ok(mut s) = seen.lock() {
                        s.push(rec);
                    }
                    respond(reply, streamed, &model, prompt_tokens)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ScriptedOpenAi { url: format!("http://{addr}/v1"), seen, hits, task }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn respond(reply: Reply, streamed: bool, model: &str, prompt_tokens: u32) -> Response {
    let text = match reply {
        Reply::Status(status) => {
            let body = json!({"error": {"message": "scripted failure", "type": "server_error", "code": null}});
            return Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("valid response");
        }
        Reply::Text(t) => t,
    };
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": words(&text),
        "total_tokens": prompt_tokens + words(&text)});
    if !streamed {
        let body = json!({
            "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("valid response");
    }
    // A chunk per word, as servers stream tokens; then the finish, the usage and [DONE].
    let mut out = String::new();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut first = true;
    for piece in text.split_inclusive(' ') {
        let delta = if first { json!({"role": "assistant", "content": piece}) } else { json!({"content": piece}) };
        first = false;
        out.push_str(&format!("data: {}\n\n", chunk(delta, Value::Null)));
    }
    out.push_str(&format!("data: {}\n\n", chunk(json!({}), json!("stop"))));
    out.push_str(&format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [], "usage": usage})
    ));
    out.push_str("data: [DONE]\n\n");
    Response::builder().header("content-type", "text/event-stream").body(Body::from(out)).expect("valid response")
}

#[cfg(feature = "llm")]
impl ScriptedOpenAi {
    /// An LLM client for this server, built from `LLM_*` configuration the way a function
    /// builds its own (`max_retries` on 5xx and connection errors).
    pub async fn client(&self, max_retries: u32) -> Arc<dyn crate::llm::LanguageModel> {
        let url = self.url.clone();
        let config = crate::llm::LlmConfig::from_lookup("/nonexistent".into(), |k| match k {
            "LLM_URL" => Some(url.clone()),
            "LLM_PROVIDER" => Some("openai".into()),
            "LLM_MODEL" => Some("scripted-model".into()),
            "LLM_MAX_RETRIES" => Some(max_retries.to_string()),
            _ => None,
        })
        .expect("scripted LLM config");
        crate::llm::from_config(&config).await.expect("scripted LLM client")
    }
}
