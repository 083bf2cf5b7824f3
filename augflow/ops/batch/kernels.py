"""Kornia-backed batch kernels: the per-sample ops' names, with parameters per batch element.

A batch op applies to a collated batch (images B x C x H x W on the loader's device), but every
element draws its own parameters, with the op's own `sample_params` on that element's generator,
so an element gets the same parameters as it would get from the per-sample op. Kernels are keyed
by the op's canonical name (a dispatch table, not an isinstance ladder):

    kernel(op, batch, params, ctx) -> batch    # params[i] is None where element i skips the op

Images in the batch stage are float32 in [0, 1] (uint8 is converted on first use) or normalized;
boxes, keypoints and instance masks are lists with one tensor per element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from augflow.op_backends import ops_on
from augflow.ops.batch import geometry as geo
from augflow.sample import FieldSpec

Kernel = Callable[[Any, dict, list, "BatchContext"], dict]
KERNELS: dict[str, Kernel] = {}


@dataclass
class BatchContext:
    """What kernels know besides the batch: field kinds and the class count for label mixing."""

    specs: dict[str, FieldSpec]
    num_classes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def names(self, *kinds: str) -> list[str]:
        return [n for n, s in self.specs.items() if s.kind in kinds]


def kernel(*names: str) -> Callable[[Kernel], Kernel]:
    """Register the kernel of ops with these canonical names; each must be declared `kornia` in
    augflow/op_backends.py (the table `augflow ops` and the compiler read)."""

    def deco(fn: Kernel) -> Kernel:
        for name in names:
            if name not in ops_on("kornia"):
                raise ValueError(f"kernel for op {name!r}: declare the op's 'kornia' backend in "
                                 "augflow/op_backends.py (TABLE) first")
            KERNELS[name] = fn
        return fn

    return deco


def kernel_for(op: Any) -> Kernel:
    fn = KERNELS.get(op.name)
    if fn is not None:
        return fn
    if hasattr(op, "apply_batch"):
        return lambda op_, batch, params, ctx: op_.apply_batch(batch, params, ctx)
    raise KeyError(op.name)


# ---- image representation ------------------------------------------------------------------------

def to_float(batch: dict, ctx: BatchContext) -> dict:
    """uint8 images -> float32 in [0, 1] (what colour and mixing kernels expect)."""
    for name in ctx.names("image"):
        x = batch.get(name)
        if isinstance(x, torch.Tensor) and x.dtype == torch.uint8:
            batch[name] = x.float().mul_(1 / 255.0)
    return batch


def normalize_tensor(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x - mean) / std with mean/std in pixel units; uint8 input is converted on the way.

    Computed as x * (1/std) + (-mean/std), one pass per device: on CUDA a uint8 input goes through
    one `addcmul`, whose kernel converts while it reads (uint8 in, float32 out). On CPU that
    mixed-dtype kernel is not vectorized, nor is `.float()`; a 256-entry table per channel
    (`cv2.LUT`, uint8 -> float32) does conversion and normalization in one read and one write,
    ~2x faster than convert-then-multiply-add (bench/RESULTS.md). Float input is taken to
    be in [0, 1] (the batch stage's convention).
    """
    unit = 1.0 if x.dtype == torch.uint8 else 255.0
    scale = [unit / s for s in std]
    shift = [-m / s for m, s in zip(mean, std)]
    if x.dtype == torch.uint8 and not x.is_cuda and x.dim() in (3, 4) and x.shape[-3] == len(std):
        return _normalize_lut(x, scale, shift)
    shape = (1, -1, 1, 1) if x.dim() == 4 else (-1, 1, 1)
    inv = torch.tensor(scale, dtype=torch.float32, device=x.device).view(shape)
    bias = torch.tensor(shift, dtype=torch.float32, device=x.device).view(shape)
    if x.is_cuda or x.is_floating_point():
        return torch.addcmul(bias, x, inv)
    return x.float().mul_(inv).add_(bias)


