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


Visit = Callable[[OpStep, tuple, Any], Any]
Choose = Callable[[OpStep], "Op | None"]


def chosen_step(step: OpStep, choose: Choose | None) -> OpStep | None:
    """The step with the op a policy chose for it (None: skipped); the step itself without a policy."""
    if choose is None:
        return step
    op = choose(step)
    if op is None:
        return None
    return step if op is step.op else OpStep(op, step.path, step.name)


def walk(step: Step, rng: np.random.Generator, visit: Visit, state: Any, key: tuple = (),
         choose: Choose | None = None) -> Any:
    """The one interpreter of the step tree: draws which ops run, in one fixed order.

    For every op that runs, `visit(op_step, key, state)` returns the new state; `key` is the op's
    slot (its position through the control flow). The per-sample stage applies ops this way
    (`run_step`) and the batch stage records per-element params this way, so both consume the
    generator identically: the probability draw, then the choice, then the op's own draws.
    `choose(op_step)` (an adaptive policy's decision, `augflow.decision`) may give another op for
    the step (a weakened one) or None to skip it, before anything is drawn for it.
    """
    if isinstance(step, OpStep):
        step = chosen_step(step, choose)
        if step is None:
            return state
        p = step.op.p
        if p < 1.0 and not (p > 0.0 and rng.random() < p):
            return state
        return visit(step, key, state)
    if step.p < 1.0 and not (step.p > 0.0 and rng.random() < step.p):
        return state
    if isinstance(step, OneOf):
        weights = np.asarray(step.weights if step.weights else [1.0] * len(step.steps), dtype=float)
        chosen = int(rng.choice(len(step.steps), p=weights / weights.sum()))
        return walk(step.steps[chosen], rng, visit, state, key + (chosen,), choose)
    if isinstance(step, SomeOf):
        n = step.n if isinstance(step.n, int) else int(rng.integers(step.n[0], step.n[1] + 1))
        n = n if step.replace else min(n, len(step.steps))
        for pos, c in enumerate(rng.choice(len(step.steps), size=n, replace=step.replace)):
            state = walk(step.steps[int(c)], rng, visit, state, key + (pos, int(c)), choose)
        return state
    if isinstance(step, Sequential):
        for c, child in enumerate(step.steps):
            state = walk(child, rng, visit, state, key + (c,), choose)
        return state
    raise TypeError(f"not a pipeline step: {step!r}")


def run_steps(steps: list[Step], sample: Sample, rng: np.random.Generator, view: str | None = None,
              choose: Choose | None = None) -> Sample:
    for step in steps:
        sample = run_step(step, sample, rng, view, choose)
    return sample


def run_step(step: Step, sample: Sample, rng: np.random.Generator, view: str | None,
             choose: Choose | None = None) -> Sample:
    """Run one step on a sample: draw through `walk`, apply each op that runs, record it."""
    if isinstance(step, OpStep):    # the common case, without the visitor's indirection
        step = chosen_step(step, choose)
        if step is None:
            return sample
        p = step.op.p
        if p < 1.0 and not (p > 0.0 and rng.random() < p):
            return sample
        return apply_op(step, sample, rng, view)
    return walk(step, rng, lambda s, _key, smp: apply_op(s, smp, rng, view), sample, (), choose)


def apply_op(step: OpStep, sample: Sample, rng: np.random.Generator, view: str | None) -> Sample:
    """Draw an op's params and apply them; provenance gets the JSON form (encoded lazily for
    ops with `lazy_params`, whose own form round-trips exactly: replay is then exact)."""
    op = step.op
    if op.lazy_params:
        drawn = op.draw(rng, sample)
        out = op.apply_drawn(sample, drawn)
        out.provenance.append(ProvenanceEntry.lazy(step.name, step.path, drawn, op.encode_drawn, view))
        return out
    params = op.sample_params(rng, sample)
    if op.json_params:
        out = op.apply(sample, **params)
    else:   # apply the JSON form, the one provenance records: replay is then exact
        params = to_jsonable(params)
        out = op.apply(sample, **from_jsonable(params))
    out.provenance.append(ProvenanceEntry(step.name, step.path, params, view))
    return out


def iter_ops(steps: list[Step]):
    """Every OpStep in a step tree, depth first."""
    for step in steps:
        if isinstance(step, OpStep):
            yield step
        else:
            yield from iter_ops(step.steps)
