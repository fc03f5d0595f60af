"""Python baseline for the evaluate benchmark: onnxruntime with the same ONNX model and
tokenizer.json, batched and pooled the way fastembed does it (Hugging Face `tokenizers`,
pad to the longest in the batch, mean pooling over the mask, L2 normalisation).

Usage: python bench_python.py cold MODELS_DIR | warm MODELS_DIR SENTENCES.json THREADS
Prints one JSON line, like the Rust side (`cargo run --release --example bench`).
"""

import json
import sys
import time

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

BATCH = 32


class Embedder:
    def __init__(self, models, threads):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(f"{models}/minilm/model.onnx", opts, providers=["CPUExecutionProvider"])
        self.names = {i.name for i in self.sess.get_inputs()}
        self.tok = Tokenizer.from_file(f"{models}/minilm/tokenizer.json")
        self.tok.enable_truncation(256)
        self.tok.enable_padding()

    def embed(self, texts):
        out = []
        for i in range(0, len(texts), BATCH):
            enc = self.tok.encode_batch(texts[i : i + BATCH])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.sess.run(None, {k: v for k, v in feed.items() if k in self.names})[0]
            m = mask[..., None].astype(np.float32)
            v = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return np.concatenate(out)


def main():
    mode, models = sys.argv[1], sys.argv[2]
    if mode == "cold":
        e = Embedder(models, 1)
        e.embed(["Tell me about a time you improved a process.", "I wrote a pipeline and trained the team."])
        print(json.dumps({"first_embedding_ms": round((time.perf_counter() - T0) * 1e3, 1)}))
    else:
        sentences = json.load(open(sys.argv[3]))
        threads = int(sys.argv[4])
        e = Embedder(models, threads)
        e.embed(sentences[:8])
        t = time.perf_counter()
        v = e.embed(sentences)
        assert len(v) == len(sentences)
        print(json.dumps({"embeddings_per_s": round(len(sentences) / (time.perf_counter() - t), 1), "threads": threads}))


if __name__ == "__main__":
    main()
