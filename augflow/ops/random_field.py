"""Random field augmentation: per-pixel affine and colour parameters from smooth Gaussian random fields.

After Mansfield et al., "Random Field Augmentations for Self-Supervised Representation Learning"
(2023, arXiv:2311.03629): instead of one translation / rotation / scale / colour value per image,
each parameter is an independent Gaussian random field over the pixel grid, so it varies smoothly
from pixel to pixel. What we follow: a field is white noise low-pass filtered by a Gaussian kernel
whose standard deviation is the field's length scale (`smoothness`, in pixels), scaled to a chosen
standard deviation; mild strengths are the useful ones (strong fields destroy structure), so the
defaults are mild. What is ours: the exact parameterisation below (rotation and scale about the
image centre, multiplicative brightness, contrast about the image mean, hue as a chroma rotation in
YIQ), drawing the noise on a grid coarser than the pixels (a field has no detail finer than its
length scale) with a margin so that it is stationary, and dividing by the filter's exact gain so
that each field has unit variance before scaling.

The backward map sends output pixel p to input position
    c + s(p) R(theta(p)) (p - c) + t(p),      c = image centre, s = exp(scale field)
and the image is resampled there with cv2.remap (masks with nearest neighbour). Keypoints and boxes
move by the inverse of that map, found by fixed-point iteration p <- q - u(p) on the displacement u
sampled at their coordinates; a box becomes the bounding box of its moved edge points.

Sampling draws only a seed (plus strength/smoothness when given as ranges); `apply` regenerates the
fields from that seed with its own Philox generator, so provenance stays a few numbers.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator
from scipy import ndimage

from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample

FIELDS = ("translate_x", "translate_y", "rotate", "scale", "brightness", "contrast", "hue")
_BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
_TRUNCATE = 4.0            # scipy.ndimage.gaussian_filter's default kernel radius, in sigmas
_COARSE_SIGMA = 4.0        # noise cells per length scale on the coarse grid
_BOX_EDGE_POINTS = 8       # points per box edge that are moved to find the new box
_INVERSE_ITERATIONS = 12
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32)
_YIQ_INV = np.linalg.inv(_YIQ).astype(np.float32)

Range = float | tuple[float, float]


# ---- fields -------------------------------------------------------------------------------------
def _filter_gain(sigma: float) -> float:
    """Standard deviation of unit white noise after scipy's 2-D Gaussian filter of this sigma."""
    radius = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return float((k ** 2).sum())   # sqrt of sum over the 2-D kernel (k x k) squared


