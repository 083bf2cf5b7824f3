"""Merging augmented predictions, and the predictive entropy that selective TTA thresholds.

Predictions arrive stacked as `(V, B, ...)`: V views of a batch of B, already mapped back to the
original frame. `valid` (broadcastable to that shape, bool) marks what each view actually saw,
so pixels a shifted view never saw do not count. Class scores live on `class_dim` of one
prediction (1 for `(B, C)` and `(B, C, H, W)`).

| merge        | input                      | result                                            |
|--------------|----------------------------|---------------------------------------------------|
| mean         | logits or probabilities    | mean probability                                  |
| gmean        | logits or probabilities    | geometric mean of probabilities, renormalized     |
| max          | logits or probabilities    | per-class maximum probability                     |
| vote         | logits or probabilities    | share of views voting for each class (argmax)     |
| mean_logits  | logits                     | mean logits (softmax it yourself)                 |
| median       | coordinates (points/boxes) | per-coordinate median (mean is also allowed)      |
| wbf, nms, soft_nms | detections (task detection) | ensemble-boxes fusion (see tta/detection.py) |
"""

from __future__ import annotations

import torch

MERGES = ("mean", "gmean", "max", "vote", "mean_logits", "median", "wbf", "nms", "soft_nms")
CLASS_MERGES = ("mean", "gmean", "max", "vote", "mean_logits")
COORD_MERGES = ("mean", "median")
_EPS = 1e-12


def to_probs(pred: torch.Tensor, output: str, activation: str, class_dim: int) -> torch.Tensor:
    """Probabilities from a model output: softmax/sigmoid of logits, or the output itself."""
    if output == "probs":
        return pred.float()
    act = activation
    if act == "auto":
        act = "sigmoid" if pred.shape[class_dim] == 1 else "softmax"
    return torch.sigmoid(pred.float()) if act == "sigmoid" else torch.softmax(pred.float(), dim=class_dim)


def entropy(probs: torch.Tensor, class_dim: int = 1, binary: bool = False) -> torch.Tensor:
    """Predictive entropy per input (nats), averaged over any spatial positions: shape (B,)."""
    p = probs.float().clamp_min(_EPS)
    if binary:   # independent sigmoid outputs: sum of binary entropies
        q = (1 - probs.float()).clamp_min(_EPS)
        h = -(p * p.log() + q * q.log()).sum(dim=class_dim)
    else:
        h = -(p * p.log()).sum(dim=class_dim)
    return h.reshape(h.shape[0], -1).mean(dim=1)


class Merger:
    """Merge predictions one view at a time (see the module table), so V views never sit stacked.

    `add(pred, valid)` takes one view's `(B, ...)` prediction in the original frame and, for dense
    tasks, a bool mask broadcastable to it; `result()` gives the merged `(B, ...)`. Entries no
    valid view saw come out 0.
    """

    def __init__(self, mode: str, *, output: str = "logits", activation: str = "auto", class_dim: int = 1,
                 coords: bool = False):
        allowed = COORD_MERGES if coords else CLASS_MERGES
        if mode not in allowed:
            kind = "coordinates" if coords else "class scores"
            raise ValueError(f"merge {mode!r} does not apply to {kind}; use one of {', '.join(allowed)}")
        if mode == "mean_logits" and output != "logits":
            raise ValueError("merge 'mean_logits' needs a model that outputs logits (output='logits')")
        self.mode, self.output, self.activation = mode, output, activation
        self.class_dim, self.coords = class_dim, coords
        self.acc: torch.Tensor | None = None
        self.acc_q: torch.Tensor | None = None     # binary gmean: the complement's log-mean
        self.weight: torch.Tensor | float = 0.0
        self.views: list[torch.Tensor] = []        # median only
        self.binary = False

    def add(self, pred: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        pred = pred.float()
        if self.coords:
            if self.mode == "median":
                self.views.append(pred)
            else:
                self.acc = pred.clone() if self.acc is None else self.acc.add_(pred)
                self.weight += 1.0
            return
        w = None if valid is None else valid.to(pred.dtype).expand(pred.shape)
        self.weight = self.weight + (1.0 if w is None else w)
        if self.mode == "mean_logits":
            self._sum(pred, w)
            return
        self.binary = self.activation == "sigmoid" or (self.activation == "auto" and pred.shape[self.class_dim] == 1)
        probs = to_probs(pred, self.output, self.activation, self.class_dim)
        if self.mode == "mean":
            self._sum(probs, w)
        elif self.mode == "gmean":
            self._sum(probs.clamp_min(_EPS).log(), w)
            if self.binary:
                q = (1 - probs).clamp_min(_EPS).log()
                q = q if w is None else q * w
                self.acc_q = q if self.acc_q is None else self.acc_q.add_(q)
        elif self.mode == "max":
            if valid is not None:
                probs = probs.masked_fill(~valid.expand(probs.shape), float("-inf"))
            self.acc = probs if self.acc is None else torch.maximum(self.acc, probs)
        else:   # vote: each view votes for its top class (binary: for p > 0.5)
            if self.binary:
                votes = (probs > 0.5).to(probs.dtype)
            else:
                top = probs.argmax(dim=self.class_dim, keepdim=True)
                votes = torch.zeros_like(probs).scatter_(self.class_dim, top, 1.0)
            self._sum(votes, w)

    def _sum(self, value: torch.Tensor, w: torch.Tensor | None) -> None:
        value = value if w is None else value * w
        self.acc = value.clone() if self.acc is None else self.acc.add_(value)

    def result(self) -> torch.Tensor:
        if self.coords and self.mode == "median":
            return torch.stack(self.views).median(dim=0).values
        if self.acc is None:
            raise ValueError("no predictions to merge")
        if self.mode == "max":
            return self.acc.clamp_min(0.0)
        weight = self.weight.clamp_min(1.0) if isinstance(self.weight, torch.Tensor) else self.weight
        mean = self.acc / weight
        if self.mode == "gmean":
            g = mean.exp()
            if self.binary:
                q = (self.acc_q / weight).exp()
                return g / (g + q)
            return g / g.sum(dim=self.class_dim, keepdim=True).clamp_min(_EPS)
        return mean


def merge(preds: torch.Tensor, mode: str, *, output: str = "logits", activation: str = "auto",
          class_dim: int = 1, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Merge stacked `(V, B, ...)` class predictions into `(B, ...)` (see the module table)."""
    m = Merger(mode, output=output, activation=activation, class_dim=class_dim)
    for i in range(preds.shape[0]):
        m.add(preds[i], None if valid is None else valid[i])
    return m.result()


def merge_coords(preds: torch.Tensor, mode: str) -> torch.Tensor:
    """Merge `(V, B, N, D)` point or box predictions (already in the original frame)."""
    m = Merger(mode, coords=True)
    for p in preds:
        m.add(p)
    return m.result()


__all__ = ["MERGES", "CLASS_MERGES", "COORD_MERGES", "Merger", "merge", "merge_coords", "entropy", "to_probs"]
