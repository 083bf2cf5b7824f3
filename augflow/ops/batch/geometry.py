"""Geometric ops as 3x3 matrices, and how boxes and keypoints follow a matrix.

Matrices are in pixel-index coordinates (pixel i has its centre at i), the convention of
`cv2.warpAffine` and of albumentations' own `matrix` params, so `dst = M @ src` for pixel centres.
Boxes live in continuous coordinates (edges at 0 and W); `continuous(M)` converts. One table maps
an op's canonical name to the matrix of its sampled parameters: affine fusion (compile), the
Kornia batch kernels and the Kornia per-sample backend all read it, so the three agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

# OpenCV constants, by value, so this module does not need cv2 at import time.
INTER_NEAREST, INTER_LINEAR = 0, 1
BORDER_CONSTANT, BORDER_REPLICATE, BORDER_REFLECT, BORDER_WRAP, BORDER_REFLECT_101 = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class GeoKind:
    """How an op samples its input: `crops` (stays inside it), `full` (maps all of it) or `outside`
    (may look past its borders, filling with `border_mode`): fusion is exact only in some orders."""

    kind: str                      # "crop" | "full" | "outside"
    interpolates: bool = True


@dataclass
class Geo:
    """The matrix of one applied geometric op, with what its warp needs."""

    matrix: np.ndarray             # 3x3, index coordinates, dst = M @ src
    out_hw: tuple[int, int]
    interpolation: int = INTER_LINEAR
    mask_interpolation: int = INTER_NEAREST
    border_mode: int = BORDER_CONSTANT
    fill: Any = 0.0
    fill_mask: Any = 0.0


def _resize_matrix(x0: float, y0: float, cw: float, ch: float, out_h: int, out_w: int) -> np.ndarray:
    """Crop [x0, x0+cw) x [y0, y0+ch) and resize to out_w x out_h, as cv2.resize samples (half-pixel centres)."""
    sx, sy = cw / out_w, ch / out_h
    return np.array([[1 / sx, 0, (0.5 - x0) / sx - 0.5], [0, 1 / sy, (0.5 - y0) / sy - 0.5], [0, 0, 1]])


def _size(cfg: Mapping[str, Any]) -> tuple[int, int]:
    size = cfg.get("size")
    if size is not None:
        return (int(size[0]), int(size[1])) if not isinstance(size, int) else (size, size)
    return int(cfg["height"]), int(cfg["width"])


def _rrc(params: Mapping, cfg: Mapping, hw: tuple[int, int]) -> Geo:
    x1, y1, x2, y2 = params["crop_coords"]
    oh, ow = _size(cfg)
    return Geo(_resize_matrix(x1, y1, x2 - x1, y2 - y1, oh, ow), (oh, ow), int(cfg.get("interpolation", 1)),
               int(cfg.get("mask_interpolation", 0)), BORDER_REPLICATE)   # cv2.resize clamps at the edge


def _resize(params: Mapping, cfg: Mapping, hw: tuple[int, int]) -> Geo:
    oh, ow = _size(cfg)
    return Geo(_resize_matrix(0, 0, hw[1], hw[0], oh, ow), (oh, ow), int(cfg.get("interpolation", 1)),
               int(cfg.get("mask_interpolation", 0)), BORDER_REPLICATE)


def _hflip(params: Mapping, cfg: Mapping, hw: tuple[int, int]) -> Geo:
    return Geo(np.array([[-1.0, 0, hw[1] - 1], [0, 1, 0], [0, 0, 1]]), hw, border_mode=BORDER_REPLICATE)


def _vflip(params: Mapping, cfg: Mapping, hw: tuple[int, int]) -> Geo:
    return Geo(np.array([[1.0, 0, 0], [0, -1, hw[0] - 1], [0, 0, 1]]), hw, border_mode=BORDER_REPLICATE)


def _albu_affine(params: Mapping, cfg: Mapping, hw: tuple[int, int]) -> Geo:
    out = params.get("output_shape") or hw
    return Geo(np.asarray(params["matrix"], dtype=np.float64), (int(out[0]), int(out[1])),
               int(cfg.get("interpolation", 1)), int(cfg.get("mask_interpolation", 0)),
               int(cfg.get("border_mode", 0)), cfg.get("fill", 0.0), cfg.get("fill_mask", 0.0))


# canonical op name -> (how it samples its input, matrix of sampled params)
MATRIX_OPS: dict[str, tuple[GeoKind, Callable[[Mapping, Mapping, tuple[int, int]], Geo]]] = {
    "albumentations.RandomResizedCrop": (GeoKind("crop"), _rrc),
    "albumentations.Resize": (GeoKind("full"), _resize),
    "albumentations.HorizontalFlip": (GeoKind("full", interpolates=False), _hflip),
    "albumentations.VerticalFlip": (GeoKind("full", interpolates=False), _vflip),
    "albumentations.Affine": (GeoKind("outside"), _albu_affine),
    "albumentations.ShiftScaleRotate": (GeoKind("outside"), _albu_affine),
    "albumentations.Rotate": (GeoKind("outside"), _albu_affine),
}


def op_settings(op: Any) -> dict[str, Any]:
    """An op's full parameters (user values and defaults), validated by its registry schema."""
    cached = getattr(op, "_augflow_settings", None)
    if cached is not None:
        return cached
    from augflow import registry
    from augflow.ops.adapters.albumentations import coerce_named_constants

    settings = registry.get(op.name).validate(coerce_named_constants(op.config())).model_dump()
    try:
        op._augflow_settings = settings
    except AttributeError:  # pragma: no cover - ops with __slots__
        pass
    return settings


