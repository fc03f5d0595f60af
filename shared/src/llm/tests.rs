//! Each hosted provider against a server on 127.0.0.1 speaking its wire protocol:
//! request shapes, documented response and stream formats, errors, 429 with
//! Retry-After, slow and truncated streams, invalid structured output, fallback.

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::{ApiKey, LlmConfig, Policy, ProviderConfig, ProviderKind};
use super::*;
use crate::error::ErrorKind;

#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) headers: ::http::HeaderMap,
    pub(super) body: Value,
}

type Script = Arc<dyn Fn(usize, &Seen) -> Response + Send + Sync>;

pub(super) struct Server {
    pub(super) base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub(super) async fn start(script: impl Fn(usize, &Seen) -> Response + Send + Sync + 'static) -> Server {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let (s, h) = (seen.clone(), hits.clone());
        let app = axum::Router::new().fallback(move |uri: ::http::Uri, headers: ::http::HeaderMap, body: Bytes| {
            let (seen, hits, script) = (s.clone(), h.clone(), script.clone());
            async move {
                let rec = Seen {
                    path: uri.path().to_string(),
                    query: uri.query().map(str::to_string),
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                };
                seen.lock().unwrap().push(rec.clone());
                let n = hits.fetch_add(1, Ordering::SeqCst);
                script(n, &rec)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { base: format!("http://{addr}"), seen }
    }
    pub(super) fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub(super) fn request(&self, i: usize) -> Seen {
        self.seen.lock().unwrap()[i].clone()
    }
}

pub(super) fn json_response(status: u16, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

/// An SSE body: each `(delay, chunk)` is written after `delay`; the body then ends.
pub(super) fn sse(chunks: Vec<(u64, String)>) -> Response {
    let s = futures::stream::iter(chunks).then(|(delay, chunk)| async move {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(s)).unwrap()
}

pub(super) fn data(v: Value) -> String {
    format!("data: {v}\n\n")
}

pub(super) fn policy() -> Policy {
    Policy {
        call_timeout: Duration::from_secs(3),
        chunk_timeout: Duration::from_millis(400),
        max_retries: 2,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_secs(2),
    }
}

fn provider(kind: ProviderKind, url: &str, model: &str, key: &str) -> ProviderConfig {
    ProviderConfig {
        prefix: "LLM".into(),
        kind,
        url: Some(url.parse().unwrap()),
        model: model.into(),
        api_key: Some(ApiKey::new(key)),
        api_key_secret: None,
        price: Some(super::Price { input_per_mtok: 1.0, output_per_mtok: 2.0 }),
    }
}

async fn model(providers: Vec<ProviderConfig>, policy: Policy) -> Arc<dyn LanguageModel> {
    let mut it = providers.into_iter();
    let config = LlmConfig {
        primary: it.next().unwrap(),
        fallbacks: it.collect(),
        policy,
        models_dir: "/nonexistent".into(),
        local_model_path: None,
        local_threads: 1,
    };
    from_config(&config).await.unwrap()
}

pub(super) fn request() -> Request {
    Request::new(vec![
        Message::user("Tell me about a time you led a team."),
        Message::assistant("Sure."),
        Message::user("Go on."),
    ])
    .system("You are an interviewer.")
    .max_tokens(64)
    .temperature(0.2)
}

pub(super) fn openai_answer(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test-0613",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}
    })
}

const SCHEMA: &str = r#"{"type":"object","properties":{"score":{"type":"integer","minimum":1,"maximum":5},"reason":{"type":"string"}},"required":["score","reason"],"additionalProperties":false}"#;

fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap()
}

// ---------------------------------------------------------------- OpenAI-compatible

#[tokio::test]
async fn openai_reasoning_models_get_max_completion_tokens_and_no_temperature() {
    let srv = Server::start(|_, _| json_response(200, openai_answer("Fine."))).await;
    let m =
        model(vec![provider(ProviderKind::OpenAi, &format!("{}/v1", srv.base), "o4-mini", "sk-test")], policy()).await;
    assert_eq!(m.complete(&request()).await.unwrap().text, "Fine.");
    let r = srv.request(0);
    assert_eq!(r.body["max_completion_tokens"], 64);
    assert!(r.body.get("max_tokens").is_none() && r.body.get("temperature").is_none(), "{}", r.body);
}

#[tokio::test]
async fn openai_request_shape_and_answer() {
    let srv = Server::start(|_, _| json_response(200, openai_answer("Hello there."))).await;
    let m =
        model(vec![provider(ProviderKind::OpenAi, &format!("{}/v1", srv.base), "gpt-test", "sk-test")], policy()).await;
    let c = m.complete(&request()).await.unwrap();
    assert_eq!(c.text, "Hello there.");
    assert_eq!(c.usage, Usage { input_tokens: 21, output_tokens: 7 });
    assert_eq!(c.model, "gpt-test-0613");
    assert_eq!((c.provider, c.finish_reason), ("openai", FinishReason::Stop));
    assert_eq!(c.cost_usd, Some((21.0 * 1.0 + 7.0 * 2.0) / 1e6));

    let r = srv.request(0);
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.headers["authorization"], "Bearer sk-test");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body["model"], "gpt-test");
    assert_eq!(r.body["max_tokens"], 64);
    assert_eq!(r.body["stream"], false);
    assert!((r.body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    let roles: Vec<&str> = r.body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(r.body["messages"][0]["content"], "You are an interviewer.");
    assert!(r.body.get("response_format").is_none());
}

#[tokio::test]
async fn openai_streams_sse_with_usage() {
    let srv = Server::start(|_, _| {
        let chunk = |content: &str| json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-test", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
        sse(vec![
            (0, data(json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}))),
            (5, data(chunk("Hel"))),
            (5, ": keep-alive\n\n".into()),
            (5, data(chunk("lo"))),
            (5, data(json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}))),
            (5, data(json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}))),
            (5, "data: [DONE]\n\n".into()),
        ])
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &format!("{}/v1/", srv.base), "gpt-test", "sk")], policy()).await;
    let (text, finish, usage) = collect(m.stream(&request()).await.unwrap()).await.unwrap();
    assert_eq!(text, "Hello");
    assert_eq!(finish, Some(FinishReason::Length));
    assert_eq!(usage, Some(Usage { input_tokens: 9, output_tokens: 2 }));
    let r = srv.request(0);
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"]["include_usage"], true);
    assert_eq!(r.headers["accept"], "text/event-stream");
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let srv = Server::start(|n, _| {
        if n == 0 {
            Response::builder()
                .status(429)
                .header("retry-after", "1")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#))
                .unwrap()
        } else {
            json_response(200, openai_answer("ok"))
        }
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let started = Instant::now();
    assert_eq!(m.complete(&request()).await.unwrap().text, "ok");
    assert!(started.elapsed() >= Duration::from_secs(1), "waited only {:?}", started.elapsed());
    assert_eq!(srv.hits(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_cap_moves_on_at_once() {
    let srv =
        Server::start(|_, _| Response::builder().status(429).header("retry-after", "120").body(Body::empty()).unwrap())
            .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let started = Instant::now();
    let e = m.complete(&request()).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::TooManyRequests, "llm_rate_limited"));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(srv.hits(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let srv = Server::start(|n, _| {
        if n < 2 {
            json_response(503, json!({"error": {"message": "overloaded"}}))
        } else {
            json_response(200, openai_answer("third time"))
        }
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    assert_eq!(m.complete(&request()).await.unwrap().text, "third time");
    assert_eq!(srv.hits(), 3);

    let srv = Server::start(|_, _| {
        json_response(400, json!({"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}))
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let e = m.complete(&request()).await.unwrap_err();
    assert_eq!(e.code(), "llm_rejected");
    assert!(e.message().contains("max_tokens is too large"), "{}", e.message());
    assert_eq!(srv.hits(), 1);

    // Exhausted retries surface the typed error.
    let srv = Server::start(|_, _| json_response(500, json!({}))).await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let e = m.complete(&request()).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Unavailable, "llm_unavailable"));
    assert_eq!(srv.hits(), 3);
}

#[tokio::test]
async fn connection_errors_are_typed_and_retried() {
    // A port nobody listens on: bind, note it, close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let m =
        model(vec![provider(ProviderKind::OpenAi, &format!("http://127.0.0.1:{port}/v1"), "m", "k")], policy()).await;
    let e = m.complete(&request()).await.unwrap_err();
    assert_eq!(e.code(), "llm_unavailable");
    assert!(e.retryable());
}

#[tokio::test]
async fn keys_never_reach_errors() {
    let srv = Server::start(|_, s| {
        let sent = s.headers["authorization"].to_str().unwrap().trim_start_matches("Bearer ").to_string();
        json_response(401, json!({"error": {"message": format!("Incorrect API key provided: {sent}")}}))
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "sk-live-very-secret")], policy()).await;
    let e = m.complete(&request()).await.unwrap_err();
    assert_eq!(e.code(), "llm_auth_failed");
    assert!(!format!("{e:?} {e}").contains("very-secret"));
    assert_eq!(srv.hits(), 1, "bad credentials are not retried");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let srv = Server::start(|_, _| {
        let s = futures::stream::once(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, std::io::Error>(Bytes::from(openai_answer("late").to_string()))
        });
        Response::builder().header("content-type", "application/json").body(Body::from_stream(s)).unwrap()
    })
    .await;
    let p = Policy { call_timeout: Duration::from_millis(300), max_retries: 0, ..policy() };
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], p).await;
    let started = Instant::now();
    let e = m.complete(&request()).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Timeout, "llm_timeout"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn slow_and_truncated_streams_fail_typed() {
    let chunk = |c: &str| data(json!({"choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]}));
    let (a, b) = (chunk("one "), chunk("two "));
    let slow = Server::start(move |_, _| sse(vec![(0, a.clone()), (2000, b.clone())])).await;
    let m = model(vec![provider(ProviderKind::OpenAi, &slow.base, "m", "k")], policy()).await;
    let mut s = m.stream(&request()).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().text, "one ");
    let started = Instant::now();
    let e = s.next().await.unwrap().unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Timeout, "llm_stream_timeout"));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(s.next().await.is_none());

    let c = chunk("cut ");
    let cut =
        Server::start(move |_, _| sse(vec![(0, c.clone()), (0, "data: {\"choices\": [{\"index\": 0, \"del".into())]))
            .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &cut.base, "m", "k")], policy()).await;
    let mut s = m.stream(&request()).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().text, "cut ");
    let e = s.next().await.unwrap().unwrap_err();
    assert_eq!(e.code(), "llm_bad_response");

    let c = chunk("cut ");
    let cut = Server::start(move |_, _| sse(vec![(0, c.clone())])).await;
    let m = model(vec![provider(ProviderKind::OpenAi, &cut.base, "m", "k")], policy()).await;
    let (r, _) = {
        let mut s = m.stream(&request()).await.unwrap();
        let first = s.next().await.unwrap().unwrap();
        (s.next().await.unwrap(), first)
    };
    assert_eq!(r.unwrap_err().code(), "llm_truncated");
}

#[tokio::test]
async fn dropping_a_stream_closes_the_connection() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let srv = Server::start(move |_, _| {
        let flag = Flag(d.clone());
        let s = futures::stream::unfold((0u32, flag), |(i, flag)| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let ev =
                data(json!({"choices": [{"index": 0, "delta": {"content": format!("{i} ")}, "finish_reason": null}]}));
            Some((Ok::<_, std::io::Error>(Bytes::from(ev)), (i + 1, flag)))
        });
        Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(s)).unwrap()
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let mut s = m.stream(&request()).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().text, "0 ");
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(3);
    while dropped.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the server still streams to a caller that left");
}

