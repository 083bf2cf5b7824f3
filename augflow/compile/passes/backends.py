"""Resolve `auto` backends per stage, with the measured reason, and reject ops a backend lacks."""

from __future__ import annotations

from augflow.compile.backends import MEASURED_IMG_PER_S, MEASURED_SOURCE, BackendError, require
from augflow.compile.plan import Plan, Stage, item_ops


def select_backends(plan: Plan) -> Plan:
    sample = _sample_backend(plan)
    batch = _batch_backend(plan)
    return plan.replace(sample=sample, batch=batch)


def _sample_backend(plan: Plan) -> Stage:
    stage = plan.sample
    backend, reason = stage.backend, "requested"
    if backend == "auto":
        m = MEASURED_IMG_PER_S
        backend = "albumentations"
        reason = (f"auto: per-sample CPU work is fastest on albumentations ({m['albumentations']:.0f} img/s/core vs "
                  f"DALI CPU {m['dali']:.0f}, Kornia CPU {m['kornia']:.0f}; {MEASURED_SOURCE})")
    if plan.views and backend != "albumentations":
        raise BackendError(f"pipeline {plan.name!r} has views; views run on the albumentations backend only "
                           f"(got backend {backend!r})")
    for item in stage.items:
        for step in item_ops(item):
            require(step, backend, "sample")
    return Stage(stage.name, list(stage.items), backend, "cpu" if backend != "dali" else plan.options.device, reason)


def _batch_backend(plan: Plan) -> Stage:
    stage = plan.batch
    backend = stage.backend
    if backend not in ("auto", "kornia"):
        raise BackendError(f"the batch stage runs on collated tensors, which only the kornia backend does; got "
                           f"backend {backend!r} for it (write 'backend: kornia' or 'auto' under 'batch:')")
    if plan.views and stage.items:
        raise BackendError("batch ops with views are not supported yet: put per-view ops under 'views:'")
    for item in stage.items:
        for step in item_ops(item):
            require(step, "kornia", "batch")
    reason = f"batched tensor work on {stage.device}: Kornia kernels with per-element parameters"
    if backend == "auto":
        reason = "auto: " + reason
    return Stage(stage.name, list(stage.items), "kornia", stage.device, reason)