def normalize_stats(op: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A Normalize op's mean and std in pixel units (albumentations: mean * max_pixel_value)."""
    cfg = op_settings(op)
    mpv = float(cfg.get("max_pixel_value") or 255.0)
    mean = tuple(float(v) * mpv for v in np.atleast_1d(cfg["mean"]))
    std = tuple(float(v) * mpv for v in np.atleast_1d(cfg["std"]))
    return mean, std


def is_matrix_op(name: str, cfg: Mapping[str, Any] | None = None) -> bool:
    """Whether the op's effect is one affine matrix for every draw of its parameters."""
    if name not in MATRIX_OPS:
        return False
    cfg = cfg or {}
    if name == "albumentations.Rotate" and cfg.get("crop_border"):
        return False
    if name == "albumentations.RandomResizedCrop" and cfg.get("area_for_downscale"):
        return False   # INTER_AREA on downscale is not a warp
    return True


def geo_of(name: str, params: Mapping, cfg: Mapping, hw: tuple[int, int]) -> Geo:
    return MATRIX_OPS[name][1](params, cfg, hw)


def continuous(m: np.ndarray) -> np.ndarray:
    """Index-coordinate matrix -> the same map on continuous coordinates (u = index + 0.5)."""
    shift, unshift = np.eye(3), np.eye(3)
    shift[:2, 2] = 0.5
    unshift[:2, 2] = -0.5
    return shift @ m @ unshift


def scale_matrix(sx: float, sy: float) -> np.ndarray:
    """Map index coordinates of an image decoded at 1/s (half-pixel centres) to full resolution."""
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])


def max_scale(m: np.ndarray) -> float:
    """The largest local magnification of the map (largest singular value of its linear part)."""
    (a, b, _), (c, d, _) = np.asarray(m, dtype=np.float64)[:2].tolist()
    s = (a * a + b * b + c * c + d * d) / 2
    return float(np.sqrt(s + np.sqrt(max(s * s - (a * d - b * c) ** 2, 0.0))))


# ---- boxes and keypoints ------------------------------------------------------------------------

def boxes_to_voc(boxes: np.ndarray, fmt: str | None, hw: tuple[int, int]) -> np.ndarray:
    """Boxes of a declared format -> pixel x_min, y_min, x_max, y_max (extra columns kept)."""
    b = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, max(np.shape(boxes)[-1] if np.size(boxes) else 4, 4))
    h, w = hw
    if fmt == "coco":
        b[:, 2] += b[:, 0]
        b[:, 3] += b[:, 1]
    elif fmt == "yolo":
        cx, cy, bw, bh = b[:, 0] * w, b[:, 1] * h, b[:, 2] * w, b[:, 3] * h
        b[:, 0], b[:, 1], b[:, 2], b[:, 3] = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
    elif fmt == "albumentations":
        b[:, [0, 2]] *= w
        b[:, [1, 3]] *= h
    return b


def boxes_from_voc(b: np.ndarray, fmt: str | None, hw: tuple[int, int]) -> np.ndarray:
    b = np.array(b, dtype=np.float64, copy=True)
    h, w = hw
    if fmt == "coco":
        b[:, 2] -= b[:, 0]
        b[:, 3] -= b[:, 1]
    elif fmt == "yolo":
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        b[:, 0], b[:, 1], b[:, 2], b[:, 3] = (b[:, 0] + bw / 2) / w, (b[:, 1] + bh / 2) / h, bw / w, bh / h
    elif fmt == "albumentations":
        b[:, [0, 2]] /= w
        b[:, [1, 3]] /= h
    return b


def transform_boxes(voc: np.ndarray, m: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Move pixel boxes by an index-coordinate matrix: corners mapped, enclosing box, clipped to the
    output. Returns the boxes and a keep mask (boxes that still have area)."""
    if len(voc) == 0:
        return voc, np.zeros(0, dtype=bool)
    mc = continuous(m)
    x1, y1, x2, y2 = voc[:, 0], voc[:, 1], voc[:, 2], voc[:, 3]
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x1, y2], 1), np.stack([x2, y2], 1)], 1)
    pts = corners @ mc[:2, :2].T + mc[:2, 2]
    out = voc.copy()
    out[:, 0], out[:, 1] = pts[..., 0].min(1), pts[..., 1].min(1)
    out[:, 2], out[:, 3] = pts[..., 0].max(1), pts[..., 1].max(1)
    h, w = out_hw
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return out, keep


def transform_keypoints(kps: np.ndarray, m: np.ndarray, out_hw: tuple[int, int], fmt: str | None = "xy"
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Move keypoints (index coordinates, as albumentations) by a matrix; keep mask = still inside."""
    k = np.array(kps, dtype=np.float64, copy=True)
    if len(k) == 0:
        return k, np.zeros(0, dtype=bool)
    xi, yi = (1, 0) if fmt == "yx" else (0, 1)
    x, y = k[:, xi].copy(), k[:, yi].copy()
    k[:, xi] = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    k[:, yi] = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    h, w = out_hw
    keep = (k[:, xi] >= 0) & (k[:, xi] < w) & (k[:, yi] >= 0) & (k[:, yi] < h)
    return k, keep
