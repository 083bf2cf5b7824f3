"""Image test-time augmentation: wrap a trained model, get merged predictions, change nothing else.

    tta = TTA(model, "pipelines/tta_segmentation.yaml", merge="mean", task="segmentation")
    probs = tta(images)                    # (B, C, H, W) batch in, merged predictions out

Every view of a batch is built on the model's device and sent through the model in as few calls
as `max_batch` allows (halved automatically on an out-of-memory error); dense, point and box
predictions are mapped back through each view's inverse before merging. With a `threshold`
(or after `calibrate`), only inputs whose plain prediction has entropy above it are augmented
(entropy-selective TTA, from LLM-TTA); `report` counts how many were.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from augflow.tta.config import DENSE_TASKS, TASKS, TTAConfig, Variant, load_tta
from augflow.tta.merge import CLASS_MERGES, COORD_MERGES, Merger, entropy, to_probs
from augflow.tta.report import TTAReport, describe, model_device  # noqa: F401  (public here too)


@dataclass
class TTAResult:
    """`return_all=True`: the merged prediction and every view's prediction (original frame).

    `predictions` is `(V, B, ...)`; rows of inputs that were not augmented are NaN except the
    plain prediction (view 0, when the original is among the views). `valid` (dense tasks) marks
    the pixels each view saw.
    """

    merged: torch.Tensor
    predictions: torch.Tensor
    augmented: torch.Tensor
    views: list[str]
    valid: torch.Tensor | None = None
    report: TTAReport = field(default_factory=TTAReport)


def prediction_tensor(out: Any) -> torch.Tensor:
    """The tensor in a model output: a tensor, `.logits` (Hugging Face), or dict 'out'/'logits'."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
        return out.logits
    if isinstance(out, dict):
        for key in ("out", "logits"):
            if isinstance(out.get(key), torch.Tensor):
                return out[key]
    raise TypeError(f"the model returned {type(out).__name__}; TTA needs a tensor (or .logits, or a dict with "
                    "'out'/'logits'); pass output_fn= to pick the prediction out of it")


