"""TransMix (Chen et al.): relabel a CutMix/ResizeMix batch by a ViT's attention instead of area.

The area of a pasted box says little about how much of the *object* was pasted; the class
token's attention over patches does. Labels are remixed after the forward pass, so this is a hook
the training loop calls with the attention it already has:

    hook = TransMixHook(num_classes=1000)
    out, attn = model(batch["image"], return_attention=True)   # attn: B x N (CLS -> patches)
    target = hook(batch, attn)                                  # B x num_classes soft labels

`attention` may also be a callable `batch -> B x N`, called by the hook. The patch grid is taken
as square (N = g * g) unless `grid=(gh, gw)` is given.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F


class TransMixHook:
    def __init__(self, num_classes: int, grid: tuple[int, int] | None = None):
        self.num_classes = num_classes
        self.grid = grid

    def weights(self, batch: dict, attention: torch.Tensor) -> torch.Tensor:
        """Per element, the share of attention that falls inside the pasted box (0 where nothing was pasted)."""
        mix = batch.get("mix")
        if mix is None:
            raise ValueError("TransMix needs a batch produced by cutmix or resizemix (they record batch['mix'])")
        attn = attention.float()
        if attn.dim() == 3:          # B x heads x N: average the heads
            attn = attn.mean(1)
        n_patches = attn.shape[1]
        gh, gw = self.grid or (int(math.isqrt(n_patches)),) * 2
        if gh * gw != n_patches:
            raise ValueError(f"attention has {n_patches} patches, not a {gh}x{gw} grid; pass grid=(h, w)")
        image = next(v for k, v in batch.items() if isinstance(v, torch.Tensor) and v.dim() == 4)
        h, w = image.shape[-2:]
        region = torch.zeros((attn.shape[0], 1, h, w), device=attn.device)
        for i, (x0, y0, x1, y1) in enumerate(mix["box"].tolist()):
            if int(mix["partner"][i]) >= 0:
                region[i, :, int(y0):int(y1), int(x0):int(x1)] = 1.0
        inside = F.adaptive_avg_pool2d(region, (gh, gw)).flatten(1)       # fraction of each patch pasted
        return (attn * inside).sum(1) / attn.sum(1).clamp(min=1e-12)

    def __call__(self, batch: dict, attention: torch.Tensor | Callable[[dict], torch.Tensor]) -> torch.Tensor:
        attn = attention(batch) if callable(attention) else attention
        lam = self.weights(batch, attn)
        mix = batch["mix"]
        ya = F.one_hot(mix["label_a"].long().view(-1), self.num_classes).float().to(lam.device)
        yb = F.one_hot(mix["label_b"].long().view(-1), self.num_classes).float().to(lam.device)
        return (1 - lam)[:, None] * ya + lam[:, None] * yb


def transmix_targets(batch: dict, attention: Any, num_classes: int) -> torch.Tensor:
    """One-call form of TransMixHook."""
    return TransMixHook(num_classes)(batch, attention)