def _normalize_lut(x: torch.Tensor, scale: list[float], shift: list[float]) -> torch.Tensor:
    import cv2

    levels = np.arange(256, dtype=np.float32)
    tables = [(levels * np.float32(a) + np.float32(b)).astype(np.float32) for a, b in zip(scale, shift)]
    out = torch.empty(x.shape, dtype=torch.float32)          # contiguous, channels first
    dst = out.numpy().reshape(-1, *x.shape[-3:])
    hwc = x.movedim(-3, -1)
    if hwc.is_contiguous() and len(tables) <= 4:
        # channels-last memory (the compiled loader's collated images): split each image into
        # its planes and look each plane up straight into the channels-first output
        src = hwc.numpy().reshape(-1, *hwc.shape[-3:])
        for b in range(src.shape[0]):
            for c, plane in enumerate(cv2.split(src[b])):
                cv2.LUT(plane, tables[c], dst=dst[b, c])
        return out
    src = x.contiguous().numpy().reshape(-1, *x.shape[-3:])
    for b in range(src.shape[0]):
        for c, table in enumerate(tables):
            cv2.LUT(src[b, c], table, dst=dst[b, c])
    return out


# ---- geometric kernels -------------------------------------------------------------------------------

_PADDING = {geo.BORDER_CONSTANT: "zeros", geo.BORDER_REPLICATE: "border", geo.BORDER_REFLECT_101: "reflection",
            geo.BORDER_REFLECT: "reflection"}


def warp_tensor(x: torch.Tensor, mats: np.ndarray, out_hw: tuple[int, int], interpolation: int, border_mode: int,
                fill: Any = 0.0, fill_scale: float = 1.0) -> torch.Tensor:
    """Kornia `warp_affine` with index-coordinate matrices (align_corners=True keeps pixel centres).

    `x` is B x C x H x W (images) or B x H x W (masks); `fill` is in pixel units and is multiplied
    by `fill_scale` (1/255 for float images in [0, 1]).
    """
    from kornia.geometry.transform import warp_affine

    if border_mode not in _PADDING:
        raise ValueError(f"border mode {border_mode} has no Kornia equivalent (use constant, replicate or reflect)")
    squeeze = x.dim() == 3
    xb = x[:, None] if squeeze else x
    xf = xb if xb.is_floating_point() else xb.float()
    m = torch.as_tensor(np.asarray(mats)[:, :2, :], dtype=torch.float32, device=x.device)
    mode = "nearest" if interpolation == geo.INTER_NEAREST else "bilinear"
    kwargs = {}
    fill_arr = np.atleast_1d(np.asarray(fill if fill is not None else 0.0, dtype=np.float32)) * fill_scale
    if _PADDING[border_mode] == "zeros" and np.any(fill_arr != 0):
        if xf.shape[1] == 3:
            kwargs["fill_value"] = torch.as_tensor(np.broadcast_to(fill_arr, (3,)).copy(), device=x.device)
        else:
            xf = xf - float(fill_arr[0])   # a constant fill for 1-channel data: warp the offset image
    out = warp_affine(xf, m, dsize=out_hw, mode=mode, padding_mode=_PADDING[border_mode], align_corners=True, **kwargs)
    if "fill_value" not in kwargs and _PADDING[border_mode] == "zeros" and np.any(fill_arr != 0):
        out = out + float(fill_arr[0])
    if not xb.dtype.is_floating_point:
        out = out.round().clamp(torch.iinfo(xb.dtype).min, torch.iinfo(xb.dtype).max).to(xb.dtype)
    return out[:, 0] if squeeze else out


LIST_KINDS = ("masks", "bboxes", "keypoints")


