//! Models for tests (this crate's and the functions' that evaluate answers), found in
//! `$CATALYST_MODELS_DIR` or the workspace's `.catalyst/models` (what `catalyst models
//! fetch` lays out). The evaluator is loaded once and shared by every test in the process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::evaluation::embed::EmbedderConfig;
use crate::evaluation::evaluator::{Evaluator, EvaluatorConfig};

fn complete(dir: &Path) -> bool {
    ["minilm/model.onnx", "minilm/tokenizer.json", "onnxruntime/libonnxruntime.so", "skills/skills.json"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// A complete models directory, or a panic that says how to get one.
pub fn models_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("CATALYST_MODELS_DIR").map(PathBuf::from).filter(|d| complete(d)) {
            return d;
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.catalyst/models");
        if complete(&workspace) {
            return workspace;
        }
        panic!("evaluation tests need the models: run `catalyst models fetch` or set CATALYST_MODELS_DIR")
    })
    .clone()
}

pub fn config() -> EvaluatorConfig {
    let dir = models_dir();
    EvaluatorConfig {
        embedder: EmbedderConfig {
            model_dir: dir.join("minilm"),
            ort_library: dir.join("onnxruntime/libonnxruntime.so"),
            intra_threads: 1,
        },
        skills: dir.join("skills/skills.json"),
    }
}

pub fn evaluator() -> Arc<Evaluator> {
    static EV: OnceLock<Arc<Evaluator>> = OnceLock::new();
    EV.get_or_init(|| Arc::new(Evaluator::load(&config()).expect("evaluator loads"))).clone()
}
