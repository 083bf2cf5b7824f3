"""The per-sample stage of a compiled plan: decode a record, run the sample items, emit tensors.

Runs in loader workers. Sample `index` of `epoch` draws from the generator of (pipeline seed,
epoch, index) — `augflow.seeding.call_rng`, as `Pipeline.__call__(sample, index=, epoch=)` does —
so a sample's output depends on nothing else: not the worker, the worker count, the batch, the
rank or the world size. With no passes the output equals `pipe(record, index=i, epoch=e)`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
import torch

from augflow import seeding
from augflow.compile import decoding
from augflow.compile.fused import run_affine_group, stub_image
from augflow.compile.plan import AffineGroup, OpItem, Plan
from augflow.io.sources import check_size
from augflow.sample import Sample, resolve_field_specs
from augflow.steps import run_step

INDEX_KEY, EPOCH_KEY, PROVENANCE_KEY = "_index", "_epoch", "_provenance"


class SampleStage:
    """Callable `(record, index, epoch) -> dict of tensors`; picklable, so it lives in workers."""

    def __init__(self, plan: Plan):
        self._recipe = _recipe(plan)
        self.pipeline = plan.pipeline
        self.items = list(plan.sample.items)
        self.views = dict(plan.views)
        self.seed = plan.seed
        self.backend = plan.sample.backend
        self.decode_mode = plan.decode.mode
        self.reduce = plan.decode.reduce and bool(self.items) and isinstance(self.items[0], AffineGroup) \
            and self.items[0].reduced_decode
        self.epoch_seed = plan.options.epoch_seed
        self.provenance = plan.options.return_provenance
        self.max_pixels = getattr(plan.options, "max_pixels", None)

    def __getstate__(self) -> dict[str, Any]:
        # Workers started by spawn/forkserver get the pipeline as data and rebuild the plan: op
        # objects may hold state that does not pickle (library RNG wrappers, loaded models).
        return {"recipe": self._recipe} if self._recipe is not None else dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "recipe" in state:
            self.__init__(_rebuild_plan(state["recipe"]))
        else:
            self.__dict__.update(state)

    def __call__(self, record: Mapping[str, Any], index: int, epoch: int = 0,
                 decision: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`decision`: an adaptive policy's choice for this sample (`augflow.decision`), sent by the
        main process with the index (`augflow.compile.feedback`); recorded first in provenance."""
        epoch = int(epoch) if self.epoch_seed else 0
        fields, pending = self.decode(record)
        base, _ = self.pipeline.prepare(fields)
        base.seed = {"pipeline_seed": self.seed, "epoch": epoch, "index": int(index)}
        with seeding.call_rng(self.seed, epoch, index) as rng:
            if decision is not None:
                from augflow.compile.feedback import run_decided
                base = run_decided(self, base, rng, decision)
            elif self.backend == "kornia":
                from augflow.compile.backends.kornia import run_sample_items
                base = run_sample_items(self.items, base, rng, pending)
            else:
                base = self.run_items(base, rng, pending)
            # then the pipeline's own later stages, in Pipeline.__call__'s order: negatives, views
            base = self.pipeline.run_negatives(base, rng)
            if self.views:
                base = self.pipeline.run_views(base, rng)
        out = to_output(base)
        out[INDEX_KEY] = int(index)
        out[EPOCH_KEY] = epoch
        if self.provenance:
            out[PROVENANCE_KEY] = base.provenance.to_json()
        return out

    def run_items(self, sample: Sample, rng: np.random.Generator, pending: dict) -> Sample:
        for i, item in enumerate(self.items):
            if isinstance(item, AffineGroup):
                sample = run_affine_group(item, sample, rng, pending if i == 0 else None)
            elif isinstance(item, OpItem):
                sample = run_step(item.step, sample, rng, None)
            else:
                raise TypeError(f"plan item {type(item).__name__} cannot run in the sample stage")
        return sample

    def decode(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, decoding.PendingJpeg]]:
        """Paths and bytes become arrays; the first image may stay a pending JPEG (reduced decode)."""
        if not isinstance(record, Mapping):
            raise TypeError(f"a dataset item must be a mapping of fields (or a path), got {type(record).__name__}")
        fields = dict(record)
        pending: dict[str, decoding.PendingJpeg] = {}
        specs = resolve_field_specs(fields.keys(), self.pipeline.spec.fields)
        first_image = True
        for name, spec in specs.items():
            value = fields[name]
            if spec.kind not in ("image", "mask"):
                continue
            if isinstance(value, Mapping) and ("bytes" in value or "path" in value):   # Hugging Face Image()
                value = value.get("bytes") or value.get("path")
            if hasattr(value, "mode") and hasattr(value, "size") and not isinstance(value, np.ndarray):
                value = np.asarray(value.convert("RGB") if spec.kind == "image" and self.decode_mode == "rgb" else value)
            elif decoding.is_encoded(value):
                raw = decoding.read_bytes(value)
                check_size(raw, os.fspath(value) if isinstance(value, (str, os.PathLike)) else f"<{len(raw)} bytes>",
                           self.max_pixels)
                if spec.kind == "image" and first_image and self.reduce:
                    hw = decoding.jpeg_header(raw)
                    if hw is not None:
                        pending[name] = decoding.PendingJpeg(raw, hw)
                        value = stub_image(hw)
                    else:
                        value = decoding.decode(raw, self.decode_mode)
                elif spec.kind == "image":
                    value = decoding.decode(raw, self.decode_mode)
                else:
                    value = decoding._load_image(raw, "auto")
            if spec.kind == "image":
                first_image = False
            fields[name] = value
        return fields, pending


