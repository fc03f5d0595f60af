"""Summarise the JSON lines of each engine into one markdown table with ratios.

Usage: python report.py REFERENCE_TEXT_FILE ENGINE=JSONL...
Cold start and peak memory come from each process; seconds are the median over runs.
"""

import json
import re
import statistics
import sys


def words(s):
    return [w for w in (re.sub(r"[^\w']", "", x).lower() for x in s.split()) if w]


def wer(ref, hyp):
    r, h = words(ref), words(hyp)
    prev = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        cur = [i] + [0] * len(h)
        for j in range(1, len(h) + 1):
            cur[j] = min(prev[j - 1] + (r[i - 1] != h[j - 1]), prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return prev[len(h)] / max(1, len(r))


refs = dict(line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1]) if "\t" in line)
rows = []
for arg in sys.argv[2:]:
    name, path = arg.split("=", 1)
    lines = [json.loads(l) for l in open(path) if l.startswith("{")]
    cold = statistics.median(l["cold_start_s"] for l in lines if l["event"] == "loaded")
    files = [l for l in lines if l["event"] == "file"]
    peak = max(l["peak_mb"] for l in lines)
    by_file = {}
    for l in files:
        by_file.setdefault(l["file"].split("/")[-1], []).append(l)
    for f, ls in sorted(by_file.items()):
        secs = statistics.median(l["seconds"] for l in ls)
        rtf = statistics.median(l["rtf"] for l in ls)
        w = wer(refs.get(f, ""), ls[0]["text"]) if f in refs else float("nan")
        rows.append((name, f, cold, secs, rtf, peak, w, ls[0]["text"]))

base = {r[1]: r for r in rows if r[0] == rows[0][0]} if rows else {}
print("| engine | file | cold start s | seconds | RTF | peak MB | WER | × first engine's time |")
print("|---|---|---|---|---|---|---|---|")
for name, f, cold, secs, rtf, peak, w, _ in rows:
    ratio = secs / base[f][3] if f in base else float("nan")
    print(f"| {name} | {f} | {cold:.3f} | {secs:.3f} | {rtf:.3f} | {peak:.0f} | {w:.3f} | {ratio:.2f} |")
print()
for name, f, *_, text in rows:
    print(f"- {name} {f}: {text}")
