"""Pipeline steps: an op, or control flow over steps (one_of, some_of, sequential).

Steps only decide *which* ops run, drawing from the call's generator; each applied op is recorded
as one provenance entry (its path in the pipeline and its sampled params), so replay needs no
control flow at all: it walks the recorded entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from augflow.ops.base import Op
from augflow.params_codec import from_jsonable, to_jsonable
from augflow.sample import ProvenanceEntry, Sample


@dataclass
class OpStep:
    op: Op
    path: str
    name: str                         # the name the user wrote (kept for to_yaml)


@dataclass
class OneOf:
    steps: list["Step"]
    path: str
    p: float = 1.0
    weights: list[float] | None = None


@dataclass
class SomeOf:
    steps: list["Step"]
    path: str
    n: int | tuple[int, int] = 1
    replace: bool = False
    p: float = 1.0


@dataclass
class Sequential:
    steps: list["Step"]
    path: str
    p: float = 1.0


Step = Union[OpStep, OneOf, SomeOf, Sequential]


def run_steps(steps: list[Step], sample: Sample, rng: np.random.Generator, view: str | None = None,
              choose: Callable[[OpStep], Op | None] | None = None) -> Sample:
    for step in steps:
        sample = run_step(step, sample, rng, view, choose)
    return sample


def run_step(step: Step, sample: Sample, rng: np.random.Generator, view: str | None,
             choose: Callable[[OpStep], Op | None] | None = None) -> Sample:
    """Run one step. `choose(op_step)` (an adaptive policy's decision, `augflow.decision`) may give
    another op for the step (a weakened one) or None to skip it."""
    if isinstance(step, OpStep):
        op = step.op if choose is None else choose(step)
        if op is None:
            return sample
        p = op.p
        if p < 1.0 and not (p > 0.0 and rng.random() < p):
            return sample
        # Apply the JSON form of the params, the one provenance records: replay is then exact.
        params = op.sample_params(rng, sample)
        if op.json_params:
            out = op.apply(sample, **params)
        else:
            params = to_jsonable(params)
            out = op.apply(sample, **from_jsonable(params))
        out.provenance.append(ProvenanceEntry(step.name, step.path, params, view))
        return out
    if step.p < 1.0 and not (step.p > 0.0 and rng.random() < step.p):
        return sample
    if isinstance(step, OneOf):
        weights = np.asarray(step.weights if step.weights else [1.0] * len(step.steps), dtype=float)
        chosen = int(rng.choice(len(step.steps), p=weights / weights.sum()))
        return run_step(step.steps[chosen], sample, rng, view, choose)
    if isinstance(step, SomeOf):
        n = step.n if isinstance(step.n, int) else int(rng.integers(step.n[0], step.n[1] + 1))
        n = n if step.replace else min(n, len(step.steps))
        idx = rng.choice(len(step.steps), size=n, replace=step.replace)
        for i in idx:
            sample = run_step(step.steps[int(i)], sample, rng, view, choose)
        return sample
    if isinstance(step, Sequential):
        return run_steps(step.steps, sample, rng, view, choose)
    raise TypeError(f"not a pipeline step: {step!r}")


def iter_ops(steps: list[Step]):
    """Every OpStep in a step tree, depth first."""
    for step in steps:
        if isinstance(step, OpStep):
            yield step
        else:
            yield from iter_ops(step.steps)
