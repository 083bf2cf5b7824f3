"""MedMNIST-C corruptions: per-modality sets of realistic image corruptions, five severities each.

Di Salvo, Doerrich, Ledig, "MedMNIST-C: Comprehensive benchmark and improved classifier robustness
by simulating realistic image corruptions" (2024, arXiv:2406.17536). The sets and the severity
tables below are those of the reference code (`medmnistc` 0.1.0,
medmnistc/corruptions/registry.py, Apache-2.0), copied value for value: each MedMNIST dataset
(one imaging modality) has its own subset of corruptions and its own five parameters per
corruption. Severity s uses table entry s - 1, as the reference does when it builds the benchmark
(three tables carry a sixth entry that the benchmark never reaches; it is kept for fidelity).

The kernels (augflow/ops/medmnistc_kernels.py) work on 8-bit RGB, as the reference does: a grey
image is expanded to RGB, corrupted, and brought back with Pillow's "L" conversion, which is how
the reference produces its grey datasets; for a grey modality an RGB input comes back grey in all
three channels. uint16 and float32 images go through 8 bits (the benchmark's definition).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field, ValidationInfo, field_validator

from augflow.ops import medmnistc_kernels as K
from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample

_ORGAN = {   # organamnist, organcmnist and organsmnist (abdominal CT, three planes) share one table
    "pixelate": [0.7, 0.6, 0.5, 0.40, 0.35],
    "jpeg_compression": [50, 30, 15, 10, 7],
    "gaussian_noise": [0.04, 0.08, 0.12, 0.16, 0.20],
    "speckle_noise": [0.05, 0.10, 0.20, 0.30, 0.40],
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.08],
    "shot_noise": [200, 100, 50, 25, 15],
    "gaussian_blur": [11, 13, 15, 17, 21],
    "brightness_up": [1.2, 1.3, 1.4, 1.5, 1.6],
    "brightness_down": [0.8, 0.75, 0.7, 0.65, 0.60],
    "contrast_up": [1.3, 1.4, 1.6, 1.7, 1.8],
    "contrast_down": [0.8, 0.7, 0.6, 0.55, 0.5],
    "gamma_corr_up": [1.3, 1.4, 1.6, 1.8, 2.0],
    "gamma_corr_down": [0.9, 0.8, 0.7, 0.6, 0.4],
}

TABLES: dict[str, dict[str, list[Any]]] = {
    "pathmnist": {
        "pixelate": [0.8, 0.6, 0.40, 0.30, 0.25],
        "jpeg_compression": [50, 30, 15, 10, 7],
        "defocus_blur": [(3, 0.1), (4, 0.1), (5, 0.2), (6, 0.2), (7, 0.3)],
        "motion_blur": [(5, 5), (10, 5), (15, 5), (15, 8), (15, 12)],
        "brightness_up": [1.1, 1.15, 1.2, 1.22, 1.25],
        "brightness_down": [0.85, 0.80, 0.75, 0.72, 0.70],
        "contrast_up": [1.1, 1.2, 1.3, 1.4, 1.6],
        "contrast_down": [0.8, 0.7, 0.6, 0.55, 0.5],
        "saturate": [0.05, 0.10, 0.15, 0.20, 0.25],
        "stain_deposit": [1, 2, 3, 4, 5],
        "bubble": [(7, 15), (10, 15), (12, 15), (15, 20), (17, 25)],
    },
    "bloodmnist": {
        "pixelate": [0.6, 0.5, 0.40, 0.30, 0.25],
        "jpeg_compression": [50, 30, 15, 10, 7],
        "defocus_blur": [(2, 0.01), (3, 0.1), (4, 0.1), (5, 0.1), (6, 0.1)],
        "motion_blur": [(3, 3), (5, 5), (10, 5), (10, 7), (10, 9)],
        "brightness_up": [1.1, 1.2, 1.3, 1.35, 1.4],
        "brightness_down": [0.9, 0.8, 0.7, 0.6, 0.5],
        "contrast_up": [1.1, 1.15, 1.2, 1.25, 1.3],
        "contrast_down": [0.9, 0.8, 0.7, 0.6, 0.5],
        "saturate": [0.05, 0.10, 0.15, 0.17, 0.20],
        "stain_deposit": [1, 2, 3, 3, 3],
        "bubble": [(5, 10), (7, 10), (10, 10), (12, 12), (15, 12)],
    },
    "dermamnist": {
        "pixelate": [0.7, 0.5, 0.40, 0.30, 0.25],
        "jpeg_compression": [30, 20, 15, 10, 7],
        "gaussian_noise": [0.04, .08, .12, 0.18, 0.26],
        "speckle_noise": [0.05, 0.15, 0.2, 0.35, 0.45],
        "impulse_noise": [0.01, 0.03, 0.06, 0.09, 0.17],
        "shot_noise": [60, 25, 18, 10, 5],
        "defocus_blur": [(4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5)],
        "motion_blur": [(10, 5), (15, 5), (15, 8), (15, 12), (20, 15)],
        "zoom_blur": [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
                      np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)],
        "brightness_up": [1.1, 1.2, 1.3, 1.4, 1.5],
        "brightness_down": [0.9, 0.8, 0.7, 0.6, 0.5],
        "contrast_up": [1.1, 1.2, 1.3, 1.4, 1.6],
        "contrast_down": [0.8, 0.7, 0.6, 0.5, 0.4],
        "black_corner": [1.10, 1.05, 1.00, 0.90, 0.95],
        "characters": [(1, 6, 0.14), (2, 7, 0.15), (3, 8, 0.16), (4, 9, 0.17), (6, 10, 0.18)],
    },
    "retinamnist": {
        "pixelate": [0.8, 0.60, 0.50, 0.40, 0.35],
        "jpeg_compression": [30, 25, 20, 10, 5],
        "gaussian_noise": [0.04, 0.08, 0.12, 0.16, 0.20],
        "speckle_noise": [0.10, 0.15, 0.20, 0.25, 0.30],
        "defocus_blur": [(4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5), (9, 0.6)],
        "motion_blur": [(8, 5), (15, 5), (15, 8), (15, 12), (20, 15)],
        "brightness_down": [0.9, 0.8, 0.7, 0.6, 0.5],
        "contrast_down": [0.9, 0.8, 0.7, 0.6, 0.4],
    },
    "tissuemnist": {
        "pixelate": [0.40, 0.30, 0.20, 0.15, 0.10],
        "jpeg_compression": [25, 20, 15, 10, 7],
        "impulse_noise": [0.01, 0.015, 0.02, 0.025, 0.03],
        "gaussian_blur": [13, 15, 17, 21, 25],
        "brightness_up": [1.3, 1.4, 1.5, 1.6, 1.7],
        "brightness_down": [0.8, 0.7, 0.6, 0.5, 0.4],
        "contrast_up": [1.1, 1.2, 1.3, 1.4, 1.6],
        "contrast_down": [0.9, 0.8, 0.7, 0.6, 0.4],
    },
    "octmnist": {
        "pixelate": [0.30, 0.25, 0.20, 0.15, 0.10],
        "jpeg_compression": [30, 15, 10, 7, 5],
        "speckle_noise": [0.15, 0.30, 0.40, 0.50, 0.60],
        "defocus_blur": [(0.5, 0.6), (1, 0.5), (1.5, 0.1), (2.0, 0.5), (2.5, 0.1)],
        "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
        "contrast_down": [0.6, 0.4, 0.3, 0.2, 0.15],
    },
    "breastmnist": {
        "pixelate": [0.30, 0.25, 0.20, 0.15, 0.10],
        "jpeg_compression": [50, 30, 15, 10, 7],
        "speckle_noise": [0.10, 0.15, 0.20, 0.25, 0.30],
        "motion_blur": [(5, 5), (9, 7), (9, 10), (13, 10), (17, 12)],
        "brightness_up": [1.4, 1.5, 1.6, 1.8, 2.0],
        "brightness_down": [0.55, 0.5, 0.45, 0.4, 0.3],
        "contrast_down": [0.9, 0.8, 0.7, 0.6, 0.4],
    },
    "chestmnist": {
        "pixelate": [0.30, 0.25, 0.20, 0.15, 0.10],
        "jpeg_compression": [50, 30, 15, 10, 7],
        "gaussian_noise": [0.04, .08, .12, 0.18, 0.26],
        "speckle_noise": [0.05, 0.15, 0.2, 0.35, 0.45],
        "impulse_noise": [0.01, 0.03, 0.06, 0.09, 0.17],
        "shot_noise": [60, 25, 18, 10, 5],
        "gaussian_blur": [3, 5, 7, 9, 11, 13],
        "brightness_up": [1.1, 1.2, 1.3, 1.4, 1.5],
        "brightness_down": [0.9, 0.8, 0.7, 0.6, 0.5],
        "contrast_up": [1.1, 1.2, 1.3, 1.4, 1.6],
        "contrast_down": [0.9, 0.8, 0.7, 0.6, 0.4],
        "gamma_corr_up": [1.1, 1.2, 1.3, 1.4, 1.6],
        "gamma_corr_down": [0.9, 0.8, 0.7, 0.6, 0.4],
    },
    "pneumoniamnist": {
        "pixelate": [0.8, 0.7, 0.6, 0.5, 0.40],
        "jpeg_compression": [50, 30, 15, 10, 7],
        "gaussian_noise": [0.04, 0.05, 0.06, 0.07, 0.08],
        "speckle_noise": [0.05, 0.07, 0.10, 0.15, 0.20],
        "impulse_noise": [0.005, 0.01, 0.013, 0.017, 0.02],
        "shot_noise": [300, 200, 150, 100, 80],
        "gaussian_blur": [3, 5, 7, 9, 11, 13],
        "brightness_up": [1.1, 1.2, 1.3, 1.4, 1.5],
        "brightness_down": [0.9, 0.8, 0.7, 0.6, 0.5],
        "contrast_up": [1.1, 1.2, 1.3, 1.4, 1.6],
        "contrast_down": [0.9, 0.8, 0.7, 0.6, 0.4],
        "gamma_corr_up": [1.1, 1.2, 1.3, 1.4, 1.6],
        "gamma_corr_down": [0.9, 0.8, 0.7, 0.6, 0.4],
    },
    "organamnist": _ORGAN,
    "organcmnist": _ORGAN,
    "organsmnist": _ORGAN,
}

# The reference's DATASET_RGB: grey modalities come out grey.
RGB_DATASETS = frozenset({"bloodmnist", "dermamnist", "pathmnist", "retinamnist"})

# The reference's CORRUPTIONS_DS_FOLDS (its 'task-specific' spelled task_specific), usable in `corruptions`.
GROUPS = {
    "digital": ("pixelate", "jpeg_compression"),
    "noise": ("gaussian_noise", "speckle_noise", "impulse_noise", "shot_noise"),
    "blur": ("defocus_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "color": ("brightness_up", "brightness_down", "contrast_up", "contrast_down", "saturate"),
    "task_specific": ("stain_deposit", "bubble", "black_corner", "characters", "gamma_corr_up", "gamma_corr_down"),
}

# Modality names for the datasets (MedMNIST's descriptions).
MODALITIES = {
    "pathology": "pathmnist", "blood_cell_microscopy": "bloodmnist", "dermatoscopy": "dermamnist",
    "fundus": "retinamnist", "kidney_cortex_microscopy": "tissuemnist", "oct": "octmnist",
    "breast_ultrasound": "breastmnist", "chest_xray": "chestmnist", "pediatric_chest_xray": "pneumoniamnist",
    "abdominal_ct": "organamnist", "abdominal_ct_coronal": "organcmnist", "abdominal_ct_sagittal": "organsmnist",
}
ModalityName = Literal[tuple(list(TABLES) + list(MODALITIES))]  # type: ignore[valid-type]


def dataset_of(modality: str) -> str:
    return MODALITIES.get(modality, modality)


def corrupt(img: np.ndarray, dataset: str, corruption: str, severity: int, rng: Any) -> np.ndarray:
    """One corruption at one severity (1..5) on an 8-bit RGB image: the reference's `apply`."""
    level = severity - 1
    return K.KERNELS[corruption](np.ascontiguousarray(img), TABLES[dataset][corruption][level], rng, level)


