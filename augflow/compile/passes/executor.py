"""Resolve `executor="auto"`: run the sample stage on loader threads or worker processes, with the reason.

The rule, from what was measured (bench/RESULTS.md, "Issue 12"; 2-core CPU, `num_workers=2`, wall
time, start-up included): threads beat worker processes in every case measured — 500x375 JPEGs
1.35-1.49x the hand-written loader with threads vs 0.93-1.03x with processes, 2400x1800 JPEGs
2.26-3.02x vs 1.63-2.45x — because JPEG decode and the OpenCV kernels behind albumentations release
the GIL, and each worker process pays ~3 s of start-up (importing torch + albumentations). Those
measurements cover OpenCV-kernel pipelines only, so `auto` picks, in this order:

1. the DALI backend: neither (DALI runs the sample stage on its own threads);
2. `num_workers=0`: processes, i.e. this process, with no workers (as a DataLoader does);
3. `persistent_workers` or `multiprocessing_context` given: processes (options of worker processes);
4. every sample-stage op runs albumentations/OpenCV kernels (`OPENCV_OPS`): threads;
5. otherwise processes: an op running Python or model code may hold the GIL, and threads were
   not measured for it.
"""

from __future__ import annotations

import dataclasses

from augflow import registry
from augflow.compile.plan import Plan, item_ops
from augflow.steps import iter_ops

EXECUTORS = ("auto", "processes", "threads")
OPENCV_FAMILY = "albumentations."          # the adapter's ops: albumentations on OpenCV/numpy kernels
OPENCV_OPS = frozenset({"to_tensor"})      # augflow ops that are views/copies of arrays (no Python loop)
MEASURED = ("bench/RESULTS.md, Issue 12: threads 1.35-1.49x (500x375) and 2.26-3.02x (2400x1800) the hand-written "
            "loader vs processes 0.93-1.03x and 1.63-2.45x, 2 workers, wall, start-up included")


def choose_executor(plan: Plan) -> tuple[str, str]:
    """(executor, reason) for the plan's `executor` option (`auto` resolved by the rule above)."""
    o = plan.options
    if o.executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {o.executor!r}")
    if o.executor != "auto":
        return o.executor, "requested"
    if plan.sample.backend == "dali":
        return "processes", "auto: unused, DALI runs the sample stage on its own threads"
    if int(o.num_workers) == 0:
        return "processes", "auto: num_workers=0, the sample stage runs in this process (no workers to start)"
    asked = [name for name in ("persistent_workers", "multiprocessing_context") if getattr(o, name)]
    if asked:
        return "processes", f"auto: {' and '.join(asked)} given, options of worker processes"
    other = _first_python_op(plan)
    if other is not None:
        return "processes", (f"auto: op {other!r} may hold the GIL in Python or model code (threads were measured "
                             "only for albumentations/OpenCV kernels); worker processes run it in parallel")
    return "threads", (f"auto: every sample op runs albumentations/OpenCV kernels, which release the GIL; threads "
                       f"start no workers (~3 s each) and copy nothing between processes ({MEASURED})")


def _first_python_op(plan: Plan) -> str | None:
    steps = [s for item in plan.sample.items for s in item_ops(item)]
    steps += [s for view in plan.views.values() for s in iter_ops(view)]
    for step in steps:
        name = step.op.name
        if name in OPENCV_OPS:
            continue
        try:
            family = registry.get(name).family
        except registry.UnknownOpError:
            family = ""
        if not family.startswith(OPENCV_FAMILY):
            return step.name
    return None


def select_executor(plan: Plan) -> Plan:
    """The plan with `options.executor` resolved and `executor_reason` set (explain() prints both)."""
    executor, reason = choose_executor(plan)
    return plan.replace(options=dataclasses.replace(plan.options, executor=executor), executor_reason=reason)
