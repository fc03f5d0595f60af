"""faster-whisper side of the transcribe benchmark: the same CTranslate2 model directory,
greedy decoding (beam 1), timestamps on, no VAD, the given threads and compute type.

Usage: python bench_python.py MODEL_DIR COMPUTE_TYPE THREADS AUDIO...
Prints JSON lines like the Rust side (`examples/transcribe_file.rs`).
"""

import json
import resource
import sys
import time

T0 = time.perf_counter()

from faster_whisper import WhisperModel  # noqa: E402


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    model_dir, compute_type, threads, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads)
    print(json.dumps({"event": "loaded", "cold_start_s": time.perf_counter() - T0, "peak_mb": peak_mb()}))
    for f in files:
        t = time.perf_counter()
        segments, info = model.transcribe(f, beam_size=1, language="en", vad_filter=False)
        text = "".join(s.text for s in segments).strip()
        secs = time.perf_counter() - t
        print(json.dumps({"event": "file", "file": f, "seconds": secs, "rtf": secs / info.duration,
                          "text": text, "peak_mb": peak_mb()}), flush=True)


main()
