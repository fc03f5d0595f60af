//! Benchmarks, run by `infra/bench/llm/run.sh` (ignored in ordinary test runs):
//! the port's own overhead per call against a zero-latency OpenAI-protocol server on
//! 127.0.0.1, beside the same HTTP exchange made with bare reqwest; and the local
//! model's prefill and generation speed. Each prints one JSON line.

use std::time::{Duration, Instant};

use super::config::{ApiKey, LlmConfig, Policy, ProviderConfig, ProviderKind};
use super::*;

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "benchmark: infra/bench/llm/run.sh"]
async fn bench_port_overhead() {
    let answer = serde_json::json!({
        "id": "c", "object": "chat.completion", "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"score\": 4, \"reason\": \"clear\"}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 12}
    })
    .to_string();
    let app = axum::Router::new().fallback(move || {
        let a = answer.clone();
        async move { ([("content-type", "application/json")], a) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    // The server gets its own runtime thread so client and server do not share one loop.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
            axum::serve(listener, app).await.unwrap();
        })
    });

    let config = LlmConfig {
        primary: ProviderConfig {
            prefix: "LLM".into(),
            kind: ProviderKind::OpenAi,
            url: Some(base.parse().unwrap()),
            model: "bench".into(),
            api_key: Some(ApiKey::new("sk-bench")),
            api_key_secret: None,
            price: None,
        },
        fallbacks: vec![],
        policy: Policy::default(),
        models_dir: "/nonexistent".into(),
        local_model_path: None,
        local_threads: 1,
    };
    let model = from_config(&config).await.unwrap();
    let req = Request::new(vec![Message::user("Score this answer: I led the migration and cut costs by 30%.")])
        .system("You are an interviewer.")
        .max_tokens(64);
    let raw_client = super::http::client().unwrap();
    let raw_body = serde_json::json!({
        "model": "bench", "max_tokens": 64, "temperature": 0.0, "stream": false,
        "messages": [{"role": "system", "content": "You are an interviewer."}, {"role": "user", "content": "Score this answer: I led the migration and cut costs by 30%."}],
    });
    let url = format!("{base}/chat/completions");
    let n = env_usize("LLM_BENCH_CALLS", 3000);

    let raw = || async {
        let r = raw_client.post(&url).bearer_auth("sk-bench").json(&raw_body).send().await.unwrap();
        r.bytes().await.unwrap()
    };
    for _ in 0..200 {
        raw().await;
        model.complete(&req).await.unwrap();
    }
    // Interleave in rounds so drift on a shared machine hits both sides alike.
    let (mut t_raw, mut t_port) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..n / 10 {
            raw().await;
        }
        t_raw += t.elapsed();
        let t = Instant::now();
        for _ in 0..n / 10 {
            model.complete(&req).await.unwrap();
        }
        t_port += t.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{}",
        serde_json::json!({
            "bench": "llm_port_overhead",
            "calls": n,
            "raw_reqwest_us_per_call": (per(t_raw) * 10.0).round() / 10.0,
            "port_us_per_call": (per(t_port) * 10.0).round() / 10.0,
            "overhead_us_per_call": ((per(t_port) - per(t_raw)) * 10.0).round() / 10.0,
        })
    );
}

#[cfg(feature = "llm-local")]
#[tokio::test(flavor = "current_thread")]
#[ignore = "benchmark: infra/bench/llm/run.sh"]
async fn bench_local_tokens_per_second() {
    // The thread set-up `runtime::main` gives the functions.
    super::local::configure_candle_threads();
    use futures::StreamExt;
    let path = std::env::var("LLM_BENCH_GGUF").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.catalyst/models/smollm2-135m/model.gguf")
    });
    let threads = env_usize("LLM_THREADS", 1);
    let max_tokens = env_usize("LLM_BENCH_TOKENS", 128) as u32;
    let started = Instant::now();
    let m = super::local::LocalModel::load(&path, threads).unwrap();
    let load_ms = started.elapsed().as_millis();
    let req = Request::new(vec![Message::user(
        "Write a detailed story about a software engineer who leads a difficult database migration.",
    )])
    .system("You are a helpful assistant.")
    .max_tokens(max_tokens);
    let prompt_tokens = m.prompt_tokens(&req).unwrap().len();
    // One warm-up call, then the measured one.
    m.complete(&req.clone().max_tokens(4)).await.unwrap();
    let t0 = Instant::now();
    let mut s = m.stream(&req).await.unwrap();
    let mut first = None;
    let mut usage = None;
    let mut text = String::new();
    while let Some(d) = s.next().await {
        let d = d.unwrap();
        text.push_str(&d.text);
        if first.is_none() && !d.text.is_empty() {
            first = Some(t0.elapsed());
        }
        if d.usage.is_some() {
            usage = d.usage;
        }
    }
    let total = t0.elapsed();
    let usage = usage.unwrap();
    let ttft = first.unwrap_or(total);
    let gen_tps = (usage.output_tokens.saturating_sub(1)) as f64 / (total - ttft).as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bench": "llm_local",
            "threads": threads,
            "load_ms": load_ms,
            "prompt_tokens": prompt_tokens,
            "prefill_ms": ttft.as_millis(),
            "prefill_tokens_per_s": (prompt_tokens as f64 / ttft.as_secs_f64() * 10.0).round() / 10.0,
            "output_tokens": usage.output_tokens,
            "generate_tokens_per_s": (gen_tps * 10.0).round() / 10.0,
            "text_head": text.chars().take(60).collect::<String>(),
        })
    );
}
