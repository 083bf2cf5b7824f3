"""Test-time augmentation for detectors: variable-length box sets, mapped back and fused.

    tta = augflow.TTA(detector, "pipelines/tta_detection.yaml", task="detection", merge="wbf")
    dets = tta(images)          # [{"boxes": (M, 4), "scores": (M,), "labels": (M,)}, ...] per image

The detector returns, per image, a set of any size: torchvision-style dicts with `boxes`
(x_min, y_min, x_max, y_max in pixels), `scores`, `labels` and optionally `keypoints` (N, K, D);
or (boxes, scores, labels[, keypoints]) tuples per image; or one tuple of padded (B, N, ...)
tensors. Each view's boxes go back through the exact inverse of its transforms (their four corners
through `points_back`), then the views are merged per image by `ensemble-boxes`:

| merge      | what                                                                     |
|------------|--------------------------------------------------------------------------|
| `wbf`      | `weighted_boxes_fusion` (clusters by IoU, averages coordinates by score)  |
| `nms`      | `nms` (keeps the best box of each cluster)                               |
| `soft_nms` | `soft_nms` (decays overlapping scores, `sigma`)                           |
| `mean`     | slot-wise mean: the detector returns the same N slots in every view       |

Keypoints of a merged box are the score-weighted mean of the matching instances' keypoints (same
label, IoU >= `iou_threshold`, the best match of each view).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from augflow.tta.config import TTAConfig, Variant, load_tta
from augflow.tta.report import TTAReport, describe, model_device

DETECTION_MERGES = ("wbf", "nms", "soft_nms", "mean")
CONF_TYPES = ("avg", "max", "box_and_model_avg", "absent_model_aware_avg")
Detections = dict[str, torch.Tensor]


@dataclass
class DetectionTTAResult:
    """`return_all=True`: merged detections per image, and every view's detections (original frame).

    `views[v][b]` is view v's detections of image b after the inverse of its transforms.
    """

    merged: list[Detections]
    views: list[list[Detections]]
    view_names: list[str]
    report: TTAReport = field(default_factory=TTAReport)


# ---- detector outputs -------------------------------------------------------------------------
def _as_tensor(value: Any, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(value).detach().to("cpu", dtype)


def _one(boxes: Any, scores: Any, labels: Any, keypoints: Any = None) -> Detections:
    b = _as_tensor(boxes, torch.float64).reshape(-1, 4)
    out = {"boxes": b, "scores": _as_tensor(scores, torch.float64).reshape(-1),
           "labels": _as_tensor(labels, torch.int64).reshape(-1)}
    if keypoints is not None:
        kp = _as_tensor(keypoints, torch.float64)
        out["keypoints"] = kp.reshape(b.shape[0], -1, kp.shape[-1])
    if not (out["scores"].shape[0] == out["labels"].shape[0] == b.shape[0]):
        raise ValueError(f"a detection has {b.shape[0]} boxes, {out['scores'].shape[0]} scores and "
                         f"{out['labels'].shape[0]} labels; they must match")
    return out


def parse_detections(out: Any, n_images: int) -> list[Detections]:
    """Per-image detections from a detector output (see the module docstring for the forms)."""
    if isinstance(out, (list, tuple)) and len(out) == n_images and all(isinstance(d, dict) for d in out):
        missing = [k for k in ("boxes", "scores", "labels") if k not in out[0]] if out else []
        if missing:
            raise ValueError(f"detector dicts need 'boxes', 'scores' and 'labels'; missing {missing} "
                             f"(got keys {sorted(out[0])}); pass output_fn= to convert them")
        return [_one(d["boxes"], d["scores"], d["labels"], d.get("keypoints")) for d in out]
    if isinstance(out, (list, tuple)) and len(out) == n_images and all(
            isinstance(d, (list, tuple)) and 3 <= len(d) <= 4 and torch.as_tensor(d[0]).dim() <= 2 for d in out):
        return [_one(*d) for d in out]
    if isinstance(out, tuple) and 3 <= len(out) <= 4:
        first = out[0]
        if isinstance(first, torch.Tensor) and first.dim() == 3 and first.shape[0] == n_images:   # padded
            return [_one(*(part[i] for part in out)) for i in range(n_images)]
        if isinstance(first, (list, tuple)) and len(first) == n_images:                           # per-field lists
            return [_one(*(part[i] for part in out)) for i in range(n_images)]
    raise TypeError(f"cannot read detections for {n_images} images from a {type(out).__name__}; return a list of "
                    "{'boxes', 'scores', 'labels'} dicts (torchvision), a list of (boxes, scores, labels) tuples, "
                    "or a tuple of (B, N, ...) tensors; or pass output_fn= to convert")


# ---- inverse maps -----------------------------------------------------------------------------
def boxes_back(boxes: torch.Tensor, variant: Variant, size: tuple[int, int]) -> torch.Tensor:
    """(N, 4) x1, y1, x2, y2 in a view's frame -> the original frame, through the four corners."""
    if not variant or boxes.numel() == 0:
        return boxes
    x1, y1, x2, y2 = boxes.unbind(-1)
    xy = torch.stack([torch.stack(c, -1) for c in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))], dim=-2)
    xy = points_back(xy, variant, size)
    return torch.cat([xy.min(dim=-2).values, xy.max(dim=-2).values], dim=-1)


