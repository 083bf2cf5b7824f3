"""Automatic augmentation policies: RandAugment, TrivialAugmentWide and AugMix.

They follow torchvision's v2 transforms: the same op lists, the same magnitude tables (each op's
`_augmentation_space` entry, computed with the same torch calls so the float32 values agree to the
last bit) and, through `augflow.ops.kernels_pil`, the same Pillow calls as torchvision's PIL
backend. For one op and magnitude, our output equals torchvision's on a PIL image.

Sampling is apart from applying: `sample_params` records every chosen op as
`{"op", "bin", "magnitude", "sign"}` (magnitude unsigned, as in the table; `bin` is None for ops
without one) and, for AugMix, the Beta and Dirichlet weights; `apply` only replays that record.

Images must be uint8 with 1 or 3 channels (torchvision's "L"/"RGB" PIL modes), or float32 in
[0, 1], which goes through 8 bits (the Pillow kernels are 8-bit: the float output is the uint8
output / 255 exactly); other dtypes and channel counts get an error that says how to convert. Samples with masks, boxes or keypoints are
refused: the geometric ops would move the image and not them (torchvision refuses them too).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Literal, Optional, Union

import numpy as np
import torch
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from augflow.config.errors import SampleError
from augflow.ops import kernels_pil
from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample

# ---- magnitude tables: torchvision's `_AUGMENTATION_SPACE`s, verbatim --------------------------------
# name -> (magnitudes(num_bins, height, width) or None, signed). torch.linspace is float32 and its
# CPU kernel rounds differently from numpy's, so the tables are computed with torch itself.
MagnitudeFn = Callable[[int, int, int], Optional[torch.Tensor]]


def _none(num_bins: int, height: int, width: int) -> None:
    return None


def _linspace(start: float, end: float) -> MagnitudeFn:
    return lambda num_bins, height, width: torch.linspace(start, end, num_bins)


def _posterize(top: int, steps: int) -> MagnitudeFn:
    return lambda num_bins, height, width: (top - (torch.arange(num_bins) / ((num_bins - 1) / steps))).round().int()


_COLOR_OPS = ("Brightness", "Color", "Contrast", "Sharpness")

RAND_AUGMENT_SPACE: dict[str, tuple[MagnitudeFn, bool]] = {
    "Identity": (_none, False),
    "ShearX": (_linspace(0.0, 0.3), True),
    "ShearY": (_linspace(0.0, 0.3), True),
    "TranslateX": (lambda num_bins, height, width: torch.linspace(0.0, 150.0 / 331.0 * width, num_bins), True),
    "TranslateY": (lambda num_bins, height, width: torch.linspace(0.0, 150.0 / 331.0 * height, num_bins), True),
    "Rotate": (_linspace(0.0, 30.0), True),
    **{name: (_linspace(0.0, 0.9), True) for name in _COLOR_OPS},
    "Posterize": (_posterize(8, 4), False),
    "Solarize": (_linspace(1.0, 0.0), False),
    "AutoContrast": (_none, False),
    "Equalize": (_none, False),
}

TRIVIAL_AUGMENT_WIDE_SPACE: dict[str, tuple[MagnitudeFn, bool]] = {
    "Identity": (_none, False),
    "ShearX": (_linspace(0.0, 0.99), True),
    "ShearY": (_linspace(0.0, 0.99), True),
    "TranslateX": (_linspace(0.0, 32.0), True),
    "TranslateY": (_linspace(0.0, 32.0), True),
    "Rotate": (_linspace(0.0, 135.0), True),
    **{name: (_linspace(0.0, 0.99), True) for name in _COLOR_OPS},
    "Posterize": (_posterize(8, 6), False),
    "Solarize": (_linspace(1.0, 0.0), False),
    "AutoContrast": (_none, False),
    "Equalize": (_none, False),
}

AUGMIX_PARTIAL_SPACE: dict[str, tuple[MagnitudeFn, bool]] = {
    "ShearX": (_linspace(0.0, 0.3), True),
    "ShearY": (_linspace(0.0, 0.3), True),
    "TranslateX": (lambda num_bins, height, width: torch.linspace(0.0, width / 3.0, num_bins), True),
    "TranslateY": (lambda num_bins, height, width: torch.linspace(0.0, height / 3.0, num_bins), True),
    "Rotate": (_linspace(0.0, 30.0), True),
    "Posterize": (_posterize(4, 4), False),
    "Solarize": (_linspace(1.0, 0.0), False),
    "AutoContrast": (_none, False),
    "Equalize": (_none, False),
}

AUGMIX_SPACE: dict[str, tuple[MagnitudeFn, bool]] = {
    **AUGMIX_PARTIAL_SPACE,
    **{name: (_linspace(0.0, 0.9), True) for name in _COLOR_OPS},
}

SPACES = {
    "rand_augment": RAND_AUGMENT_SPACE,
    "trivial_augment_wide": TRIVIAL_AUGMENT_WIDE_SPACE,
    "aug_mix": AUGMIX_SPACE,
    "aug_mix_partial": AUGMIX_PARTIAL_SPACE,
}

AUGMIX_NUM_BINS = 10   # torchvision's AugMix._PARAMETER_MAX: severity s draws bins 0..s-1 of 10


@functools.lru_cache(maxsize=4096)
def magnitudes(space: str, op: str, num_bins: int, height: int, width: int) -> tuple[float, ...] | None:
    """The unsigned magnitude of each bin for one op of a policy (None for ops without one)."""
    values = SPACES[space][op][0](num_bins, height, width)
    return None if values is None else tuple(float(v) for v in values.tolist())


def draw_op(rng: np.random.Generator, space: str, num_bins: int, height: int, width: int, *,
            bin: int | None = None, bins_below: int | None = None) -> dict[str, Any]:
    """Draw one op uniformly from a policy, then its bin (fixed `bin` or uniform below `bins_below`)
    and, for signed ops, a sign (each with probability 1/2), in torchvision's order."""
    names = tuple(SPACES[space])
    op = names[int(rng.integers(len(names)))]
    table = magnitudes(space, op, num_bins, height, width)
    if table is None:
        return {"op": op, "bin": None, "magnitude": 0.0, "sign": 1}
    b = int(bin) if bin is not None else int(rng.integers(bins_below))
    sign = -1 if SPACES[space][op][1] and rng.random() < 0.5 else 1
    return {"op": op, "bin": b, "magnitude": table[b], "sign": sign}


