#!/usr/bin/env bash
# Cold-start cost of the cloud store adapter: bash infra/bench/adapters/run.sh (RUNS=N).
set -euo pipefail
cd "$(dirname "$0")/../../.."
bash infra/test-servers.sh
# auth reads the store and loads no models, so only the adapter shows.
cargo build --release -p catalyst-auth --features aws,gcp --bin auth
.catalyst/tools/venv/bin/python infra/bench/adapters/cold_start.py