def corrupt_any(img: np.ndarray, dataset: str, corruption: str, severity: int, rng: Any) -> np.ndarray:
    """`corrupt` on any image layout augflow carries: HxW(x1) grey, RGB, RGBA; uint8, uint16, float32."""
    dtype = img.dtype
    if dtype == np.uint16:
        x8 = np.rint(img / 257.0).astype(np.uint8)
    elif dtype == np.float32 or dtype == np.float64:
        x8 = np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)
    else:
        x8 = img
    squeeze = x8.ndim == 2
    x8 = x8[:, :, None] if squeeze else x8
    channels = x8.shape[2]
    rgb = np.repeat(x8, 3, axis=2) if channels < 3 else x8[:, :, :3]
    out = corrupt(rgb, dataset, corruption, severity, rng)
    if dataset not in RGB_DATASETS or channels < 3:
        grey = np.array(Image.fromarray(out).convert("L"))[:, :, None]
        out = grey if channels < 3 else np.repeat(grey, 3, axis=2)
    if channels == 2 or channels == 4:        # alpha is kept as it was
        out = np.concatenate([out, x8[:, :, -1:]], axis=2)
    out = out[:, :, 0] if squeeze else out
    if dtype == np.uint16:
        return out.astype(np.uint16) * np.uint16(257)
    if dtype == np.float32 or dtype == np.float64:
        return (out / np.float32(255)).astype(dtype)
    return out


