"""AugmentSubset: augment only a coreset whose gradients stand for the whole data (Liu &
Mirzasoleiman, "Data-Efficient Augmentation for Training Neural Networks", NeurIPS 2022).

Every `every` epochs the policy selects `fraction` of the samples by facility location on their
last-layer gradient embeddings (CRAIG-style: the gradient of the loss w.r.t. the logits,
`softmax(z) - onehot(y)`, optionally times the penultimate features; `last_layer_gradients`
computes it), per class when the batches carry labels. Selected samples get every controlled op
at full magnitude, the others none; structural ops (resize, normalize) still run for all.
Facility location, max over subsets S of sum_i max_{j in S} sim(i, j) with sim = (largest
distance) - distance as in CRAIG, is maximised by the plain greedy algorithm (the (1 - 1/e)
guarantee), in numpy: `apricot-select` was tried first, but on this project's 2-core machine each
of its calls took 7-11 s (numba compiling again), against milliseconds for the numpy loop at the
sizes here (a few thousand samples per class; O(k n^2)). Each selected sample's weight is the
number of samples it stands for, exposed as `weights` for a weighted loss. `report()` gives the share of augmentation work saved.

Before the first selection (no gradients yet) the prior augments a random `fraction`, drawn
from each sample's decision stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from augflow.adaptive.base import Policy
from augflow.decision import LEVELS


def last_layer_gradients(logits: Any, labels: Any, penultimate: Any = None):
    """Per-sample gradient embedding of the last layer: (softmax - onehot), or its outer product
    with the penultimate features when given (the exact gradient of a linear head's weights)."""
    import torch

    p = torch.softmax(logits.detach().float(), dim=1)
    g = p - torch.nn.functional.one_hot(labels.long(), p.shape[1]).float()
    if penultimate is None:
        return g
    h = penultimate.detach().float().reshape(len(g), -1)
    return (g[:, :, None] * h[:, None, :]).reshape(len(g), -1)


def facility_location(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(selected rows in greedy order, weight of each = how many rows it is the nearest pick for)."""
    n = len(features)
    k = max(1, min(int(k), n))
    if k == n:
        return np.arange(n), np.ones(n)
    x = np.asarray(features, dtype=np.float64)
    sq = (x * x).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    sim = dist.max() - dist
    covered = np.zeros(n)                      # each row's best similarity to the picks so far
    chosen: list[int] = []
    for _ in range(k):
        gains = np.maximum(sim - covered[:, None], 0.0).sum(0)
        gains[chosen] = -1.0
        j = int(np.argmax(gains))              # ties: the lowest index, so selection is deterministic
        chosen.append(j)
        covered = np.maximum(covered, sim[:, j])
    picks = np.asarray(chosen, dtype=np.int64)
    weights = np.bincount(dist[:, picks].argmin(1), minlength=k).astype(np.float64)
    return picks, weights


class AugmentSubset(Policy):
    name = "augment_subset"

    def __init__(self, fraction: float = 0.3, every: int = 2, *, per_class: bool = True):
        super().__init__()
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if every < 1:
            raise ValueError(f"every (epochs between selections) must be >= 1, got {every}")
        self.fraction, self.every, self.per_class = float(fraction), int(every), bool(per_class)
        self.features: dict[int, np.ndarray] = {}
        self.labels: dict[int, Any] = {}
        self.subset: dict[int, float] = {}      # index -> weight
        self.selected_at: int | None = None
        self.history: list[dict[str, Any]] = []
        self.counts = {"augmented": 0, "total": 0}

    def fold(self, rows: list[tuple], epoch: int) -> None:
        for i, _, _, feat, label in rows:
            if feat is not None:
                self.features[i] = np.asarray(feat, dtype=np.float32)
            if label is not None:
                self.labels[i] = label

    def on_epoch(self, epoch: int) -> None:
        due = self.selected_at is None or epoch - self.selected_at >= self.every
        if self.features and due and self.selected_at != epoch:
            self.select(epoch)

    def select(self, epoch: int) -> None:
        """Choose the subset from the latest gradient embedding of every sample seen."""
        indices = np.asarray(sorted(self.features), dtype=np.int64)
        x = np.stack([self.features[int(i)] for i in indices])
        groups: dict[Any, np.ndarray] = {None: np.arange(len(indices))}
        if self.per_class and all(int(i) in self.labels for i in indices):
            labels = np.asarray([self.labels[int(i)] for i in indices])
            groups = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
        subset: dict[int, float] = {}
        for rows in groups.values():
            k = int(round(self.fraction * len(rows)))
            if k == 0:
                continue
            chosen, weights = facility_location(x[rows], k)
            for r, w in zip(chosen, weights):
                subset[int(indices[rows[r]])] = float(w)
        self.subset, self.selected_at = subset, epoch
        self.history.append({"epoch": epoch, "size": len(subset), "of": len(indices)})

    @property
    def weights(self) -> dict[int, float]:
        """Selected index -> how many samples it stands for (for a weighted loss, optional)."""
        return dict(self.subset)

    def decide_one(self, index: int, epoch: int, rng: np.random.Generator) -> dict[str, Any]:
        if self.selected_at is None:
            chosen = rng.random() < self.fraction
        else:
            chosen = index in self.subset
        self.counts["total"] += 1
        self.counts["augmented"] += int(chosen)
        return self.all_ops(LEVELS) if chosen else {"ops": {}}

    def report(self) -> dict[str, Any]:
        """Selections made and the share of per-sample augmentation work saved so far."""
        total = max(1, self.counts["total"])
        return {"fraction": self.fraction, "selections": list(self.history),
                "augmented_samples": self.counts["augmented"], "samples": self.counts["total"],
                "augmentation_saved": 1.0 - self.counts["augmented"] / total}

    def _state(self) -> dict[str, Any]:
        return {"features": {int(k): v.tolist() for k, v in self.features.items()},
                "labels": {int(k): v for k, v in self.labels.items()},
                "subset": {int(k): v for k, v in self.subset.items()}, "selected_at": self.selected_at,
                "history": list(self.history), "counts": dict(self.counts)}

    def _load(self, state: dict[str, Any]) -> None:
        self.features = {int(k): np.asarray(v, dtype=np.float32) for k, v in state["features"].items()}
        self.labels = {int(k): v for k, v in state["labels"].items()}
        self.subset = {int(k): float(v) for k, v in state["subset"].items()}
        self.selected_at = state["selected_at"]
        self.history = list(state["history"])
        self.counts = dict(state["counts"])
