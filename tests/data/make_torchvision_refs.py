"""Generate tests/data/torchvision_auto_refs.npz: torchvision's outputs for each auto-augment op.

torchvision does not import beside augflow's pinned torch, so this runs in a separate venv:

    python -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy pillow scikit-image
    /tmp/tvenv/bin/python tests/data/make_torchvision_refs.py

For small crops of skimage.data photographs it records, per policy (RandAugment,
TrivialAugmentWide), op, magnitude bin, sign, interpolation and fill, the output of torchvision's own
op dispatch (`_apply_image_or_video_transform`, i.e. `torchvision.transforms.v2.functional` on a PIL
image) at the magnitude torchvision's `_AUGMENTATION_SPACE` gives. It also records every policy's
magnitude tables (AugMix's too) for the crop sizes. tests/ops/test_auto.py compares augflow's
kernels and tables with these.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import PIL
import PIL.Image
import torch
import torchvision
from skimage import data
from torchvision.transforms import v2

OUT = Path(__file__).with_name("torchvision_auto_refs.npz")

# (name, crop): different heights and widths, so a swapped h/w in a translate range shows up.
IMAGES = [
    ("astronaut", data.astronaut()[30:86, 180:236]),      # 56x56 RGB, face and suit edges
    ("chelsea", data.chelsea()[60:108, 150:214]),         # 48x64 RGB, fur
    ("coffee", data.coffee()[100:164, 200:248]),          # 64x48 RGB, cup rim
    ("camera", data.camera()[60:108, 200:248]),           # 48x48 grayscale
]

POLICIES = {
    "rand_augment": (v2.RandAugment, 31, (9, 30)),
    "trivial_augment_wide": (v2.TrivialAugmentWide, 31, (7, 30)),
}
TABLE_SPACES = {
    "rand_augment": (v2.RandAugment._AUGMENTATION_SPACE, (31, 11)),
    "trivial_augment_wide": (v2.TrivialAugmentWide._AUGMENTATION_SPACE, (31, 11)),
    "aug_mix": (v2.AugMix._AUGMENTATION_SPACE, (10,)),
    "aug_mix_partial": (v2.AugMix._PARTIAL_AUGMENTATION_SPACE, (10,)),
}
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def tables() -> dict[str, list | None]:
    out = {}
    for space, (table, bin_counts) in TABLE_SPACES.items():
        for _, img in IMAGES:
            h, w = img.shape[:2]
            for num_bins in bin_counts:
                for op, (fn, signed) in table.items():
                    values = fn(num_bins, h, w)
                    key = f"{space}/{op}/{num_bins}/{h}x{w}"
                    out[key] = None if values is None else [float(v) for v in values.tolist()]
                    out[key + "/signed"] = bool(signed)
    return out


def cases():
    """(image index, policy, op, bin, sign, interpolation, fill) to record."""
    for i, (_, img) in enumerate(IMAGES):
        for policy, (cls, num_bins, bins) in POLICIES.items():
            for op, (fn, signed) in cls._AUGMENTATION_SPACE.items():
                if fn(num_bins, *img.shape[:2]) is None:
                    yield i, policy, op, -1, 1, "nearest", None
                    continue
                for b in bins:
                    for sign in ((1, -1) if signed else (1,)):
                        yield i, policy, op, b, sign, "nearest", None
            # the other resamplings and fills, on the geometric ops at the largest bin (the kernels
            # are shared, so once, with RandAugment's magnitudes, is enough)
            for op in GEOMETRIC if policy == "rand_augment" else ():
                fills = [None, 128, [20, 200, 90] if img.ndim == 3 else [77]]
                for interp, fill in (("bilinear", fills[1]), ("bicubic", fills[2]), ("nearest", fills[2])):
                    yield i, policy, op, bins[-1], -1, interp, fill


def main() -> None:
    inputs = {f"input_{i}": img for i, (_, img) in enumerate(IMAGES)}
    rows, outputs, seen = [], [], {}
    for i, policy, op, b, sign, interp, fill in cases():
        img = IMAGES[i][1]
        cls, num_bins, _ = POLICIES[policy]
        transform = cls(num_magnitude_bins=num_bins, interpolation=interp, fill=fill)
        fn, _signed = cls._AUGMENTATION_SPACE[op]
        values = fn(num_bins, *img.shape[:2])
        magnitude = 0.0 if values is None else float(values[b]) * sign   # torchvision: magnitude *= -1
        pil = PIL.Image.fromarray(img)
        result = transform._apply_image_or_video_transform(pil, op, magnitude, interpolation=transform.interpolation,
                                                            fill=transform._fill)
        assert isinstance(result, PIL.Image.Image), type(result)
        out = np.asarray(result, dtype=np.uint8)
        assert out.shape == img.shape, (op, out.shape, img.shape)
        key = (i, out.tobytes())          # identical outputs (identity-like cases) are stored once
        if key not in seen:
            seen[key] = sum(o.size for o in outputs)
            outputs.append(out.ravel())
        rows.append({"image": i, "policy": policy, "op": op, "bin": b, "sign": sign, "magnitude": magnitude,
                     "interpolation": interp, "fill": fill, "offset": seen[key]})
    meta = {"versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                         "pillow": PIL.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
            "images": [name for name, _ in IMAGES], "cases": rows, "tables": tables()}
    np.savez_compressed(OUT, meta=np.array(json.dumps(meta)), outputs=np.concatenate(outputs), **inputs)
    print(f"{OUT}: {len(rows)} cases, {len(outputs)} distinct outputs, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
