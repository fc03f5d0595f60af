#!/usr/bin/env bash
# The LLM port's benchmarks in one run:
#   1. port overhead per call against a zero-latency OpenAI-protocol server on 127.0.0.1,
#      beside the same exchange made with bare reqwest;
#   2. the local model (candle, quantized llama) beside llama-cpp-python on the same GGUF,
#      prompt, greedy decoding and thread count.
#
#   infra/bench/llm/run.sh [MODEL.gguf] [PYTHON] [THREADS]
#
# PYTHON must have llama-cpp-python (`pip install llama-cpp-python`, which builds
# llama.cpp from source). The Rust side runs as ignored tests of catalyst-shared; the
# dev profile already builds candle and every other dependency at opt-level 3, and
# RELEASE=1 uses the release profile (LTO off, so the build stays minutes, not tens).
# TARGET_CPU=x86-64-v3 builds for AVX2/FMA (as llama.cpp's native build does), in its
# own target directory so the usual build cache is left alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
gguf="${1:-$root/.catalyst/models/smollm2-135m/model.gguf}"
py="${2:-python3}"
threads="${3:-1}"
tokens="${LLM_BENCH_TOKENS:-128}"
[ -f "$gguf" ] || { echo "no GGUF at $gguf: run \`catalyst models fetch\`" >&2; exit 1; }

profile=()
if [ "${RELEASE:-0}" = 1 ]; then
  profile=(--release)
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
if [ -n "${TARGET_CPU:-}" ]; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=$TARGET_CPU"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/cpu-$TARGET_CPU"
fi
out="$(mktemp)"; trap 'rm -f "$out"' EXIT
# The benchmark sizes candle's threads from LLM_THREADS as runtime::main does
# (shared::llm::local::configure_candle_threads).
(cd "$root" && LLM_BENCH_GGUF="$gguf" LLM_THREADS="$threads" LLM_BENCH_TOKENS="$tokens" \
  cargo test "${profile[@]}" -q -p catalyst-shared --features llm,llm-local --lib llm::bench -- \
  --ignored --nocapture --test-threads 1) > "$out" 2>&1 || { cat "$out" >&2; exit 1; }
grep -o '{"bench".*}' "$out"
"$py" "$here/bench_llama_cpp.py" "$gguf" "$threads" "$tokens"
