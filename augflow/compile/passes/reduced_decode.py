"""Reduced decode: when the first op is geometric and only downscales, decode the JPEG smaller.

libjpeg-turbo can decode at 1/2, 1/4 or 1/8 of the full size for little more than the entropy
decode; a RandomResizedCrop to 224 of a 2400 px photograph rarely needs more than a quarter of the
pixels. (Its other n/8 scales decode slower than full size here, so they are not used.)
The first item (a fused affine group, or a lone geometric op wrapped into one) draws its
parameters on the full-size header first, so the generator is consumed as before; then the image
is decoded at the smallest scale at which the composed matrix still downsamples by 2 or more, and
the matrix is composed with that scale. Which decoder: by measurement (augflow/compile/decoding.py).
DCT-domain downscaling is a box filter, so the result is if anything less aliased than a bilinear
resize of the full image; tests/compile/passes/test_reduced_decode.py bounds the difference.
"""

from __future__ import annotations

from dataclasses import replace

from augflow.compile.decoding import DECODER
from augflow.compile.plan import AffineGroup, OpItem, Plan
from augflow.compile.passes.affine_fusion import _matrix_step


def reduce_decode(plan: Plan) -> Plan:
    setting = (plan.pipeline.spec.decode or {}).get("reduce", "auto")
    if setting in (False, "off", "false", "no"):
        return plan.with_log("reduced_decode", "reduced_decode: off in the pipeline's decode section")
    if plan.sample.backend != "albumentations":
        return plan.with_log("reduced_decode", f"reduced_decode: skipped on backend {plan.sample.backend}")
    items = list(plan.sample.items)
    if not items:
        return plan.with_log("reduced_decode", "reduced_decode: no sample ops")
    first = items[0]
    if isinstance(first, AffineGroup):
        group = replace(first, reduced_decode=True)
    elif isinstance(first, OpItem) and _matrix_step(first) is not None:
        group = AffineGroup([first.step], reduced_decode=True, note=f"one warp for {first.step.name}")
    else:
        return plan.with_log("reduced_decode", "reduced_decode: the first op is not geometric")
    items[0] = group
    names = ", ".join(s.name for s in group.steps)
    decode = replace(plan.decode, decoder=DECODER, reduce=True,
                     note=f"JPEGs decoded at 1/2, 1/4 or 1/8 where [{names}] still downsamples from there")
    plan = plan.replace(sample=replace(plan.sample, items=items), decode=decode)
    return plan.with_log("reduced_decode", f"reduced_decode: first item [{names}] decides the JPEG decode scale "
                                           f"({DECODER})")
