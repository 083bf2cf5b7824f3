"""Copy-Paste (Ghiasi et al.): instances of another image, cut out by their masks, pasted on top.

Needs instance masks (`masks`: one N x H x W tensor per element). A random subset of the
partner's instances (each with probability `instance_p`) is pasted pixel-exactly; the element's
own instances lose the covered pixels and are dropped when less than `min_visible` of them stays
visible; boxes (when present, one per instance mask, in the same order) are recomputed from the
masks; keypoints under the pasted pixels are dropped and the partner's under them added; class
labels mix by the pasted pixel fraction. (The paper's large-scale jitter is the sample stage's
job: put a random_resized_crop / affine before the batch stage.)
"""

from __future__ import annotations

import numpy as np
import torch

from augflow.ops.batch import geometry as geo
from augflow.ops.batch.kernels import BatchContext
from augflow.ops.batch.mixing import _TARGETS
from augflow.ops.batch.paste import BatchOnlyOp, MixParams, _carry_labels, _np, mix_labels, partner, start_mix
from augflow.registry import register


def boxes_of_masks(masks: torch.Tensor) -> np.ndarray:
    """Pixel boxes (x_min, y_min, x_max, y_max; max exclusive) enclosing each mask."""
    out = np.zeros((len(masks), 4))
    for k, m in enumerate(masks):
        ys, xs = torch.nonzero(m, as_tuple=True)
        if len(xs):
            out[k] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    return out


@register("copy_paste", targets=_TARGETS, family="batch")
class CopyPaste(BatchOnlyOp):
    """Paste a random subset of another element's instances (by mask) onto this one."""

    class Params(MixParams):
        instance_p: float = 0.5

    def sample_params(self, rng, sample):
        return {"partner": float(rng.random()), "seed": int(rng.integers(2**62))}

    def apply_batch(self, batch: dict, params: list, ctx: BatchContext) -> dict:
        names = [n for n in ctx.names("masks") if isinstance(batch.get(n), list)]
        if not names:
            raise ValueError("copy_paste needs instance masks: a 'masks' field (one N x H x W array per sample)")
        inst = names[0]
        orig, new, weights = start_mix(batch, params, ctx)
        n = len(params)
        for i, p in enumerate(params):
            if p is None:
                continue
            j = partner(p["partner"], i, n)
            theirs = orig[inst][j]
            chosen = np.random.Generator(np.random.Philox(p["seed"])).random(len(theirs)) < self.params.instance_p
            if not chosen.any():
                continue
            pasted = theirs[torch.as_tensor(chosen)].bool()
            union = pasted.any(0)
            for name in ctx.names("image", "mask"):
                x = orig.get(name)
                if isinstance(x, torch.Tensor):
                    new[name][i] = torch.where(union.to(x.device), x[j], x[i])
            own = orig[inst][i].bool()
            before = own.flatten(1).sum(1).clamp(min=1)
            own = own & ~union
            keep_own = (own.flatten(1).sum(1) / before >= self.params.min_visible) & own.flatten(1).any(1)
            masks = torch.cat([own[keep_own], pasted]).to(orig[inst][i].dtype)
            new[inst][i] = masks
            keep_own_np, chosen_np = keep_own.cpu().numpy(), chosen
            _carry_labels(orig, new, ctx.specs[inst].label_fields, i, j, keep_own_np, chosen_np)
            hw = tuple(union.shape)
            for name in ctx.names("bboxes"):
                if isinstance(orig.get(name), list):
                    if len(orig[name][i]) != len(orig[inst][i]) or len(orig[name][j]) != len(theirs):
                        raise ValueError(f"copy_paste: field {name!r} must hold one box per instance mask in "
                                         f"{inst!r} (same order) to be recomputed from the masks")
                    voc = boxes_of_masks(masks)
                    new[name][i] = torch.as_tensor(geo.boxes_from_voc(voc, ctx.specs[name].format, hw),
                                                   dtype=torch.float32)
                    _carry_labels(orig, new, ctx.specs[name].label_fields, i, j, keep_own_np, chosen_np)
            for name in ctx.names("keypoints"):
                if isinstance(orig.get(name), list):
                    xi, yi = (1, 0) if ctx.specs[name].format == "yx" else (0, 1)
                    u = union.cpu().numpy()
                    a, b = _np(orig[name][i]), _np(orig[name][j])
                    under = lambda k: u[np.clip(k[:, yi].round().astype(int), 0, hw[0] - 1),  # noqa: E731
                                        np.clip(k[:, xi].round().astype(int), 0, hw[1] - 1)] if len(k) else \
                        np.zeros(0, dtype=bool)
                    keep_a, keep_b = ~under(a), under(b)
                    new[name][i] = torch.as_tensor(np.concatenate([a[keep_a], b[keep_b]]), dtype=torch.float32)
                    _carry_labels(orig, new, ctx.specs[name].label_fields, i, j, keep_a, keep_b)
            frac = float(union.float().mean())
            weights[i] = [(i, 1 - frac), (j, frac)]
        if any(weights):
            mix_labels(orig, new, ctx, weights, self.params.num_classes, self.name)
        return new