def apply_geos(batch: dict, geos: list[geo.Geo | None], ctx: BatchContext, in_hw: tuple[int, int],
               kinds: tuple[str, ...] = ("image", "mask", *LIST_KINDS)) -> dict:
    """Warp the spatial fields (of the given kinds) of the elements that have a Geo; boxes and
    keypoints follow the same matrices."""
    idx = [i for i, g in enumerate(geos) if g is not None]
    if not idx:
        return batch
    first = geos[idx[0]]
    out_hw = first.out_hw
    if any(geos[i].out_hw != out_hw for i in idx):
        raise ValueError("a batch op produced different output sizes for different elements")
    full = len(idx) == len(geos)
    mats = np.stack([geos[i].matrix for i in idx])
    for name in ctx.names(*[k for k in kinds if k in ("image", "mask")]):
        x = batch.get(name)
        if not isinstance(x, torch.Tensor):
            continue
        is_mask = ctx.specs[name].kind == "mask"
        if not full and tuple(x.shape[-2:]) != tuple(out_hw):
            raise ValueError(f"op changes the size of field {name!r} for some batch elements only; set its p to 1")
        sel = torch.as_tensor(idx, device=x.device)
        sub = x if full else x.index_select(0, sel)
        warped = warp_tensor(sub, mats, out_hw, first.mask_interpolation if is_mask else first.interpolation,
                             first.border_mode, first.fill_mask if is_mask else first.fill,
                             1.0 if is_mask or not x.is_floating_point() else 1 / 255.0)
        if full:
            batch[name] = warped
        else:
            x = x.clone()
            x[sel] = warped
            batch[name] = x
    if "masks" in kinds:
        for name in ctx.names("masks"):
            items = batch.get(name)
            if isinstance(items, list):
                items = list(items)
                for i in idx:
                    if len(items[i]):
                        items[i] = warp_tensor(items[i][None], geos[i].matrix[None], out_hw, first.mask_interpolation,
                                               first.border_mode, first.fill_mask)[0]
                batch[name] = items
    for name in ctx.names(*[k for k in kinds if k in ("bboxes", "keypoints")]):
        items = batch.get(name)
        if not isinstance(items, list):
            continue
        spec = ctx.specs[name]
        items = list(items)
        labels = {lf: list(batch[lf]) for lf in spec.label_fields if isinstance(batch.get(lf), list)}
        for i in idx:
            arr = items[i].detach().cpu().numpy() if isinstance(items[i], torch.Tensor) else np.asarray(items[i])
            if spec.kind == "bboxes":
                voc = geo.boxes_to_voc(arr, spec.format, in_hw)
                moved, keep = geo.transform_boxes(voc, geos[i].matrix, out_hw)
                moved = geo.boxes_from_voc(moved, spec.format, out_hw)
            else:
                moved, keep = geo.transform_keypoints(arr, geos[i].matrix, out_hw, spec.format)
            items[i] = torch.as_tensor(moved[keep], dtype=torch.float32)
            for lf, vals in labels.items():
                vals[i] = _select(vals[i], keep)
        batch[name] = items
        batch.update(labels)
    return batch


def _select(values: Any, keep: np.ndarray) -> Any:
    if isinstance(values, torch.Tensor):
        return values[torch.as_tensor(keep, device=values.device)]
    if isinstance(values, np.ndarray):
        return values[keep]
    return [v for v, k in zip(values, keep) if k]


def first_image(batch: dict, ctx: BatchContext) -> torch.Tensor:
    """The batch's first image tensor: its height and width, and its length, are the batch's."""
    for name in ctx.names("image"):
        x = batch.get(name)
        if isinstance(x, torch.Tensor):
            return x
    raise ValueError("the batch has no image field")


def image_hw(batch: dict, ctx: BatchContext) -> tuple[int, int]:
    x = first_image(batch, ctx)
    return int(x.shape[-2]), int(x.shape[-1])


def _geometric(op: Any, batch: dict, params: list, ctx: BatchContext) -> dict:
    cfg = geo.op_settings(op)
    hw = image_hw(batch, ctx)
    if any(p is not None for p in params):
        to_float(batch, ctx)
    geos = [None if p is None else geo.geo_of(op.name, p, cfg, hw) for p in params]
    return apply_geos(batch, geos, ctx, hw)


def _flip(axis: int) -> Kernel:
    """Flips are exact index reversals (no resampling); listed targets follow the flip's matrix."""

    def flip(op: Any, batch: dict, params: list, ctx: BatchContext) -> dict:
        idx = [i for i, p in enumerate(params) if p is not None]
        if not idx:
            return batch
        hw = image_hw(batch, ctx)
        for name in ctx.names("image", "mask"):
            x = batch.get(name)
            if isinstance(x, torch.Tensor):
                x = x.clone()
                sel = torch.as_tensor(idx, device=x.device)
                x[sel] = x[sel].flip(-1 if axis == 1 else -2)
                batch[name] = x
        fn = geo._hflip if axis == 1 else geo._vflip
        geos = [None if p is None else fn(p, {}, hw) for p in params]
        return apply_geos(batch, geos, ctx, hw, kinds=LIST_KINDS)

    return flip


