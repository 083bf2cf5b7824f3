"""Running an affine group: draw each op's parameters as the unfused pipeline would, compose their
matrices, warp once (cv2 here, Kornia in the batch stage), move boxes/keypoints/masks alike.

The generator is consumed exactly as `augflow.steps.run_step` consumes it (probability draw, then
`sample_params`), so the ops after a group get the same parameters fused or not, and provenance
records every op with its own parameters: `Pipeline.replay` of a fused output reproduces it
within the stated tolerance.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import cv2
import numpy as np

from augflow.compile.decoding import PendingJpeg, decode_reduced, reduced_scale
from augflow.compile.plan import AffineGroup
from augflow.ops.batch import geometry as geo
from augflow.params_codec import from_jsonable, to_jsonable
from augflow.sample import FieldSpec, ProvenanceEntry, Sample

def stub_image(hw: tuple[int, int], channels: int = 3, dtype: Any = np.uint8) -> np.ndarray:
    """A zero-stride array of the given shape: lets ops draw shape-dependent params without pixels."""
    return np.broadcast_to(np.zeros((1, 1, 1), dtype=dtype), (int(hw[0]), int(hw[1]), int(channels)))


@functools.lru_cache(maxsize=256)
def proxy(hw: tuple[int, int], channels: int = 3) -> Sample:
    """A sample with a zero-stride image of the shape: what shape-dependent ops draw from. Cached:
    ops never mutate their input, and the stub is read-only."""
    return Sample({"image": stub_image(hw, channels)}, {"image": FieldSpec("image")})


def draw_affine(group: AffineGroup, rng: np.random.Generator, hw: tuple[int, int], channels: int = 3
                ) -> tuple[geo.Geo | None, list[ProvenanceEntry]]:
    """Draw the group's ops in order; return the composed Geo (None if no op applied) and entries."""
    m = None
    cur = (int(hw[0]), int(hw[1]))
    entries: list[ProvenanceEntry] = []
    out: geo.Geo | None = None
    for step in group.steps:
        op = step.op
        if op.p < 1.0 and not (op.p > 0.0 and rng.random() < op.p):
            continue
        params = to_jsonable(op.sample_params(rng, proxy(cur, int(channels))))
        g = geo.geo_of(op.name, from_jsonable(params), geo.op_settings(op), cur)
        m = g.matrix if m is None else g.matrix @ m
        cur = g.out_hw
        kind = geo.MATRIX_OPS[op.name][0]
        if out is None:   # crops, resizes and flips clamp at the edge, as cv2.resize does
            out = geo.Geo(m, cur, border_mode=geo.BORDER_REPLICATE)
        if kind.interpolates:
            out.interpolation, out.mask_interpolation = g.interpolation, g.mask_interpolation
        if kind.kind == "outside":
            out.border_mode, out.fill, out.fill_mask = g.border_mode, g.fill, g.fill_mask
        entries.append(ProvenanceEntry(step.name, step.path, params, None))
    if out is not None:
        out.matrix, out.out_hw = m, cur
    return out, entries


def warp_array(img: np.ndarray, m: np.ndarray, out_hw: tuple[int, int], interpolation: int, border_mode: int,
               fill: Any) -> np.ndarray:
    """Apply an index-coordinate 3x3 matrix to an HxW(xC) array.

    Axis-aligned maps (crops, resizes, flips: the common case) take OpenCV's fast path — one
    `cv2.resize` of the source rectangle and a `cv2.flip` — which is exactly what the unfused ops
    compute and ~3x cheaper than `warpAffine`; anything with rotation or shear is one warpAffine.
    """
    h, w = out_hw
    if img.shape[:2] == (h, w) and _is_identity(m):
        return img
    fast = _axis_aligned(m, img.shape[:2], out_hw)
    if fast is not None:
        x0, y0, x1, y1, flip_x, flip_y = fast
        out = img[y0:y1, x0:x1]
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=interpolation)
        elif flip_x or flip_y:
            out = np.ascontiguousarray(out)
        if flip_x or flip_y:
            out = cv2.flip(out, -1 if flip_x and flip_y else (1 if flip_x else 0))
        return _keep_channel(img, out)
    value = fill if not isinstance(fill, (list, tuple)) else tuple(float(v) for v in fill)
    if img.ndim == 3 and img.shape[2] > 4:
        return np.stack([warp_array(img[..., c], m, out_hw, interpolation, border_mode, fill)
                         for c in range(img.shape[2])], axis=-1)
    out = cv2.warpAffine(img, m[:2].astype(np.float64), (w, h), flags=interpolation, borderMode=border_mode,
                         borderValue=value if value is not None else 0)
    return _keep_channel(img, out)


def _is_identity(m: np.ndarray) -> bool:
    return bool(np.abs(m - _EYE).max() < 1e-9)


_EYE = np.eye(3)