def gaussian_field(shape: tuple[int, int], smoothness: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary Gaussian random field of unit variance and length scale `smoothness` pixels.

    White noise is drawn on a grid `smoothness / 4` pixels apart (the field has no finer detail),
    with a margin of one filter radius so that every kept value sees full-support noise, filtered
    by scipy's Gaussian filter, normalised by the filter's exact gain and upsampled bilinearly.
    """
    h, w = shape
    step = max(1.0, smoothness / _COARSE_SIGMA)
    sigma = smoothness / step
    margin = int(_TRUNCATE * sigma + 0.5)
    ch, cw = int((h - 1) / step) + 2, int((w - 1) / step) + 2
    noise = rng.standard_normal((ch + 2 * margin, cw + 2 * margin))
    coarse = ndimage.gaussian_filter(noise, sigma, mode="constant", truncate=_TRUNCATE)
    coarse = (coarse[margin:margin + ch, margin:margin + cw] / _filter_gain(sigma)).astype(np.float32)
    if step == 1.0:
        return np.ascontiguousarray(coarse[:h, :w])
    to_coarse = np.array([[1 / step, 0, 0], [0, 1 / step, 0]], dtype=np.float64)
    return cv2.warpAffine(coarse, to_coarse, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def make_fields(shape: tuple[int, int], seed: int, smoothness: float, stds: dict[str, float]) -> dict[str, np.ndarray]:
    """The fields whose standard deviation is non-zero, each from its own stream of `seed`.

    Field i always uses Philox(SeedSequence([seed, i])), so turning one field off does not change
    the others.
    """
    out = {}
    for i, name in enumerate(FIELDS):
        std = stds.get(name, 0.0)
        if std:
            rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([int(seed), i])))
            out[name] = gaussian_field(shape, smoothness, rng) * np.float32(std)
    return out


def backward_map(shape: tuple[int, int], fields: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps: the input position (x, y) that each output pixel takes its value from."""
    h, w = shape
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    x = np.arange(w, dtype=np.float32)[None, :] - np.float32(cx)
    y = np.arange(h, dtype=np.float32)[:, None] - np.float32(cy)
    zero = np.zeros(shape, np.float32)
    theta = np.deg2rad(fields["rotate"]) if "rotate" in fields else zero
    s = np.exp(fields["scale"]) if "scale" in fields else np.ones(shape, np.float32)
    cos, sin = s * np.cos(theta), s * np.sin(theta)
    map_x = cx + cos * x - sin * y + fields.get("translate_x", zero)
    map_y = cy + sin * x + cos * y + fields.get("translate_y", zero)
    return map_x.astype(np.float32), map_y.astype(np.float32)


# ---- kernels ------------------------------------------------------------------------------------
def warp(arr: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, border: str, nearest: bool = False) -> np.ndarray:
    """Resample an HxW or HxWxC array at the map's positions (any dtype for nearest)."""
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    src, back = arr, None
    if arr.dtype == bool:
        src, back = arr.view(np.uint8), bool
    elif arr.dtype == np.int64 or arr.dtype == np.uint32 or arr.dtype == np.uint64:   # cv2 keeps int32 at most
        src, back = arr.astype(np.float64), arr.dtype
    out = cv2.remap(np.ascontiguousarray(src), map_x, map_y, interp, borderMode=_BORDERS[border], borderValue=0)
    if arr.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out.astype(back) if back is not None else out


def move_points(xy: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Where input points land: solve p + u(p) = q for p, u = map - identity, by fixed-point iteration.

    Converges when the displacement changes by less than one pixel per pixel, which mild fields do.
    """
    if len(xy) == 0:
        return xy.astype(np.float32)
    h, w = map_x.shape
    ux = map_x - np.arange(w, dtype=np.float32)[None, :]
    uy = map_y - np.arange(h, dtype=np.float32)[:, None]
    q = np.asarray(xy, dtype=np.float64)
    p = q.copy()
    for _ in range(_INVERSE_ITERATIONS):
        coords = [p[:, 1], p[:, 0]]
        du = np.stack([ndimage.map_coordinates(ux, coords, order=1, mode="nearest"),
                       ndimage.map_coordinates(uy, coords, order=1, mode="nearest")], axis=1)
        p = q - du
    return p.astype(np.float32)


def move_boxes(xyxy: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Pixel-edge boxes -> bounding boxes of their moved edge points, clipped to the image."""
    if len(xyxy) == 0:
        return xyxy.astype(np.float32)
    h, w = map_x.shape
    t = np.linspace(0.0, 1.0, _BOX_EDGE_POINTS + 1)
    x0, y0, x1, y1 = (xyxy[:, i:i + 1].astype(np.float64) for i in range(4))
    xs = np.concatenate([x0 + (x1 - x0) * t, x0 + (x1 - x0) * t, np.repeat(x0, t.size, 1), np.repeat(x1, t.size, 1)], 1)
    ys = np.concatenate([np.repeat(y0, t.size, 1), np.repeat(y1, t.size, 1), y0 + (y1 - y0) * t, y0 + (y1 - y0) * t], 1)
    # Box edges lie on pixel borders; the maps index pixel centres, half a pixel further in.
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1) - 0.5
    moved = move_points(pts, map_x, map_y).astype(np.float64).reshape(len(xyxy), -1, 2) + 0.5
    out = np.stack([moved[..., 0].min(1), moved[..., 1].min(1), moved[..., 0].max(1), moved[..., 1].max(1)], 1)
    return np.clip(out, 0, [w, h, w, h]).astype(np.float32)


def recolour(img: np.ndarray, fields: dict[str, np.ndarray]) -> np.ndarray:
    """Per-pixel brightness gain, contrast about the image mean and hue rotation (3+ channels)."""
    scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(img.dtype.type, 1.0)
    x = img.astype(np.float32) / np.float32(scale)
    colour = x[..., :3] if x.shape[2] >= 3 else x[..., :1]
    if "hue" in fields and colour.shape[2] == 3:
        yiq = cv2.transform(np.ascontiguousarray(colour), _YIQ)
        angle = fields["hue"] * np.float32(2 * np.pi)
        cos, sin = np.cos(angle), np.sin(angle)
        i, q = yiq[..., 1].copy(), yiq[..., 2].copy()
        yiq[..., 1], yiq[..., 2] = cos * i - sin * q, sin * i + cos * q
        colour = cv2.transform(yiq, _YIQ_INV)
    if "contrast" in fields:
        mean = np.float32(colour.mean())
        colour = (colour - mean) * np.exp(fields["contrast"])[..., None] + mean
    if "brightness" in fields:
        colour = colour * np.exp(fields["brightness"])[..., None]
    x[..., :colour.shape[2]] = colour
    x = np.clip(x, 0.0, 1.0)
    if scale == 1.0:
        return x.astype(img.dtype)
    return np.rint(x * np.float32(scale)).astype(img.dtype)


# ---- boxes and keypoints in their declared formats -----------------------------------------------
def _boxes_to_xyxy(b: np.ndarray, fmt: str, w: int, h: int) -> np.ndarray:
    b = b[:, :4].astype(np.float64)
    if fmt == "coco":
        return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1)
    if fmt == "yolo":
        b = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)
        return b * [w, h, w, h]
    if fmt == "albumentations":
        return b * [w, h, w, h]
    return b


