"""Normalize fusion: dtype conversion, scaling and (x - mean) / std in one pass, in the batch stage.

A per-sample `normalize` (+ `to_tensor`) at the end of the sample stage turns each uint8 image
into float32 in the worker: four times the bytes through worker IPC and collation, then the same
again to the device. The pass moves it to the front of the batch stage, where one `addcmul` reads
uint8 and writes normalized float32 on the loader's device. Normalization is per-channel affine
and runs first, so every later op sees exactly what it saw before: the output is unchanged up to
float32 rounding (tests/compile/passes/test_normalize_fusion.py: atol 1e-5).
"""

from __future__ import annotations

from augflow.compile.plan import FusedNormalize, OpItem, Plan
from augflow.ops.batch.geometry import op_settings
from augflow.steps import OpStep


def _is_normalize(item) -> bool:
    if not isinstance(item, OpItem) or not isinstance(item.step, OpStep):
        return False
    op = item.step.op
    if op.name != "albumentations.Normalize" or op.p < 1.0:
        return False
    cfg = op_settings(op)
    return cfg.get("normalization", "standard") == "standard"


def _is_plain_to_tensor(item) -> bool:
    return isinstance(item, OpItem) and isinstance(item.step, OpStep) and item.step.op.name == "to_tensor" \
        and getattr(item.step.op.params, "dtype", "keep") == "keep"


def fuse_normalize(plan: Plan) -> Plan:
    if plan.sample.backend == "dali":
        return plan.with_log("normalize_fusion", "normalize_fusion: skipped, DALI fuses normalize into "
                                                 "crop_mirror_normalize itself")
    if plan.views:
        return plan.with_log("normalize_fusion", "normalize_fusion: skipped, the pipeline has views")
    items = list(plan.sample.items)
    tail = []
    if items and _is_plain_to_tensor(items[-1]):
        tail.append(items.pop())
    if not items or not _is_normalize(items[-1]):
        batch_items = [FusedNormalize.from_op(i.step.op, note="batch normalize, one pass") if _is_normalize(i) else i
                       for i in plan.batch.items]
        changed = any(isinstance(i, FusedNormalize) for i in batch_items)
        log = "normalize_fusion: batch normalize runs as one fused pass" if changed else \
            "normalize_fusion: nothing to fuse (no normalize at the end of the sample stage)"
        return plan.replace(batch=_with_items(plan.batch, batch_items)).with_log("normalize_fusion", log)
    norm = items.pop()
    fused = FusedNormalize.from_op(norm.step.op, note=f"moved from {norm.step.path}: uint8 -> float32, scale, "
                                                      "(x - mean) / std in one pass on the batch device")
    dropped = [norm.step.path] + [t.step.path for t in tail]
    batch_items = [fused] + [FusedNormalize.from_op(i.step.op, note="batch normalize, one pass") if _is_normalize(i)
                             else i for i in plan.batch.items]
    plan = plan.replace(sample=_with_items(plan.sample, items), batch=_with_items(plan.batch, batch_items))
    return plan.with_log("normalize_fusion", f"normalize_fusion: {', '.join(dropped)} -> batch stage "
                                             f"(one uint8 -> normalized float32 pass on {plan.batch.device})")


def _with_items(stage, items):
    from dataclasses import replace
    return replace(stage, items=items)