def _keep_channel(img: np.ndarray, out: np.ndarray) -> np.ndarray:
    return out[..., None] if img.ndim == 3 and out.ndim == 2 else out


def _axis_aligned(m: np.ndarray, in_hw: tuple[int, int], out_hw: tuple[int, int]):
    """(x0, y0, x1, y1, flip_x, flip_y) when `m` is a crop + resize (+ flips) of whole source pixels.

    Crop edges must be whole source pixels (a reduced decode's scaled crop usually is not: it
    takes the warp, which is exact for any edge).
    """
    (a00, a01, a02), (a10, a11, a12) = m[0].tolist(), m[1].tolist()
    if abs(a01) > 1e-9 or abs(a10) > 1e-9 or abs(a00) < 1e-9 or abs(a11) < 1e-9:
        return None
    edges = []
    for a, t, size, limit in ((a00, a02, out_hw[1], in_hw[1]), (a11, a12, out_hw[0], in_hw[0])):
        b = t + 0.5 - 0.5 * a          # the same map on continuous coordinates (u = index + 0.5)
        lo, hi = sorted(((0 - b) / a, (size - b) / a))
        rlo, rhi = round(lo), round(hi)
        if abs(rlo - lo) > 1e-6 or abs(rhi - hi) > 1e-6 or rlo < 0 or rhi > limit or rhi <= rlo:
            return None
        edges.append((rlo, rhi, a < 0))
    (x0, x1, fx), (y0, y1, fy) = edges
    return x0, y0, x1, y1, fx, fy


def run_affine_group(group: AffineGroup, sample: Sample, rng: np.random.Generator,
                     pending: dict[str, PendingJpeg] | None = None,
                     warp: Callable[..., np.ndarray] = warp_array) -> Sample:
    """Apply a fused group to a sample (numpy/cv2); decodes pending JPEGs at the smallest useful scale."""
    pending = pending or {}
    images = sample.fields_of_kind("image")
    first = images[0] if images else None
    if first in pending:
        hw = pending[first].hw
        channels = pending[first].channels
    else:
        arr = sample[first]
        hw, channels = arr.shape[:2], (arr.shape[2] if arr.ndim == 3 else 1)
    g, entries = draw_affine(group, rng, hw, channels)
    out = sample.copy()
    if g is None:
        for name, p in pending.items():
            out[name] = _full(p)
        return out
    for name in images:
        if name in pending:
            img, m = _decode_for(pending[name], g.matrix)
        else:
            img, m = sample[name], g.matrix
        out[name] = warp(img, m, g.out_hw, g.interpolation, g.border_mode, g.fill)
    for name in sample.fields_of_kind("mask"):
        out[name] = warp(np.asarray(sample[name]), g.matrix, g.out_hw, g.mask_interpolation, g.border_mode, g.fill_mask)
    for name in sample.fields_of_kind("masks"):
        out[name] = [warp(np.asarray(mk), g.matrix, g.out_hw, g.mask_interpolation, g.border_mode, g.fill_mask)
                     for mk in sample[name]]
    for name in sample.fields_of_kind("bboxes", "keypoints"):
        spec = sample.specs[name]
        arr = np.asarray(sample[name], dtype=np.float64)
        if spec.kind == "bboxes":
            voc = geo.boxes_to_voc(arr, spec.format, hw)
            moved, keep = geo.transform_boxes(voc, g.matrix, g.out_hw)
            moved = geo.boxes_from_voc(moved, spec.format, g.out_hw)
        else:
            moved, keep = geo.transform_keypoints(arr, g.matrix, g.out_hw, spec.format)
        out[name] = moved[keep].astype(np.float32)
        for lf in spec.label_fields:
            if lf in sample:
                vals = sample[lf]
                out[lf] = vals[keep] if isinstance(vals, np.ndarray) else [v for v, k in zip(vals, keep) if k]
    out.provenance.extend(entries)
    return out


def _full(p: PendingJpeg) -> np.ndarray:
    return decode_reduced(p.raw, p.hw)      # the header was checked already: straight to libjpeg-turbo


def _decode_for(p: PendingJpeg, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode at the smallest scale at which the group still only downsamples; adjust the matrix."""
    sigma = geo.max_scale(m)
    if sigma >= 0.5 or sigma <= 0:
        return _full(p), m
    # 1/2, 1/4, 1/8 only: libjpeg-turbo's other n/8 scales decode slower than full size
    # (bench/RESULTS.md: 5/8-7/8 cost 1.3-1.9x a full decode of a 500x375 JPEG)
    f = 8 if sigma <= 0.125 else 4 if sigma <= 0.25 else 2
    h, w = p.hw
    img = decode_reduced(p.raw, (-(-h // f), -(-w // f)))
    rh, rw = img.shape[:2]
    if (rh, rw) == (h, w):
        return img, m
    return img, m @ geo.scale_matrix(reduced_scale(w, rw), reduced_scale(h, rh))
