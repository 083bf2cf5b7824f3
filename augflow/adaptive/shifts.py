"""Crafted distribution shifts for validation (Ioannidis et al., "Crafting Distribution Shifts for
Validation and Training in Single Source Domain Generalization").

Source images are transformed by one augmentation *family* at a time (colour, blur/noise,
geometric, texture, digital, weather) into a validation set per family; the families are split
k-fold so that the families used for validation in a fold are never used to train in it. Model
selection on such a set then measures robustness to shifts the model did not train on.

    folds = family_folds(k=3)                        # [Fold(train=[...], val=[...]), ...]
    val = shifted(records, "blur_noise", seed=0)     # samples of one family, with provenance
    train_pipe = train_pipeline(folds[0], extra=[{"to_tensor": {}}])

`augflow shifts SOURCE --out DIR --k 3 --fold 0` writes the validation images of a fold, a
`manifest.jsonl`, `split.json` and the fold's training pipeline (`train.yaml`).
Each family is a `one_of` over ops of augflow's registry at strong settings; the paper's
"enhanced edge maps" and "style" families have no op in the registry and are not included.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

FAMILIES: dict[str, list[dict[str, Any]]] = {
    "color": [{"color_jitter": {"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.2, "p": 1.0}},
              {"rgb_shift": {"r_shift_limit": 60, "g_shift_limit": 60, "b_shift_limit": 60, "p": 1.0}},
              {"random_gamma": {"gamma_limit": [50, 200], "p": 1.0}}],
    "blur_noise": [{"gaussian_blur": {"blur_limit": [3, 5], "sigma_limit": [0.8, 1.6], "p": 1.0}},
                   {"motion_blur": {"blur_limit": [3, 7], "p": 1.0}},
                   {"gauss_noise": {"std_range": [0.1, 0.25], "p": 1.0}}],
    "geometric": [{"affine": {"rotate": [-30, 30], "shear": [-15, 15], "scale": [0.8, 1.2], "p": 1.0}},
                  {"perspective": {"scale": [0.05, 0.12], "p": 1.0}},
                  {"grid_distortion": {"distort_limit": [-0.4, 0.4], "p": 1.0}}],
    "texture": [{"emboss": {"alpha": [0.5, 0.9], "strength": [0.5, 1.0], "p": 1.0}},
                {"sharpen": {"alpha": [0.5, 0.9], "p": 1.0}},
                {"coarse_dropout": {"num_holes_range": [2, 6], "hole_height_range": [0.1, 0.2],
                                    "hole_width_range": [0.1, 0.2], "p": 1.0}}],
    "digital": [{"image_compression": {"quality_range": [5, 20], "p": 1.0}},
                {"downscale": {"scale_range": [0.3, 0.5], "p": 1.0}},
                {"posterize": {"num_bits": [2, 3], "p": 1.0}}],
    "weather": [{"random_fog": {"fog_coef_range": [0.3, 0.6], "p": 1.0}},
                {"random_brightness_contrast": {"brightness_limit": [-0.4, 0.4], "contrast_limit": [-0.5, 0.5],
                                                "p": 1.0}},
                {"invert_img": {"p": 1.0}}],
}


@dataclass
class Fold:
    """One split of the families: validate on `val`, train only with `train`."""

    index: int
    train: list[str]
    val: list[str]


def family_folds(k: int = 3, families: Sequence[str] | None = None, seed: int = 0) -> list[Fold]:
    """Split the families into k folds (a seeded permutation, dealt round robin): each family is a
    validation family in exactly one fold and a training family in the others."""
    names = list(families if families is not None else FAMILIES)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown shift families {unknown} (known: {', '.join(FAMILIES)})")
    if not 2 <= k <= len(names):
        raise ValueError(f"k must be between 2 and the number of families ({len(names)}), got {k}")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    val_sets = [sorted(order[f::k]) for f in range(k)]
    return [Fold(f, sorted(n for n in names if n not in val_sets[f]), val_sets[f]) for f in range(k)]


def family_pipeline(family: str, seed: int = 0, extra: Iterable[dict] = ()):
    """The pipeline of one family (a `one_of` over its ops), then `extra` steps."""
    from augflow import Pipeline

    if family not in FAMILIES:
        raise ValueError(f"unknown shift family {family!r} (known: {', '.join(FAMILIES)})")
    return Pipeline.from_dict({"augflow": 1, "name": f"shift_{family}", "seed": int(seed),
                               "sample": [{"one_of": {"ops": FAMILIES[family]}}, *extra]})


def train_pipeline(fold: Fold, seed: int = 0, p: float = 0.8, extra: Iterable[dict] = ()):
    """A training pipeline for a fold: one op of its training families per sample (with prob. p),
    never an op of its validation families."""
    from augflow import Pipeline

    ops = [op for fam in fold.train for op in FAMILIES[fam]]
    return Pipeline.from_dict({"augflow": 1, "name": f"shift_fold{fold.index}_train", "seed": int(seed),
                               "sample": [{"one_of": {"ops": ops, "p": float(p)}}, *extra]})


def shifted(records: Sequence[Any], family: str, seed: int = 0, copies: int = 1) -> Iterator[tuple[int, int, Any]]:
    """(source index, copy, augmented sample) for every record and copy, under one family:
    copy c of record i is `family_pipeline(family, seed)(record, index=i, epoch=c)`."""
    pipe = family_pipeline(family, seed)
    for c in range(copies):
        for i in range(len(records)):
            yield i, c, pipe(_load(records[i]), index=i, epoch=c)


def materialize_shifts(records: Sequence[Any], out: str | Path, families: Sequence[str], *, seed: int = 0,
                       copies: int = 1) -> list[dict[str, Any]]:
    """Write `out/<family>/<index>_<copy>.png` and `out/manifest.jsonl` (image, label, family,
    source_index, copy, provenance); returns the manifest rows."""
    from PIL import Image

    out = Path(out)
    rows = []
    for family in families:
        (out / family).mkdir(parents=True, exist_ok=True)
        for i, c, sample in shifted(records, family, seed, copies):
            img = np.asarray(sample["image"])
            if img.dtype != np.uint8:
                img = np.clip(img * (255.0 if img.dtype.kind == "f" else 1.0), 0, 255).astype(np.uint8)
            rel = f"{family}/{i:06d}_{c}.png"
            Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img).save(out / rel)
            rows.append({"image": rel, "label": _label(sample), "family": family, "source_index": i, "copy": c,
                         "provenance": json.loads(sample.provenance.to_json())})
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return rows


def write_split(folds: list[Fold], out: str | Path) -> Path:
    path = Path(out) / "split.json"
    path.write_text(json.dumps({"families": {k: v for k, v in FAMILIES.items()},
                                "folds": [asdict(f) for f in folds]}, indent=1), encoding="utf-8")
    return path


def _load(record: Any) -> dict[str, Any]:
    if isinstance(record, dict) and not isinstance(record.get("image"), (str, Path)):
        return record
    from augflow.io.decode import load_image

    rec = dict(record) if isinstance(record, dict) else {"image": record}
    rec["image"] = load_image(rec["image"], "rgb")
    return rec


def _label(sample: Any) -> Any:
    label = sample.get("label")
    return label.item() if hasattr(label, "item") else label
