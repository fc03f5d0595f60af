//! Turn overhead at many concurrent interviews: what the agent itself adds to a turn
//! (store reads and versioned writes, orchestration, prompt building, validation,
//! serialisation) beside the LLM's time and the evaluation's model inference.
//!
//! The LLM is an OpenAI-compatible server on 127.0.0.1 answering at once (scripted
//! replies), so LLM time is only the protocol round trip, and it is subtracted anyway:
//! every turn reports its own split (`TurnResult::timings`). Storage is the embedded
//! SQLite store and filesystem blobs; the evaluator is the real MiniLM on ONNX Runtime.
//!
//! Run: `infra/bench/agent/run.sh` (release, x86-64-v3), or
//! `cargo run --release -p catalyst-agent --features testkit --example turn_overhead -- [interviews] [rounds]`.

use catalyst_agent::engine::{CreateInterview, TurnInput};
use catalyst_agent::{Agent, testing};
use catalyst_shared::blob::SharedBlobStore;
use catalyst_shared::blob::local::LocalBlobStore;
use catalyst_shared::store::SharedDocumentStore;
use catalyst_shared::store::local::SqliteDocumentStore;
use serde_json::json;
use std::sync::Arc;

/// A complete STAR answer, different in every sentence for each interview and round:
/// candidates do not repeat each other, and the evaluator caches embeddings of texts it
/// has seen, so identical answers would measure the cache rather than a turn.
fn answer(interview: usize, round: usize) -> String {
    format!(
        "At company number {interview} our payment API had a p99 latency of {} ms in quarter {round} and merchants \
         were timing out. I was responsible for bringing it under {} ms before peak season {round}. I profiled the \
         {} slowest endpoints, I rewrote the ledger queries to use covering indexes in PostgreSQL, and I added read \
         replica number {interview} for reporting traffic. As a result p99 latency fell from {} ms to {} ms and \
         timeouts dropped by {} percent.",
        900 + interview,
        200 + round,
        3 + interview % 5,
        900 + interview,
        120 + round,
        50 + interview % 40
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let interviews = args.first().copied().unwrap_or(200.0) as usize;
    let rounds = args.get(1).copied().unwrap_or(2.0) as usize;
    // Turns per second across all interviews (Poisson arrivals); 0 sends each round's
    // turns all at the same instant.
    let rate = args.get(2).copied().unwrap_or(3.0);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run(interviews, rounds, rate));
}

async fn run(interviews: usize, rounds: usize, rate: f64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let store: SharedDocumentStore = Arc::new(SqliteDocumentStore::open(dir.path().join("s.db")).expect("store"));
    let blob: SharedBlobStore = Arc::new(LocalBlobStore::open(dir.path().join("blobs")).expect("blobs"));
    let (server, llm) = testing::scripted_llm(testing::reply).await;
    let evaluator = catalyst_shared::evaluation::testutil::evaluator();
    let agent = Arc::new(Agent::new(store, blob, llm, evaluator));
    let engine = agent.engine().await.expect("engine");

    let resume = json!({"basics": {"name": "Ada Okafor", "label": "Backend Engineer"},
        "work": [{"name": "Paystream", "position": "Backend Engineer", "startDate": "2018-01",
            "highlights": ["Cut payment API p99 latency from 900 ms to 120 ms"]}],
        "skills": [{"name": "Backend", "keywords": ["Go", "PostgreSQL", "Kubernetes"]}]});
    let job = json!({"title": "Senior Backend Engineer", "text": "Acme builds payment infrastructure.",
        "job": {"title": "Senior Backend Engineer", "description": "Own payment services that move money reliably.",
            "qualifications": ["5+ years building backend services in Go", "PostgreSQL and Kafka"],
            "skills": ["Go", "PostgreSQL", "Kafka"]}});
    let mut ids = Vec::with_capacity(interviews);
    for i in 0..interviews {
        let req: CreateInterview = serde_json::from_value(json!({"resume": resume, "job": job, "mode": "behavioral",
            "questions": 12}))
        .expect("request");
        let created = engine.create(&format!("user{i}"), req, None).await.expect("create");
        ids.push((format!("user{i}"), created.id));
    }
    eprintln!("{interviews} interviews created; {rounds} rounds, one turn per interview each, at {rate} turns/s");

    let mut overhead = Vec::new();
    let mut total = Vec::new();
    let mut llm = Vec::new();
    let mut evaluation = Vec::new();
    let mut store = Vec::new();
    let wall = std::time::Instant::now();
    let mut arrivals = 0.0f64;
    let mut rng_state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        // xorshift64*: a reproducible arrival pattern without another dependency.
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        (rng_state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    for round in 0..rounds {
        let mut tasks = Vec::with_capacity(interviews);
        for (n, (uid, id)) in ids.iter().enumerate() {
            if rate > 0.0 {
                arrivals += -(1.0 - uniform()).ln() / rate;
                let at = wall + std::time::Duration::from_secs_f64(arrivals);
                tokio::time::sleep_until(at.into()).await;
            }
            let (engine, uid, id) = (engine.clone(), uid.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let input = TurnInput { answer: Some(answer(n, round)), ..Default::default() };
                engine.turn(&uid, &id, &format!("r{round}"), input, None).await
            }));
        }
        for t in tasks {
            let r = t.await.expect("task").expect("turn");
            let tm = r.timings.expect("timings");
            overhead.push(tm.overhead_ms);
            total.push(tm.total_ms);
            llm.push(tm.llm_ms);
            evaluation.push(tm.evaluation_ms);
            store.push(tm.store_ms);
        }
    }
    let elapsed = wall.elapsed().as_secs_f64();
    for v in [&mut overhead, &mut total, &mut llm, &mut evaluation, &mut store] {
        v.sort_by(f64::total_cmp);
    }
    let turns = overhead.len();
    println!(
        "turns: {turns} ({interviews} concurrent interviews x {rounds} rounds), {:.0} turns/s",
        turns as f64 / elapsed
    );
    println!("{:<28} {:>9} {:>9} {:>9}", "per turn (ms)", "p50", "p99", "max");
    for (name, v) in [
        ("overhead (excl. LLM, model)", &overhead),
        ("  of which store (SQLite)", &store),
        ("evaluation (ONNX, queued)", &evaluation),
        ("LLM calls (0-latency server)", &llm),
        ("total", &total),
    ] {
        println!("{name:<28} {:>9.2} {:>9.2} {:>9.2}", percentile(v, 50.0), percentile(v, 99.0), v[v.len() - 1]);
    }
    println!(
        "{}",
        json!({"interviews": interviews, "rounds": rounds, "rate": rate, "turns": turns, "llm_requests": server.hits(),
            "overhead_p50_ms": percentile(&overhead, 50.0), "overhead_p99_ms": percentile(&overhead, 99.0),
            "total_p50_ms": percentile(&total, 50.0), "total_p99_ms": percentile(&total, 99.0),
            "evaluation_p50_ms": percentile(&evaluation, 50.0), "llm_p50_ms": percentile(&llm, 50.0)})
    );
}
