#!/usr/bin/env bash
# Transcribe benchmark: catalyst-transcribe (candle) beside faster-whisper (CTranslate2,
# int8 and fp32) on the same tiny.en model and clips, same thread count, in one run.
#
#   infra/bench/transcribe/run.sh [MODEL_DIR]
#
# MODEL_DIR defaults to $CATALYST_MODELS_DIR/whisper-tiny.en (or .catalyst/models/...).
# RUNS (default 3) runs per engine; THREADS (default 2). The Rust side is built in release
# with RUSTFLAGS="-C target-cpu=x86-64-v3" into its own target directory, so the
# portable default build is untouched. PROFILE=dev measures the debug build instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
models="${CATALYST_MODELS_DIR:-$root/.catalyst/models}"
model="${1:-$models/whisper-tiny.en}"
runs="${RUNS:-3}"
threads="${THREADS:-2}"
profile="${PROFILE:-release}"
data="$root/functions/transcribe/testdata"
clips=("$data/jfk.wav" "$data/espeak.wav")

venv="${VENV:-$root/infra/bench/.venv}"
if ! "$venv/bin/python" -c "import faster_whisper" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "faster-whisper==1.2.1"
fi

if [ "$profile" = release ]; then
  target="${BENCH_TARGET_DIR:-$root/target/bench-x86-64-v3}"
  (cd "$root" && RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR="$target" \
    cargo build --release -p catalyst-transcribe --example transcribe_file)
  bin="$target/release/examples/transcribe_file"
else
  (cd "$root" && cargo build -p catalyst-transcribe --example transcribe_file)
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/examples/transcribe_file"
fi

out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
printf 'jfk.wav\tAnd so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.\n' > "$out/refs.tsv"
printf 'espeak.wav\tI led a team of five engineers and we shipped the new billing system two weeks early.\n' >> "$out/refs.tsv"
for _ in $(seq "$runs"); do
  RAYON_NUM_THREADS="$threads" "$bin" "$model" "${clips[@]}" >> "$out/candle.jsonl"
  "$venv/bin/python" "$here/bench_python.py" "$model" int8 "$threads" "${clips[@]}" >> "$out/fw-int8.jsonl"
  "$venv/bin/python" "$here/bench_python.py" "$model" float32 "$threads" "${clips[@]}" >> "$out/fw-fp32.jsonl"
done
echo "profile: $profile, threads: $threads, runs: $runs, $(nproc) cores, $(date -u +%FT%TZ)"
python3 "$here/report.py" "$out/refs.tsv" "candle ($profile)=$out/candle.jsonl" \
  "faster-whisper int8=$out/fw-int8.jsonl" "faster-whisper fp32=$out/fw-fp32.jsonl"
