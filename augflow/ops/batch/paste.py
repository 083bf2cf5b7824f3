"""What mixing ops share: partners, soft labels mixed by weight, and pasting a rectangle of one
element into another with every target following (image, masks, instance masks, boxes, keypoints).

Every function takes the batch *before* the op (`orig`) and writes into the batch being built
(`new`), so pasting A into B and B into A in one batch read the originals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from augflow.ops.base import Op, Schema
from augflow.ops.batch import geometry as geo
from augflow.ops.batch.kernels import BatchContext, image_hw, to_float

Rect = tuple[int, int, int, int]   # x0, y0, x1, y1 in pixels, x1/y1 exclusive


class BatchOnlyOp(Op):
    """An op that mixes images of a batch: valid only under `batch: ops:` of a compiled loader."""

    def apply(self, sample, **params):
        raise TypeError(f"{self.name} mixes several images of a batch, so it runs only in the batch stage: put it "
                        "under 'batch: ops:' and iterate over pipe.compile(...)")

    def apply_batch(self, batch: dict, params: list, ctx: BatchContext) -> dict:
        raise NotImplementedError


class MixParams(Schema):
    """Parameters every mixing op takes."""

    num_classes: int | None = None     # for integer labels; defaults to the loader's class count
    min_visible: float = 0.2           # a box keeps if at least this fraction of it stays visible


def partner(u: float, i: int, n: int) -> int:
    """Another element of the batch, from a uniform draw (the element itself when n == 1)."""
    return i if n <= 1 else (i + 1 + min(int(u * (n - 1)), n - 2)) % n


def clone_batch(batch: dict) -> dict:
    return {k: (v.clone() if isinstance(v, torch.Tensor) else list(v) if isinstance(v, list) else v)
            for k, v in batch.items()}


def start_mix(batch: dict, params: list, ctx: BatchContext) -> tuple[dict, dict, list]:
    """How every mixing op starts: images as float, the batch to read from, a copy to write into,
    and one label-weights slot per element (None: the element keeps its own label)."""
    to_float(batch, ctx)
    return batch, clone_batch(batch), [None] * len(params)


# ---- labels ------------------------------------------------------------------------------------------

def label_fields(ctx: BatchContext) -> list[str]:
    inner = {lf for s in ctx.specs.values() for lf in s.label_fields}
    return [n for n in ctx.names("label") if n not in inner]


def soft_labels(y: Any, num_classes: int | None, name: str, op: str) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.is_floating_point() and y.dim() == 2:
        return y
    if num_classes is None:
        raise ValueError(f"{op}: field {name!r} holds class indices; set num_classes (e.g. '{op}: {{num_classes: "
                         "1000}') or pass num_classes= to compile() (an image folder or manifest sets it)")
    return F.one_hot(y.long().view(-1), num_classes).float()


def mix_labels(orig: dict, new: dict, ctx: BatchContext, weights: list[list[tuple[int, float]] | None],
               num_classes: int | None, op: str) -> None:
    """new[label][i] = sum of w * onehot(orig[label][src]) over element i's (src, w) list."""
    for name in label_fields(ctx):
        y = orig.get(name)
        if not isinstance(y, torch.Tensor):
            continue
        soft = soft_labels(y, num_classes if num_classes is not None else ctx.num_classes, name, op).to(y.device)
        out = soft.clone()
        rows = [i for i, ws in enumerate(weights) if ws]
        if rows:   # one batched term per position in the (src, w) lists, summed in list order
            depth = max(len(weights[i]) for i in rows)
            acc = None
            for k in range(depth):   # a shorter list adds 0 * its own row: +0.0, which changes nothing
                src = [weights[i][k][0] if k < len(weights[i]) else i for i in rows]
                w = torch.tensor([weights[i][k][1] if k < len(weights[i]) else 0.0 for i in rows],
                                 dtype=soft.dtype, device=soft.device).view(-1, *([1] * (soft.dim() - 1)))
                term = w * soft.index_select(0, torch.tensor(src, device=soft.device))
                acc = term if acc is None else acc + term
            out.index_copy_(0, torch.tensor(rows, device=soft.device), acc)
        new[name] = out


# ---- rectangles --------------------------------------------------------------------------------------