#[tokio::test]
async fn structured_output_repairs_retries_and_fails_typed() {
    // Fenced JSON with a sentence around it is repaired without a second call.
    let srv = Server::start(|_, _| {
        json_response(
            200,
            openai_answer("Here you go:\n```json\n{\"score\": 4, \"reason\": \"clear STAR\"}\n```\nAnything else?"),
        )
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let req = request().schema("answer score", schema());
    let (v, _) = complete_json(m.as_ref(), &req).await.unwrap();
    assert_eq!(v, json!({"score": 4, "reason": "clear STAR"}));
    let r = srv.request(0);
    assert_eq!(r.body["response_format"]["type"], "json_schema");
    assert_eq!(r.body["response_format"]["json_schema"]["name"], "answer_score");
    assert_eq!(r.body["response_format"]["json_schema"]["schema"], schema());
    assert_eq!(srv.hits(), 1);

    // Invalid against the schema, then valid: one retry that says what was wrong.
    let srv = Server::start(|n, _| {
        let text = if n == 0 { r#"{"score": 9}"# } else { r#"{"score": 3, "reason": "ok"}"# };
        json_response(200, openai_answer(text))
    })
    .await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let (v, c) = complete_json(m.as_ref(), &req).await.unwrap();
    assert_eq!(v["score"], 3);
    assert_eq!(c.usage.output_tokens, 14, "usage of both attempts");
    let retry = srv.request(1);
    let msgs = retry.body["messages"].as_array().unwrap();
    assert_eq!(msgs[msgs.len() - 2]["content"], r#"{"score": 9}"#);
    let fix = msgs.last().unwrap()["content"].as_str().unwrap();
    assert!(fix.contains("missing required property `reason`") && fix.contains("maximum"), "{fix}");

    // Never valid: a typed error after exactly one retry.
    let srv = Server::start(|_, _| json_response(200, openai_answer("I cannot answer in JSON, sorry."))).await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    let e = complete_json(m.as_ref(), &req).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Unprocessable, "llm_invalid_output"));
    assert_eq!(srv.hits(), 2);
}

// ---------------------------------------------------------------- Gemini

pub(super) fn gemini_answer(text: &str, finish: &str) -> Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17},
        "modelVersion": "gemini-test-001"
    })
}

