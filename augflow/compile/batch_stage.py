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
from augflow.steps import OpStep, Step, walk

BATCH_STREAM = 1   # spawn key of the batch-stage stream, apart from the sample stage's


def element_seed(pipeline_seed: int, epoch: int, index: int) -> np.random.SeedSequence:
    """The batch-stage seed of one element as a SeedSequence (kept for callers that derive from it;
    the stage itself draws from `element_generator`)."""
    base = seeding.call_seed(pipeline_seed, epoch, index)
    return np.random.SeedSequence(base.entropy, spawn_key=(BATCH_STREAM,))


def element_generator(pipeline_seed: int, epoch: int, index: int) -> np.random.Generator:
    """The batch-stage generator of one element: same (seed, epoch, index), its own stream."""
    return seeding.call_generator(pipeline_seed, epoch, index, seeding.BATCH_STREAM)


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
    """`augflow.steps.walk` with a visitor that records params (drawn on a stub of the current
    size) and tracks the size through geometric ops, instead of applying them."""
    def record(op_step: OpStep, slot: tuple, cur: tuple[int, int]) -> tuple[int, int]:
        op = op_step.op
        params = from_jsonable(to_jsonable(op.sample_params(rng, proxy(cur, channels))))
        out.append((slot, op_step, params))
        if op.name in geo.MATRIX_OPS:
            cur = geo.geo_of(op.name, params, geo.op_settings(op), cur).out_hw
        return cur

    return walk(step, rng, record, hw, key)


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
            draws = [draw_element(self.items, element_generator(self.seed, e, i), hw, channels)
                     for i, e in zip(idx, eps)]
            batch = apply_draws(batch, draws, ctx)
            # float32 whether or not any element drew an op: the dtype must not depend on the batch
            to_float(batch, ctx)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for name, value in batch.items():   # collated images may be channels-last memory: as asked
            if isinstance(value, torch.Tensor) and value.dim() == 4:
                batch[name] = value.contiguous(memory_format=fmt)
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

