"""llama-cpp-python on the same GGUF, prompt, greedy decoding and thread count as
`bench_local_tokens_per_second` in shared/src/llm/bench.rs. Prints one JSON line.

    python bench_llama_cpp.py MODEL.gguf THREADS MAX_TOKENS
"""
import json
import sys
import time

from llama_cpp import Llama

gguf, threads, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

started = time.perf_counter()
llm = Llama(model_path=gguf, n_ctx=2048, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
load_ms = (time.perf_counter() - started) * 1000

# The same ChatML prompt the Rust side renders (checked by its chat-template test).
prompt = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nWrite a detailed story about a software engineer who leads a difficult database migration.<|im_end|>\n"
    "<|im_start|>assistant\n"
)
tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
stop = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}


def run(limit):
    llm.reset()
    t0 = time.perf_counter()
    first = None
    out = []
    for tok in llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if first is None:
            first = time.perf_counter() - t0
        if tok in stop:
            break
        out.append(tok)
        if len(out) >= limit:
            break
    return first, time.perf_counter() - t0, out


run(4)  # warm-up, as on the Rust side
first, total, out = run(max_tokens)
text = llm.detokenize(out).decode("utf-8", "replace")
print(json.dumps({
    "bench": "llama_cpp_python",
    "threads": threads,
    "load_ms": round(load_ms),
    "prompt_tokens": len(tokens),
    "prefill_ms": round(first * 1000),
    "prefill_tokens_per_s": round(len(tokens) / first, 1),
    "output_tokens": len(out),
    "generate_tokens_per_s": round((len(out) - 1) / (total - first), 1),
    "text_head": text[:60],
}))
