//! Sentence embeddings: all-MiniLM-L6-v2 on ONNX Runtime, pooled the way
//! sentence-transformers does it (mean over the attention mask, then L2 normalisation).
//!
//! ONNX Runtime is loaded at run time from the `libonnxruntime.so` shipped in the PyPI
//! `onnxruntime` wheel (the `ort` crate's `load-dynamic`), so nothing is downloaded at
//! build or run time.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokenizers::{Tokenizer, TruncationParams};

/// Width of all-MiniLM-L6-v2 vectors.
pub const DIM: usize = 384;
/// The model's `max_seq_length` (sentence_bert_config.json); longer input is truncated.
pub const MAX_TOKENS: usize = 256;
/// Sentences per ONNX run: large enough to amortise the call, small enough that padding
/// to the longest sentence in a batch stays cheap once batches are sorted by length, and
/// a layer's activations stay small (16 × ~36 tokens × 1536 floats is 3.5 MB): 16 ran
/// 3-5% faster than 32 at one thread (interleaved in one process, 30-word sentences), 8
/// no faster, 64 and up slower; the vectors are bit-identical.
const BATCH: usize = 16;

/// Texts whose embeddings are kept (about 1.6 MB of vectors at 384 dimensions).
const EMBEDDING_CACHE: usize = 1024;

/// Where the embedding model and the runtime are.
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    /// Directory with `model.onnx` and `tokenizer.json`.
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library.
    pub ort_library: PathBuf,
    /// Threads for one operator (intra-op); 1 suits a one-vCPU serverless instance.
    pub intra_threads: usize,
}

/// A loaded embedding model. Cheap to share behind an `Arc`; runs are serialised on the
/// session (ONNX Runtime sessions take `&mut` in `ort`), which is what a single-vCPU
/// function wants anyway.
pub struct Embedder {
    session: Mutex<ort::session::Session>,
    /// Embeddings of recent texts: a follow-up answer is evaluated together with the
    /// earlier answers on the question, whose sentences (and the question, the job's
    /// sentences) were embedded a turn ago. A text's vector does not depend on its batch
    /// beyond float rounding (tested), so a cached one is what a new run would give.
    cache: Mutex<std::collections::HashMap<String, Vec<f32>>>,
    tokenizer: Tokenizer,
    /// Whether the graph takes `token_type_ids` (Hugging Face exports do; some do not).
    token_types: bool,
    output: String,
}

fn load_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("{what} at {} could not be loaded: {e}", path.display())).with_code("model_invalid")
}

/// Load ONNX Runtime from `path` once per process. A second call with another path is
/// ignored by `ort`; the first library stays.
pub fn load_runtime(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(Error::unavailable(format!(
            "ONNX Runtime library not found at {}. Run `catalyst models fetch` (fills $CATALYST_MODELS_DIR/onnxruntime) \
             or set ORT_DYLIB_PATH to libonnxruntime.so",
            path.display()
        ))
        .with_code("model_missing"));
    }
    let env = ort::init_from(path).map_err(|e| load_error("ONNX Runtime", path, e))?;
    // Telemetry off: a serverless function must not phone home.
    let _ = env.with_telemetry(false).with_name("catalyst-evaluate").commit();
    Ok(())
}

