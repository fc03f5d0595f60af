//! Benchmark of the evaluator, run by `infra/bench/evaluate/run.sh` beside Python
//! onnxruntime and sentence-transformers. Prints one JSON line.
//!
//! `bench cold MODELS_DIR`: load everything and evaluate one answer (the runner times
//! the whole process, start to exit).
//! `bench warm MODELS_DIR SENTENCES.json THREADS`: embeddings per second over the
//! sentences (batched as the evaluator does) and evaluations per second.

use catalyst_evaluate::{EmbedderConfig, EvaluationRequest, Evaluator, EvaluatorConfig, Timing};
use std::path::Path;
use std::time::Instant;

const ANSWER: &str = "At my last company, deploys took two hours and often failed. My job was to make releases safe. \
    I wrote a pipeline in GitHub Actions, um, added canary checks and I trained the team. As a result, deploy time \
    fell from 2 hours to 15 minutes and failed releases dropped by 80%.";

fn config(models: &Path, threads: usize) -> EvaluatorConfig {
    EvaluatorConfig {
        embedder: EmbedderConfig {
            model_dir: models.join("minilm"),
            ort_library: models.join("onnxruntime/libonnxruntime.so"),
            intra_threads: threads,
        },
        skills: models.join("skills/skills.json"),
    }
}

fn request() -> EvaluationRequest {
    EvaluationRequest {
        question: "Tell me about a time you improved a process.".into(),
        answer: ANSWER.into(),
        timing: Some(Timing { duration_s: Some(30.0), segments: None }),
        ..Default::default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench cold MODELS_DIR | bench warm MODELS_DIR SENTENCES.json THREADS";
    let mode = args.get(1).ok_or(usage)?;
    let models = Path::new(args.get(2).ok_or(usage)?);
    match mode.as_str() {
        "cold" => {
            let t = Instant::now();
            let ev = Evaluator::load(&config(models, 1))?;
            let loaded = t.elapsed();
            let e = ev.evaluate(&request())?;
            println!(
                "{{\"load_ms\": {:.1}, \"first_evaluation_ms\": {:.1}, \"overall\": {}}}",
                loaded.as_secs_f64() * 1e3,
                (t.elapsed() - loaded).as_secs_f64() * 1e3,
                e.overall
            );
        }
        "warm" => {
            let sentences: Vec<String> = serde_json::from_str(&std::fs::read_to_string(args.get(3).ok_or(usage)?)?)?;
            let threads: usize = args.get(4).ok_or(usage)?.parse()?;
            let ev = Evaluator::load(&config(models, threads))?;
            ev.embedder().embed(&sentences[..8])?;
            let t = Instant::now();
            let v = ev.embedder().embed(&sentences)?;
            let emb = sentences.len() as f64 / t.elapsed().as_secs_f64();
            assert_eq!(v.len(), sentences.len());
            let req = request();
            let n = 50;
            let t = Instant::now();
            for _ in 0..n {
                ev.evaluate(&req)?;
            }
            let evals = n as f64 / t.elapsed().as_secs_f64();
            println!("{{\"embeddings_per_s\": {emb:.1}, \"evaluations_per_s\": {evals:.1}, \"threads\": {threads}}}");
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