#[tokio::test]
async fn gemini_request_shape_answer_and_schema() {
    let srv =
        Server::start(|_, _| json_response(200, gemini_answer(r#"{"score": 5, "reason": "great"}"#, "STOP"))).await;
    let m =
        model(vec![provider(ProviderKind::Gemini, &format!("{}/v1beta", srv.base), "gemini-test", "g-key")], policy())
            .await;
    let (v, c) = complete_json(m.as_ref(), &request().schema("s", schema())).await.unwrap();
    assert_eq!(v["score"], 5);
    assert_eq!(c.usage, Usage { input_tokens: 12, output_tokens: 5 });
    assert_eq!((c.provider, c.model.as_str()), ("gemini", "gemini-test-001"));

    let r = srv.request(0);
    assert_eq!(r.path, "/v1beta/models/gemini-test:generateContent");
    assert_eq!(r.headers["x-goog-api-key"], "g-key");
    assert!(r.headers.get("authorization").is_none());
    assert_eq!(r.body["systemInstruction"]["parts"][0]["text"], "You are an interviewer.");
    let roles: Vec<&str> = r.body["contents"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(r.body["contents"][0]["parts"][0]["text"], "Tell me about a time you led a team.");
    assert_eq!(r.body["generationConfig"]["maxOutputTokens"], 64);
    assert_eq!(r.body["generationConfig"]["responseMimeType"], "application/json");
    assert_eq!(r.body["generationConfig"]["responseJsonSchema"], schema());
}

#[tokio::test]
async fn gemini_streams_and_detects_truncation() {
    let srv = Server::start(|n, _| {
        let part = |t: &str| json!({"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}], "modelVersion": "g"});
        if n == 0 {
            sse(vec![(0, data(part("Once "))), (5, data(part("upon"))), (5, data(gemini_answer(" a time", "MAX_TOKENS")))])
        } else {
            sse(vec![(0, data(part("Once ")))])
        }
    })
    .await;
    let m = model(
        vec![provider(ProviderKind::Gemini, &format!("{}/v1beta/", srv.base), "models/gemini-test", "g")],
        policy(),
    )
    .await;
    let (text, finish, usage) = collect(m.stream(&request()).await.unwrap()).await.unwrap();
    assert_eq!(text, "Once upon a time");
    assert_eq!(finish, Some(FinishReason::Length));
    assert_eq!(usage, Some(Usage { input_tokens: 12, output_tokens: 5 }));
    let r = srv.request(0);
    assert_eq!(r.path, "/v1beta/models/gemini-test:streamGenerateContent");
    assert_eq!(r.query.as_deref(), Some("alt=sse"));

    let e = collect(m.stream(&request()).await.unwrap()).await.unwrap_err();
    assert_eq!(e.code(), "llm_truncated");
}

#[tokio::test]
async fn gemini_blocked_prompts_and_errors() {
    let srv = Server::start(|n, _| match n {
        0 => json_response(200, json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}})),
        _ => json_response(400, json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}})),
    })
    .await;
    let m = model(vec![provider(ProviderKind::Gemini, &srv.base, "g", "k")], policy()).await;
    let c = m.complete(&request()).await.unwrap();
    assert_eq!((c.text.as_str(), c.finish_reason), ("", FinishReason::ContentFilter));
    let e = m.complete(&request()).await.unwrap_err();
    assert_eq!(e.code(), "llm_rejected");
    assert!(e.message().contains("API key not valid"));
}

