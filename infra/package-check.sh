#!/usr/bin/env bash
# Proves every function still cross-compiles and links for AWS Lambda on arm64 (Graviton),
# the way `catalyst package aws` deploys them: cargo-lambda with Zig as the cross linker,
# for Lambda's glibc. It builds unoptimised (`catalyst package aws --check`, the
# `lambda-check` profile, ~4 minutes on 2 cores) into target/lambda-check/, where nothing
# deploys from; the size-tuned release build takes ~8 minutes per function and is left to
# `catalyst package aws`.
#
# Installs what it needs itself: the Rust target with rustup, cargo-lambda and ziglang
# from PyPI into $CATALYST_DATA_DIR/tools/lambda-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
tools="${CATALYST_DATA_DIR:-$root/.catalyst}/tools"

if ! rustc --print target-libdir --target aarch64-unknown-linux-gnu >/dev/null 2>&1 \
  || [ ! -d "$(rustc --print target-libdir --target aarch64-unknown-linux-gnu)" ]; then
  command -v rustup >/dev/null 2>&1 || { echo "package check: rustup is needed to add aarch64-unknown-linux-gnu" >&2; exit 1; }
  rustup target add aarch64-unknown-linux-gnu
fi

venv="$tools/lambda-venv"
if ! "$venv/bin/cargo-lambda" --version 2>/dev/null | grep -q '1\.9\.2' || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda==1.9.2' 'ziglang==0.17.1'
fi
export PATH="$venv/bin:$PATH"

"$target/debug/catalyst" package aws --arch arm64 --check