impl Embedder {
    pub fn load(config: &EmbedderConfig) -> Result<Embedder> {
        load_runtime(&config.ort_library)?;
        let model = config.model_dir.join("model.onnx");
        let tok_path = config.model_dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| load_error("tokenizer", &tok_path, e))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| load_error("tokenizer", &tok_path, e))?;
        // Padding is done per batch below, to the longest sentence in it.
        tokenizer.with_padding(None);

        let builder_err = |e: ort::Error<ort::session::builder::SessionBuilder>| {
            load_error("embedding model", &model, ort::Error::<()>::from(e))
        };
        let session = ort::session::Session::builder()
            .map_err(|e| load_error("embedding model", &model, e))?
            .with_intra_threads(config.intra_threads.max(1))
            .map_err(builder_err)?
            .with_inter_threads(1)
            .map_err(builder_err)?
            // Spinning threads burn the CPU a serverless instance is billed for.
            .with_intra_op_spinning(false)
            .map_err(builder_err)?
            .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
            .map_err(builder_err)?
            .commit_from_file(&model)
            .map_err(|e| load_error("embedding model", &model, e))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        for needed in ["input_ids", "attention_mask"] {
            if !inputs.contains(&needed) {
                return Err(load_error(
                    "embedding model",
                    &model,
                    format!("it has no `{needed}` input (has {inputs:?})"),
                ));
            }
        }
        let token_types = inputs.contains(&"token_type_ids");
        let output = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .find(|n| n == "last_hidden_state" || n == "token_embeddings")
            .or_else(|| session.outputs().first().map(|o| o.name().to_string()))
            .ok_or_else(|| load_error("embedding model", &model, "it has no outputs"))?;
        Ok(Embedder { session: Mutex::new(session), cache: Mutex::default(), tokenizer, token_types, output })
    }

    /// Unit-length embeddings of `texts`, in order; recently seen texts come from a cache.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = {
            let cache = self.cache.lock().map_err(|_| Error::internal("embedding cache poisoned"))?;
            texts.iter().map(|t| cache.get(t.as_ref()).cloned()).collect()
        };
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let fresh = self.embed_uncached(&missing.iter().map(|&i| texts[i].as_ref()).collect::<Vec<_>>())?;
            let mut cache = self.cache.lock().map_err(|_| Error::internal("embedding cache poisoned"))?;
            // Bounded simply: start over when full (a turn's texts are re-added at once).
            if cache.len() + fresh.len() > EMBEDDING_CACHE {
                cache.clear();
            }
            for (&i, v) in missing.iter().zip(fresh) {
                cache.insert(texts[i].as_ref().to_string(), v.clone());
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn embed_uncached<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let mut encoded = Vec::with_capacity(texts.len());
        for t in texts {
            let enc = self
                .tokenizer
                .encode(t.as_ref(), true)
                .map_err(|e| Error::internal("tokenizer failed").with_source(std::io::Error::other(e.to_string())))?;
            encoded.push(enc.get_ids().to_vec());
        }
        // Sort by length so each batch pads little; write results back in input order.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let ids: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            for (v, &i) in self.run(&ids)?.into_iter().zip(chunk) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn run(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let cols = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0i64; rows * cols];
        let mut mask = vec![0i64; rows * cols];
        for (r, seq) in batch.iter().enumerate() {
            for (c, id) in seq.iter().enumerate() {
                ids[r * cols + c] = *id as i64;
                mask[r * cols + c] = 1;
            }
        }
        let ort_err = |e: ort::Error| Error::internal("embedding model run failed").with_source(e);
        let shape = [rows as i64, cols as i64];
        let mut inputs = ort::inputs![
            "input_ids" => ort::value::Tensor::from_array((shape, ids)).map_err(ort_err)?,
            "attention_mask" => ort::value::Tensor::from_array((shape, mask.clone())).map_err(ort_err)?,
        ];
        if self.token_types {
            let types = ort::value::Tensor::from_array((shape, vec![0i64; rows * cols])).map_err(ort_err)?;
            inputs.push(("token_type_ids".into(), types.into()));
        }
        let mut session = self.session.lock().map_err(|_| Error::internal("embedding session poisoned"))?;
        let outputs = session.run(inputs).map_err(ort_err)?;
        let (out_shape, hidden) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
        if out_shape.len() != 3 || out_shape[0] as usize != rows || out_shape[1] as usize != cols {
            return Err(Error::internal(format!("embedding model returned shape {out_shape:?} for {rows}x{cols}")));
        }
        let dim = out_shape[2] as usize;
        Ok((0..rows)
            .map(|r| pool(&hidden[r * cols * dim..(r + 1) * cols * dim], &mask[r * cols..(r + 1) * cols], dim))
            .collect())
    }
}

/// Mean over the tokens the mask keeps, then L2 normalisation (sentence-transformers'
/// `Pooling(mean)` + `Normalize`). Sums in f64 so the order of addition does not matter.
fn pool(hidden: &[f32], mask: &[i64], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f64; dim];
    let mut n = 0f64;
    for (t, m) in mask.iter().enumerate() {
        if *m != 0 {
            n += 1.0;
            for (s, h) in sum.iter_mut().zip(&hidden[t * dim..(t + 1) * dim]) {
                *s += *h as f64;
            }
        }
    }
    let n = n.max(1e-9);
    let norm = sum.iter().map(|s| (s / n) * (s / n)).sum::<f64>().sqrt().max(1e-12);
    sum.iter().map(|s| (s / n / norm) as f32).collect()
}