def points_back(xy: torch.Tensor, variant: Variant, size: tuple[int, int]) -> torch.Tensor:
    """(..., 2) points in a view's frame -> the original frame (the view's transforms undone in reverse)."""
    sizes = [size]
    for t, v in variant:
        sizes.append(t.out_size(v, sizes[-1]))
    for (t, v), s in zip(reversed(variant), reversed(sizes[:-1])):
        xy = t.points_back(xy, v, s)
    return xy


def detections_back(det: Detections, variant: Variant, size: tuple[int, int],
                    flip_index: Sequence[int] | None) -> Detections:
    out = dict(det)
    out["boxes"] = boxes_back(det["boxes"], variant, size)
    if "keypoints" in det and variant:
        kp = det["keypoints"]
        kp = torch.cat([points_back(kp[..., :2], variant, size), kp[..., 2:]], dim=-1)
        if flip_index is not None and sum(t.reflects(v) for t, v in variant) % 2:
            kp = kp[:, list(flip_index)]
        out["keypoints"] = kp
    return out


# ---- merging ----------------------------------------------------------------------------------
def merge_detections(views: list[Detections], size: tuple[int, int], merge: str, *, iou_threshold: float = 0.55,
                     skip_box_threshold: float = 0.0, conf_type: str = "avg", sigma: float = 0.5,
                     weights: Sequence[float] | None = None) -> Detections:
    """One image's detections from every view (original frame, pixels) -> merged detections."""
    import ensemble_boxes

    h, w = size
    if merge == "mean":
        return _slot_mean(views, weights)
    scale = np.array([w, h, w, h], dtype=np.float64)
    boxes = [np.clip(v["boxes"].numpy() / scale, 0.0, 1.0) for v in views]
    scores = [v["scores"].numpy() for v in views]
    labels = [v["labels"].numpy() for v in views]
    wts = list(weights) if weights is not None else None
    if merge == "wbf":
        b, s, lab = ensemble_boxes.weighted_boxes_fusion(boxes, scores, labels, weights=wts, iou_thr=iou_threshold,
                                                         skip_box_thr=skip_box_threshold, conf_type=conf_type)
    elif merge == "nms":
        keep = [s >= skip_box_threshold for s in scores]
        b, s, lab = ensemble_boxes.nms([x[k] for x, k in zip(boxes, keep)], [x[k] for x, k in zip(scores, keep)],
                                       [x[k] for x, k in zip(labels, keep)], weights=wts, iou_thr=iou_threshold)
    elif merge == "soft_nms":
        b, s, lab = ensemble_boxes.soft_nms(boxes, scores, labels, iou_thr=iou_threshold, sigma=sigma,
                                            thresh=skip_box_threshold, weights=wts)
    else:
        raise ValueError(f"unknown detection merge {merge!r}; allowed: {', '.join(DETECTION_MERGES)}")
    out = {"boxes": torch.as_tensor(np.asarray(b, np.float64).reshape(-1, 4) * scale),
           "scores": torch.as_tensor(np.asarray(s, np.float64).reshape(-1)),
           "labels": torch.as_tensor(np.asarray(lab).reshape(-1).astype(np.int64))}
    if any("keypoints" in v for v in views):
        out["keypoints"] = _keypoints_for(out, views, iou_threshold)
    return out


