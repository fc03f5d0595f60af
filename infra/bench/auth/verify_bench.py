#!/usr/bin/env python3
"""firebase-admin's verify_id_token on the certificates and tokens the Rust benchmark exported.

Usage: verify_bench.py --dir DIR [--seconds N]

DIR holds certs.json (Google's x509 document format), tokens.txt (one ID token a line)
and project.txt, as written by `cargo bench -p catalyst-auth --bench verify -- --export DIR`.

Never contacts Google: the certificates are served by a server this script starts on
127.0.0.1 (with Cache-Control, so firebase-admin's own HTTP cache applies as in
production), firebase-admin is pointed at it, and every socket connect to a
non-loopback address raises before any packet leaves.
"""

import argparse
import http.server
import ipaddress
import pathlib
import socket
import sys
import threading
import time


def loopback_only():
    """Refuse any connection that is not to 127.0.0.0/8 or ::1."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not ipaddress.ip_address(host).is_loopback:
                raise ConnectionRefusedError(f"benchmark guard: refusing to connect to {host}")
        return real_connect(self, address)

    socket.socket.connect = guarded


def serve_certs(body):
    hits = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits["n"] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Cache-Control", "public, max-age=3600, must-revalidate, no-transform")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/certs", hits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    d = pathlib.Path(args.dir)
    project = (d / "project.txt").read_text().strip()
    tokens = [t for t in (d / "tokens.txt").read_text().split("\n") if t]

    loopback_only()
    url, hits = serve_certs((d / "certs.json").read_bytes())

    import firebase_admin
    import google.auth.credentials
    from firebase_admin import _token_gen, auth, credentials

    # firebase-admin reads the certificate URL from this module constant when the auth
    # client is first built; point it at the local server before that happens.
    _token_gen.ID_TOKEN_CERT_URI = url
    assert ipaddress.ip_address(url.split("/")[2].split(":")[0]).is_loopback

    class NoCredential(credentials.Base):
        """Verifying ID tokens needs no Google credential."""

        def get_credential(self):
            return google.auth.credentials.AnonymousCredentials()

    app = firebase_admin.initialize_app(NoCredential(), {"projectId": project})

    # Same input, same answer: every exported token verifies, as the Rust side's did.
    for i, t in enumerate(tokens):
        claims = auth.verify_id_token(t, app=app)
        assert claims["uid"] == f"user-{i:04}", claims["uid"]

    n = 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        for t in tokens:
            auth.verify_id_token(t, app=app)
        n += len(tokens)
    elapsed = time.perf_counter() - started
    rate = n / elapsed
    if hits["n"] != 1:
        print(f"note: firebase-admin fetched the certificates {hits['n']} times", file=sys.stderr)
    print(
        f"firebase-admin {firebase_admin.__version__} verify_id_token (Python, cached certs): "
        f"{n} verifications in {elapsed:.2f} s = {rate:.0f}/s, {1e6 / rate:.1f} µs each"
    )
    print(f"RESULT python_per_sec={rate:.0f}")


if __name__ == "__main__":
    main()
