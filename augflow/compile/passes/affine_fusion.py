"""Affine fusion: consecutive geometric ops become one matrix and one warp.

Crop+resize, flips, rotate/scale/shift/shear with their sampled parameters are each a 3x3 matrix
(augflow/ops/batch/geometry.py); a run of them is composed and applied by one `cv2.warpAffine`
(one `warp_affine` on Kornia), boxes, keypoints and masks moved by the same matrix. One
resampling instead of several: faster, and sharper.

A run is fused only where it pays and is exact up to interpolation: it must hold two or more
resampling ops (a flip is an index reversal: fusing a crop with a flip saves nothing and costs a
little; bench/RESULTS.md), all resampling ops share one interpolation, and an op that samples outside its input (rotate, affine) joins only if nothing
before it in the run crops — after a crop, its border would otherwise be filled with real pixels
from outside the crop instead of the border mode. Equivalence: tests/compile/passes/
test_affine_fusion.py (mean abs difference < 1 grey level, boxes within 1 px).
"""

from __future__ import annotations

from augflow.compile.plan import AffineGroup, OpItem, Plan
from augflow.ops.batch import geometry as geo
from augflow.steps import OpStep


def _matrix_step(item) -> OpStep | None:
    if isinstance(item, OpItem) and isinstance(item.step, OpStep):
        op = item.step.op
        if geo.is_matrix_op(op.name, geo.op_settings(op) if op.name in geo.MATRIX_OPS else None):
            return item.step
    return None


def _joins(run: list[OpStep], step: OpStep) -> bool:
    kind = geo.MATRIX_OPS[step.op.name][0]
    cfg = geo.op_settings(step.op)
    for prev in run:
        pkind = geo.MATRIX_OPS[prev.op.name][0]
        pcfg = geo.op_settings(prev.op)
        if kind.interpolates and pkind.interpolates and (
                pcfg.get("interpolation", 1) != cfg.get("interpolation", 1)
                or pcfg.get("mask_interpolation", 0) != cfg.get("mask_interpolation", 0)):
            return False
        if kind.kind == "outside" and pkind.kind in ("crop", "outside"):
            return False
    return True


def fuse_affine(plan: Plan) -> Plan:
    if plan.sample.backend not in ("albumentations", "kornia"):
        return plan.with_log("affine_fusion", f"affine_fusion: skipped on backend {plan.sample.backend}")
    items, run, lines = [], [], []

    def flush():
        if sum(geo.MATRIX_OPS[s.op.name][0].interpolates for s in run) >= 2:
            names = ", ".join(s.name for s in run)
            items.append(AffineGroup(list(run), note=f"one warp for {names}"))
            lines.append(f"affine_fusion: {names} -> one warp")
        else:
            items.extend(OpItem(s) for s in run)
        run.clear()

    for item in plan.sample.items:
        step = _matrix_step(item)
        if step is None:
            flush()
            items.append(item)
        elif run and not _joins(run, step):
            flush()
            run.append(step)
        else:
            run.append(step)
    flush()
    plan = plan.replace(sample=_replace_items(plan.sample, items))
    return plan.with_log("affine_fusion", *(lines or ["affine_fusion: no run with two or more resampling ops"]))


def _replace_items(stage, items):
    from dataclasses import replace
    return replace(stage, items=items)
