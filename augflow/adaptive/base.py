"""What every adaptive policy shares: the vocabulary, the per-sample decision stream, feedback
folded at epoch boundaries, the prior when no feedback came, and state_dict/load_state_dict.

A policy decides epoch `e` from the feedback of epochs before `e`. `record` only queues feedback;
`begin_epoch(e)` folds the queued rows with epoch < e in (epoch, index) order into the policy's
state (`fold`), so neither arrival order nor the loader's prefetch depth changes a decision.
Randomness in a decision comes from the sample's own seed, (pipeline seed, epoch, index), on the
policy's stream (spawn key 3: apart from the sample stage, batch stage and shuffle streams).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from augflow import seeding
from augflow.decision import LEVELS, Control, controls

POLICY_STREAM = 3


def decision_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator a policy draws sample `index`'s decision in `epoch` from."""
    base = seeding.call_seed(seed, epoch, index)
    return seeding.generator(np.random.SeedSequence(base.entropy, spawn_key=(POLICY_STREAM,)))


def level_of(magnitude: float, rng: np.random.Generator) -> int:
    """A magnitude in [0, 1] as an integer level, rounded up or down at random (unbiased)."""
    x = float(np.clip(magnitude, 0.0, 1.0)) * LEVELS
    lo = int(np.floor(x))
    return min(LEVELS, lo + int(rng.random() < x - lo))


class Policy:
    """Base of the policies in `augflow.adaptive`. Subclasses implement `fold` and `decide_one`
    (and `prior_one`, the decision without feedback); `_state`/`_load` for extra state."""

    name = "policy"

    def __init__(self) -> None:
        self.controls: list[Control] = []
        self.seed = 0
        self.pending: list[tuple[int, int, float | None, np.ndarray | None, Any]] = []
        self.folded_through = -1      # last epoch whose feedback is folded in
        self.has_feedback = False
        self._warned = False

    # ---- channel -----------------------------------------------------------------------------
    def bind(self, pipeline: Any, seed: int) -> None:
        """Read the pipeline's vocabulary (called by `pipe.compile(..., policy=self)`)."""
        self.controls = controls(pipeline)
        self.seed = int(seed)
        if not self.controls:
            raise ValueError("the pipeline has no op a policy can control: an op is controlled when it has a "
                             "magnitude range (e.g. rotate's limit) or p < 1; see augflow/decision.py")

    @property
    def paths(self) -> list[str]:
        return [c.path for c in self.controls]

    def record(self, indices: np.ndarray, epochs: np.ndarray, losses: np.ndarray | None,
               features: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
        """Queue one batch of feedback (what `loader.feedback` calls)."""
        for k, (i, e) in enumerate(zip(indices, epochs)):
            self.pending.append((int(i), int(e), None if losses is None else float(losses[k]),
                                 None if features is None else np.asarray(features[k]),
                                 None if labels is None else labels[k].item() if hasattr(labels[k], "item") else labels[k]))

    def begin_epoch(self, epoch: int) -> None:
        """Fold the feedback of epochs before `epoch`; warn once when there has been none."""
        ready = sorted((r for r in self.pending if r[1] < epoch), key=lambda r: (r[1], r[0]))
        self.pending = [r for r in self.pending if r[1] >= epoch]
        if ready:
            self.fold(ready, epoch)
            self.has_feedback = True
            self.folded_through = max(self.folded_through, ready[-1][1])
        if epoch > 0 and not self.has_feedback and not self._warned:
            self._warned = True
            warnings.warn(f"{type(self).__name__}: no feedback received before epoch {epoch}; deciding from its "
                          "prior. Call loader.feedback(batch, losses=...) after each loss.", stacklevel=3)
        self.on_epoch(epoch)

    def decide(self, indices: np.ndarray, epoch: int) -> list[dict[str, Any]]:
        """One decision per index: `{"ops": {path: level}}` (see augflow/decision.py)."""
        return [self.decide_one(int(i), epoch, decision_rng(self.seed, epoch, int(i))) for i in indices]

    # ---- to implement ------------------------------------------------------------------------
    def fold(self, rows: list[tuple], epoch: int) -> None:
        """Take feedback rows (index, epoch, loss, features, label) into the policy's state."""

    def on_epoch(self, epoch: int) -> None:
        """After folding: freeze whatever `decide_one` reads for this epoch."""

    def decide_one(self, index: int, epoch: int, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def all_ops(self, level: int) -> dict[str, Any]:
        """Every controlled op at one level."""
        return {"ops": {p: int(level) for p in self.paths}}

    # ---- resume ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to decide exactly as the uninterrupted one."""
        pending = [[i, e, loss, None if f is None else np.asarray(f).tolist(), label]
                   for i, e, loss, f, label in self.pending]
        return {"name": self.name, "pending": pending, "folded_through": self.folded_through,
                "has_feedback": self.has_feedback, "warned": self._warned, **self._state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state_dict of policy {state.get('name')!r} given to {self.name!r}")
        self.pending = [(int(i), int(e), loss, None if f is None else np.asarray(f, dtype=np.float32), label)
                        for i, e, loss, f, label in state["pending"]]
        self.folded_through = int(state["folded_through"])
        self.has_feedback = bool(state["has_feedback"])
        self._warned = bool(state.get("warned", False))
        self._load(state)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        pass
