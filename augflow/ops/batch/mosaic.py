"""Mosaic: four images of the batch tiled around a random centre, at the batch's image size.

Quadrant k shows the corner of image k that touches the centre (the YOLO arrangement, without
rescaling: every image keeps its scale). Boxes are shifted and clipped to their quadrant (kept
when `min_visible` of them is inside), keypoints outside their quadrant dropped, masks tiled,
labels mixed by each quadrant's area.
"""

from __future__ import annotations

from augflow.ops.batch.kernels import BatchContext, image_hw
from augflow.ops.batch.mixing import _TARGETS
from augflow.ops.batch.paste import BatchOnlyOp, MixParams, clear_element, mix_labels, partner, paste_rect, start_mix
from augflow.registry import register


@register("mosaic", targets=_TARGETS, family="batch")
class Mosaic(BatchOnlyOp):
    """2x2 mosaic of this element and three others; centre drawn in `center` (fractions)."""

    class Params(MixParams):
        center: tuple[float, float] = (0.25, 0.75)

    def sample_params(self, rng, sample):
        lo, hi = self.params.center
        return {"cx": float(rng.uniform(lo, hi)), "cy": float(rng.uniform(lo, hi)),
                "partners": [float(rng.random()) for _ in range(3)]}

    def apply_batch(self, batch: dict, params: list, ctx: BatchContext) -> dict:
        orig, new, weights = start_mix(batch, params, ctx)
        n = len(params)
        h, w = image_hw(orig, ctx)
        for i, p in enumerate(params):
            if p is None:
                continue
            cx, cy = int(round(p["cx"] * w)), int(round(p["cy"] * h))
            sources = [i] + [partner(u, i, n) for u in p["partners"]]
            # (destination rectangle, source rectangle): each image's corner that touches the centre
            quads = [((0, 0, cx, cy), (w - cx, h - cy, w, h)), ((cx, 0, w, cy), (0, h - cy, w - cx, h)),
                     ((0, cy, cx, h), (w - cx, 0, w, h - cy)), ((cx, cy, w, h), (0, 0, w - cx, h - cy))]
            clear_element(new, ctx, i)
            ws = []
            for src_index, (dst, src) in zip(sources, quads):
                paste_rect(orig, new, ctx, i, src_index, src, dst, self.params.min_visible)
                ws.append((src_index, (dst[2] - dst[0]) * (dst[3] - dst[1]) / float(h * w)))
            weights[i] = ws
        if any(weights):
            mix_labels(orig, new, ctx, weights, self.params.num_classes, self.name)
        return new