def _recipe(plan: Plan) -> tuple | None:
    """What rebuilds this plan in another process: the pipeline as data, backends, passes, options."""
    from augflow.compile.passes import PASSES
    if not all(isinstance(p, str) and p in PASSES for p in plan.passes):
        return None                      # a custom pass function: pickle the objects instead
    import dataclasses
    options = dataclasses.replace(plan.options, policy=None)   # workers get decisions, not the policy
    return (plan.pipeline.to_dict(), plan.pipeline.source or "<pipeline>", plan.sample.backend, plan.batch.device,
            list(plan.passes), options)


def _rebuild_plan(recipe: tuple) -> Plan:
    from augflow.compile.passes import run_passes
    from augflow.compile.plan import build_plan
    from augflow.pipeline import Pipeline

    data, source, backend, device, passes, options = recipe
    pipe = Pipeline.from_dict(data, source)
    return run_passes(build_plan(pipe, backend={"sample": backend}, device=device, options=options), passes)


def to_output(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Arrays to tensors in the layout models take: images CHW, masks HW, boxes N x 4 float32."""
    specs = getattr(sample, "specs", None) or resolve_field_specs(sample.keys(), {})
    out: dict[str, Any] = {}
    list_labels = {lf for s in specs.values() if s.kind in ("bboxes", "keypoints") for lf in s.label_fields}
    for name, value in sample.items():
        spec = specs.get(name)
        kind = spec.kind if spec is not None else None
        if isinstance(value, Mapping) and kind is None:
            out[name] = to_output(Sample(value, resolve_field_specs(value.keys(), specs)))
        elif kind == "image" and isinstance(value, np.ndarray):
            # A CHW view of the HWC pixels, no copy: collation stacks the HWC memory as it is and
            # the batch stage makes it channels-first in the pass it makes anyway (normalize).
            arr = value[..., None] if value.ndim == 2 else value
            out[name] = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
        elif kind == "mask" and isinstance(value, np.ndarray):
            out[name] = torch.from_numpy(np.ascontiguousarray(value[..., 0] if value.ndim == 3 and value.shape[2] == 1
                                                              else value))
        elif kind == "masks" and not isinstance(value, torch.Tensor):
            arrs = [np.asarray(m) for m in value]
            out[name] = torch.from_numpy(np.ascontiguousarray(np.stack(arrs))) if arrs else torch.zeros(0, 0, 0)
        elif kind in ("bboxes", "keypoints") and not isinstance(value, torch.Tensor):
            out[name] = torch.as_tensor(np.asarray(value, dtype=np.float32))
        elif name in list_labels and not isinstance(value, torch.Tensor):
            arr = np.asarray(value)
            out[name] = torch.as_tensor(arr) if arr.dtype.kind in "biuf" else list(value)
        elif isinstance(value, np.generic):
            out[name] = value.item()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
            out[name] = torch.from_numpy(np.ascontiguousarray(value))
        elif isinstance(value, (os.PathLike,)):
            out[name] = os.fspath(value)
        else:
            out[name] = value
    return out