kernel("albumentations.HorizontalFlip")(_flip(1))
kernel("albumentations.VerticalFlip")(_flip(0))
kernel("albumentations.RandomResizedCrop", "albumentations.Resize", "albumentations.Affine",
       "albumentations.ShiftScaleRotate", "albumentations.Rotate")(_geometric)


# ---- colour kernels ----------------------------------------------------------------------------------

_GRAY = (0.299, 0.587, 0.114)


def _gray(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_GRAY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


@kernel("albumentations.ColorJitter")
def color_jitter(op: Any, batch: dict, params: list, ctx: BatchContext) -> dict:
    """torchvision-style jitter, each element with its own factors *and order* (as albumentations)."""
    from kornia.enhance import adjust_hue

    idx = [i for i, p in enumerate(params) if p is not None]
    if not idx:
        return batch
    to_float(batch, ctx)
    for name in ctx.names("image"):
        x = batch.get(name)
        if not isinstance(x, torch.Tensor) or x.shape[1] != 3:
            continue
        sub = x[idx].clone()
        dev = sub.device
        f = {k: torch.tensor([params[i][k] for i in idx], dtype=sub.dtype, device=dev).view(-1, 1, 1, 1)
             for k in ("brightness", "contrast", "saturation", "hue")}
        order = torch.tensor([params[i]["order"] for i in idx], device=dev)
        for pos in range(4):
            for t in range(4):
                m = order[:, pos] == t
                if not bool(m.any()):
                    continue
                y, k = sub[m], f[("brightness", "contrast", "saturation", "hue")[t]][m]
                if bool((k == (0.0 if t == 3 else 1.0)).all()):
                    continue          # identity factors (e.g. hue: 0): skip the pass
                if t == 0:
                    y = (y * k).clamp_(0, 1)
                elif t == 1:
                    mean = _gray(y).mean((-2, -1), keepdim=True)
                    y = (y * k + mean * (1 - k)).clamp_(0, 1)
                elif t == 2:
                    y = (y * k + _gray(y) * (1 - k)).clamp_(0, 1)
                else:
                    y = adjust_hue(y, k.view(-1) * 2 * math.pi)
                sub[m] = y
        x = x.clone()
        x[idx] = sub
        batch[name] = x
    return batch


@kernel("albumentations.ToGray")
def to_gray(op: Any, batch: dict, params: list, ctx: BatchContext) -> dict:
    idx = [i for i, p in enumerate(params) if p is not None]
    if not idx:
        return batch
    to_float(batch, ctx)
    for name in ctx.names("image"):
        x = batch.get(name)
        if isinstance(x, torch.Tensor) and x.shape[1] == 3:
            x = x.clone()
            x[idx] = _gray(x[idx]).expand(-1, 3, -1, -1)
            batch[name] = x
    return batch


@kernel("albumentations.Normalize")
def normalize(op: Any, batch: dict, params: list, ctx: BatchContext) -> dict:
    mean, std = geo.normalize_stats(op)
    idx = [i for i, p in enumerate(params) if p is not None]
    if not idx:
        return batch
    for name in ctx.names("image"):
        x = batch.get(name)
        if not isinstance(x, torch.Tensor):
            continue
        if len(idx) == x.shape[0]:
            batch[name] = normalize_tensor(x, mean, std)
        else:   # p < 1: the skipped elements stay in [0, 1]
            x = x.float().mul_(1 / 255.0) if x.dtype == torch.uint8 else x.clone()
            x[idx] = normalize_tensor(x[idx], mean, std)
            batch[name] = x
    return batch


@kernel("to_tensor")
def to_tensor(op: Any, batch: dict, params: list, ctx: BatchContext) -> dict:
    """Batches are tensors already; `dtype: float32` scales uint8 to [0, 1]."""
    if getattr(op.params, "dtype", "keep") == "float32":
        to_float(batch, ctx)
    return batch
