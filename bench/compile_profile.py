"""Per-op profile of a compiled loader's sample stage: where a sample's time goes.

Times, per sample and in process CPU time, the decode, each plan item (fused groups as one) and
the conversion to tensors, for the default plan and for `passes=()`, on the ImageNet-size and
large JPEG sets; and the batch stage per image.

    python bench/compile_profile.py [--images 96] [--large-images 16] [--pipeline pipelines/imagenet_train.yaml]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import cv2  # noqa: E402
import torch  # noqa: E402
from _jpegs import jpeg_set  # noqa: E402

import augflow  # noqa: E402
from augflow import seeding  # noqa: E402
from augflow.compile import make_plan  # noqa: E402
from augflow.compile.backends.torch_loader import collate  # noqa: E402
from augflow.compile.batch_stage import BatchStage  # noqa: E402
from augflow.compile.explainer import _item_line  # noqa: E402
from augflow.compile.fused import run_affine_group  # noqa: E402
from augflow.compile.plan import AffineGroup  # noqa: E402
from augflow.compile.sample_stage import SampleStage, to_output  # noqa: E402
from augflow.steps import run_step  # noqa: E402


def profile(plan, paths: list[str]) -> dict[str, float]:
    stage = SampleStage(plan)
    spent: dict[str, float] = defaultdict(float)
    outs = []
    for index, path in enumerate(paths):
        rng = seeding.call_generator(plan.seed, 0, index)
        t = time.process_time()
        fields, pending = stage.decode({"image": path})
        sample, _ = plan.pipeline.prepare(fields)
        spent["decode (read, header; full decode unless pending)"] += time.process_time() - t
        for i, item in enumerate(stage.items):
            t = time.process_time()
            if isinstance(item, AffineGroup):
                sample = run_affine_group(item, sample, rng, pending if i == 0 else None)
            else:
                sample = run_step(item.step, sample, rng, None)
            spent[_item_line(item, "albumentations")[:90]] += time.process_time() - t
        t = time.process_time()
        out = to_output(sample)
        out["_index"], out["_epoch"] = index, 0
        outs.append(out)
        spent["to tensors"] += time.process_time() - t
    batch_stage = BatchStage(plan)
    t = time.process_time()
    for k in range(0, len(outs), 32):
        batch_stage(collate(outs[k:k + 32], plan.pipeline.spec.fields))
    spent["collate + batch stage"] += time.process_time() - t
    return {k: v / len(paths) * 1e3 for k, v in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--large-images", type=int, default=16)
    parser.add_argument("--pipeline", default="pipelines/imagenet_train.yaml")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    pipe = augflow.Pipeline.from_yaml(args.pipeline)
    for kind, count in (("imagenet", args.images), ("large", args.large_images)):
        paths = jpeg_set(kind, count)
        for label, passes in (("default passes", None), ("passes=()", ())):
            plan = make_plan(pipe, passes=passes)
            profile(plan, paths[:4])                      # warm-up
            rows = profile(plan, paths)
            print(f"\n{kind} JPEGs, {label}: ms of CPU per image")
            print("| step | ms/img |\n|---|---:|")
            for name, ms in rows.items():
                print(f"| {name} | {ms:.2f} |")
            print(f"| **total** | **{sum(rows.values()):.2f}** |", flush=True)


if __name__ == "__main__":
    main()
