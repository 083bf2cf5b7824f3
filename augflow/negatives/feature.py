"""The contrastive loss that consumes feature-level negatives, and a MoCo-style memory queue.

Plain torch on L2-normalised features, usable inside any training loop:

    queue = MemoryQueue(size=16384, dim=128, device="cuda")
    neg = mochi(q, queue.get(), n_hard=1024, s=1024, s_prime=256)       # (B, s + s', D)
    loss = info_nce(q, k, [queue.get(), neg], temperature=0.2)
    queue.enqueue(k)
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn import functional as F

Negatives = torch.Tensor | Sequence[torch.Tensor] | None


def negative_logits(q: torch.Tensor, negatives: Negatives, k: torch.Tensor | None = None) -> torch.Tensor:
    """Similarities (B, M) of each query to its negatives.

    `negatives` is a shared set (M, D) (a queue), per-query negatives (B, M, D) (MoCHi's output),
    a list of those (concatenated in order), or None for in-batch negatives: every other key of
    the batch (requires `k`).
    """
    if negatives is None:
        if k is None:
            raise ValueError("negatives=None means in-batch negatives, which needs the keys k")
        sims = q @ k.T
        eye = torch.eye(q.shape[0], dtype=torch.bool, device=q.device)
        return sims[~eye].view(q.shape[0], q.shape[0] - 1)
    if isinstance(negatives, torch.Tensor):
        negatives = [negatives]
    parts = []
    for n in negatives:
        if n.ndim == 2:
            parts.append(q @ n.T)
        elif n.ndim == 3:
            if n.shape[0] != q.shape[0]:
                raise ValueError(f"per-query negatives must be (B, M, D) with B = {q.shape[0]} queries, got "
                                 f"{tuple(n.shape)}")
            parts.append(torch.einsum("bd,bmd->bm", q, n))
        else:
            raise ValueError(f"negatives must be (M, D) or (B, M, D), got shape {tuple(n.shape)}")
    return torch.cat(parts, dim=1)


def info_nce(q: torch.Tensor, k: torch.Tensor, negatives: Negatives = None, temperature: float = 0.07,
             decoupled: bool = False, reduction: str = "mean") -> torch.Tensor:
    """InfoNCE of queries q (B, D) against their positives k (B, D) and negatives.

    loss_i = -q.k / T + log(exp(q.k / T) + sum_n exp(q.n / T)); with `decoupled=True` the positive
    term leaves the denominator (Yeh et al., "Decoupled Contrastive Learning"):
    loss_i = -q.k / T + log(sum_n exp(q.n / T)). Features are expected L2-normalised (the logits are
    then cosine similarities); nothing here normalises them for you.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    pos = (q * k).sum(dim=1, keepdim=True) / temperature
    neg = negative_logits(q, negatives, k) / temperature
    logits = neg if decoupled else torch.cat([pos, neg], dim=1)
    loss = torch.logsumexp(logits, dim=1) - pos[:, 0]
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class MemoryQueue:
    """A FIFO of the last `size` keys, kept on `device` (MoCo's queue, without the module around it).

    `enqueue(keys)` appends and drops the oldest keys beyond `size`; `dequeue(n)` removes and
    returns the n oldest; `get()` returns the stored keys, oldest first. Keys are stored detached.
    `init="random"` starts full of random unit vectors, as MoCo does; `"empty"` starts empty.
    """

    def __init__(self, size: int, dim: int, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 init: str = "empty", generator: torch.Generator | None = None):
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be positive, got size={size}, dim={dim}")
        self.size, self.dim = int(size), int(dim)
        self.buffer = torch.zeros(self.size, self.dim, device=device, dtype=dtype)
        self.start = 0      # index of the oldest key
        self.count = 0
        if init == "random":
            noise = torch.randn(self.size, self.dim, generator=generator, dtype=dtype).to(device)
            self.buffer.copy_(F.normalize(noise, dim=1))
            self.count = self.size
        elif init != "empty":
            raise ValueError(f"init must be 'empty' or 'random', got {init!r}")

    def __len__(self) -> int:
        return self.count

    @property
    def device(self) -> torch.device:
        return self.buffer.device

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Append keys (B, D); the oldest keys are overwritten once the queue is full."""
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"keys must be (B, {self.dim}), got {tuple(keys.shape)}")
        keys = keys.detach().to(self.buffer.device, self.buffer.dtype)
        if keys.shape[0] >= self.size:           # only the newest `size` keys survive
            self.buffer.copy_(keys[-self.size:])
            self.start, self.count = 0, self.size
            return
        end = (self.start + self.count) % self.size
        slots = (torch.arange(keys.shape[0], device=self.buffer.device) + end) % self.size
        self.buffer.index_copy_(0, slots, keys)
        overflow = max(0, self.count + keys.shape[0] - self.size)
        self.start = (self.start + overflow) % self.size
        self.count = min(self.size, self.count + keys.shape[0])

    @torch.no_grad()
    def dequeue(self, n: int) -> torch.Tensor:
        """Remove and return the n oldest keys (fewer if the queue holds fewer)."""
        n = min(int(n), self.count)
        slots = (torch.arange(n, device=self.buffer.device) + self.start) % self.size
        out = self.buffer[slots].clone()
        self.start = (self.start + n) % self.size
        self.count -= n
        return out

    def get(self) -> torch.Tensor:
        """The stored keys (count, D), oldest first (a view when they are contiguous in the ring)."""
        if self.start + self.count <= self.size:
            return self.buffer[self.start:self.start + self.count]
        return torch.cat([self.buffer[self.start:], self.buffer[:(self.start + self.count) % self.size]])

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.clone(), "start": self.start, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.copy_(state["buffer"].to(self.buffer.device))
        self.start, self.count = int(state["start"]), int(state["count"])

    def to(self, device: str | torch.device) -> "MemoryQueue":
        self.buffer = self.buffer.to(device)
        return self


__all__ = ["info_nce", "negative_logits", "MemoryQueue"]
