#!/usr/bin/env bash
# Fuzzes the hostile-input paths for a bounded time with cargo-fuzz (libFuzzer): parse's
# PDF, DOCX/ODT and HTML extraction and transcribe's audio decoding, the targets under
# functions/{parse,transcribe}/fuzz. Run by infra/test.sh after the cargo tests.
#
#   bash infra/fuzz.sh                                   every target, 30 s each
#   FUZZ_SECONDS=600 bash infra/fuzz.sh transcribe/decode parse/pdf
#
# Stable toolchain: cargo-fuzz needs nightly only for -Z flags, and with `--sanitizer
# none` it passes none: its coverage flags (-Cpasses=sancov-module, -Cllvm-args=
# -sanitizer-coverage-*) are stable codegen options, and libfuzzer-sys builds libFuzzer
# with the machine's C++ compiler. FUZZ_SANITIZER=address adds AddressSanitizer through
# RUSTC_BOOTSTRAP=1 and -Zsanitizer=address (cargo-fuzz 0.13.2 itself would pass
# -Csanitizer=address, which rustc 1.95 does not know; the ASan runtime ships with the
# stable toolchain; a heap overflow was caught so on a small crate): for unsafe code.
#
# Build choices. Clean builds of both fuzz crates on the 2-core machine (parse, then
# transcribe, one target dir; wall time, the first two partly beside other builds), and
# the CPU seconds to replay one fixed corpus per target (pdf, docx, html, decode):
#   cargo-fuzz's default: opt-level 3, 1 codegen unit      1067 s   0.75 2.9 4.0 0.42
#   opt-level 1, 16 units                                    574 s   1.0  3.6 4.4 0.86
#   opt-level 0 except the fuzzed path (at 1)                455 s   2.3  6.6 9.3 3.0
#   opt-level 1, 16 units, crates off the path at 0 (this)   380 s   1.05 4.3 5.2 0.87
# No sanitizer: the code is safe Rust, and panics, hangs and memory are what is looked
# for; ASan (checked on a small crate, not timed on these) costs build and run time. Line tables only (backtraces
# keep file:line), dead code stripped; the per-crate opt-levels are in each fuzz crate's
# Cargo.toml. cargo-fuzz keeps debug assertions and overflow checks on. The whole script
# on the 2-core machine: 434 s from nothing (cargo-fuzz install 21 s, builds 380 s,
# fuzzing 32 s with two targets stopped at once by known crashes, 60 s when all four run
# their 30 s); 48 s warm.
#
# Panics: a panic inside a third-party parser or decoder (a registry crate) unwinds to the
# `catch_unwind` that production has around it and is listed at the end, not failed; a
# panic in our own code aborts and fails (infra/fuzz/panic_policy.rs, which each target
# installs). Aborts (allocation failures), hangs and memory past the limit always fail.
#
# Each target first replays its crate's regressions/<target>/ (inputs that once crashed),
# then fuzzes from the committed seeds (corpus/<target>/, never written to) plus the
# corpus grown by earlier runs on this machine ($CATALYST_DATA_DIR/fuzz/corpus), up to
# FUZZ_JOBS targets at a time (default: one per core). A panic, a hang past -timeout or
# memory past -rss_limit_mb fails the script; the input is left in
# functions/<crate>/fuzz/artifacts/<target>/ (gitignored) and its path printed.
# Network use: crates.io only (cargo-fuzz and the fuzz crates' dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

export CATALYST_DATA_DIR="${CATALYST_DATA_DIR:-$root/.catalyst}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Built from scratch in CI and never edited in place: incremental state would be waste.
export CARGO_INCREMENTAL=0
seconds="${FUZZ_SECONDS:-30}"
rss_mb="${FUZZ_RSS_MB:-2048}"
timeout_s="${FUZZ_TIMEOUT:-10}"
jobs="${FUZZ_JOBS:-$(nproc)}"
tools="$CATALYST_DATA_DIR/tools"
work="$CATALYST_DATA_DIR/fuzz"
# One target dir for both fuzz crates, so that what they share builds once (gitignored).
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}"
cargo_fuzz_version="0.13.2"
all=(parse/pdf parse/docx parse/html transcribe/decode)
if [ $# -gt 0 ]; then specs=("$@"); else specs=("${all[@]}"); fi

log() { printf '%s\n' "$*" >&2; }

if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qF " $cargo_fuzz_version"; then
  log "fuzz: installing cargo-fuzz $cargo_fuzz_version (crates.io) into $tools"
  cargo install --quiet --locked --root "$tools" --version "$cargo_fuzz_version" cargo-fuzz
fi
export PATH="$tools/bin:$PATH"

# cargo-fuzz puts its own flags first; these come after and override -Ccodegen-units=1
# and the full debug info it asks for.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-Ccodegen-units=16 -Cdebuginfo=line-tables-only"
case "${FUZZ_SANITIZER:-none}" in
  none) ;;
  address)
    export RUSTC_BOOTSTRAP=1 RUSTFLAGS="$RUSTFLAGS -Zsanitizer=address"
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"
    target_dir="$target_dir-asan" ;;
  *) log "fuzz: FUZZ_SANITIZER is none or address"; exit 2 ;;
