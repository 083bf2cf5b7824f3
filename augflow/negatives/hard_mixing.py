"""MoCHi: synthetic hard negatives mixed in feature space (Kalantidis et al., "Hard Negative Mixing
for Contrastive Learning", NeurIPS 2020).

Follows the paper's section 4 and the public re-implementations of its code (davidsvy
`hard-negative-mixing` `src/moco.py`: `find_hard_negatives`, `hard_negatives1/2`):
1. rank the queue negatives by similarity to the query, keep the N hardest (top-k on detached
   logits);
2. s synthetic negatives h = normalise(a * n_i + (1 - a) * n_j), n_i != n_j drawn uniformly from
   the hard set, a ~ U(0, 1);
3. s' harder ones h' = normalise(b * q + (1 - b) * n_j), b ~ U(0, beta_max) with beta_max = 0.5 so
   the query never dominates, and q detached: no gradient flows through the synthetic points.
Each query gets its own (s + s') negatives; append them to the queue's logits (`info_nce` takes
`[queue, mochi(...)]`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F


class MochiResult(NamedTuple):
    """Synthetic negatives and how they were made (for tests, plots and debugging)."""

    negatives: torch.Tensor        # (B, s + s', D): the s mixes of negatives, then the s' query mixes
    hard_index: torch.Tensor       # (B, N) queue rows of the N hardest negatives, hardest first
    pair_index: torch.Tensor       # (B, s, 2) positions in the hard set of (n_i, n_j)
    alpha: torch.Tensor            # (B, s) weight of n_i
    query_index: torch.Tensor      # (B, s') position in the hard set of the n_j mixed with q
    beta: torch.Tensor             # (B, s') weight of the query


@torch.no_grad()
def mochi(q: torch.Tensor, queue: torch.Tensor, n_hard: int = 1024, s: int = 1024, s_prime: int = 256,
          beta_max: float = 0.5, generator: torch.Generator | None = None,
          return_info: bool = False) -> torch.Tensor | MochiResult:
    """Synthetic hard negatives (B, s + s', D) for L2-normalised queries q (B, D) and negatives (M, D).

    n_hard is capped at the queue length. `generator` makes the draws reproducible. The result
    carries no gradient (the paper mixes detached features).
    """
    if q.ndim != 2 or queue.ndim != 2 or q.shape[1] != queue.shape[1]:
        raise ValueError(f"mochi needs queries (B, D) and queue negatives (M, D), got {tuple(q.shape)} and "
                         f"{tuple(queue.shape)}")
    if not 0.0 <= beta_max <= 0.5:
        raise ValueError(f"beta_max must be in [0, 0.5] (the query's weight stays below the negative's), "
                         f"got {beta_max}")
    if queue.shape[0] == 0:
        raise ValueError("mochi needs a non-empty queue of negatives")
    q = q.detach()
    queue = queue.detach()
    b, dev = q.shape[0], q.device
    n = min(int(n_hard), queue.shape[0])
    hard_index = torch.topk(q @ queue.T, k=n, dim=1).indices                  # (B, N), hardest first

    def hard(pos: torch.Tensor) -> torch.Tensor:   # rows of the hard set, gathered only where used
        return queue[torch.gather(hard_index, 1, pos)]

    gdev = generator.device if generator is not None else "cpu"

    def draw_int(high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(0, high, shape, generator=generator, device=gdev).to(dev)

    def draw_unit(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=gdev).to(dev, q.dtype)

    i = draw_int(n, (b, s))
    # n_j != n_i when the hard set allows it: a shift in [1, N) away from i
    j = (i + draw_int(n - 1, (b, s)) + 1) % n if n > 1 else i.clone()
    alpha = draw_unit((b, s))
    mixed = F.normalize(torch.lerp(hard(j), hard(i), alpha[..., None]), dim=2)   # a * n_i + (1 - a) * n_j

    jq = draw_int(n, (b, s_prime))
    beta = draw_unit((b, s_prime)) * beta_max
    harder = F.normalize(torch.lerp(hard(jq), q[:, None, :].expand(-1, s_prime, -1), beta[..., None]), dim=2)

    negatives = torch.cat([mixed, harder], dim=1)
    if return_info:
        return MochiResult(negatives, hard_index, torch.stack([i, j], dim=2), alpha, jq, beta)
    return negatives


__all__ = ["mochi", "MochiResult"]