# ---- samples --------------------------------------------------------------------------------------
_MOVABLE_KINDS = ("mask", "masks", "bboxes", "keypoints")


def _image_fields(sample: Sample, op: str) -> list[str]:
    """The image fields the op changes, after checking they (and the sample) suit it."""
    moved = sample.fields_of_kind(*_MOVABLE_KINDS)
    if moved:
        raise SampleError(f"op {op!r} changes images only and its shear/translate/rotate would leave field(s) "
                          f"{', '.join(repr(m) for m in moved)} misaligned (torchvision refuses them too); "
                          "use it in a pipeline for image(+label) samples")
    names = sample.fields_of_kind("image")
    if not names:
        raise SampleError(f"op {op!r} found no image field in the sample (fields: {sorted(sample)})")
    for name in names:
        img = sample[name]
        channels = None
        if isinstance(img, np.ndarray):
            channels = 1 if img.ndim == 2 else (img.shape[2] if img.ndim == 3 else None)
        if not isinstance(img, np.ndarray) or img.dtype not in (np.uint8, np.float32) or channels not in (1, 3):
            what = f"{img.dtype} with shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise SampleError(
                f"op {op!r}: field {name!r} is {what}; its Pillow kernels (those of torchvision's PIL backend) "
                "need a uint8 (or float32 in [0, 1]) grayscale (HxW, HxWx1) or RGB (HxWx3) array. Convert "
                "first: uint16 -> (img // 257).astype(np.uint8); RGBA -> img[..., :3]")
    return names


def _size(sample: Sample, names: list[str]) -> tuple[int, int]:
    """(height, width) of the first image: translate magnitudes scale with it, as in torchvision."""
    img = sample[names[0]]
    return int(img.shape[0]), int(img.shape[1])


def _signed(ops: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(o["op"], float(o["magnitude"]) * int(o["sign"])) for o in ops]


# ---- ops ------------------------------------------------------------------------------------------
class _PolicyParams(Schema):
    interpolation: Literal["nearest", "bilinear", "bicubic"] = Field(
        "nearest", description="Resampling of shear/translate/rotate (Pillow's affine supports these three).")
    fill: Union[int, list[int], None] = Field(
        None, description="Value of pixels shifted in from outside: one number or one per channel (None = 0).")

    @field_validator("fill")
    @classmethod
    def _fill_is_uint8(cls, value: int | list[int] | None) -> int | list[int] | None:
        values = [value] if isinstance(value, int) else (value or [])
        if any(not 0 <= v <= 255 for v in values) or (isinstance(value, list) and len(value) not in (1, 3)):
            raise ValueError("must be a number in 0..255 or a list of 1 or 3 of them (one per channel)")
        return value


