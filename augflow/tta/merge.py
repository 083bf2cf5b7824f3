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
"""

from __future__ import annotations

import torch

MERGES = ("mean", "gmean", "max", "vote", "mean_logits", "median")
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


def _weights(preds: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return torch.ones((), dtype=preds.dtype, device=preds.device).expand(preds.shape)
    return valid.to(preds.dtype).expand(preds.shape)


def weighted_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over views (dim 0) counting only valid entries; never-seen entries are 0."""
    if valid is None:
        return values.mean(dim=0)
    w = _weights(values, valid)
    return (values * w).sum(dim=0) / w.sum(dim=0).clamp_min(1.0)


def merge(preds: torch.Tensor, mode: str, *, output: str = "logits", activation: str = "auto",
          class_dim: int = 1, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Merge `(V, B, ...)` class predictions into `(B, ...)` (see the module table)."""
    if mode not in CLASS_MERGES:
        raise ValueError(f"merge {mode!r} does not apply to class scores; use one of {', '.join(CLASS_MERGES)}")
    if mode == "mean_logits":
        if output != "logits":
            raise ValueError("merge 'mean_logits' needs a model that outputs logits (output='logits')")
        return weighted_mean(preds.float(), valid)
    cdim = class_dim + 1                      # the view axis comes first
    binary = activation == "sigmoid" or (activation == "auto" and preds.shape[cdim] == 1)
    probs = to_probs(preds, output, activation, cdim)
    if mode == "mean":
        return weighted_mean(probs, valid)
    if mode == "gmean":
        g = weighted_mean(probs.clamp_min(_EPS).log(), valid).exp()
        if binary:
            q = weighted_mean((1 - probs).clamp_min(_EPS).log(), valid).exp()
            return g / (g + q)
        return g / g.sum(dim=class_dim, keepdim=True).clamp_min(_EPS)
    if mode == "max":
        if valid is not None:
            probs = probs.masked_fill(~valid.expand(probs.shape), float("-inf"))
        out = probs.max(dim=0).values
        return out.clamp_min(0.0)             # never-seen entries: 0, as for the means
    # vote: each view votes for its top class (binary: for p > 0.5); the result is the vote share
    if binary:
        votes = (probs > 0.5).to(probs.dtype)
    else:
        top = probs.argmax(dim=cdim, keepdim=True)
        votes = torch.zeros_like(probs).scatter_(cdim, top, 1.0)
    return weighted_mean(votes, valid)


def merge_coords(preds: torch.Tensor, mode: str) -> torch.Tensor:
    """Merge `(V, B, N, D)` point or box predictions (already in the original frame)."""
    if mode == "mean":
        return preds.float().mean(dim=0)
    if mode == "median":
        return preds.float().median(dim=0).values
    raise ValueError(f"merge {mode!r} does not apply to coordinates; use one of {', '.join(COORD_MERGES)}")


__all__ = ["MERGES", "CLASS_MERGES", "COORD_MERGES", "merge", "merge_coords", "entropy", "to_probs", "weighted_mean"]
