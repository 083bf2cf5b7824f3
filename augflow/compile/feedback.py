"""The trainer talks back to the loader: an adaptive policy's decisions in, per-sample feedback out.

    loader = pipe.compile(data, batch_size=64, shuffle=True, policy=LossCurriculum())
    for epoch in range(E):
        loader.set_epoch(epoch)
        for batch in loader:                       # batch["_index"], batch["_epoch"]
            losses = F.cross_entropy(model(batch["image"]), batch["label"], reduction="none")
            loader.feedback(batch, losses=losses)  # reaches the policy keyed by (index, epoch)
            losses.mean().backward(); ...

Where decisions are made, and why: in the main process, when the epoch's sampler is iterated
(`DecidingSampler`), and sent to the workers with the indices as `(index, epoch, decision)` keys.
Workers then hold no policy state (nothing to synchronise, nothing lost when a worker restarts),
and a decision is a small JSON dict that pickles cheaply. A policy decides epoch `e` from the
feedback of epochs before `e` only, folded in (index, epoch) order at the start of the epoch: the
DataLoader's prefetching and the worker count then cannot change a decision, and a run resumed
from `policy.state_dict()` at an epoch boundary decides exactly as the uninterrupted run.

The policy protocol (what `augflow.adaptive.Policy` implements): `bind(pipeline, seed)`,
`begin_epoch(epoch)`, `decide(indices, epoch) -> [decision]`, `record(indices, epochs, losses,
features, labels)`.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np

from augflow.compile.backends import BackendError
from augflow.compile.plan import OpItem, Plan
from augflow.compile.sample_stage import EPOCH_KEY, INDEX_KEY
from augflow.decision import check_decision, provenance_entry
from augflow.sample import Sample
from augflow.steps import run_step

# Passes that merge ops (one warp for several geometric ops, a reduced JPEG decode sized for the first
# op): a decision weakens or skips single ops, so these stay off when a policy is given.
_MERGING_PASSES = ("affine_fusion", "reduced_decode")


def policy_passes(passes: Any) -> tuple:
    """The compiler passes with a policy: the defaults less the merging ones; asking for one is an error."""
    from augflow.compile.passes import DEFAULT_PASSES

    if passes is None:
        return tuple(p for p in DEFAULT_PASSES if p not in _MERGING_PASSES)
    passes = tuple(passes)
    bad = [p for p in passes if p in _MERGING_PASSES]
    if bad:
        raise ValueError(f"compile(policy=...) cannot run the pass(es) {bad}: they merge ops that the policy "
                         f"switches or weakens one by one; drop them from passes= (e.g. passes=['normalize_fusion'])")
    return passes


def bind_policy(policy: Any, plan: Plan) -> None:
    """Check the plan can run decisions and give the policy its vocabulary (the pipeline's controls)."""
    if plan.sample.backend != "albumentations":
        raise BackendError(f"compile(policy=...) runs the sample stage with per-sample decisions, which the "
                           f"{plan.sample.backend!r} sample backend does not take; use backend='albumentations' "
                           "(or leave backend unset)")
    for name in ("bind", "begin_epoch", "decide", "record"):
        if not callable(getattr(policy, name, None)):
            raise TypeError(f"policy= must be an augflow.adaptive policy (missing method {name!r}), "
                            f"got {type(policy).__name__}")
    policy.bind(plan.pipeline, plan.seed)


def run_decided(stage: Any, base: Sample, rng: np.random.Generator, decision: Mapping[str, Any]) -> Sample:
    """The sample items under a decision: what `Pipeline.__call__(..., decision=)` does for them."""
    realizer = stage.pipeline.realizer()
    decision = check_decision(decision, realizer)
    base.provenance.append(provenance_entry(decision))
    choose = realizer.chooser(decision)
    for item in stage.items:
        if not isinstance(item, OpItem):
            raise TypeError(f"plan item {type(item).__name__} cannot run under a policy decision")
        base = run_step(item.step, base, rng, None, choose)
    return base


class DecidingSampler:
    """The loader's (index, epoch) sampler, each pair extended with the policy's decision."""

    def __init__(self, base: Any, loader: Any):
        self.base, self.loader = base, loader

    def __iter__(self) -> Iterator[tuple[int, int, dict]]:
        pairs = list(iter(self.base))
        return iter(_decide(self.loader.policy, pairs, self.loader.epoch))

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str) -> Any:      # set_epoch, order, epoch... of the wrapped sampler
        return getattr(self.__dict__["base"], name)


class DecidingBatches:
    """A user's batch sampler in (index, epoch) keys, each extended with the policy's decision.
    The epoch's batches are drawn at once, so the policy decides the whole epoch in one call."""

    def __init__(self, batches: Any, loader: Any):
        self.batches, self.loader = batches, loader

    def __iter__(self) -> Iterator[list[tuple[int, int, dict]]]:
        batches = [list(b) for b in self.batches]
        flat = _decide(self.loader.policy, [p for b in batches for p in b], self.loader.epoch)
        out, at = [], 0
        for b in batches:
            out.append(flat[at:at + len(b)])
            at += len(b)
        return iter(out)

    def __len__(self) -> int:
        return len(self.batches)


def _decide(policy: Any, pairs: list[tuple[int, int]], epoch: int) -> list[tuple[int, int, dict]]:
    if not pairs:
        return []
    epoch = int(pairs[0][1]) if pairs else int(epoch)
    policy.begin_epoch(epoch)
    indices = np.asarray([int(i) for i, _ in pairs], dtype=np.int64)
    decisions = policy.decide(indices, epoch)
    return [(int(i), int(e), d) for (i, e), d in zip(pairs, decisions)]


def send_feedback(policy: Any, batch: Mapping[str, Any], losses: Any = None, features: Any = None,
                  epoch: int = 0) -> None:
    """Hand a batch's per-sample losses/features to the policy, keyed by the batch's (index, epoch)
    (`epoch`: the loader's, when the batch stage has consumed the batch's own `_epoch`)."""
    if policy is None:
        raise ValueError("loader.feedback(...) needs a policy: compile with pipe.compile(data, ..., policy=P)")
    if INDEX_KEY not in batch:
        raise KeyError(f"the batch has no {INDEX_KEY!r} field: pass the batch the loader yielded")
    indices = _numpy(batch[INDEX_KEY]).astype(np.int64).reshape(-1)
    n = len(indices)
    epochs = (_numpy(batch[EPOCH_KEY]).astype(np.int64).reshape(-1) if EPOCH_KEY in batch
              else np.full(n, int(epoch), dtype=np.int64))
    if losses is None and features is None:
        raise ValueError("loader.feedback(batch, losses=..., features=...) needs losses or features")
    losses = None if losses is None else _numpy(losses).astype(np.float64).reshape(-1)
    features = None if features is None else _numpy(features).astype(np.float32).reshape(n, -1)
    if losses is not None and len(losses) != n:
        raise ValueError(f"feedback: {len(losses)} losses for a batch of {n} samples; pass per-sample losses "
                         "(e.g. F.cross_entropy(..., reduction='none'))")
    labels = batch.get("label")
    labels = _numpy(labels).reshape(-1) if labels is not None and len(_numpy(labels).reshape(-1)) == n else None
    policy.record(indices, epochs, losses, features, labels)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
    return np.asarray(value)