def _on_8_bits(img: np.ndarray, kernel: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run an 8-bit kernel on a uint8 image, or on a float [0, 1] image through 8 bits."""
    if img.dtype == np.uint8:
        return kernel(img)
    x8 = np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    return kernel(x8).astype(np.float32) / np.float32(255.0)


def _apply_recorded(op: Op, sample: Sample, ops: list[dict[str, Any]]) -> Sample:
    """RandAugment's and TrivialAugmentWide's apply: run the recorded ops in order on each image."""
    out = sample.copy()
    chain = _signed(ops)
    for name in _image_fields(sample, op.name):
        out[name] = _on_8_bits(sample[name], lambda x: kernels_pil.apply_chain(x, chain, op.params.interpolation,
                                                                                op.params.fill))
    return out


@register("rand_augment", targets={"image"}, family="auto")
class RandAugment(Op):
    """RandAugment (Cubuk et al., 2020): `num_ops` ops drawn uniformly from 14, all at one magnitude.

    Matches torchvision.transforms.v2.RandAugment: same op list and magnitude table; signed ops
    are negated with probability 1/2.
    """

    class Params(_PolicyParams):
        num_ops: int = Field(2, ge=0, description="Ops applied in sequence per image (N).")
        num_magnitude_bins: int = Field(31, ge=2, description="Number of magnitude bins of every op's range.")
        magnitude: int = Field(9, ge=0, description="Magnitude bin (M), 0..num_magnitude_bins-1 (0..30 by default).")
        # the JSON Schema carries the check below for the default 31 bins (a schema cannot compare two fields)
        model_config = ConfigDict(json_schema_extra={
            "if": {"properties": {"num_magnitude_bins": {"const": 31}}},
            "then": {"properties": {"magnitude": {"maximum": 30}}}})

        @field_validator("magnitude")
        @classmethod
        def _magnitude_in_bins(cls, value: int, info: ValidationInfo) -> int:
            bins = info.data.get("num_magnitude_bins")
            if bins is not None and value >= bins:
                raise ValueError(f"must be in 0..{bins - 1} (num_magnitude_bins={bins})")
            return value

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        height, width = _size(sample, _image_fields(sample, self.name))
        p = self.params
        return {"ops": [draw_op(rng, "rand_augment", p.num_magnitude_bins, height, width, bin=p.magnitude)
                        for _ in range(p.num_ops)]}

    def apply(self, sample: Sample, ops: list[dict[str, Any]]) -> Sample:
        return _apply_recorded(self, sample, ops)


@register("trivial_augment_wide", targets={"image"}, family="auto")
class TrivialAugmentWide(Op):
    """TrivialAugment Wide (Müller & Hutter, 2021): one op from 14, with a magnitude bin drawn
    uniformly per image over wider ranges. Matches torchvision.transforms.v2.TrivialAugmentWide."""

    class Params(_PolicyParams):
        num_magnitude_bins: int = Field(31, ge=2, description="Number of magnitude bins; one is drawn per image.")

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        height, width = _size(sample, _image_fields(sample, self.name))
        bins = self.params.num_magnitude_bins
        return {"ops": [draw_op(rng, "trivial_augment_wide", bins, height, width, bins_below=bins)]}

    def apply(self, sample: Sample, ops: list[dict[str, Any]]) -> Sample:
        return _apply_recorded(self, sample, ops)


@register("aug_mix", targets={"image"}, family="auto")
class AugMix(Op):
    """AugMix (Hendrycks et al., 2020): `mixture_width` chains of 1-3 ops, mixed with Dirichlet
    weights, then mixed with the original by a Beta-drawn weight.

    Same op lists, magnitudes and float32 mixing (truncated to uint8) as
    torchvision.transforms.v2.AugMix. torchvision runs the chain ops of a PIL input with its
    tensor kernels; here they run with the Pillow kernels of RandAugment, so outputs agree in
    distribution, not pixel for pixel.
    """

    class Params(_PolicyParams):
        interpolation: Literal["nearest", "bilinear", "bicubic"] = Field(
            "bilinear", description="Resampling of shear/translate/rotate (torchvision's AugMix default).")
        severity: int = Field(3, ge=1, le=AUGMIX_NUM_BINS, description="Ops draw magnitude bins 0..severity-1 of 10.")
        mixture_width: int = Field(3, ge=1, description="Number of augmentation chains (k).")
        chain_depth: int = Field(-1, description="Ops per chain; <= 0 draws 1..3 per chain.")
        alpha: float = Field(1.0, gt=0.0,
                             description="Concentration of the Dirichlet (chains) and Beta (original) weights.")
        all_ops: bool = Field(True, description="Also use brightness, color, contrast and sharpness.")

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        height, width = _size(sample, _image_fields(sample, self.name))
        p = self.params
        space = "aug_mix" if p.all_ops else "aug_mix_partial"
        # float32, as applied: the recorded numbers are exactly the weights used
        beta = rng.dirichlet([p.alpha, p.alpha]).astype(np.float32)
        dirichlet = rng.dirichlet([p.alpha] * p.mixture_width).astype(np.float32)
        chains = []
        for _ in range(p.mixture_width):
            depth = p.chain_depth if p.chain_depth > 0 else int(rng.integers(1, 4))
            chains.append([draw_op(rng, space, AUGMIX_NUM_BINS, height, width, bins_below=p.severity)
                           for _ in range(depth)])
        return {"beta": [float(v) for v in beta], "dirichlet": [float(v) for v in dirichlet], "chains": chains}

    def apply(self, sample: Sample, beta: list[float], dirichlet: list[float], chains: list[list[dict]]) -> Sample:
        out = sample.copy()
        interp, fill = self.params.interpolation, self.params.fill
        for name in _image_fields(sample, self.name):

            def augmix(img: np.ndarray) -> np.ndarray:
                augmented = [kernels_pil.apply_chain(img, _signed(chain), interp, fill) for chain in chains]
                return kernels_pil.augmix_mix(img, augmented, beta, dirichlet)

            out[name] = _on_8_bits(sample[name], augmix)
        return out
