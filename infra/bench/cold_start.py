"""Cold start of every function binary beside a FastAPI + uvicorn equivalent, in one run.

For each server: process start -> first /healthz 200, and -> first answer of a real
route, median over N fresh processes; peak resident memory (VmHWM) after the real
answer; binary size. Requests go over raw loopback sockets so the client adds little.
"""

import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS = int(os.environ.get("RUNS", "15"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=b"", content_type="application/json", timeout=2.0):
    """One HTTP/1.1 request; returns the status code, or None if nothing listens yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            if body:
                head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            s.sendall(head.encode() + b"\r\n" + body)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return int(data.split(b" ", 2)[1]) if data else None
    except OSError:
        return None


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Spawned:
    """The little of Popen's interface the harness needs, for a posix_spawn'd child."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass

    def wait(self):
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def measure(argv, env, real):
    """One fresh process: (ms to healthz, ms to first real answer, peak KiB)."""
    port = free_port()
    env = dict(env, PORT=str(port))
    if "{port}" in " ".join(argv):
        argv = [a.replace("{port}", str(port)) for a in argv]
    devnull = os.open(os.devnull, os.O_WRONLY)
    # posix_spawn (vfork+exec) rather than Popen's fork of this whole interpreter, so the
    # harness adds as little as possible to the time it measures, for both sides alike.
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    proc = Spawned(pid)
    os.close(devnull)
    try:
        while True:
            if request(port, "GET", "/healthz") == 200:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}")
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"{argv[0]} not healthy in 30 s")
            time.sleep(0.0001)
        t_health = time.perf_counter() - t0
        method, path, body, content_type = real
        status = request(port, method, path, body if body is not None else jfk(), content_type, timeout=30.0)
        t_real = time.perf_counter() - t0
        if status != 200:
            raise RuntimeError(f"{argv[0]} {method} {path} answered {status}")
        return t_health * 1e3, t_real * 1e3, peak_rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


JOB_PAGE = (b'{"html": "<html><head><title>Senior Rust Engineer</title></head><body><nav>Jobs</nav>'
            b'<main><h1>Senior Rust Engineer</h1><p>We build serverless interview tools in Rust and need an '
            b'engineer who has shipped production services, measured their latency and kept them safe.</p>'
            b'<h2>Requirements</h2><ul><li>5 years of Rust or C++</li><li>AWS Lambda</li></ul></main></body></html>"}')
RESUME = (b"Jane Doe\njane.doe@example.com\n+44 20 7946 0958\n\nExperience\nSenior Engineer, Acme Ltd\n"
          b"2019 - Present\n- Led the billing migration, cutting costs by 30%\n\nEducation\nBSc Computer Science, "
          b"University of Leeds, 2015\n\nSkills\nRust, Python, AWS, PostgreSQL\n")
ANSWER = (b'{"question": "Tell me about a time you led a project.", "answer": "Last year our billing service kept '
          b'timing out. I was asked to fix it before the holiday peak. I profiled the queries, rewrote the two worst '
          b'ones and added a cache. Timeouts fell by 90 percent and we handled twice the traffic."}')


def jfk():
    path = os.path.join(ROOT, "functions", "transcribe", "testdata", "jfk.wav")
    with open(path, "rb") as f:
        return f.read()


# The first real answer of each function: models load at start, so a model function's
# health time includes loading it.
REAL = {
    "auth": ("GET", "/v1/auth/whoami", b"", "application/json"),
    "agent": ("GET", "/v1/interviews", b"", "application/json"),
    "optimize": ("GET", "/v1/prompts", b"", "application/json"),
    "scrape": ("POST", "/v1/scrape", JOB_PAGE, "application/json"),
    "parse": ("POST", "/v1/parse", RESUME, "text/plain"),
    "evaluate": ("POST", "/v1/evaluate", ANSWER, "application/json"),
    "transcribe": ("POST", "/v1/transcribe", None, "audio/wav"),
}
MODEL_FUNCTIONS = {"parse", "evaluate", "transcribe"}


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    bindir = os.path.join(target, "release")
    python = os.environ.get("BENCH_PYTHON", sys.executable)
    rows = []
    data = tempfile.mkdtemp(prefix="catalyst-bench-")
    base_env = {
        "PATH": os.environ.get("PATH", ""),
        "CATALYST_AUTH": "off",
        "CATALYST_LOG": "warn",
        "CATALYST_DATA_DIR": data,
        "AWS_EC2_METADATA_DISABLED": "true",
        "CATALYST_MODELS_DIR": os.environ.get("CATALYST_MODELS_DIR", os.path.join(ROOT, ".catalyst", "models")),
    }
    try:
        results = {}
        for name, real in REAL.items():
            path = os.path.join(bindir, name)
            if not os.path.exists(path):
                print(f"skipping {name}: {path} not built", file=sys.stderr)
                continue
            runs = max(3, RUNS // 3) if name in MODEL_FUNCTIONS else RUNS
            samples = [measure([path], base_env, real) for _ in range(runs)]
            results[name] = (samples, os.path.getsize(path))
        py_argv = [python, "-m", "uvicorn", "--app-dir", os.path.dirname(os.path.abspath(__file__)),
                   "fastapi_app:app", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"]
        py = {name: [measure(py_argv, base_env, real) for _ in range(max(3, RUNS // 3))] for name, real in REAL.items()
              if name in ("auth", "agent")}
    finally:
        shutil.rmtree(data, ignore_errors=True)

    med = lambda xs: statistics.median(xs)
    print(f"Cold start, median of {RUNS} fresh processes (model functions and Python: {max(3, RUNS // 3)}); "
          f"{os.cpu_count()} cores; release build. Model functions load their models before /healthz answers.\n")
    print("| function | binary (stripped) | start → /healthz | start → first real answer | peak RSS | "
          "FastAPI+uvicorn → real answer | Python peak RSS | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    out = {}
    for name, (samples, size) in results.items():
        h = med([s[0] for s in samples])
        r = med([s[1] for s in samples])
        rss = med([s[2] or 0 for s in samples]) / 1024
        if name in py:
            pr = med([s[1] for s in py[name]])
            prss = med([s[2] or 0 for s in py[name]]) / 1024
            py_cols = f"{pr:.0f} ms | {prss:.0f} MB | {pr / r:.0f}×"
        else:
            pr, py_cols = None, "— | — | —"
        print(f"| {name} | {size / 1e6:.1f} MB | {h:.1f} ms | {r:.1f} ms | {rss:.1f} MB | {py_cols} |")
        out[name] = {"size": size, "healthz_ms": h, "real_ms": r, "rss_mb": rss, "python_real_ms": pr}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cold_start.json"), "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