def _xyxy_to_boxes(b: np.ndarray, fmt: str, w: int, h: int) -> np.ndarray:
    if fmt == "coco":
        return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    if fmt == "yolo":
        b = b / [w, h, w, h]
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    if fmt == "albumentations":
        return b / [w, h, w, h]
    return b


def _filter_labels(out: Sample, name: str, keep: np.ndarray) -> None:
    """Drop the rows of a box/keypoint field, and of its label fields, where `keep` is False."""
    out[name] = out[name][keep]
    for lf in out.specs[name].label_fields:
        labels = out.get(lf)
        if isinstance(labels, np.ndarray):
            out[lf] = labels[keep]
        elif isinstance(labels, (list, tuple)):
            out[lf] = type(labels)(v for v, k in zip(labels, keep) if k)


# ---- the op -------------------------------------------------------------------------------------
def _check_range(v: Range, name: str) -> Range:
    lo, hi = (v, v) if isinstance(v, (int, float)) else v
    if lo < 0 or hi < lo:
        raise ValueError(f"{name} must be a number >= 0 or a range [low, high] with 0 <= low <= high")
    return v


def _draw(rng: np.random.Generator, v: Range) -> float:
    return float(v) if isinstance(v, (int, float)) else float(rng.uniform(v[0], v[1]))


