//! Answer evaluation: deterministic metrics (fillers, hedges, pace, quantified results),
//! STAR coverage and relevance with sentence embeddings on ONNX Runtime, and job fit
//! against the skills gazetteer. The `evaluate` function serves it over HTTP and queues;
//! the `agent` function scores every interview turn with the same code, so it lives here.

pub mod embed;
pub mod evaluator;
pub mod metrics;
pub mod skills;
pub mod star;
pub mod text;

#[cfg(test)]
mod devset;
#[cfg(any(test, feature = "testkit"))]
pub mod testutil;

use crate::config::Config;
use crate::models::{self, ModelSpec};
use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

pub use embed::{Embedder, EmbedderConfig, cosine};
pub use evaluator::{Evaluation, EvaluationRequest, Evaluator, EvaluatorConfig, Job, Rubric, Segment, Timing};

/// all-MiniLM-L6-v2 as ONNX plus its tokenizer.
pub const MINILM: ModelSpec =
    ModelSpec { name: "minilm", var: "MINILM_MODEL", files: &["model.onnx", "tokenizer.json"] };
/// The skills gazetteer shared with `parse`.
pub const SKILLS: ModelSpec = ModelSpec { name: "skills", var: "SKILLS_GAZETTEER", files: &["skills.json"] };
/// Overrides `$CATALYST_MODELS_DIR/onnxruntime/libonnxruntime.so` (the variable `ort` itself reads).
pub const ORT_DYLIB_VAR: &str = "ORT_DYLIB_PATH";
/// Intra-op threads for ONNX Runtime (default 1, right for one vCPU).
pub const THREADS_VAR: &str = "EVALUATE_THREADS";

/// Where the evaluator's files are, from configuration and the environment (`lookup`).
pub async fn resolve_config(config: &Config, lookup: impl Fn(&str) -> Option<String>) -> Result<EvaluatorConfig> {
    let model_dir = models::resolve(config, &MINILM, &lookup).await?;
    let skills_dir = models::resolve(config, &SKILLS, &lookup).await?;
    let ort_library = match lookup(ORT_DYLIB_VAR).filter(|v| !v.trim().is_empty()) {
        Some(p) => PathBuf::from(p),
        None => config.models_dir.join("onnxruntime").join("libonnxruntime.so"),
    };
    let intra_threads = match lookup(THREADS_VAR).filter(|v| !v.trim().is_empty()) {
        None => 1,
        Some(v) => v.trim().parse::<usize>().ok().filter(|n| (1..=64).contains(n)).ok_or_else(|| {
            Error::bad_request(format!("{THREADS_VAR}: `{v}` is not a thread count from 1 to 64"))
                .with_code("invalid_config")
        })?,
    };
    Ok(EvaluatorConfig {
        embedder: EmbedderConfig { model_dir, ort_library, intra_threads },
        skills: skills_dir.join("skills.json"),
    })
}

/// Find and load the evaluator's models at cold start, from a synchronous function
/// constructor. A missing model stops start-up with the variable to set.
pub fn load_at_start(config: &Config) -> Result<Arc<Evaluator>> {
    let resolved = crate::runtime::block_on_startup(resolve_config(config, |k| std::env::var(k).ok()))??;
    let started = std::time::Instant::now();
    let evaluator = Arc::new(Evaluator::load(&resolved)?);
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "evaluator loaded");
    Ok(evaluator)
}

/// Evaluate off the async workers: the model run is CPU-bound.
pub async fn evaluate_blocking(evaluator: Arc<Evaluator>, req: EvaluationRequest) -> Result<Evaluation> {
    tokio::task::spawn_blocking(move || evaluator.evaluate(&req))
        .await
        .map_err(|e| Error::internal("evaluation task failed").with_source(e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn model_paths_come_from_the_models_dir_or_variables() {
        let models = testutil::models_dir();
        let m = models.to_str().unwrap().to_string();
        let config = Config::from_lookup(|k| (k == "CATALYST_MODELS_DIR").then(|| m.clone())).unwrap();
        let c = resolve_config(&config, |_| None).await.unwrap();
        assert_eq!(c.embedder.model_dir, models.join("minilm"));
        assert_eq!(c.embedder.ort_library, models.join("onnxruntime/libonnxruntime.so"));
        assert_eq!(c.skills, models.join("skills/skills.json"));
        assert_eq!(c.embedder.intra_threads, 1);
        let c = resolve_config(&config, |k| match k {
            ORT_DYLIB_VAR => Some("/opt/ort/libonnxruntime.so.1.32.0".into()),
            THREADS_VAR => Some("2".into()),
            _ => None,
        })
        .await
        .unwrap();
        assert_eq!(c.embedder.ort_library, PathBuf::from("/opt/ort/libonnxruntime.so.1.32.0"));
        assert_eq!(c.embedder.intra_threads, 2);
        let err = resolve_config(&config, |k| (k == THREADS_VAR).then(|| "many".into())).await.unwrap_err();
        assert!(err.message().contains(THREADS_VAR), "{}", err.message());
    }

    #[tokio::test]
    async fn missing_models_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let config = Config::from_lookup(|k| (k == "CATALYST_DATA_DIR").then(|| d.clone())).unwrap();
        let err = resolve_config(&config, |_| None).await.unwrap_err();
        assert_eq!(err.code(), "model_missing");
        assert!(err.message().contains("MINILM_MODEL"), "{}", err.message());
    }
}
