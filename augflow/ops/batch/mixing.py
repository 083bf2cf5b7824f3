"""MixUp and CutMix: two images of a batch become one, labels mixed by weight / true pasted area.

Each element i draws its own parameters (lambda, box position, which partner) from its own
generator; partner j is another element of the same batch. Targets follow: MixUp keeps both
images' boxes and keypoints (as detection MixUp does) and the dominant image's mask; CutMix
pastes the box region of every target (see paste.paste_rect). CutMix records what it pasted in
`batch["mix"]` (partner, box, both labels), which the TransMix hook (transmix.py) relabels from.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from augflow.ops.batch.kernels import BatchContext, first_image, image_hw
from augflow.ops.batch.paste import BatchOnlyOp, MixParams, label_fields, mix_labels, partner, paste_rect, start_mix
from augflow.registry import register

_TARGETS = {"image", "mask", "masks", "bboxes", "keypoints", "label"}


@register("mixup", targets=_TARGETS, family="batch")
class MixUp(BatchOnlyOp):
    """x = l * x_i + (1 - l) * x_j and likewise for labels, l ~ Beta(alpha, alpha) per element."""

    class Params(MixParams):
        alpha: float = 0.2

    def sample_params(self, rng, sample):
        a = self.params.alpha
        return {"lam": float(rng.beta(a, a)) if a > 0 else 1.0, "partner": float(rng.random())}

    def apply_batch(self, batch: dict, params: list, ctx: BatchContext) -> dict:
        orig, new, weights = start_mix(batch, params, ctx)
        n = len(params)
        rows = [(i, partner(p["partner"], i, n), p["lam"]) for i, p in enumerate(params) if p is not None]
        if rows:   # pixels: one batched expression over every mixed element, no Python loop
            idx, js, lams = (list(c) for c in zip(*rows))
            for name in ctx.names("image"):
                x = orig.get(name)
                if isinstance(x, torch.Tensor):
                    shape = (-1,) + (1,) * (x.dim() - 1)
                    # the weights as the per-element form has them: lam and (1 - lam) in double,
                    # rounded to the image dtype, so each element is bit-identical to l*x_i + (1-l)*x_j
                    w_i = torch.tensor(lams, dtype=x.dtype, device=x.device).view(shape)
                    w_j = torch.tensor([1 - lam for lam in lams], dtype=x.dtype, device=x.device).view(shape)
                    rows_i = torch.tensor(idx, device=x.device)
                    own = x if len(idx) == x.shape[0] else x.index_select(0, rows_i)   # index_select:
                    mixed = w_i * own + w_j * x.index_select(0, torch.tensor(js, device=x.device))  # ~10x x[list]
                    new[name].index_copy_(0, rows_i, mixed)
            partner_major = [(i, j) for i, j, lam in rows if lam < 0.5]
            for name in ctx.names("mask"):
                if isinstance(orig.get(name), torch.Tensor) and partner_major:
                    dst, src = (torch.tensor(c, device=orig[name].device) for c in zip(*partner_major))
                    new[name].index_copy_(0, dst, orig[name].index_select(0, src))
        for i, j, lam in rows:
            for name in ctx.names("bboxes", "keypoints", "masks"):
                if isinstance(orig.get(name), list):
                    new[name][i] = torch.cat([orig[name][i], orig[name][j].to(orig[name][i].device)])
                    for lf in ctx.specs[name].label_fields:
                        if isinstance(orig.get(lf), list):
                            a, b = orig[lf][i], orig[lf][j]
                            new[lf][i] = torch.cat([a, b]) if isinstance(a, torch.Tensor) else list(a) + list(b)
            weights[i] = [(i, lam), (j, 1 - lam)]
        if any(weights):
            mix_labels(orig, new, ctx, weights, self.params.num_classes, self.name)
        return new


def cut_box(lam: float, cx: float, cy: float, hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box of area fraction 1 - lam centred at (cx, cy) (fractions), clipped to the image."""
    h, w = hw
    r = math.sqrt(max(0.0, 1.0 - lam))
    ch, cw = int(h * r), int(w * r)
    x0 = int(np.clip(round(cx * w - cw / 2), 0, w))
    x1 = int(np.clip(round(cx * w + cw / 2), 0, w))
    y0 = int(np.clip(round(cy * h - ch / 2), 0, h))
    y1 = int(np.clip(round(cy * h + ch / 2), 0, h))
    return x0, y0, x1, y1


def record_mix(orig: dict, new: dict, ctx: BatchContext, pasted: dict[int, tuple[int, tuple, float]]) -> None:
    """batch["mix"]: partner (-1 if none), pasted box (x0, y0, x1, y1), partner's area, both labels."""
    n = _batch_size(orig, ctx)
    partners = torch.full((n,), -1, dtype=torch.long)
    boxes = torch.zeros((n, 4))
    area = torch.zeros(n)
    for i, (j, box, a) in pasted.items():
        partners[i], boxes[i], area[i] = j, torch.tensor(box, dtype=torch.float32), a
    mix = {"partner": partners, "box": boxes, "area": area}
    for name in label_fields(ctx):
        y = orig.get(name)
        if isinstance(y, torch.Tensor):
            mix["label_a"] = y.clone()
            mix["label_b"] = y[torch.where(partners >= 0, partners, torch.arange(n)).to(y.device)].clone()
            break
    new["mix"] = mix


def _batch_size(batch: dict, ctx: BatchContext) -> int:
    return int(first_image(batch, ctx).shape[0])


@register("cutmix", targets=_TARGETS, family="batch")
class CutMix(BatchOnlyOp):
    """Paste a box of x_j into x_i; box area 1 - l, l ~ Beta(alpha, alpha); labels by the pasted area
    after clipping to the image (not by the drawn l)."""

    class Params(MixParams):
        alpha: float = 1.0

    def sample_params(self, rng, sample):
        a = self.params.alpha
        return {"lam": float(rng.beta(a, a)) if a > 0 else 1.0, "cx": float(rng.random()),
                "cy": float(rng.random()), "partner": float(rng.random())}

    def apply_batch(self, batch: dict, params: list, ctx: BatchContext) -> dict:
        orig, new, weights = start_mix(batch, params, ctx)
        n = len(params)
        hw = image_hw(orig, ctx)
        pasted = {}
        for i, p in enumerate(params):
            if p is None:
                continue
            j = partner(p["partner"], i, n)
            box = cut_box(p["lam"], p["cx"], p["cy"], hw)
            paste_rect(orig, new, ctx, i, j, box, box, self.params.min_visible)
            a = (box[2] - box[0]) * (box[3] - box[1]) / float(hw[0] * hw[1])
            weights[i] = [(i, 1 - a), (j, a)]
            pasted[i] = (j, box, a)
        if pasted:
            mix_labels(orig, new, ctx, weights, self.params.num_classes, self.name)
            record_mix(orig, new, ctx, pasted)
        return new