/// Whole words of a tokenizer's vocabulary (no `##` pieces, no `[CLS]`-style specials):
/// everyday English as far as the skills gazetteer is concerned.
pub fn vocabulary(tokenizer_json: &Path) -> Result<std::collections::HashSet<String>> {
    let tokenizer = Tokenizer::from_file(tokenizer_json).map_err(|e| load_error("tokenizer", tokenizer_json, e))?;
    Ok(tokenizer.get_vocab(false).into_keys().filter(|k| !k.starts_with("##") && !k.starts_with('[')).collect())
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_ignores_padding_and_normalises() {
        // Two real tokens and one padded one with a huge value that must not count.
        let hidden = [1.0, 0.0, 3.0, 0.0, 1000.0, 1000.0];
        let v = pool(&hidden, &[1, 1, 0], 2);
        assert!((v[0] - 1.0).abs() < 1e-6 && v[1].abs() < 1e-6, "{v:?}");
        let v = pool(&[3.0, 4.0], &[1], 2);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-6);
    }

    #[derive(serde::Deserialize)]
    struct Reference {
        vectors: Vec<RefVector>,
    }
    #[derive(serde::Deserialize)]
    struct RefVector {
        sentence: String,
        embedding: Vec<f64>,
    }

    /// Against the float64 NumPy forward pass of the safetensors
    /// (`infra/models/minilm_reference.py`): the fp32 export must agree to 0.999; the
    /// int8 export measures 0.998 at worst and is held to that.
    #[test]
    fn embeddings_match_the_float64_reference() {
        let ev = crate::evaluation::testutil::evaluator();
        let reference: Reference =
            serde_json::from_str(include_str!("../../testdata/evaluation/minilm_reference.json"))
                .expect("reference parses");
        let sentences: Vec<&str> = reference.vectors.iter().map(|v| v.sentence.as_str()).collect();
        let got = ev.embedder().embed(&sentences).unwrap();
        let model = crate::evaluation::testutil::models_dir().join("minilm/model.onnx");
        let fp32 = std::fs::metadata(&model).unwrap().len() > 60_000_000;
        let floor = if fp32 { 0.999 } else { 0.998 };
        for (r, g) in reference.vectors.iter().zip(&got) {
            assert_eq!(g.len(), DIM);
            let cos: f64 = r.embedding.iter().zip(g).map(|(a, b)| a * *b as f64).sum();
            assert!(cos >= floor, "{}: cosine {cos} < {floor} ({})", r.sentence, model.display());
            let norm: f32 = g.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4);
        }
        // sentence-transformers' published vector for the first sentence begins so
        // (four decimals: fp32 reproduces them; int8 is off by up to 0.0023).
        let tolerance = if fp32 { 0.0001 } else { 0.003 };
        for (k, want) in [0.0677f32, 0.0635, 0.0487].iter().enumerate() {
            assert!((got[0][k] - want).abs() <= tolerance, "component {k}: {} vs {want}", got[0][k]);
        }
    }

    #[test]
    fn batching_and_padding_do_not_change_vectors() {
        let ev = crate::evaluation::testutil::evaluator();
        let texts =
            ["Short.", "A considerably longer sentence that forces the short one to be padded in its batch.", ""];
        let batch = ev.embedder().embed_uncached(&texts).unwrap();
        for (t, b) in texts.iter().zip(&batch) {
            let single = ev.embedder().embed_uncached(&[t]).unwrap().remove(0);
            assert!(cosine(&single, b) > 0.99999, "{t}");
        }
        // Through the cache: the same vectors, in the caller's order, misses and hits mixed.
        let first = ev.embedder().embed(&["cache probe one", "cache probe two"]).unwrap();
        let mixed = ev.embedder().embed(&["cache probe two", "cache probe three", "cache probe one"]).unwrap();
        assert_eq!((&mixed[0], &mixed[2]), (&first[1], &first[0]));
        assert!(cosine(&mixed[1], &ev.embedder().embed_uncached(&["cache probe three"]).unwrap()[0]) > 0.99999);
        // Longer than the model's 256 tokens: truncated, not an error.
        let long = "word ".repeat(2000);
        assert_eq!(ev.embedder().embed(&[long]).unwrap()[0].len(), DIM);
    }

    #[test]
    fn a_missing_runtime_names_the_variable() {
        let err = load_runtime(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert_eq!(err.code(), "model_missing");
        assert!(err.message().contains("ORT_DYLIB_PATH") && err.message().contains("catalyst models fetch"));
    }
}