def _resize(x: torch.Tensor, hw: tuple[int, int], nearest: bool) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    if nearest:
        return F.interpolate(x[None].float(), size=hw, mode="nearest")[0].to(x.dtype)
    return F.interpolate(x[None].float(), size=hw, mode="bilinear", align_corners=False, antialias=True)[0].to(x.dtype)


def paste_rect(orig: dict, new: dict, ctx: BatchContext, i: int, j: int, src: Rect, dst: Rect,
               min_visible: float) -> None:
    """Paste orig[j]'s `src` rectangle (resized to `dst`'s size) into new[i] at `dst`.

    Targets: images (bilinear, antialiased when shrinking), masks (nearest), instance masks (i's are
    cut where covered, j's cropped/resized and appended), boxes (i's dropped when less than
    `min_visible` stays visible; j's clipped to `src`, kept when `min_visible` of them is inside,
    then moved), keypoints (i's under the patch removed; j's inside `src` moved). With boxes and
    instance masks of the same instances, masks follow their boxes' fate, and a label field shared
    by both moves once, so every per-instance field stays in step. Element i's own
    targets are read from `new` (what it holds so far: Mosaic pastes four times into a cleared
    element), element j's from `orig`.
    """
    sx0, sy0, sx1, sy1 = src
    dx0, dy0, dx1, dy1 = dst
    if dx1 <= dx0 or dy1 <= dy0 or sx1 <= sx0 or sy1 <= sy0:
        return
    dh, dw = dy1 - dy0, dx1 - dx0
    for name in ctx.names("image", "mask"):
        x = orig.get(name)
        if isinstance(x, torch.Tensor):
            nearest = ctx.specs[name].kind == "mask"
            patch = x[j, ..., sy0:sy1, sx0:sx1]
            patch = _resize(patch if patch.dim() == 3 else patch[None], (dh, dw), nearest)
            new[name][i, ..., dy0:dy1, dx0:dx1] = patch if x.dim() == 4 else patch[0]
    sx, sy = dw / (sx1 - sx0), dh / (sy1 - sy0)
    m = np.array([[sx, 0, dx0 - sx0 * sx], [0, sy, dy0 - sy0 * sy], [0, 0, 1]])  # continuous coordinates
    hw = image_hw(orig, ctx)
    carried: set[str] = set()   # a label field shared by boxes and masks moves once
    box_keep: dict[str, tuple] = {}   # which boxes stayed: instance masks follow them
    for name in ctx.names("bboxes"):
        items = orig.get(name)
        if not isinstance(items, list):
            continue
        fmt = ctx.specs[name].format
        own = geo.boxes_to_voc(_np(new[name][i]), fmt, hw)
        keep_own = _visible_outside(own, dst) >= min_visible
        theirs = geo.boxes_to_voc(_np(items[j]), fmt, hw)
        clipped = theirs.copy()
        if len(clipped):
            clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(sx0, sx1)
            clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(sy0, sy1)
        keep_theirs = _area(clipped) >= np.maximum(min_visible * _area(theirs), 1e-9) if len(theirs) else \
            np.zeros(0, dtype=bool)
        moved = clipped.copy()
        if len(moved):
            moved[:, [0, 2]] = moved[:, [0, 2]] * m[0, 0] + m[0, 2]
            moved[:, [1, 3]] = moved[:, [1, 3]] * m[1, 1] + m[1, 2]
        both = np.concatenate([own[keep_own], moved[keep_theirs]])
        new[name][i] = torch.as_tensor(geo.boxes_from_voc(both, fmt, hw), dtype=torch.float32)
        _carry_labels(orig, new, ctx.specs[name].label_fields, i, j, keep_own, keep_theirs, carried)
        box_keep.setdefault("keep", (keep_own, keep_theirs))
    for name in ctx.names("masks"):
        items = orig.get(name)
        if not isinstance(items, list):
            continue
        own = new[name][i]
        if len(own):
            own = own.clone()
            own[:, dy0:dy1, dx0:dx1] = 0
        theirs = items[j][:, sy0:sy1, sx0:sx1]
        canvas = torch.zeros((theirs.shape[0], *hw), dtype=items[j].dtype, device=items[j].device)
        if len(theirs):
            canvas[:, dy0:dy1, dx0:dx1] = _resize(theirs, (dh, dw), nearest=True)
        keep_own = own.flatten(1).any(1) if len(own) else torch.zeros(0, dtype=torch.bool)
        keep_theirs = canvas.flatten(1).any(1) if len(canvas) else torch.zeros(0, dtype=torch.bool)
        kept_boxes = box_keep.get("keep")
        if kept_boxes is not None and len(kept_boxes[0]) == len(own) and len(kept_boxes[1]) == len(canvas):
            # one instance per box: a box dropped under min_visible takes its mask with it
            keep_own = torch.as_tensor(kept_boxes[0], dtype=torch.bool, device=own.device)
            keep_theirs = torch.as_tensor(kept_boxes[1], dtype=torch.bool, device=canvas.device)
        new[name][i] = torch.cat([own[keep_own], canvas[keep_theirs]])
        _carry_labels(orig, new, ctx.specs[name].label_fields, i, j, keep_own.cpu().numpy(),
                      keep_theirs.cpu().numpy(), carried)
    for name in ctx.names("keypoints"):
        items = orig.get(name)
        if not isinstance(items, list):
            continue
        xi, yi = (1, 0) if ctx.specs[name].format == "yx" else (0, 1)
        own, theirs = _np(new[name][i], 2), _np(items[j], 2)
        inside = lambda k, r: (k[:, xi] >= r[0]) & (k[:, xi] < r[2]) & (k[:, yi] >= r[1]) & (k[:, yi] < r[3])  # noqa: E731
        keep_own = ~inside(own, dst) if len(own) else np.zeros(0, dtype=bool)
        keep_theirs = inside(theirs, src) if len(theirs) else np.zeros(0, dtype=bool)
        moved = theirs.copy()
        if len(moved):   # index coordinates: centre of pixel k is k, so map k + 0.5 continuously
            moved[:, xi] = (moved[:, xi] + 0.5) * m[0, 0] + m[0, 2] - 0.5
            moved[:, yi] = (moved[:, yi] + 0.5) * m[1, 1] + m[1, 2] - 0.5
        new[name][i] = torch.as_tensor(np.concatenate([own[keep_own], moved[keep_theirs]]), dtype=torch.float32)
        _carry_labels(orig, new, ctx.specs[name].label_fields, i, j, keep_own, keep_theirs)


