"""Does each compiler pass pay? Each pass on vs off, same run, same inputs, interleaved rounds.

- reduced_decode: sample stage (decode + random_resized_crop 224 + flip) on large (2400x1800) and
  ImageNet-size (500x375) JPEGs, with affine fusion on in both arms.
- affine_fusion: sample stage on decoded 500x375 arrays (no decode in the timing), for
  affine(rotate, scale) + crop + flip (fused by the pass), and crop + flip forced into one group
  (the pass leaves it apart: one resampling op and a flip save nothing).
- normalize_fusion: the whole loader (ImageNet pipeline, one worker process, batches of 32), where
  moving normalize out of the worker saves float32 work and 4x the bytes through IPC.

Sample-stage rates are images per second of process CPU time (robust to the shared machine's
load); the loader case is wall clock (its work is split over two processes).

    python bench/compile_passes.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import cv2  # noqa: E402
import torch  # noqa: E402
from _jpegs import jpeg_set  # noqa: E402

import augflow  # noqa: E402
from augflow.compile import make_plan  # noqa: E402
from augflow.compile.decoding import decode  # noqa: E402
from augflow.compile.sample_stage import SampleStage  # noqa: E402

CROP_FLIP = [{"random_resized_crop": {"size": [224, 224], "scale": [0.08, 1.0]}}, {"horizontal_flip": {"p": 0.5}}]
AFFINE_CROP_FLIP = [{"affine": {"rotate": [-20, 20], "scale": [0.9, 1.1]}}] + CROP_FLIP
IMAGENET = CROP_FLIP + [{"color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "p": 0.8}},
                        {"normalize": {}}, {"to_tensor": {}}]


def force_group(plan):
    """All sample ops as one affine group, whether the pass would group them or not."""
    from dataclasses import replace

    from augflow.compile.plan import AffineGroup
    return plan.replace(sample=replace(plan.sample, items=[AffineGroup([i.step for i in plan.sample.items])]))


def pipe(ops: list) -> augflow.Pipeline:
    return augflow.Pipeline.from_dict({"augflow": 1, "name": "bench", "sample": ops})


def stage_rate(stage: SampleStage, records: list) -> float:
    start = time.process_time()
    for i, rec in enumerate(records):
        stage(rec, i)
    return len(records) / (time.process_time() - start)


def loader_rate(loader) -> float:
    """Wall clock: the worker's CPU time is in another process (this machine is shared: noisy)."""
    start = time.perf_counter()
    n = sum(int(b["image"].shape[0]) for b in loader)
    return n / (time.perf_counter() - start)


def compare(title: str, arms: dict, run, rounds: int) -> str:
    for fn in arms.values():
        run(fn)
    rates = {name: [] for name in arms}
    for _ in range(rounds):
        for name, fn in arms.items():
            rates[name].append(run(fn))
    med = {name: statistics.median(v) for name, v in rates.items()}
    off, on = list(med)
    return f"| {title} | {med[off]:.0f} | {med[on]:.0f} | {med[on] / med[off]:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rows = ["| pass, case | off img/s | on img/s | speed-up |", "|---|---:|---:|---:|"]
    for kind, count in (("large", 16), ("imagenet", 96)):
        records = [{"image": p} for p in jpeg_set(kind, count)]
        p = pipe(CROP_FLIP)
        arms = {"off": SampleStage(make_plan(p, passes=["affine_fusion"])),
                "on": SampleStage(make_plan(p, passes=["affine_fusion", "reduced_decode"]))}
        rows.append(compare(f"reduced_decode, {kind} JPEGs, decode+crop+flip", arms,
                            lambda st: stage_rate(st, records), args.rounds))
        print(rows[-1], flush=True)
    arrays = [{"image": decode(p)} for p in jpeg_set("imagenet", 96)]
    for name, ops, fuse in (("affine+crop+flip", AFFINE_CROP_FLIP, "affine_fusion"),
                            ("crop+flip (forced group)", CROP_FLIP, force_group)):
        p = pipe(ops)
        arms = {"off": SampleStage(make_plan(p, passes=())), "on": SampleStage(make_plan(p, passes=[fuse]))}
        rows.append(compare(f"affine_fusion, {name}, decoded 500x375", arms, lambda st: stage_rate(st, arrays),
                            args.rounds))
        print(rows[-1], flush=True)
    paths = jpeg_set("imagenet", 128)
    p = pipe(IMAGENET)
    arms = {"off": p.compile(paths, batch_size=32, num_workers=1, passes=["affine_fusion", "reduced_decode"]),
            "on": p.compile(paths, batch_size=32, num_workers=1)}
    rows.append(compare("normalize_fusion, ImageNet loader, 1 worker", arms, loader_rate, args.rounds))
    print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
