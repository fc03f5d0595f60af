#!/usr/bin/env python3
"""PDF text extraction beside the tools users would otherwise pick, in one run.

Usage: python3 functions/parse/bench/compare.py   (from the workspace root)
Needs: pdftotext (poppler-utils) and pypdf (pip install pypdf).
Runs the Rust benchmark (`bench_pdf`, an ignored test), times pdftotext (one process per
file, as a service would call it) and pypdf (in process) on the same PDFs, and reports
time per file, ratios, and text fidelity against pdftotext (token F1, order-insensitive,
and the share of pdftotext's consecutive line pairs that are consecutive in ours: reading order).
"""
import json, os, re, subprocess, sys, tempfile, time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "functions/parse/testdata"
RUNS = 30

def tokens(s):
    return re.findall(r"\w+", s.lower())

def token_f1(a, b):
    ca, cb = Counter(tokens(a)), Counter(tokens(b))
    tp = sum((ca & cb).values())
    if not tp:
        return 0.0
    p, r = tp / sum(ca.values()), tp / sum(cb.values())
    return 2 * p * r / (p + r)

def order_score(ours, ref):
    """Reading order: the share of pdftotext's consecutive line pairs that are also
    consecutive in our text (a two-column page read across both columns fails this)."""
    ref_lines = [" ".join(tokens(l)) for l in ref.splitlines() if tokens(l)]
    hay = " " + " ".join(tokens(ours)) + " "
    pairs = list(zip(ref_lines, ref_lines[1:]))
    found = sum(1 for a, b in pairs if f" {a} {b} " in hay)
    return found / max(1, len(pairs))

def main():
    out = Path(tempfile.mkdtemp(prefix="parse-bench-"))
    env = dict(os.environ, PARSE_BENCH_OUT=str(out))
    subprocess.run(["cargo", "test", "-q", "-p", "catalyst-parse", "bench_pdf", "--", "--ignored"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    ours = {r["file"]: r for r in json.loads((out / "catalyst.json").read_text())}
    import pypdf
    rows = []
    for name in sorted(ours):
        pdf = DATA / name
        t = time.perf_counter()
        for _ in range(RUNS):
            ref = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        poppler_ms = (time.perf_counter() - t) * 1e3 / RUNS
        t = time.perf_counter()
        for _ in range(RUNS):
            py = "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(str(pdf)).pages)
        pypdf_ms = (time.perf_counter() - t) * 1e3 / RUNS
        text = (out / f"{name}.txt").read_text()
        rows.append((name, ours[name]["pages"], ours[name]["extract_ms"], ours[name]["parse_ms"], poppler_ms, pypdf_ms,
                     token_f1(text, ref), order_score(text, ref), token_f1(py, ref), order_score(py, ref)))
    print("| file | pages | catalyst extract ms | catalyst full parse ms | pdftotext ms | pypdf ms | pdftotext/catalyst | pypdf/catalyst | catalyst token F1 vs pdftotext | catalyst line order | pypdf token F1 | pypdf line order |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} | {r[4]/r[2]:.1f}x | {r[5]/r[2]:.1f}x | {r[6]:.3f} | {r[7]:.3f} | {r[8]:.3f} | {r[9]:.3f} |")

if __name__ == "__main__":
    sys.exit(main())