def _carry_labels(orig: dict, new: dict, fields: tuple[str, ...], i: int, j: int, keep_own: np.ndarray,
                  keep_theirs: np.ndarray, carried: set[str] | None = None) -> None:
    """Per-item labels (box classes...) follow their items: i's kept ones, then j's pasted ones."""
    for lf in fields:
        if carried is not None:
            if lf in carried:
                continue
            carried.add(lf)
        vals = orig.get(lf)
        if isinstance(vals, list):
            new[lf][i] = _concat(_pick(new[lf][i], keep_own), _pick(vals[j], keep_theirs))


def _pick(values: Any, keep: np.ndarray) -> Any:
    if isinstance(values, torch.Tensor):
        return values[torch.as_tensor(keep, dtype=torch.bool, device=values.device)]
    if isinstance(values, np.ndarray):
        return values[keep]
    return [v for v, k in zip(values, keep) if k]


def _concat(a: Any, b: Any) -> Any:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.cat([a, b.to(a.device)])
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.concatenate([a, b])
    return list(a) + list(b)


def _np(x: Any, width: int = 4) -> np.ndarray:
    arr = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)
    if arr.ndim == 2:
        return arr
    return arr.reshape(len(arr), -1) if arr.size else np.zeros((0, width))


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _visible_outside(b: np.ndarray, r: Rect) -> np.ndarray:
    """Fraction of each box's area not covered by rectangle r."""
    if len(b) == 0:
        return np.zeros(0)
    iw = np.clip(np.minimum(b[:, 2], r[2]) - np.maximum(b[:, 0], r[0]), 0, None)
    ih = np.clip(np.minimum(b[:, 3], r[3]) - np.maximum(b[:, 1], r[1]), 0, None)
    area = _area(b)
    return np.where(area > 0, 1 - iw * ih / np.maximum(area, 1e-9), 0.0)


def clear_element(new: dict, ctx: BatchContext, i: int) -> None:
    """Empty element i's spatial targets (Mosaic then pastes four quadrants into it)."""
    for name in ctx.names("masks", "bboxes", "keypoints"):
        items = new.get(name)
        if isinstance(items, list):
            items[i] = items[i][:0]
            for lf in ctx.specs[name].label_fields:
                if isinstance(new.get(lf), list):
                    new[lf][i] = new[lf][i][:0]
