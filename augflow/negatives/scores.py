"""The positive/negative score histograms of the feature-transformation paper, as a picture.

People tune MoCHi and feature transformation by looking at where the positive scores q.k and the
negative scores q.n sit over training (the FT authors' `_compute_logit` records them every step and
their notebook plots the histograms). `plot_scores` draws one row per snapshot (e.g. per epoch):
positives in orange, negatives in blue, cosine score on [-1, 1]. It draws with Pillow (already
an augflow dependency) so no plotting library is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from augflow.negatives.feature import Negatives, negative_logits

_POS, _NEG, _AXIS = (230, 120, 20), (40, 90, 200), (60, 60, 60)


@torch.no_grad()
def scores(q: torch.Tensor, k: torch.Tensor, negatives: Negatives = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive scores (B,), negative scores (B, M)) of L2-normalised features, on CPU."""
    pos = (q * k).sum(dim=1)
    return pos.float().cpu(), negative_logits(q, negatives, k).float().cpu()


def histograms(values: torch.Tensor | np.ndarray, bins: int = 60, value_range: tuple[float, float] = (-1.0, 1.0)
               ) -> np.ndarray:
    """Normalised histogram (density per bin, sums to 1) of scores."""
    arr = values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    counts, _ = np.histogram(arr.ravel(), bins=bins, range=value_range)
    return counts / max(counts.sum(), 1)


def plot_scores(pos, neg, path: str | Path | None = None, *, labels: Sequence[str] | None = None, bins: int = 60,
                value_range: tuple[float, float] = (-1.0, 1.0), width: int = 640, row_height: int = 120,
                title: str = "positive (orange) / negative (blue) scores") -> Image.Image:
    """Histogram picture of positive and negative scores; one row per snapshot.

    pos, neg: tensors/arrays of scores, or lists of them (one per snapshot, e.g. per epoch).
    Saved to `path` when given; the PIL image is returned either way.
    """
    pos_list = list(pos) if isinstance(pos, (list, tuple)) else [pos]
    neg_list = list(neg) if isinstance(neg, (list, tuple)) else [neg]
    if len(pos_list) != len(neg_list):
        raise ValueError(f"pos and neg need the same number of snapshots, got {len(pos_list)} and {len(neg_list)}")
    labels = list(labels) if labels is not None else [f"#{i}" for i in range(len(pos_list))]
    font = ImageFont.load_default()
    margin_l, margin_r, top, bottom = 48, 12, 22, 24
    height = top + bottom + row_height * len(pos_list)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((margin_l, 4), title, fill=_AXIS, font=font)
    plot_w = width - margin_l - margin_r
    for row, (p, n, label) in enumerate(zip(pos_list, neg_list, labels)):
        y0 = top + row * row_height
        base = y0 + row_height - 8
        hp, hn = histograms(p, bins, value_range), histograms(n, bins, value_range)
        peak = max(hp.max(), hn.max(), 1e-12)
        bar_w = plot_w / bins
        for hist, color in ((hn, _NEG), (hp, _POS)):
            for i, h in enumerate(hist):
                if h <= 0:
                    continue
                x = margin_l + i * bar_w
                draw.rectangle([x, base - (row_height - 20) * h / peak, x + max(bar_w - 1, 1), base], outline=color)
        draw.line([margin_l, base, width - margin_r, base], fill=_AXIS)
        draw.text((4, y0 + row_height // 2 - 6), str(label), fill=_AXIS, font=font)
    lo, hi = value_range
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = margin_l + frac * plot_w
        draw.text((x - 10, height - bottom + 6), f"{lo + frac * (hi - lo):g}", fill=_AXIS, font=font)
    if path is not None:
        img.save(path)
    return img


__all__ = ["scores", "histograms", "plot_scores"]
