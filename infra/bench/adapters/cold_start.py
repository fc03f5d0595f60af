"""What a cloud adapter adds to a cold start: the same release binary, its store on the
embedded SQLite file versus DynamoDB (moto on 127.0.0.1) and Firestore (Google's
emulator on 127.0.0.1), process start -> /healthz and
-> first answer of a route that reads the store (auth's GET /v1/auth/api-keys; auth loads
no models, so only the adapter's cost shows).

Clients are created lazily, so /healthz should not move; the first real answer pays for
loading the SDK configuration, signing and the first connection. Run by run.sh, with the
Python of infra/test-servers.sh's venv (it has boto3, through moto).
"""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from cold_start import measure, free_port, ROOT  # noqa: E402

import boto3  # noqa: E402

RUNS = int(os.environ.get("RUNS", "15"))
REAL = ("GET", "/v1/auth/api-keys", b"", "application/json")


def wait_listening(proc, port, what, tries):
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not start")


def start_moto(tools):
    port = free_port()
    proc = subprocess.Popen([os.path.join(tools, "venv", "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(proc, port, "moto", 600)
    return proc, f"http://127.0.0.1:{port}"


def start_firestore():
    sdk = os.environ.get("CATALYST_CLOUD_SDK", "/usr/lib/google-cloud-sdk")
    port = free_port()
    proc = subprocess.Popen([os.path.join(sdk, "platform", "cloud-firestore-emulator", "cloud_firestore_emulator"),
                             "start", "--host=127.0.0.1", f"--port={port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_listening(proc, port, "the Firestore emulator", 1200)
    return proc, f"127.0.0.1:{port}"


def main():
    binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "auth")
    tools = os.environ.get("CATALYST_TEST_TOOLS", os.path.join(ROOT, ".catalyst", "tools"))
    moto, url = start_moto(tools)
    firestore, firestore_host = start_firestore()
    data = tempfile.mkdtemp(prefix="catalyst-adapters-")
    try:
        creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        ddb = boto3.client("dynamodb", endpoint_url=url, **creds)
        ddb.create_table(TableName="catalyst-api_keys", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
        base = {"PATH": os.environ.get("PATH", ""), "CATALYST_AUTH": "off", "CATALYST_LOG": "warn",
                "CATALYST_DATA_DIR": data, "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"}
        variants = {
            "file:// (SQLite)": dict(base),
            "dynamodb:// (moto)": dict(base, CATALYST_STORE_URL="dynamodb://catalyst", AWS_ENDPOINT_URL=url,
                                       AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"),
            "firestore:// (emulator)": dict(base, CATALYST_STORE_URL="firestore://demo-catalyst/",
                                            FIRESTORE_EMULATOR_HOST=firestore_host),
        }
        # The emulator's JVM is slow on its first requests; warm it once, outside the samples.
        measure([binary], variants["firestore:// (emulator)"], REAL)
        rows = {}
        for name, env in variants.items():
            rows[name] = [measure([binary], env, REAL) for _ in range(RUNS)]
    finally:
        moto.kill()
        moto.wait()
        os.killpg(firestore.pid, 9)
        firestore.wait()
    med = statistics.median
    print(f"auth (release, built with --features aws,gcp), median of {RUNS} fresh processes, {os.cpu_count()} cores\n")
    print("| store | start → /healthz | start → first store read answered | peak RSS |")
    print("|---|---|---|---|")
    for name, samples in rows.items():
        print(f"| {name} | {med([s[0] for s in samples]):.1f} ms | {med([s[1] for s in samples]):.1f} ms | "
              f"{med([s[2] or 0 for s in samples]) / 1024:.1f} MB |")


if __name__ == "__main__":
    main()
