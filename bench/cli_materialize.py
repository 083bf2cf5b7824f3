"""Throughput of `augflow materialize` against the plain loop a user would otherwise write.

The peer: decode each file with Pillow, run the same albumentations Compose, save a PNG — no
manifest, no provenance, no atomic writes, not resumable. augflow: the materialize job (this
process, `--workers 1`; then 2 worker processes; then Ray with 2 workers), the same photographs,
copies and ops. Every variant writes PNGs, so the ratio is the price of augflow's bookkeeping.
Rounds alternate peer and augflow so machine noise hits both alike; medians are reported.

    python bench/cli_materialize.py [--inputs 48] [--copies 2] [--rounds 3] [--ray]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from augflow.io import engines  # noqa: E402
from augflow.io import materialize as mat  # noqa: E402

YAML = """augflow: 1
name: bench_materialize
seed: 0
sample:
  - random_resized_crop: {size: [224, 224], scale: [0.08, 1.0]}
  - horizontal_flip: {p: 0.5}
  - color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8}
"""
SHARD_SIZE = 16      # several shards, so that 2 workers both have work
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry")


def make_inputs(root: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        img = getattr(data, PHOTOS[i % len(PHOTOS)])()
        path = root / "in" / f"img{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).resize((320, 240)).save(path, quality=92)
        paths.append(path)
    return paths


def peer(paths: list[Path], copies: int, out: Path) -> float:
    compose = A.Compose([A.RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0)), A.HorizontalFlip(p=0.5),
                         A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8)], seed=0)
    out.mkdir(parents=True)
    t = time.perf_counter()
    for i, path in enumerate(paths):
        img = np.asarray(Image.open(path).convert("RGB"))
        for c in range(copies):
            Image.fromarray(compose(image=img)["image"]).save(out / f"{i:08d}-{c:03d}.png", compress_level=6)
    return time.perf_counter() - t


def augflow_job(pipeline: Path, src: Path, copies: int, out: Path, workers: int, engine: str) -> float:
    t = time.perf_counter()
    job = mat.plan(mat.JobOptions(pipeline=str(pipeline), input=str(src), output=str(out), copies=copies,
                                  shard_size=SHARD_SIZE))
    engines.run(job, engine=engine, workers=workers, on_error="raise")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=48)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ray", action="store_true", help="also time --engine ray (starts a local Ray instance)")
    args = ap.parse_args()
    n_out = args.inputs * args.copies
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_inputs(root, args.inputs)
        pipeline = root / "p.yaml"
        pipeline.write_text(YAML)
        times: dict[str, list[float]] = {"peer": [], "augflow w1": [], "augflow w2": [], "augflow ray w2": []}
        for r in range(args.rounds):
            for name in times:
                if name == "augflow ray w2" and not args.ray:
                    continue
                out = root / f"out-{r}-{name.replace(' ', '_')}"
                if name == "peer":
                    times[name].append(peer(paths, args.copies, out))
                else:
                    workers = 2 if "w2" in name else 1
                    engine = "ray" if "ray" in name else "local"
                    times[name].append(augflow_job(pipeline, root / "in", args.copies, out, workers, engine))
                shutil.rmtree(out)
    base = statistics.median(times["peer"])
    print(f"{args.inputs} JPEG inputs (320x240) x {args.copies} copies = {n_out} PNG outputs (224x224), "
          f"{args.rounds} rounds, median wall time; {os.cpu_count()} CPUs")
    print(f"{'variant':<16}{'seconds':>9}{'outputs/s':>11}{'ratio vs peer':>15}")
    for name, ts in times.items():
        if ts:
            m = statistics.median(ts)
            print(f"{name:<16}{m:>9.2f}{n_out / m:>11.1f}{m / base:>15.2f}")


if __name__ == "__main__":
    main()