#[tokio::test]
async fn vertex_uses_the_publisher_models_url() {
    let srv = Server::start(|_, _| json_response(200, gemini_answer("hi", "STOP"))).await;
    let base = format!("{}/v1/projects/p1/locations/europe-west1/publishers/google/models", srv.base);
    let m = model(vec![provider(ProviderKind::Vertex, &base, "gemini-test", "ya29.token")], policy()).await;
    assert_eq!(m.complete(&request()).await.unwrap().text, "hi");
    let r = srv.request(0);
    assert_eq!(r.path, "/v1/projects/p1/locations/europe-west1/publishers/google/models/gemini-test:generateContent");
    assert_eq!(r.headers["authorization"], "Bearer ya29.token");
}

// ---------------------------------------------------------------- Anthropic

pub(super) fn anthropic_answer(content: Value, stop: &str) -> Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test-20250101",
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 30, "output_tokens": 11}
    })
}

#[tokio::test]
async fn anthropic_request_shape_and_answer() {
    let srv = Server::start(|_, _| {
        json_response(200, anthropic_answer(json!([{"type": "text", "text": "Hi!"}]), "end_turn"))
    })
    .await;
    let m =
        model(vec![provider(ProviderKind::Anthropic, &format!("{}/v1", srv.base), "claude-test", "sk-ant")], policy())
            .await;
    let c = m.complete(&request()).await.unwrap();
    assert_eq!(c.text, "Hi!");
    assert_eq!(c.usage, Usage { input_tokens: 30, output_tokens: 11 });
    assert_eq!(
        (c.provider, c.model.as_str(), c.finish_reason),
        ("anthropic", "claude-test-20250101", FinishReason::Stop)
    );
    let r = srv.request(0);
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.headers["x-api-key"], "sk-ant");
    assert_eq!(r.headers["anthropic-version"], "2023-06-01");
    assert!(r.headers.get("authorization").is_none());
    assert_eq!(r.body["system"], "You are an interviewer.");
    assert_eq!(r.body["max_tokens"], 64);
    assert_eq!(r.body["messages"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["messages"][1]["role"], "assistant");
}

