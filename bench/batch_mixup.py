"""Batch MixUp: augflow's batched kernel vs the per-element Python loop it replaced, same params.

A batch of 64 images 3x32x32 float32 (CIFAR-sized, where the loop showed up in a training run),
every element mixed. Interleaved rounds, one torch thread; median and best ms per batch (on a
shared machine the best round is the least disturbed one).

    python bench/batch_mixup.py [--batch 64] [--size 32] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from augflow import registry
from augflow.ops.batch.kernels import BatchContext
from augflow.ops.batch.paste import partner
from augflow.sample import FieldSpec


def loop_mixup(x: torch.Tensor, params: list) -> torch.Tensor:
    """The per-element form (what MixUp.apply_batch did before, for the image field)."""
    new = x.clone()
    for i, p in enumerate(params):
        j, lam = partner(p["partner"], i, len(params)), p["lam"]
        new[i] = lam * x[i] + (1 - lam) * x[j]
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = torch.rand(args.batch, 3, args.size, args.size)
    labels = torch.arange(args.batch) % 10
    params = [{"lam": float(rng.beta(0.2, 0.2)), "partner": float(rng.random())} for _ in range(args.batch)]
    op = registry.get("mixup").build({"num_classes": 10})
    ctx = BatchContext({"image": FieldSpec("image"), "label": FieldSpec("label")})
    ours = op.apply_batch({"image": x, "label": labels}, params, ctx)["image"]
    assert torch.equal(ours, loop_mixup(x, params)), "batched MixUp must equal the loop"
    t_loop, t_ours = [], []
    for _ in range(args.rounds):
        t = time.perf_counter(); [loop_mixup(x, params) for _ in range(20)]; t_loop.append((time.perf_counter() - t) / 20)
        t = time.perf_counter(); [op.apply_batch({"image": x, "label": labels}, params, ctx) for _ in range(20)]
        t_ours.append((time.perf_counter() - t) / 20)
    for label, agg in (("median", statistics.median), ("best", min)):
        a, b = agg(t_loop), agg(t_ours)
        print(f"{label}: per-element loop (image only) {a * 1e3:.2f} ms/batch; augflow mixup (image + labels) "
              f"{b * 1e3:.2f} ms/batch; loop / augflow = {a / b:.2f}x")


if __name__ == "__main__":
    main()