@register("random_field", targets={"image", "mask", "masks", "bboxes", "keypoints"}, family="random_field")
class RandomField(Op):
    """Per-pixel translation, rotation, scale, brightness, contrast and hue from smooth Gaussian random fields.

    Each field is smooth noise with length scale `smoothness` px and standard deviation
    `strength` x its own setting (translate in px, rotate in degrees, scale and contrast and
    brightness as log factors, hue as a fraction of a full turn). Masks, boxes and keypoints move with
    the image; keypoints that leave the image and boxes that shrink to nothing are dropped with their
    labels. Mansfield et al. 2023 (arXiv:2311.03629).
    """

    class Params(Schema):
        strength: Range = Field(1.0, description="Multiplies every field's standard deviation; 0 is the identity; "
                                                 "a range [low, high] is sampled per call.")
        smoothness: Range = Field(32.0, description="Length scale of the fields in pixels (the Gaussian kernel's "
                                                    "sigma); larger is smoother. A range is sampled per call.")
        translate: float = Field(2.0, ge=0, description="Std of the per-pixel translation, pixels (each axis).")
        rotate: float = Field(1.0, ge=0, description="Std of the per-pixel rotation about the image centre, degrees.")
        scale: float = Field(0.02, ge=0, description="Std of the per-pixel log scale about the image centre.")
        brightness: float = Field(0.03, ge=0, description="Std of the per-pixel log brightness gain.")
        contrast: float = Field(0.03, ge=0, description="Std of the per-pixel log contrast about the image mean.")
        hue: float = Field(0.01, ge=0, description="Std of the per-pixel hue rotation, fraction of a full turn "
                                                   "(colour images only).")
        border: Literal["reflect", "replicate", "constant"] = Field(
            "reflect", description="How pixels are filled that come from outside the image (constant: 0).")

        @field_validator("strength")
        @classmethod
        def _strength(cls, v: Range) -> Range:
            return _check_range(v, "strength")

        @field_validator("smoothness")
        @classmethod
        def _smoothness(cls, v: Range) -> Range:
            _check_range(v, "smoothness")
            if (v if isinstance(v, (int, float)) else v[0]) <= 0:
                raise ValueError("smoothness must be > 0 pixels")
            return v

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        return {"seed": int(rng.integers(2**63)), "strength": _draw(rng, self.params.strength),
                "smoothness": _draw(rng, self.params.smoothness)}

    def stds(self, strength: float) -> dict[str, float]:
        p = self.params
        return {"translate_x": strength * p.translate, "translate_y": strength * p.translate,
                "rotate": strength * p.rotate, "scale": strength * p.scale, "brightness": strength * p.brightness,
                "contrast": strength * p.contrast, "hue": strength * p.hue}

    def apply(self, sample: Sample, seed: int, strength: float, smoothness: float) -> Sample:
        out = sample.copy()
        shape = _shape_of(sample)
        if shape is None or strength == 0:
            return out
        h, w = shape
        fields = make_fields(shape, seed, smoothness, self.stds(strength))
        geometric = {k: v for k, v in fields.items() if k in ("translate_x", "translate_y", "rotate", "scale")}
        colour = {k: v for k, v in fields.items() if k in ("brightness", "contrast", "hue")}
        maps = backward_map(shape, geometric) if geometric else None
        border = self.params.border
        for name in sample.fields_of_kind("image"):
            img = sample[name]
            if maps is not None:
                img = warp(img, *maps, border)
            out[name] = recolour(img, colour) if colour else img
        if maps is None:
            return out
        for name in sample.fields_of_kind("mask"):
            out[name] = warp(sample[name], *maps, border, nearest=True)
        for name in sample.fields_of_kind("masks"):
            masks = sample[name]
            moved = [warp(m, *maps, border, nearest=True) for m in masks]
            out[name] = np.stack(moved) if isinstance(masks, np.ndarray) else type(masks)(moved)
        for name in sample.fields_of_kind("keypoints"):
            kps = np.array(sample[name], dtype=np.float32, copy=True)
            if kps.size == 0:
                continue
            cols = [1, 0] if sample.specs[name].format == "yx" else [0, 1]
            kps[:, cols] = move_points(kps[:, cols], *maps)
            out[name] = kps
            _filter_labels(out, name, (kps[:, cols[0]] >= 0) & (kps[:, cols[0]] < w) & (kps[:, cols[1]] >= 0)
                           & (kps[:, cols[1]] < h))
        for name in sample.fields_of_kind("bboxes"):
            boxes = np.array(sample[name], dtype=np.float32, copy=True)
            if boxes.size == 0:
                continue
            fmt = sample.specs[name].format or "pascal_voc"
            xyxy = move_boxes(_boxes_to_xyxy(boxes, fmt, w, h), *maps)
            boxes[:, :4] = _xyxy_to_boxes(xyxy.astype(np.float64), fmt, w, h)
            out[name] = boxes
            _filter_labels(out, name, (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1]))
        return out


def _shape_of(sample: Sample) -> tuple[int, int] | None:
    """The common height and width of the image and mask fields; an error names any that differ."""
    shapes = {}
    for name in sample.fields_of_kind("image", "mask"):
        value = sample[name]
        if isinstance(value, np.ndarray):
            shapes[name] = value.shape[:2]
    for name in sample.fields_of_kind("masks"):
        for m in sample[name]:
            shapes[name] = np.asarray(m).shape[:2]
    if not shapes:
        return None
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{k}: {v[0]}x{v[1]}" for k, v in shapes.items())
        raise ValueError(f"random_field: image and mask fields must have the same height and width, got {listing}")
    return tuple(int(v) for v in next(iter(shapes.values())))
