"""LossCurriculum: each sample's magnitude from its recent loss, easy-to-hard (the simple baseline).

A sample's loss is smoothed over the epochs it was seen (exponential moving average). The first
epoch with feedback sets the reference loss; a sample's magnitude is then

    m = min_magnitude + (max_magnitude - min_magnitude) * clip(1 - ema_loss / reference, 0, 1)

so a sample the model still gets wrong (loss near or above the reference) stays lightly augmented,
and its augmentation strengthens as the model learns it. Every controlled op runs (with its own
`p`) at that magnitude, rounded to a level at random from the sample's decision stream. Samples
without feedback yet get `prior`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from augflow.adaptive.base import Policy, level_of


class LossCurriculum(Policy):
    name = "loss_curriculum"

    def __init__(self, *, prior: float = 0.5, min_magnitude: float = 0.0, max_magnitude: float = 1.0,
                 smoothing: float = 0.5):
        super().__init__()
        if not 0.0 <= min_magnitude <= max_magnitude <= 1.0:
            raise ValueError(f"need 0 <= min_magnitude <= max_magnitude <= 1, got {min_magnitude}, {max_magnitude}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing (weight of the old average) must be in [0, 1), got {smoothing}")
        self.prior, self.min_magnitude, self.max_magnitude = float(prior), float(min_magnitude), float(max_magnitude)
        self.smoothing = float(smoothing)
        self.ema: dict[int, float] = {}
        self.reference: float | None = None

    def fold(self, rows: list[tuple], epoch: int) -> None:
        by_epoch: dict[int, list[tuple[int, float]]] = {}
        for i, e, loss, _, _ in rows:
            if loss is not None:
                by_epoch.setdefault(e, []).append((i, loss))
        for e in sorted(by_epoch):
            if self.reference is None:
                self.reference = float(np.mean([loss for _, loss in by_epoch[e]])) or 1e-12
            for i, loss in by_epoch[e]:
                old = self.ema.get(i)
                self.ema[i] = loss if old is None else self.smoothing * old + (1.0 - self.smoothing) * loss

    def magnitude(self, index: int) -> float:
        """The magnitude sample `index` gets now (its prior without feedback)."""
        loss = self.ema.get(int(index))
        if loss is None or self.reference is None:
            return self.prior
        ease = float(np.clip(1.0 - loss / self.reference, 0.0, 1.0))
        return self.min_magnitude + (self.max_magnitude - self.min_magnitude) * ease

    def decide_one(self, index: int, epoch: int, rng: np.random.Generator) -> dict[str, Any]:
        return self.all_ops(level_of(self.magnitude(index), rng))

    def _state(self) -> dict[str, Any]:
        return {"ema": {int(k): float(v) for k, v in self.ema.items()}, "reference": self.reference}

    def _load(self, state: dict[str, Any]) -> None:
        self.ema = {int(k): float(v) for k, v in state["ema"].items()}
        self.reference = state["reference"]
