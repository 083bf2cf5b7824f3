"""Real JPEGs for benchmarks: skimage photographs re-encoded (q90) at a few sizes, cached on disk.

ImageNet-like (500x375) and large (2400 px on the long side) sets; each file is a photograph
resized with INTER_AREA and written by OpenCV, so every decoder reads the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from skimage import data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
SIZES = {"imagenet": (500, 375), "large": (2400, 1800)}


def _photo(name: str) -> np.ndarray:
    img = getattr(data, name)()
    return img if img.ndim == 3 else np.stack([img] * 3, axis=-1)


def jpeg_set(kind: str, count: int, root: str | os.PathLike | None = None) -> list[str]:
    """Paths of `count` JPEGs of the `kind` set ("imagenet" or "large"), written once into `root`."""
    root = Path(root or os.environ.get("AUGFLOW_BENCH_DIR", "/tmp/augflow_bench_jpegs")) / kind
    root.mkdir(parents=True, exist_ok=True)
    w, h = SIZES[kind]
    paths = []
    for i in range(count):
        name = PHOTOS[i % len(PHOTOS)]
        path = root / f"{i:05d}_{name}.jpg"
        if not path.exists():
            img = _photo(name)
            if i % 2:   # portrait and landscape, as in real data
                img = np.ascontiguousarray(img.transpose(1, 0, 2))
            ww, hh = (w, h) if img.shape[1] >= img.shape[0] else (h, w)
            img = cv2.resize(img, (ww, hh), interpolation=cv2.INTER_AREA if ww < img.shape[1] else cv2.INTER_CUBIC)
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(str(path))
    return paths
