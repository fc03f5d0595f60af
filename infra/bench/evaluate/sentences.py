"""Deterministic 30-word sentences for the benchmark (same input for Rust and Python)."""

import json
import random
import sys

WORDS = (
    "team project deadline customer data pipeline release latency revenue churn migration database service "
    "engineer manager design review incident outage budget quarter launch feature test deploy cluster cost "
    "improved reduced built led wrote analyzed proposed shipped measured trained organized fixed automated "
    "the a our my with for from into after before during while because and so then"
).split()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    rng = random.Random(7)
    out = [" ".join(rng.choice(WORDS) for _ in range(30)).capitalize() + "." for _ in range(n)]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
