"""ResizeMix: the whole partner image, shrunk to a patch, pasted at a random place.

Patch side scale tau ~ U(scale); the pasted object is kept whole (its boxes, keypoints and masks
shrink with it), and labels mix by the patch's area fraction. Records `batch["mix"]` like CutMix.
"""

from __future__ import annotations

from augflow.ops.batch.kernels import BatchContext, image_hw
from augflow.ops.batch.mixing import _TARGETS, record_mix
from augflow.ops.batch.paste import BatchOnlyOp, MixParams, mix_labels, partner, paste_rect, start_mix
from augflow.registry import register


@register("resizemix", targets=_TARGETS, family="batch", aliases=("resize_mix",))
class ResizeMix(BatchOnlyOp):
    """Paste x_j resized by tau ~ U(scale) into x_i at a uniform position; labels by patch area."""

    class Params(MixParams):
        scale: tuple[float, float] = (0.1, 0.8)

    def sample_params(self, rng, sample):
        lo, hi = self.params.scale
        return {"tau": float(rng.uniform(lo, hi)), "u": float(rng.random()), "v": float(rng.random()),
                "partner": float(rng.random())}

    def apply_batch(self, batch: dict, params: list, ctx: BatchContext) -> dict:
        orig, new, weights = start_mix(batch, params, ctx)
        n = len(params)
        h, w = image_hw(orig, ctx)
        pasted = {}
        for i, p in enumerate(params):
            if p is None:
                continue
            j = partner(p["partner"], i, n)
            ph, pw = max(1, round(p["tau"] * h)), max(1, round(p["tau"] * w))
            x0, y0 = min(int(p["u"] * (w - pw + 1)), w - pw), min(int(p["v"] * (h - ph + 1)), h - ph)
            dst = (x0, y0, x0 + pw, y0 + ph)
            paste_rect(orig, new, ctx, i, j, (0, 0, w, h), dst, self.params.min_visible)
            a = pw * ph / float(h * w)
            weights[i] = [(i, 1 - a), (j, a)]
            pasted[i] = (j, dst, a)
        if pasted:
            mix_labels(orig, new, ctx, weights, self.params.num_classes, self.name)
            record_mix(orig, new, ctx, pasted)
        return new