@register("medmnist_c", targets={"image"}, family="corruptions", aliases=("medmnistc",))
class MedMNISTC(Op):
    """A MedMNIST-C corruption for the modality, at a severity from 1 to 5 (Di Salvo et al. 2024).

    Each call picks one corruption of `corruptions` (default: all the modality's) and a severity in
    `severity` (one level, or a range [low, high] sampled uniformly), then applies it with the
    reference's parameters for that modality and level. Only the image changes.
    """

    class Params(Schema):
        modality: ModalityName = Field(description="MedMNIST dataset (pathmnist, chestmnist, ...) or modality name "
                                                   "(pathology, chest_xray, dermatoscopy, oct, ...).")
        corruptions: list[str] | None = Field(
            None, description="Corruptions to draw from, or group names (digital, noise, blur, color, "
                              "task_specific); default: all of the modality's.")
        severity: int | tuple[int, int] = Field((1, 5), description="Severity 1..5, or a range [low, high] "
                                                                   "sampled uniformly per call.")

        @field_validator("severity")
        @classmethod
        def _severity(cls, v: int | tuple[int, int]) -> int | tuple[int, int]:
            lo, hi = (v, v) if isinstance(v, int) else v
            if not 1 <= lo <= hi <= 5:
                raise ValueError("severity must be 1..5 or a range [low, high] with 1 <= low <= high <= 5")
            return v

        @field_validator("corruptions")
        @classmethod
        def _corruptions(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
            modality = info.data.get("modality")
            if v is None or modality is None:      # a bad modality is reported on its own
                return v
            table = TABLES[dataset_of(modality)]
            for name in v:
                if name not in table and name not in GROUPS:
                    close = difflib.get_close_matches(name, list(table) + list(GROUPS), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"corruption {name!r} is not defined for modality {modality!r}{hint} "
                                     f"(its corruptions: {', '.join(table)}; groups: {', '.join(GROUPS)})")
            if not _expand(v, table):
                raise ValueError(f"these select none of modality {modality!r}'s corruptions ({', '.join(table)})")
            return v

    def __init__(self, params: Schema | None = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self.dataset = dataset_of(self.params.modality)
        table = TABLES[self.dataset]
        self.choices = _expand(self.params.corruptions, table) if self.params.corruptions else list(table)

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        sev = self.params.severity
        return {"corruption": self.choices[int(rng.integers(len(self.choices)))],
                "severity": sev if isinstance(sev, int) else int(rng.integers(sev[0], sev[1] + 1)),
                "seed": int(rng.integers(2**63))}

    def apply(self, sample: Sample, corruption: str, severity: int, seed: int) -> Sample:
        out = sample.copy()
        for i, name in enumerate(sample.fields_of_kind("image")):
            # One stream per image field, so a second image never replays the first one's noise.
            rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([int(seed), i])))
            out[name] = corrupt_any(sample[name], self.dataset, corruption, int(severity), rng)
        return out


def _expand(names: list[str], table: dict[str, Any]) -> list[str]:
    """Corruption and group names -> the modality's corruptions, in table order, without repeats."""
    wanted = set()
    for name in names:
        wanted.update(GROUPS.get(name, (name,)))
    return [c for c in table if c in wanted]