def _slot_mean(views: list[Detections], weights: Sequence[float] | None) -> Detections:
    counts = {v["boxes"].shape[0] for v in views}
    if len(counts) != 1:
        raise ValueError(f"merge 'mean' averages detection slots, so every view must return the same number of "
                         f"boxes in the same order (got {sorted(counts)}); use merge='wbf', 'nms' or 'soft_nms' "
                         "for variable-length sets")
    wt = torch.as_tensor(list(weights) if weights is not None else [1.0] * len(views), dtype=torch.float64)
    wt = wt / wt.sum()
    out = {k: (torch.stack([v[k] for v in views]) * wt.view(-1, *[1] * views[0][k].dim())).sum(0)
           for k in ("boxes", "scores", "keypoints") if k in views[0]}
    out["labels"] = views[0]["labels"].clone()
    return out


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp_min(0).prod(-1)   # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp_min(1e-12)


def _keypoints_for(merged: Detections, views: list[Detections], iou_threshold: float) -> torch.Tensor:
    """Score-weighted mean of the keypoints of each view's best-matching instance (same label)."""
    ref = next(v["keypoints"] for v in views if "keypoints" in v)
    n = merged["boxes"].shape[0]
    total = torch.zeros((n, *ref.shape[1:]), dtype=torch.float64)
    weight = torch.zeros(n, dtype=torch.float64)
    for v in views:
        if v["boxes"].shape[0] == 0 or n == 0 or "keypoints" not in v:
            continue
        iou = _iou(merged["boxes"], v["boxes"])
        iou[merged["labels"][:, None] != v["labels"][None, :]] = -1.0
        best, j = iou.max(dim=1)
        hit = best >= iou_threshold
        s = v["scores"][j] * hit
        total += s.view(-1, *[1] * (total.dim() - 1)) * v["keypoints"][j]
        weight += s
    return total / weight.clamp_min(1e-12).view(-1, *[1] * (total.dim() - 1))