esac
build_args=(--sanitizer none --strip-dead-code=true --target-dir "$target_dir")

crates=()
for spec in "${specs[@]}"; do
  crate="${spec%%/*}"
  [ -f "functions/$crate/fuzz/Cargo.toml" ] || { log "fuzz: no fuzz crate functions/$crate/fuzz"; exit 2; }
  case " ${crates[*]-} " in *" $crate "*) ;; *) crates+=("$crate") ;; esac
done

for crate in "${crates[@]}"; do
  started=$SECONDS
  log "fuzz: building functions/$crate/fuzz"
  cargo fuzz build --fuzz-dir "functions/$crate/fuzz" "${build_args[@]}"
  log "fuzz: built functions/$crate/fuzz in $((SECONDS - started)) s"
done

mkdir -p "$work/logs"
# One target: replay its regressions, then fuzz. Output goes to its log, the verdict to
# $work/logs/<crate>-<target>.status.
fuzz_one() {
  local crate="${1%%/*}" target="${1#*/}"
  local dir="functions/$crate/fuzz" name="${1/\//-}"
  local out="$work/logs/$name.log" corpus="$work/corpus/$name"
  local opts=(-rss_limit_mb="$rss_mb" -timeout="$timeout_s" -print_final_stats=1)
  mkdir -p "$corpus" "$dir/artifacts/$target"
  : >"$out"
  touch "$work/logs/$name.started"
  if [ -n "$(ls -A "$dir/regressions/$target" 2>/dev/null)" ]; then
    if ! cargo fuzz run --fuzz-dir "$dir" "${build_args[@]}" "$target" "$dir/regressions/$target"/* \
        -- "${opts[@]}" >>"$out" 2>&1; then
      echo "an input in $dir/regressions/$target fails again" >"$work/logs/$name.status"
      return
    fi
  fi
  if cargo fuzz run --fuzz-dir "$dir" "${build_args[@]}" "$target" "$corpus" "$dir/corpus/$target" \
      -- "${opts[@]}" -max_total_time="$seconds" >>"$out" 2>&1; then
    echo "ok" >"$work/logs/$name.status"
  else
    echo "crashed" >"$work/logs/$name.status"
  fi
}

log "fuzz: ${specs[*]}: $seconds s each, $jobs at a time, -rss_limit_mb=$rss_mb -timeout=$timeout_s"
started=$SECONDS
for spec in "${specs[@]}"; do
  rm -f "$work/logs/${spec/\//-}.status"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$spec" &
done
wait
log "fuzz: fuzzed in $((SECONDS - started)) s"

failed=0
for spec in "${specs[@]}"; do
  crate="${spec%%/*}" target="${spec#*/}" name="${spec/\//-}"
  out="$work/logs/$name.log"
  status="$(cat "$work/logs/$name.status" 2>/dev/null || echo "no result")"
  stats="$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$out" \
    | sed -E 's/^stat::([a-z_]+): +/\1=/' | tr '\n' ' ' || true)"
  log "fuzz: $spec: $status ${stats:+($stats)}"
  # Panics in third-party parsers and decoders, which production turns into a 422 for
  # that file (infra/fuzz/panic_policy.rs): listed, not failed; upstream bugs to report.
  grep -h '^contained third-party panic: ' "$out" 2>/dev/null | sort -u | sed 's/^/  /' >&2 || true
  if [ "$status" != ok ]; then
    failed=1
    # The panic (or libFuzzer's verdict) and what cargo-fuzz says about the input.
    grep -E -A3 "panicked at|ERROR: libFuzzer|SUMMARY" "$out" >&2 || tail -n 40 "$out" >&2
    { grep '^Running: ' "$out" | tail -n 1 | cut -d' ' -f2- || true
      find "functions/$crate/fuzz/artifacts/$target" -type f -newer "$work/logs/$name.started" 2>/dev/null || true
    } | while read -r input; do
      log "fuzz: $spec: crashing input $input"
      log "  reproduce: PATH=$tools/bin:\$PATH RUSTFLAGS='$RUSTFLAGS' cargo fuzz run --fuzz-dir functions/$crate/fuzz ${build_args[*]} $target $input"
    done
    log "  full log: $out"
  fi
done
exit "$failed"
