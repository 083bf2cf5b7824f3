"""The per-batch stage: after collation (and the pinned-memory transfer), on the loader's device.

Every element draws its own parameters from its own generator, seeded by (pipeline seed, epoch,
global index) like the sample stage but on a separate stream, so an element's parameters do not
depend on the batch it lands in, the worker count or the world size (which *partner* a mixing op
pairs it with does depend on the batch: that is what mixing means). Ops run in pipeline order;
each op is one kernel call over the whole batch with a list of per-element parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from augflow import seeding
from augflow.compile.fused import draw_affine, proxy
from augflow.compile.plan import AffineGroup, FusedNormalize, Item, Plan
from augflow.compile.sample_stage import EPOCH_KEY, INDEX_KEY
from augflow.ops.batch import geometry as geo
from augflow.ops.batch.kernels import BatchContext, apply_geos, image_hw, kernel_for, normalize_tensor, to_float
from augflow.params_codec import from_jsonable, to_jsonable
from augflow.sample import resolve_field_specs
from augflow.steps import OneOf, OpStep, Sequential, SomeOf, Step

BATCH_STREAM = 1   # spawn key of the batch-stage stream, apart from the sample stage's


def element_seed(pipeline_seed: int, epoch: int, index: int) -> np.random.SeedSequence:
    """The batch-stage seed of one element: same (seed, epoch, index) inputs, its own stream."""
    base = seeding.call_seed(pipeline_seed, epoch, index)
    return np.random.SeedSequence(base.entropy, spawn_key=(BATCH_STREAM,))


# ---- drawing: what each element gets -------------------------------------------------------------

Draw = list[tuple[tuple, Any, Any]]   # (slot key in pipeline order, item or op step, params)


def draw_element(items: list[Item], rng: np.random.Generator, hw: tuple[int, int], channels: int) -> Draw:
    """Walk the items as `augflow.steps.run_step` would, recording params instead of applying them."""
    out: Draw = []
    for i, item in enumerate(items):
        if isinstance(item, FusedNormalize):
            out.append(((i,), item, {}))
        elif isinstance(item, AffineGroup):
            g, entries = draw_affine(item, rng, hw, channels)
            if g is not None:
                g.entries = entries          # provenance of the group's ops, for the caller
                out.append(((i,), item, g))
                hw = g.out_hw
        else:
            hw = _walk(item.step, (i,), rng, hw, channels, out)
    return out


def _walk(step: Step, key: tuple, rng: np.random.Generator, hw: tuple[int, int], channels: int, out: Draw):
    if isinstance(step, OpStep):
        op = step.op
        if op.p < 1.0 and not (op.p > 0.0 and rng.random() < op.p):
            return hw
        params = from_jsonable(to_jsonable(op.sample_params(rng, proxy(hw, channels))))
        out.append((key, step, params))
        if op.name in geo.MATRIX_OPS:
            hw = geo.geo_of(op.name, params, geo.op_settings(op), hw).out_hw
        return hw
    if step.p < 1.0 and not (step.p > 0.0 and rng.random() < step.p):
        return hw
    if isinstance(step, OneOf):
        weights = np.asarray(step.weights if step.weights else [1.0] * len(step.steps), dtype=float)
        chosen = int(rng.choice(len(step.steps), p=weights / weights.sum()))
        return _walk(step.steps[chosen], key + (chosen,), rng, hw, channels, out)
    if isinstance(step, SomeOf):
        n = step.n if isinstance(step.n, int) else int(rng.integers(step.n[0], step.n[1] + 1))
        n = n if step.replace else min(n, len(step.steps))
        for pos, c in enumerate(rng.choice(len(step.steps), size=n, replace=step.replace)):
            hw = _walk(step.steps[int(c)], key + (pos, int(c)), rng, hw, channels, out)
        return hw
    if isinstance(step, Sequential):
        for c, child in enumerate(step.steps):
            hw = _walk(child, key + (c,), rng, hw, channels, out)
        return hw
    raise TypeError(f"not a pipeline step: {step!r}")


def apply_draws(batch: dict, draws: list[Draw], ctx: BatchContext) -> dict:
    """Run every slot once over the batch, in pipeline order, with per-element params (None = skip)."""
    slots: dict[tuple, Any] = {}
    per: dict[tuple, list] = {}
    n = len(draws)
    for e, draw in enumerate(draws):
        for key, target, params in draw:
            slots.setdefault(key, target)
            per.setdefault(key, [None] * n)[e] = params
    for key in sorted(slots):
        target, params = slots[key], per[key]
        if isinstance(target, FusedNormalize):
            for name in ctx.names("image"):
                if isinstance(batch.get(name), torch.Tensor):
                    batch[name] = normalize_tensor(batch[name], target.mean, target.std)
        elif isinstance(target, AffineGroup):
            to_float(batch, ctx)
            hw = image_hw(batch, ctx)
            batch = apply_geos(batch, params, ctx, hw)
        else:
            batch = kernel_for(target.op)(target.op, batch, params, ctx)
    return batch


# ---- the stage --------------------------------------------------------------------------------------

class BatchStage:
    """Callable `batch -> batch`: device transfer, then the batch items with per-element params."""

    def __init__(self, plan: Plan, num_classes: int | None = None):
        self.items: list[Item] = list(plan.batch.items)
        self.device = torch.device(plan.batch.device)
        self.seed = plan.seed
        self.fields = plan.pipeline.spec.fields
        self.channels_last = plan.options.channels_last
        self.num_classes = plan.options.num_classes if plan.options.num_classes is not None else num_classes

    def __call__(self, batch: dict) -> dict:
        batch = to_device(batch, self.device)
        epochs = batch.pop(EPOCH_KEY, None)
        indices = batch.get(INDEX_KEY)
        if self.items and all(isinstance(i, FusedNormalize) for i in self.items):   # no parameters to draw
            ctx = BatchContext(resolve_field_specs(batch.keys(), self.fields), self.num_classes)
            for item in self.items:
                for name in ctx.names("image"):
                    if isinstance(batch.get(name), torch.Tensor):
                        batch[name] = normalize_tensor(batch[name], item.mean, item.std)
        elif self.items:
            ctx = BatchContext(resolve_field_specs(batch.keys(), self.fields), self.num_classes)
            image = next((batch[n] for n in ctx.names("image") if isinstance(batch.get(n), torch.Tensor)), None)
            if image is None:
                raise ValueError("the batch stage needs an image field in the batch (after the sample stage)")
            hw, channels = (int(image.shape[-2]), int(image.shape[-1])), int(image.shape[1])
            idx = _as_list(indices)
            eps = _as_list(epochs) if epochs is not None else [0] * len(idx)
            draws = [draw_element(self.items, seeding.generator(element_seed(self.seed, e, i)), hw, channels)
                     for i, e in zip(idx, eps)]
            batch = apply_draws(batch, draws, ctx)
        if self.channels_last:
            for name, value in batch.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    batch[name] = value.contiguous(memory_format=torch.channels_last)
        return batch


def _as_list(values: Any) -> list[int]:
    if isinstance(values, torch.Tensor):
        return [int(v) for v in values.tolist()]
    return [int(v) for v in values]


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True) if batch.device != device else batch
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(v, device) for v in batch]
    return batch