#[tokio::test]
async fn anthropic_structured_output_is_a_forced_tool_call() {
    let srv = Server::start(|_, _| {
        json_response(
            200,
            anthropic_answer(
                json!([{"type": "tool_use", "id": "t1", "name": "score", "input": {"score": 2, "reason": "vague"}}]),
                "tool_use",
            ),
        )
    })
    .await;
    let m = model(vec![provider(ProviderKind::Anthropic, &srv.base, "c", "k")], policy()).await;
    let (v, _) = complete_json(m.as_ref(), &request().schema("score", schema())).await.unwrap();
    assert_eq!(v, json!({"score": 2, "reason": "vague"}));
    let r = srv.request(0);
    assert_eq!(r.body["tools"][0]["name"], "score");
    assert_eq!(r.body["tools"][0]["input_schema"], schema());
    assert_eq!(r.body["tool_choice"], json!({"type": "tool", "name": "score"}));
}

fn anthropic_event(kind: &str, v: Value) -> String {
    format!("event: {kind}\ndata: {v}\n\n")
}

#[tokio::test]
async fn anthropic_streams_events_and_errors() {
    let srv = Server::start(|n, _| {
        let start = anthropic_event("message_start", json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "model": "claude-test", "usage": {"input_tokens": 25, "output_tokens": 1}}}));
        let block = anthropic_event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
        let delta = |t: &str| anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}));
        if n == 0 {
            sse(vec![
                (0, start),
                (0, block),
                (0, anthropic_event("ping", json!({"type": "ping"}))),
                (5, delta("Tell me ")),
                (5, delta("more.")),
                (0, anthropic_event("content_block_stop", json!({"type": "content_block_stop", "index": 0}))),
                (0, anthropic_event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 4}}))),
                (0, anthropic_event("message_stop", json!({"type": "message_stop"}))),
            ])
        } else {
            sse(vec![
                (0, start),
                (0, block),
                (0, delta("Tell")),
                (0, anthropic_event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))),
            ])
        }
    })
    .await;
    let m = model(vec![provider(ProviderKind::Anthropic, &srv.base, "claude-test", "k")], policy()).await;
    let (text, finish, usage) = collect(m.stream(&request()).await.unwrap()).await.unwrap();
    assert_eq!(text, "Tell me more.");
    assert_eq!(finish, Some(FinishReason::Stop));
    assert_eq!(usage, Some(Usage { input_tokens: 25, output_tokens: 4 }));
    assert_eq!(srv.request(0).body["stream"], true);

    let e = collect(m.stream(&request()).await.unwrap()).await.unwrap_err();
    assert_eq!(e.code(), "llm_unavailable");
    assert!(e.message().contains("overloaded_error"));
}

