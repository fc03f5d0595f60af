#!/usr/bin/env bash
# Cold-start benchmark: release binaries beside FastAPI + uvicorn, in one run.
# Usage: bash infra/bench/cold_start.sh   (RUNS=N for more samples)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=infra/bench/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check fastapi uvicorn
fi
cargo build --release --bins
BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" infra/bench/cold_start.py
