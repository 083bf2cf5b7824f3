"""Per-sample overhead of augflow's layer over calling the same albumentations Compose directly.

Both sides run the same transforms with the same parameters on the same photograph, in this
process, interleaved in short rounds (50 samples each side) so machine noise hits both alike.
Times are process CPU time (time.process_time), which other people's load on this shared machine
inflates far less than wall time. Reports the median time per sample and the ratio
augflow / albumentations (goal: <= 1.05), and that provenance is still there to read.

    python bench/overhead.py [--samples 400] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

import augflow  # noqa: E402

PIPELINE = {
    "augflow": 1,
    "name": "overhead",
    "sample": [
        {"random_resized_crop": {"size": [224, 224], "scale": [0.08, 1.0]}},
        {"horizontal_flip": {"p": 0.5}},
        {"color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8}},
        {"normalize": {}},
    ],
}


def reference_compose() -> A.Compose:
    return A.Compose([
        A.RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0)),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8),
        A.Normalize(),
    ], seed=0)


def time_per_sample(fn, images: list[np.ndarray], offset: int = 0) -> float:
    start = time.process_time()
    for i, img in enumerate(images):
        fn(img, offset + i)
    return (time.process_time() - start) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    photos = [data.astronaut(), data.chelsea(), data.coffee()]
    images = [photos[i % len(photos)] for i in range(args.samples)]
    compose = reference_compose()
    pipe = augflow.Pipeline.from_dict(PIPELINE)

    def run_albu(img, i):
        return compose(image=img)["image"]

    def run_augflow(img, i):
        return pipe({"image": img}, index=i)["image"]

    run_albu(images[0], 0), run_augflow(images[0], 0)   # warm-up: imports, caches
    albu, ours = [], []
    chunk = 50
    for _ in range(args.rounds):
        for k in range(0, len(images), chunk):
            albu.append(time_per_sample(run_albu, images[k:k + chunk], k))
            ours.append(time_per_sample(run_augflow, images[k:k + chunk], k))
    out = pipe({"image": images[0]}, index=0)
    assert out.provenance and out.provenance.to_json(), "provenance must stay available"
    a, o = statistics.median(albu), statistics.median(ours)
    print(f"albumentations Compose : {a * 1e6:8.1f} us/sample")
    print(f"augflow Pipeline       : {o * 1e6:8.1f} us/sample")
    print(f"overhead ratio (augflow / albumentations): {o / a:.3f}  "
          f"(extra {(o - a) * 1e6:.1f} us/sample; {args.samples} samples x {args.rounds} rounds in chunks of 50, "
          f"median of CPU time; provenance read back: {len(out.provenance)} ops)")


if __name__ == "__main__":
    main()
