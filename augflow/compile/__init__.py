"""Compile a Pipeline into a data loader: plan (stages, backends, fused groups), passes, backend.

    loader = pipe.compile("data/train", batch_size=256, num_workers=8, device="cuda", shuffle=True)
    for epoch in range(E):
        loader.set_epoch(epoch)
        for batch in loader:        # dict of tensors on the device, channels first
            ...
    print(pipe.explain())

Reading order: plan.py (what a plan is), passes/ (each `plan -> plan`), sample_stage.py and
batch_stage.py (what runs), backends/ (torch DataLoader, DALI).
"""

from __future__ import annotations

from typing import Any, Iterable

from augflow.compile.backends import BackendError
from augflow.compile.plan import LoaderOptions, Plan, build_plan


def make_plan(pipeline: Any, *, backend: str | dict | None = None, device: str | None = None,
              passes: Iterable[Any] | None = None, **options: Any) -> Plan:
    """The optimised plan of a pipeline (what `compile` would run), without building a loader."""
    from augflow.compile.passes import run_passes

    import dataclasses
    import difflib

    allowed = [f.name for f in dataclasses.fields(LoaderOptions)]
    for key in options:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            raise TypeError(f"unknown loader option {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                            + f" (options: {', '.join(allowed)}, backend, passes)")
    opts = LoaderOptions(**options)
    return run_passes(build_plan(pipeline, backend=backend, device=device, options=opts), passes)


def compile_pipeline(pipeline: Any, data: Any, *, batch_size: int = 32, num_workers: int = 0,
                     device: str | None = None, shuffle: bool = False, drop_last: bool = False,
                     epoch_seed: bool = True, backend: str | dict | None = None,
                     passes: Iterable[Any] | None = None, image_key: str = "image", label_key: str = "label",
                     root: str | None = None, **options: Any):
    """Compile `pipeline` over `data` (a dataset of samples, image paths, an image folder or a
    CSV/JSONL manifest) into a loader; see `augflow.compile.plan.LoaderOptions` for the options.
    `root`: a manifest's paths must resolve inside this folder (None: trusted, any path)."""
    from augflow.io.readers import as_records

    records = as_records(data, image_key=image_key, label_key=label_key, root=root)
    policy = options.get("policy")
    if policy is not None:
        from augflow.compile.feedback import policy_passes
        passes = policy_passes(passes)
    if options.get("num_classes") is None and getattr(records, "num_classes", None):
        options["num_classes"] = records.num_classes
    plan = make_plan(pipeline, backend=backend, device=device, passes=passes, batch_size=batch_size,
                     num_workers=num_workers, shuffle=shuffle, drop_last=drop_last, epoch_seed=epoch_seed, **options)
    if policy is not None:
        from augflow.compile.feedback import bind_policy
        bind_policy(policy, plan)
    if plan.sample.backend == "dali":
        from augflow.compile.backends.dali import DaliLoader
        return DaliLoader(plan, records)
    if plan.options.executor == "threads":     # resolved from "auto" by compile/passes/executor.py
        from augflow.compile.backends.threads import ThreadLoader
        return ThreadLoader(plan, records)
    from augflow.compile.backends.torch_loader import CompiledLoader
    return CompiledLoader(plan, records)


def explain(pipeline: Any, data: Any = None, **kwargs: Any) -> str:
    """The compiled plan as text: stages, backend per op, fused groups, and the reasons."""
    from augflow.compile.explainer import explain_plan

    if data is not None:
        return compile_pipeline(pipeline, data, **kwargs).explain()
    return explain_plan(make_plan(pipeline, **kwargs))


compile = compile_pipeline

__all__ = ["compile", "compile_pipeline", "explain", "make_plan", "Plan", "BackendError", "LoaderOptions"]
