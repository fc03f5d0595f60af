#!/usr/bin/env bash
# Firebase ID token verifications per second: Catalyst (Rust) beside firebase-admin
# (Python) on the same certificates and tokens, one core each, in one run. Prints both
# figures and the ratio. Contacts nothing but 127.0.0.1 (and PyPI, once, to install
# firebase-admin if it is missing).
#
#   infra/bench/auth/run.sh            # 5 s per side
#   BENCH_SECONDS=10 infra/bench/auth/run.sh
#
# The Rust side is built as it ships: the bench profile inherits release (fat LTO, one
# codegen unit). For a quicker, slightly slower build: CARGO_PROFILE_BENCH_LTO=off.
set -euo pipefail
cd "$(dirname "$0")/../../.."

seconds="${BENCH_SECONDS:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -c 'import firebase_admin' 2>/dev/null || python3 -m pip install --quiet 'firebase-admin>=6,<8'

# Pin both sides to one CPU when taskset is there, so "per core" means one core.
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

cargo bench -q -p catalyst-auth --bench verify --no-run
rust_out="$("${pin[@]}" cargo bench -q -p catalyst-auth --bench verify -- --seconds "$seconds" --export "$work")"
echo "$rust_out" | grep -v '^RESULT'
py_out="$("${pin[@]}" python3 infra/bench/auth/verify_bench.py --dir "$work" --seconds "$seconds")"
echo "$py_out" | grep -v '^RESULT'

rust="$(echo "$rust_out" | sed -n 's/^RESULT rust_per_sec=//p')"
py="$(echo "$py_out" | sed -n 's/^RESULT python_per_sec=//p')"
python3 - "$rust" "$py" <<'EOF'
import sys
rust, py = float(sys.argv[1]), float(sys.argv[2])
print()
print("| verifier (cached certificates, 1 core) | verifications/s |")
print("|---|---|")
print(f"| catalyst-shared FirebaseVerifier (Rust, ring) | {rust:,.0f} |")
print(f"| firebase-admin verify_id_token (Python) | {py:,.0f} |")
print(f"| ratio | {rust / py:.1f}x |")
EOF
