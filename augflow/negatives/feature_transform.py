"""Feature transformation (Zhu et al., "Improving Contrastive Learning by Visualizing Feature
Transformation", ICCV 2021): harder positives by extrapolation, more diverse negatives by
interpolation, on the features themselves.

Follows the authors' code (DTennant `CL-Visualizing-Feature-Transformation`,
`memory/mem_moco.py`, class `RGBMoCo_dropmix_norm`, run with `--mixnorm_target posneg --sep_alpha
--pos_alpha 2.0 --neg_alpha 1.6 --mask_distribution beta --expolation_mask`):
- positive extrapolation: lam = 1 + Beta(a, a) (> 1), q' = lam * q + (1 - lam) * k and
  k' = lam * k + (1 - lam) * q, with k detached first (the key comes from the momentum encoder);
  the two views move apart along their difference, so the positive score drops;
- negative interpolation: queue' = lam * queue + (1 - lam) * queue[perm], lam ~ Beta(a, a), perm a
  random permutation of the queue rows;
- `per`: the code's `dim_mask` — one lam for the whole batch (`"batch"`, the code's default
  `none`), one per row (`"sample"`), or one per feature dimension (`"dim"`, the code's `both`);
- `normalize`: the code's `--postmix_norm` (off by default there): re-project onto the sphere.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

_PER = ("batch", "sample", "dim")


def beta_sample(alpha: float, shape: tuple[int, ...], generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Beta(alpha, alpha) draws as X / (X + Y) of two Gamma(alpha) draws.

    torch.distributions.Beta takes no generator; `torch._standard_gamma` does, which keeps the
    draws reproducible without touching the global RNG.
    """
    if alpha <= 0:
        raise ValueError(f"the Beta parameter must be positive, got {alpha}")
    conc = torch.full(shape, float(alpha), dtype=torch.float32, device=generator.device if generator else "cpu")
    x = torch._standard_gamma(conc, generator=generator)
    y = torch._standard_gamma(conc, generator=generator)
    return (x / (x + y).clamp_min(1e-12)).to(device=device, dtype=dtype)


def _lam(alpha: float, like: torch.Tensor, per: str, generator: torch.Generator | None) -> torch.Tensor:
    if per not in _PER:
        raise ValueError(f"per must be one of {', '.join(_PER)}, got {per!r}")
    shape = {"batch": (1, 1), "sample": (like.shape[0], 1), "dim": tuple(like.shape)}[per]
    return beta_sample(alpha, shape, generator, like.device, like.dtype)


def extrapolate_positives(zq: torch.Tensor, zk: torch.Tensor, alpha: float = 2.0, *, per: str = "batch",
                          normalize: bool = False, generator: torch.Generator | None = None,
                          return_lambda: bool = False):
    """Harder positives: (zq', zk') pushed apart along zq - zk with lam = 1 + Beta(alpha, alpha).

    zq keeps its gradient; zk is detached first, as in the authors' code.
    """
    if zq.shape != zk.shape:
        raise ValueError(f"zq and zk must have the same shape, got {tuple(zq.shape)} and {tuple(zk.shape)}")
    zk = zk.detach()
    lam = 1.0 + _lam(alpha, zq, per, generator)
    q_new = lam * zq + (1 - lam) * zk
    k_new = lam * zk + (1 - lam) * zq
    if normalize:
        q_new, k_new = F.normalize(q_new, dim=1), F.normalize(k_new, dim=1)
    return (q_new, k_new, lam) if return_lambda else (q_new, k_new)


def interpolate_negatives(queue: torch.Tensor, alpha: float = 1.6, *, per: str = "batch", normalize: bool = False,
                          generator: torch.Generator | None = None, return_details: bool = False):
    """More diverse negatives: each queue row mixed with a randomly paired row, lam ~ Beta(alpha, alpha)."""
    queue = queue.detach()
    perm = torch.randperm(queue.shape[0], generator=generator,
                          device=generator.device if generator else "cpu").to(queue.device)
    lam = _lam(alpha, queue, per, generator)
    out = lam * queue + (1 - lam) * queue[perm]
    if normalize:
        out = F.normalize(out, dim=1)
    return (out, lam, perm) if return_details else out


__all__ = ["extrapolate_positives", "interpolate_negatives", "beta_sample"]
