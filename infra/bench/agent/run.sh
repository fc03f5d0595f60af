#!/usr/bin/env bash
# Turn overhead at 200 concurrent interviews (issue 10's goal: p99 <= 5 ms excluding LLM
# time): 200 interviews in progress, answers arriving as a Poisson process (default 3
# turns/s, about one answer a minute per interview, what this 2-core machine's evaluator
# sustains), and a burst mode (rate 0) where every interview answers at the same instant. Release build for x86-64-v3 (candle and ONNX pick SIMD kernels at compile and
# load time); the LLM is a zero-latency OpenAI-compatible server on 127.0.0.1, the store
# the embedded SQLite, the evaluator the real MiniLM (models from `catalyst models fetch`).
#
#   infra/bench/agent/run.sh              # 200 interviews x 2 rounds at 3 turns/s
#   infra/bench/agent/run.sh 200 1 0      # burst: 200 turns at once
set -euo pipefail
cd "$(dirname "$0")/../../.."
export AWS_EC2_METADATA_DISABLED=true AWS_REGION="${AWS_REGION:-us-east-1}"
export CATALYST_MODELS_DIR="${CATALYST_MODELS_DIR:-$PWD/.catalyst/models}"
export RUSTFLAGS="${RUSTFLAGS:--C target-cpu=x86-64-v3}"
# The scripted LLM replaces the local model here, so it is left out of the build.
cargo run -q --release -p catalyst-agent --no-default-features --features testkit --example turn_overhead -- "${1:-200}" "${2:-2}" "${3:-3}"