class TTA:
    """Test-time augmentation around `model` for classification, segmentation, keypoints or boxes;
    `task="detection"` gives a `DetectionTTA` (variable-length box sets, ensemble-boxes merges).

    `pipeline`: a TTA YAML path, a preset name (`hflip`, `flips`, `d4`, `multiscale`, `shifts`,
    `hflip_shifts`), a dict, or a TTAConfig. `output`: whether the model returns `logits` or
    `probs`. Keypoint outputs are `(B, K, D>=2)` with x, y first; box outputs `(B, N, D>=4)` with
    x_min, y_min, x_max, y_max (pixels) first; `keypoint_flip_index` re-pairs left/right keypoints
    in mirrored views. The model is called as it is (put it in eval mode yourself).
    """

    def __new__(cls, model: Callable = None, pipeline: Any = "hflip", *, task: str | None = None, **kwargs: Any):
        # Detectors return variable-length sets per image: their TTA is its own class.
        if cls is TTA and (task == "detection" or (task is None and load_tta(pipeline).task == "detection")):
            from augflow.tta.detection import DetectionTTA
            return DetectionTTA(model, pipeline, task="detection", **kwargs)
        return super().__new__(cls)

    def __init__(self, model: Callable, pipeline: Any = "hflip", *, merge: str | None = None,
                 task: str | None = None, output: str = "logits", activation: str = "auto",
                 max_batch: int | None = None, threshold: float | None = None,
                 uncertainty: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 keypoint_flip_index: list[int] | None = None, device: str | torch.device | None = None,
                 output_fn: Callable[[Any], torch.Tensor] | None = None):
        self.model = model
        self.config: TTAConfig = load_tta(pipeline)
        self.task = task or self.config.task or "classification"
        if self.task not in TASKS:
            raise ValueError(f"unknown TTA task {self.task!r}; allowed: {', '.join(TASKS)}")
        self.config.check_task(self.task)
        coords = self.task in ("keypoints", "boxes")
        self.merge = merge or self.config.merge or "mean"
        allowed = COORD_MERGES if coords else CLASS_MERGES
        if self.merge not in allowed:
            raise ValueError(f"merge {self.merge!r} does not fit task {self.task!r}; allowed: {', '.join(allowed)}")
        if output not in ("logits", "probs"):
            raise ValueError(f"output must be 'logits' or 'probs', got {output!r}")
        if activation not in ("auto", "softmax", "sigmoid"):
            raise ValueError(f"activation must be 'auto', 'softmax' or 'sigmoid', got {activation!r}")
        if self.merge == "mean_logits" and output != "logits":
            raise ValueError("merge 'mean_logits' needs output='logits'")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer or None, got {max_batch!r}")
        if threshold is not None and coords and uncertainty is None:
            raise ValueError(f"selective TTA for task {self.task!r} needs uncertainty=fn(predictions) -> (B,) "
                             "(entropy needs class probabilities)")
        self.output, self.activation = output, activation
        self.max_batch = max_batch
        self.threshold = threshold
        self.uncertainty_fn = uncertainty
        self.keypoint_flip_index = list(keypoint_flip_index) if keypoint_flip_index is not None else None
        self.device = torch.device(device) if device is not None else model_device(model)
        self.output_fn = output_fn or prediction_tensor
        self.variants: list[Variant] = self.config.variants()
        self.view_names = [describe(v) for v in self.variants]
        self.report = TTAReport(views=len(self.variants))
        self.last_report = TTAReport(views=len(self.variants))

    # ---- public ------------------------------------------------------------------------------
    def __call__(self, images: torch.Tensor, *, return_all: bool = False) -> torch.Tensor | TTAResult:
        """Merged predictions for a `(B, C, H, W)` batch (a TTAResult with `return_all=True`)."""
        x = self._batch(images)
        rep = TTAReport(inputs=x.shape[0], views=len(self.variants))
        with torch.no_grad():
            base = None
            selected = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
            if self.threshold is not None:
                base = self._run([x], rep)[0]
                selected = self.uncertainty(base).to(x.device) > self.threshold
            idx = selected.nonzero().flatten()
            rep.augmented = int(idx.numel())
            preds: list[torch.Tensor] = []
            valids: list[torch.Tensor | None] = []
            merged_sel = None
            if rep.augmented:
                merger = self._merger()
                views = self._views(x[idx] if base is not None else x, base[idx] if base is not None else None, rep)
                for pred, valid in views:
                    merger.add(pred, valid)
                    if return_all:
                        preds.append(pred)
                        valids.append(valid)
                merged_sel = merger.result()
            if base is None:
                merged = merged_sel
            else:
                single = self._merger()
                single.add(base)
                merged = single.result()
                if merged_sel is not None:
                    merged[idx] = merged_sel.to(merged.dtype)
        self.last_report = rep
        self.report.add(rep)
        if not return_all:
            return merged
        return self._result(merged, preds, valids, selected, idx, base, rep)

    def uncertainty(self, predictions: torch.Tensor) -> torch.Tensor:
        """Per-input uncertainty of plain predictions, shape (B,): predictive entropy by default."""
        if self.uncertainty_fn is not None:
            return self.uncertainty_fn(predictions).reshape(-1).float()
        binary = self.activation == "sigmoid" or (self.activation == "auto" and predictions.shape[1] == 1)
        return entropy(to_probs(predictions, self.output, self.activation, 1), 1, binary)

    def calibrate(self, loader: Iterable, target_rate: float = 0.4) -> float:
        """Pick the threshold that augments `target_rate` of a held-out set; returns and keeps it.

        `loader` yields image batches, `(images, targets)` pairs or dicts with 'image'.
        """
        if not 0.0 <= target_rate <= 1.0:
            raise ValueError(f"target_rate must be in [0, 1], got {target_rate!r}")
        scores = []
        rep = TTAReport(views=len(self.variants))
        with torch.no_grad():
            for batch in loader:
                x = self._batch(batch_images(batch))
                scores.append(self.uncertainty(self._run([x], rep)[0]).cpu())
        if not scores:
            raise ValueError("calibrate got an empty loader")
        self.threshold = threshold_for_rate(torch.cat(scores), target_rate)
        return self.threshold

    def reset_report(self) -> None:
        self.report = TTAReport(views=len(self.variants))

    # ---- views -------------------------------------------------------------------------------
    def _batch(self, images: Any) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"TTA takes a (B, C, H, W) tensor batch, got {type(images).__name__}")
        if images.dim() != 4:
            raise ValueError(f"TTA takes a (B, C, H, W) tensor batch, got shape {tuple(images.shape)}; "
                             "add the batch axis with images[None]")
        return images.to(self.device) if self.device is not None else images

    def _views(self, x: torch.Tensor, base: torch.Tensor | None, rep: TTAReport):
        """Yield every view's prediction in the original frame, and its valid mask (or None)."""
        size = tuple(x.shape[-2:])
        todo = [v for v in self.variants if v or base is None]
        outs = iter(self._run([self._forward(x, v) for v in todo], rep))
        for variant in self.variants:
            out = base if (not variant and base is not None) else next(outs)
            yield self._back(out, variant, size)

    def _merger(self) -> Merger:
        return Merger(self.merge, output=self.output, activation=self.activation, class_dim=1,
                      coords=self.task in ("keypoints", "boxes"))

    @staticmethod
    def _forward(x: torch.Tensor, variant: Variant) -> torch.Tensor:
        for t, v in variant:
            x = t.image(x, v)
        return x

    def _back(self, out: torch.Tensor, variant: Variant, size: tuple[int, int]):
        if self.task == "classification" or not variant:
            return out, None
        sizes = [size]
        for t, v in variant:
            sizes.append(t.out_size(v, sizes[-1]))
        if self.task == "segmentation":
            valid = None
            for (t, v), s in zip(reversed(variant), reversed(sizes[:-1])):
                out, step_valid = t.dense_back(out, v, s)
                if valid is not None:
                    valid, _ = t.dense_back(valid, v, s)
                if step_valid is not None:
                    valid = step_valid.float() if valid is None else valid * step_valid.float()
            return out, (valid > 0.5) if valid is not None else None
        pts = out.float()
        corners = self.task == "boxes"
        if corners:   # boxes map back through their four corners
            x1, y1, x2, y2 = pts[..., 0], pts[..., 1], pts[..., 2], pts[..., 3]
            xy = torch.stack([torch.stack(c, dim=-1) for c in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))], dim=-2)
        else:
            xy = pts[..., :2]
        for (t, v), s in zip(reversed(variant), reversed(sizes[:-1])):
            xy = t.points_back(xy, v, s)
        if corners:
            lo, hi = xy.min(dim=-2).values, xy.max(dim=-2).values
            out = torch.cat([lo, hi, pts[..., 4:]], dim=-1)
        else:
            out = torch.cat([xy, pts[..., 2:]], dim=-1)
            if self.keypoint_flip_index is not None and sum(t.reflects(v) for t, v in variant) % 2:
                out = out[:, self.keypoint_flip_index]
        return out, None

    # ---- model calls -------------------------------------------------------------------------
    def _run(self, inputs: list[torch.Tensor], rep: TTAReport) -> list[torch.Tensor]:
        """Model outputs for each input batch; same-shaped batches share calls of <= max_batch rows.

        Rows are copied only to join pieces into one call; an input that fits a call whole is
        passed (and its output returned) without a copy.
        """
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(inputs):
            groups.setdefault(tuple(t.shape[1:]), []).append(i)
        pieces_of: list[list[torch.Tensor]] = [[] for _ in inputs]
        for members in groups.values():
            queue = deque((i, 0, inputs[i].shape[0]) for i in members if inputs[i].shape[0])
            while queue:
                step = self.max_batch or sum(hi - lo for _, lo, hi in queue)
                chunk, n = [], 0
                while queue and n < step:
                    i, lo, hi = queue.popleft()
                    take = min(hi - lo, step - n)
                    chunk.append((i, lo, lo + take))
                    if lo + take < hi:
                        queue.appendleft((i, lo + take, hi))
                    n += take
                out = self._call([inputs[i][lo:hi] for i, lo, hi in chunk], n, rep)
                if out is None:                  # out of memory: the same rows again, in smaller calls
                    queue.extendleft(reversed(chunk))
                    continue
                at = 0
                for i, lo, hi in chunk:
                    pieces_of[i].append(out[at:at + hi - lo])
                    at += hi - lo
        return [p[0] if len(p) == 1 else torch.cat(p) for p in pieces_of]

    def _call(self, parts: list[torch.Tensor], n: int, rep: TTAReport) -> torch.Tensor | None:
        """One model call on the joined parts; on out-of-memory, halve max_batch and return None."""
        x = parts[0] if len(parts) == 1 else torch.cat(parts)
        try:
            out = self.output_fn(self.model(x))
        except torch.cuda.OutOfMemoryError:
            if n <= 1:
                raise
            self.max_batch = max(1, n // 2)          # as large as memory allows: halve and retry
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return None
        rep.model_calls += 1
        rep.model_inputs += n
        return out

    def _result(self, merged, preds, valids, selected, idx, base, rep) -> TTAResult:
        b = selected.shape[0]
        ref = preds[0] if preds else base
        full = torch.full((len(self.variants), b, *ref.shape[1:]), math.nan, dtype=torch.float32, device=ref.device)
        if preds:
            full[:, idx] = torch.stack(preds).float()
        if base is not None and self.variants and not self.variants[0]:
            rest = (~selected).nonzero().flatten()
            full[0, rest] = base[rest].float()
        valid = None
        if any(v is not None for v in valids):
            ones = torch.ones_like(next(v for v in valids if v is not None))
            valid = torch.stack([v if v is not None else ones for v in valids])
        return TTAResult(merged, full, selected, list(self.view_names), valid, rep)


def batch_images(batch: Any) -> torch.Tensor:
    """The images of a loader batch: a tensor, the first item of a tuple/list, or dict['image']."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch:
        return batch[0]
    if isinstance(batch, dict) and "image" in batch:
        return batch["image"]
    raise TypeError(f"cannot find images in a loader batch of type {type(batch).__name__}; "
                    "yield tensors, (images, targets) pairs or dicts with 'image'")


def threshold_for_rate(scores: torch.Tensor, rate: float) -> float:
    """A threshold with `round(rate * n)` scores strictly above it (fewer only on exact ties)."""
    s = scores.double().flatten().sort(descending=True).values
    n = s.numel()
    m = round(rate * n)
    if m <= 0:
        return float(s[0])
    if m >= n:
        return float("-inf")
    return float((s[m - 1] + s[m]) / 2) if s[m - 1] > s[m] else float(s[m])


__all__ = ["TTA", "TTAReport", "TTAResult", "batch_images", "threshold_for_rate", "model_device",
           "prediction_tensor", "DENSE_TASKS"]
