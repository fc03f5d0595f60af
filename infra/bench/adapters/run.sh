#!/usr/bin/env bash
# Cold-start cost of the cloud store adapter: bash infra/bench/adapters/run.sh (RUNS=N).
set -euo pipefail
cd "$(dirname "$0")/../../.."
bash infra/test-servers.sh
cargo build --release -p catalyst-agent --features aws,gcp --bin agent
.catalyst/tools/venv/bin/python infra/bench/adapters/cold_start.py
