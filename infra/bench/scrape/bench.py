#!/usr/bin/env python3
"""Extraction quality and speed of catalyst-scrape beside trafilatura, in one run.

    pip install trafilatura lxml_html_clean
    python3 infra/bench/scrape/bench.py PAGES_DIR [--truth TRUTH_DIR] [--rounds N]

PAGES_DIR holds `*.html`; TRUTH_DIR (default PAGES_DIR) may hold `<name>.truth.txt`,
the hand-checked main text of a page. Quality is measured as article-extraction
benchmarks do: 4-token shingles over `\\w+` tokens, true/false positives and negatives
normalised per page, precision and recall averaged over pages, F1 of the two. Speed
is the best of N rounds of extraction alone (no file I/O), on one core each.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time

TOKEN = re.compile(r"\w+", re.UNICODE)


def shingles(text, n=4):
    toks = TOKEN.findall(text.lower())
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def page_pr(pred, truth):
    p, t = shingles(pred), shingles(truth)
    if not t:
        return None
    tp = len(p & t)
    fp = len(p - t)
    fn = len(t - p)
    # Normalised per page: each page weighs the same whatever its length.
    precision = tp / (tp + fp) if tp + fp else (1.0 if not p else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def score(outputs, truths):
    prs = [page_pr(outputs.get(k, ""), v) for k, v in truths.items()]
    prs = [x for x in prs if x is not None]
    if not prs:
        return None
    p = sum(x[0] for x in prs) / len(prs)
    r = sum(x[1] for x in prs) / len(prs)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), len(prs)


def run_ours(pages, rounds, root):
    out = tempfile.mkdtemp(prefix="scrape-bench-")
    # Dev profile with our crates optimised too: a fat-LTO release build takes too long here.
    env = dict(os.environ, CARGO_PROFILE_DEV_OPT_LEVEL="3")
    cmd = ["cargo", "run", "--quiet", "-p", "catalyst-scrape", "--example", "extract_pages",
           "--", pages, "--out", out, "--rounds", str(rounds)]
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=True)
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    texts = {f[:-4]: open(os.path.join(out, f), encoding="utf-8").read() for f in os.listdir(out) if f.endswith(".txt")}
    return stats, texts


def run_trafilatura(htmls, rounds):
    import trafilatura
    best, texts = float("inf"), {}
    for _ in range(rounds):
        t0 = time.perf_counter()
        texts = {k: trafilatura.extract(v) or "" for k, v in htmls.items()}
        best = min(best, time.perf_counter() - t0)
    return best, texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pages")
    ap.add_argument("--truth")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    pages = os.path.abspath(a.pages)
    names = sorted(f[:-5] for f in os.listdir(pages) if f.endswith(".html"))
    htmls = {}
    for n in names:
        with open(os.path.join(pages, n + ".html"), "rb") as fh:
            htmls[n] = fh.read().decode("utf-8", errors="replace")
    truth_dir = a.truth or pages
    truths = {}
    for n in names:
        p = os.path.join(truth_dir, n + ".truth.txt")
        if os.path.exists(p):
            truths[n] = open(p, encoding="utf-8").read()
    mb = sum(len(v.encode()) for v in htmls.values()) / 1e6

    stats, ours = run_ours(pages, a.rounds, root)
    t_secs, theirs = run_trafilatura(htmls, a.rounds)
    rows = [("catalyst-scrape", stats["seconds"], ours), ("trafilatura (Python)", t_secs, theirs)]
    print(f"{len(names)} pages, {mb:.2f} MB, {len(truths)} with hand-checked truth, best of {a.rounds} rounds\n")
    print("| extractor | pages/s | MB/s | precision | recall | F1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, secs, texts in rows:
        s = score(texts, truths)
        q = f"{s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f}" if s else "– | – | –"
        print(f"| {name} | {len(names) / secs:.1f} | {mb / secs:.2f} | {q} |")
    print(f"\nspeed ratio catalyst/trafilatura: {t_secs / stats['seconds']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