// ---------------------------------------------------------------- fallback

#[tokio::test]
async fn the_chain_falls_back_to_the_next_provider() {
    let down = Server::start(|_, _| json_response(503, json!({"error": {"message": "down"}}))).await;
    let up = Server::start(|_, _| {
        json_response(200, anthropic_answer(json!([{"type": "text", "text": "from the backup"}]), "end_turn"))
    })
    .await;
    let m = model(
        vec![
            provider(ProviderKind::OpenAi, &down.base, "m", "k"),
            provider(ProviderKind::Anthropic, &up.base, "c", "k2"),
        ],
        policy(),
    )
    .await;
    let c = m.complete(&request()).await.unwrap();
    assert_eq!((c.text.as_str(), c.provider), ("from the backup", "anthropic"));
    assert_eq!(down.hits(), 3, "the primary is retried before falling back");

    // Streams fall back too when the primary fails before its first delta.
    let m = model(
        vec![
            provider(ProviderKind::OpenAi, &down.base, "m", "k"),
            provider(ProviderKind::Anthropic, &down.base, "c", "k2"),
        ],
        Policy { max_retries: 0, ..policy() },
    )
    .await;
    let gemini = Server::start(|_, _| sse(vec![(0, data(gemini_answer("streamed backup", "STOP")))])).await;
    let m2 = model(
        vec![
            provider(ProviderKind::OpenAi, &down.base, "m", "k"),
            provider(ProviderKind::Gemini, &gemini.base, "g", "k2"),
        ],
        Policy { max_retries: 0, ..policy() },
    )
    .await;
    let (text, _, _) = collect(m2.stream(&request()).await.unwrap()).await.unwrap();
    assert_eq!(text, "streamed backup");

    // Every provider failing returns the last typed error.
    let e = m.complete(&Request::new(vec![Message::user("x")])).await.unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::Unavailable, "llm_unavailable"));
    assert_eq!(down.hits(), 3 + 1 + 2);
}