# ---- the wrapper ------------------------------------------------------------------------------
class DetectionTTA:
    """Test-time augmentation around a detector; `augflow.TTA(..., task="detection")` builds one.

    `images`: a (B, C, H, W) tensor or a list of (C, H, W) tensors (sizes may differ). The detector
    is called with views of the same shape stacked (a tensor, or a list when given a list), at most
    `max_batch` images per call (halved on a CUDA out-of-memory error). Returns one dict per image,
    in the input's pixel frame, as CPU tensors (ensemble-boxes works on numpy arrays).
    """

    task = "detection"

    def __init__(self, model: Callable, pipeline: Any = "hflip", *, merge: str | None = None,
                 task: str = "detection", iou_threshold: float = 0.55, skip_box_threshold: float = 0.0,
                 conf_type: str = "avg", sigma: float = 0.5, weights: Sequence[float] | None = None,
                 max_batch: int | None = None, keypoint_flip_index: Sequence[int] | None = None,
                 device: str | torch.device | None = None, output_fn: Callable[[Any], Any] | None = None):
        if task != "detection":
            raise ValueError(f"DetectionTTA is for task 'detection', got {task!r}")
        self.model = model
        self.config: TTAConfig = load_tta(pipeline)
        self.config.check_task("detection")
        self.merge = merge or (self.config.merge if self.config.merge in DETECTION_MERGES else None) or "wbf"
        if self.merge not in DETECTION_MERGES:
            raise ValueError(f"merge {self.merge!r} does not fit task 'detection'; allowed: "
                             f"{', '.join(DETECTION_MERGES)}")
        if conf_type not in CONF_TYPES:
            raise ValueError(f"conf_type must be one of {', '.join(CONF_TYPES)} (ensemble-boxes' "
                             f"weighted_boxes_fusion), got {conf_type!r}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer or None, got {max_batch!r}")
        self.variants: list[Variant] = self.config.variants()
        self.view_names = [describe(v) for v in self.variants]
        if weights is not None and len(weights) != len(self.variants):
            raise ValueError(f"weights has {len(weights)} entries but the TTA has {len(self.variants)} views "
                             f"({', '.join(self.view_names)})")
        self.merge_options = dict(iou_threshold=iou_threshold, skip_box_threshold=skip_box_threshold,
                                  conf_type=conf_type, sigma=sigma, weights=weights)
        self.max_batch = max_batch
        self.keypoint_flip_index = list(keypoint_flip_index) if keypoint_flip_index is not None else None
        self.device = torch.device(device) if device is not None else model_device(model)
        self.output_fn = output_fn
        self.report = TTAReport(views=len(self.variants))
        self.last_report = TTAReport(views=len(self.variants))

    def __call__(self, images: torch.Tensor | list[torch.Tensor], *,
                 return_all: bool = False) -> list[Detections] | DetectionTTAResult:
        imgs, as_list = self._images(images)
        rep = TTAReport(inputs=len(imgs), augmented=len(imgs), views=len(self.variants))
        sizes = [tuple(img.shape[-2:]) for img in imgs]
        with torch.no_grad():
            flat = [self._forward(img, var) for var in self.variants for img in imgs]
            dets = self._run(flat, as_list, rep)
        per_view = [[detections_back(dets[vi * len(imgs) + b], var, sizes[b], self.keypoint_flip_index)
                     for b in range(len(imgs))] for vi, var in enumerate(self.variants)]
        merged = [merge_detections([per_view[v][b] for v in range(len(self.variants))], sizes[b], self.merge,
                                   **self.merge_options) for b in range(len(imgs))]
        merged = [{k: t.to(torch.int64 if k == "labels" else torch.float32) for k, t in m.items()} for m in merged]
        self.last_report = rep
        self.report.add(rep)
        if return_all:
            return DetectionTTAResult(merged, per_view, list(self.view_names), rep)
        return merged

    def _images(self, images: Any) -> tuple[list[torch.Tensor], bool]:
        if isinstance(images, torch.Tensor):
            if images.dim() != 4:
                raise ValueError(f"detection TTA takes a (B, C, H, W) batch or a list of (C, H, W) images, got shape "
                                 f"{tuple(images.shape)}")
            imgs, as_list = list(images), False
        elif isinstance(images, (list, tuple)) and all(isinstance(i, torch.Tensor) and i.dim() == 3 for i in images):
            imgs, as_list = list(images), True
        else:
            raise TypeError("detection TTA takes a (B, C, H, W) tensor or a list of (C, H, W) tensors, got "
                            f"{type(images).__name__}")
        return [i.to(self.device) if self.device is not None else i for i in imgs], as_list

    @staticmethod
    def _forward(img: torch.Tensor, variant: Variant) -> torch.Tensor:
        x = img[None]
        for t, v in variant:
            x = t.image(x, v)
        return x[0]

    def _run(self, flat: list[torch.Tensor], as_list: bool, rep: TTAReport) -> list[Detections]:
        """Detections of every view image; same-shaped images share calls of at most `max_batch`."""
        groups: dict[tuple, list[int]] = {}
        for i, img in enumerate(flat):
            groups.setdefault(tuple(img.shape), []).append(i)
        out: list[Detections | None] = [None] * len(flat)
        for members in groups.values():
            lo = 0
            while lo < len(members):
                idx = members[lo:lo + (self.max_batch or len(members))]
                batch = [flat[i] for i in idx]
                try:
                    raw = self.model(batch if as_list else torch.stack(batch))
                except torch.cuda.OutOfMemoryError:
                    if len(idx) <= 1:
                        raise
                    self.max_batch = max(1, len(idx) // 2)   # as large as memory allows: halve and retry
                    torch.cuda.empty_cache()
                    continue
                raw = self.output_fn(raw) if self.output_fn is not None else raw
                for i, det in zip(idx, parse_detections(raw, len(idx))):
                    out[i] = det
                rep.model_calls += 1
                rep.model_inputs += len(idx)
                lo += len(idx)
        return out  # type: ignore[return-value]


__all__ = ["DetectionTTA", "DetectionTTAResult", "DETECTION_MERGES", "parse_detections", "boxes_back",
           "detections_back", "merge_detections"]
