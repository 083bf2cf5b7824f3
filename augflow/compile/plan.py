"""The compiled plan: stages, the backend of every op, fused groups, and the reasons for each choice.

`build_plan(pipeline, ...)` describes what `Pipeline` does, stage by stage, with nothing
optimised: a decode stage, the per-sample stage (loader workers, CPU), the per-batch stage (after
collation, on the loader's device). Passes (`augflow/compile/passes/`) rewrite it, each a
`plan -> plan` function; a backend (`augflow/compile/backends/`) turns it into a loader;
`explain(plan)` prints it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from augflow.op_backends import BACKENDS
from augflow.steps import OneOf, OpStep, Sequential, SomeOf, Step, iter_ops


@dataclass
class OpItem:
    """One pipeline step (an op, or control flow over ops) run as the pipeline file says."""

    step: Step
    note: str = ""


@dataclass
class AffineGroup:
    """Consecutive geometric ops whose sampled matrices are composed and applied by one warp."""

    steps: list[OpStep]
    reduced_decode: bool = False   # the image may be decoded at a reduced size for this group
    note: str = ""


@dataclass
class FusedNormalize:
    """uint8 -> float32, scaling and (x - mean) / std in one pass, in the batch stage."""

    mean: tuple[float, ...]        # in pixel units (albumentations: mean * max_pixel_value)
    std: tuple[float, ...]
    field: str = "image"
    note: str = ""

    @classmethod
    def from_op(cls, op: Any, field_name: str = "image", note: str = "") -> "FusedNormalize":
        from augflow.ops.batch.geometry import normalize_stats
        mean, std = normalize_stats(op)
        return cls(mean, std, field_name, note)


Item = Union[OpItem, AffineGroup, FusedNormalize]


def _default_decoder() -> str:
    from augflow.compile.decoding import DECODER
    return DECODER


@dataclass
class Stage:
    name: str                      # "sample" | "batch"
    items: list[Item]
    backend: str = "auto"          # requested, then resolved by the backends pass
    device: str = "cpu"
    reason: str = ""


@dataclass
class Decode:
    decoder: str = field(default_factory=lambda: _default_decoder())   # what encoded JPEGs go through
    reduce: bool = False           # reduced-size JPEG decode for the first sample item
    mode: str = "rgb"
    note: str = ""


@dataclass
class LoaderOptions:
    batch_size: int = 32
    num_workers: int = 0
    shuffle: bool = False
    drop_last: bool = False
    device: str = "cpu"
    epoch_seed: bool = True        # a different augmentation every epoch (False: epoch 0 forever)
    pin_memory: bool | None = None
    persistent_workers: bool | None = None
    prefetch_factor: int | None = None
    channels_last: bool = False
    rank: int | None = None
    world_size: int | None = None
    num_classes: int | None = None
    return_provenance: bool = False
    multiprocessing_context: str | None = None   # None: fork, or forkserver once DALI is loaded
    batch_sampler: Any = None      # yields lists of indices (e.g. augflow.negatives.NGAMESampler)
    on_error: str = "raise"        # a bad sample: stop naming it ("raise"), or drop it and list it ("skip")
    max_pixels: int | None = None  # larger images are bad samples; None: the CLI's limit (io.sources)
    policy: Any = None             # an adaptive policy (augflow.adaptive), fed back by `loader.feedback`
    executor: str = "auto"         # where the sample stage runs: worker "processes", "threads", or "auto"
    #                                (resolved by compile/passes/executor.py, with its reason in explain())


@dataclass
class Plan:
    """What a compiled loader does; passes return modified copies."""

    name: str
    seed: int
    pipeline: Any                  # the Pipeline (prepare(), field specs, views)
    decode: Decode
    sample: Stage
    batch: Stage
    views: dict[str, list[Step]] = field(default_factory=dict)
    options: LoaderOptions = field(default_factory=LoaderOptions)
    passes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    executor_reason: str = ""      # why options.executor was chosen (select_executor)

    def replace(self, **changes: Any) -> "Plan":
        return dataclasses.replace(self, **changes)

    def with_log(self, pass_name: str, *lines: str) -> "Plan":
        return self.replace(passes=[*self.passes, pass_name], log=[*self.log, *lines])


def build_plan(pipeline: Any, *, backend: str | dict | None = None, device: str | None = None,
               options: LoaderOptions | None = None) -> Plan:
    """The unoptimised plan of a pipeline: every step as written, backends still unresolved."""
    spec = pipeline.spec
    split = spec.view_split
    shared = spec.sample if split is None else spec.sample[:split]
    views = pipeline.view_steps()
    requested = _requested_backends(spec, backend)
    options = options or LoaderOptions()
    batch_device = device or spec.batch.get("device") or options.device or "cpu"
    if batch_device == "auto":
        batch_device = _auto_device()
    options = dataclasses.replace(options, device=batch_device)
    decode_cfg = spec.decode or {}
    decode = Decode(mode=str(decode_cfg.get("mode", "rgb")), reduce=False)
    return Plan(
        name=spec.name, seed=pipeline.seed, pipeline=pipeline, decode=decode,
        sample=Stage("sample", [OpItem(s) for s in shared], requested["sample"], "cpu"),
        batch=Stage("batch", [OpItem(s) for s in spec.batch_steps], requested["batch"], batch_device),
        views=views, options=options,
    )


def _requested_backends(spec: Any, backend: str | dict | None) -> dict[str, str]:
    out = {"sample": "auto", "batch": "auto"}
    if str((spec.decode or {}).get("backend", "")).lower() == "dali":
        out["sample"] = "dali"
    if spec.batch.get("backend"):
        out["batch"] = str(spec.batch["backend"])
    if isinstance(backend, str):
        out = {"sample": backend, "batch": backend if backend != "dali" and backend != "albumentations" else "auto"}
    elif isinstance(backend, dict):
        unknown = set(backend) - set(out)
        if unknown:
            raise ValueError(f"backend= takes stages 'sample' and 'batch', got {sorted(unknown)}")
        out.update({k: str(v) for k, v in backend.items()})
    for stage, name in out.items():
        if name not in (*BACKENDS, "auto"):
            raise ValueError(f"unknown backend {name!r} for the {stage} stage (allowed: auto, {', '.join(BACKENDS)})")
    return out


def _auto_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def item_ops(item: Item) -> list[OpStep]:
    """The op steps inside a plan item."""
    if isinstance(item, OpItem):
        return list(iter_ops([item.step]))
    if isinstance(item, AffineGroup):
        return list(item.steps)
    return []


def step_label(step: Step) -> str:
    if isinstance(step, OpStep):
        cfg = step.op.config()
        args = ", ".join(f"{k}={v}" for k, v in cfg.items())
        return f"{step.name}({args})" if args else step.name
    kind = {OneOf: "one_of", SomeOf: "some_of", Sequential: "sequential"}[type(step)]
    return f"{kind}[{', '.join(step_label(s) for s in step.steps)}]"