#[tokio::test]
async fn bad_requests_fail_before_any_network() {
    let srv = Server::start(|_, _| json_response(200, openai_answer("x"))).await;
    let m = model(vec![provider(ProviderKind::OpenAi, &srv.base, "m", "k")], policy()).await;
    assert_eq!(m.complete(&Request::new(vec![])).await.unwrap_err().code(), "llm_bad_request");
    assert_eq!(m.complete(&request().temperature(9.0)).await.unwrap_err().code(), "llm_bad_request");
    assert_eq!(m.complete(&request().max_tokens(0)).await.unwrap_err().code(), "llm_bad_request");
    assert_eq!(complete_json(m.as_ref(), &request()).await.unwrap_err().code(), "llm_bad_request");
    assert_eq!(srv.hits(), 0);
}

// ---------------------------------------------------------------- telemetry

/// Every span field and event field written while it is the default subscriber.
#[derive(Clone, Default)]
pub(super) struct Capture(pub(super) Arc<Mutex<Vec<(String, String)>>>);

struct Visit<'a>(&'a mut Vec<(String, String)>);
impl tracing::field::Visit for Visit<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        attrs.record(&mut Visit(&mut self.0.lock().unwrap()));
    }
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        values.record(&mut Visit(&mut self.0.lock().unwrap()));
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        event.record(&mut Visit(&mut self.0.lock().unwrap()));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn usage_is_a_span_field_and_prompts_are_never_logged() {
    use tracing_subscriber::layer::SubscriberExt;
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let down = Server::start(|_, _| json_response(500, json!({"error": {"message": "boom"}}))).await;
    let up = Server::start(|n, _| {
        let text = if n == 0 { "SECRET-COMPLETION not json" } else { r#"{"score": 1, "reason": "SECRET-COMPLETION"}"# };
        json_response(200, openai_answer(text))
    })
    .await;
    let m = model(
        vec![
            provider(ProviderKind::OpenAi, &down.base, "m", "sk-SECRET-KEY"),
            provider(ProviderKind::OpenAi, &up.base, "m2", "k"),
        ],
        Policy { max_retries: 1, ..policy() },
    )
    .await;
    let req = Request::new(vec![Message::user("SECRET-RESUME text")]).system("SECRET-SYSTEM").schema("s", schema());
    complete_json(m.as_ref(), &req).await.unwrap();

    let seen = capture.0.lock().unwrap().clone();
    let field = |name: &str| seen.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    assert!(field("input_tokens").contains(&"21".to_string()), "{seen:?}");
    assert!(field("output_tokens").contains(&"7".to_string()));
    assert!(field("provider").contains(&"openai".to_string()));
    assert!(field("cost_usd").iter().any(|v| v.parse::<f64>().is_ok_and(|c| (c - 35e-6).abs() < 1e-12)), "{seen:?}");
    assert!(field("fallbacks").contains(&"1".to_string()), "the answer came from the second provider");
    assert!(field("code").contains(&"llm_unavailable".to_string()), "failures are logged by code");
    let all = format!("{seen:?}");
    assert!(!all.contains("SECRET"), "prompt, completion or key reached the log: {all}");
}
