"""`explain()`: the compiled plan as text — stages, backend per op, fused groups, and why."""

from __future__ import annotations

from typing import Any

from augflow.compile.plan import AffineGroup, FusedNormalize, OpItem, Plan, step_label
from augflow.steps import OpStep


def _item_line(item: Any, stage_backend: str) -> str:
    if isinstance(item, AffineGroup):
        ops = ", ".join(step_label(s) for s in item.steps)
        label = "fused affine" if len(item.steps) > 1 else "affine"
        extra = " + reduced JPEG decode" if item.reduced_decode else ""
        warp = "cv2.resize/flip when axis-aligned, else cv2.warpAffine" if stage_backend == "albumentations" \
            else "kornia warp_affine"
        return f"[{label}{extra}] {ops}  -> one warp ({warp})"
    if isinstance(item, FusedNormalize):
        mean = ", ".join(f"{m:.2f}" for m in item.mean)
        std = ", ".join(f"{s:.2f}" for s in item.std)
        return f"[fused normalize] uint8 -> float32, (x - [{mean}]) / [{std}] in one pass" + \
            (f"  ({item.note})" if item.note else "")
    if isinstance(item, OpItem):
        step = item.step
        backend = stage_backend
        if isinstance(step, OpStep) and stage_backend == "albumentations":
            backend = "albumentations" if step.op.name.startswith("albumentations.") else "augflow (numpy)"
        return f"{step_label(step)}  [{backend}]"
    return repr(item)


def _workers(o: Any) -> str:
    if getattr(o, "executor", "processes") == "threads":
        return (f"{max(1, o.num_workers)} loader threads (executor='threads': decode and OpenCV kernels release "
                "the GIL; no worker start-up, no inter-process copies)")
    return f"{o.num_workers} workers"


def _executor_line(plan: Plan) -> str:
    o = plan.options
    if plan.sample.backend == "dali":
        return "executor: DALI threads"
    where = f"{max(1, o.num_workers)} threads" if o.executor == "threads" else \
        f"{o.num_workers} worker processes" if o.num_workers else "this process"
    return f"executor: {o.executor} ({where}) — {plan.executor_reason or 'requested'}"


def explain_plan(plan: Plan, loader: Any = None) -> str:
    o = plan.options
    lines = [f"plan for {plan.name!r} (seed {plan.seed})"]
    if loader is not None:
        lines.append(f"loader: {type(loader).__name__} over {len(loader.records)} samples, batch_size {o.batch_size}, "
                     f"{_workers(o)}, shuffle={o.shuffle}, drop_last={o.drop_last}, "
                     f"rank {getattr(loader, 'rank', 0)}/{getattr(loader, 'world_size', 1)}")
    lines.append(_executor_line(plan))
    dec = plan.decode
    if plan.sample.backend == "dali":
        lines.append("decode: DALI decoders (fused with the first crop: decoders.image_slice)")
    else:
        lines.append(f"decode: {dec.decoder} for JPEG, augflow.io.decode.load_image otherwise; reduced: "
                     f"{'on' if dec.reduce else 'off'}" + (f" ({dec.note})" if dec.note else ""))
    where = "DALI threads" if plan.sample.backend == "dali" else \
        "loader threads" if o.executor == "threads" else "loader workers"
    lines.append(f"stage sample  [backend {plan.sample.backend}, {plan.sample.device}, {where}] "
                 f"{plan.sample.reason}")
    for item in plan.sample.items:
        lines.append(f"    {_item_line(item, plan.sample.backend)}")
        if plan.sample.backend == "dali" and isinstance(item, OpItem) and isinstance(item.step, OpStep) \
                and item.step.op.name == "albumentations.ColorJitter":
            lines.append("      note: DALI applies brightness, contrast, saturation, hue in this fixed order, and its "
                         "hue is a YIQ rotation (albumentations: HSV shift): hue results differ")
    if not plan.sample.items:
        lines.append("    (no ops)")
    for vname, steps in plan.views.items():
        lines.append(f"  view {vname}: " + ", ".join(step_label(s) for s in steps))
    lines.append(f"stage batch   [backend {plan.batch.backend}, {plan.batch.device}, after collation"
                 f"{', pinned transfer' if plan.batch.device.startswith('cuda') else ''}] {plan.batch.reason}")
    for item in plan.batch.items:
        lines.append(f"    {_item_line(item, 'kornia')}")
    if not plan.batch.items:
        lines.append("    (no ops)")
    if o.channels_last:
        lines.append("    channels-last output")
    lines.append("passes: " + (", ".join(["select_backends", "select_executor", *plan.passes])))
    lines.extend(f"  - {line}" for line in plan.log)
    return "\n".join(lines)
