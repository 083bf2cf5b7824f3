"""Collating the `negatives` field: a padded tensor plus a mask (images, embeddings), or lists (text).

Samples carry different numbers of negatives (text negatives that fail the check are dropped).
The collated field is always keyed by kind, one entry per kind present in the batch (plus those
named in `kinds=`), whether the pipeline makes one kind or several, so adding a second negative op
never changes how the first one's negatives are reached. For a batch of B samples with at most K
negatives of a kind each:

    {"image": {"kind": "image",
               "values": Tensor (B, K, C, H, W),  # (B, K, D) for "embedding"; zeros where a sample has fewer than K
               "mask":   BoolTensor (B, K),        # True where a negative is real
               "ops":    [[op name, ...] per sample],
               "info":   [[info dict, ...] per sample]},
     "text":  {"kind": "text", "values": [[str, ...] per sample], "mask": ..., "ops": ..., "info": ...}}

`collate_fn` is a drop-in `DataLoader(collate_fn=...)`: negatives fields go through `collate_negatives`, every other
field through torch's `default_collate`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import default_collate


def _as_tensor(value: Any, kind: str, channels_first: bool) -> torch.Tensor:
    t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(np.asarray(value)))
    if kind == "image" and not isinstance(value, torch.Tensor):
        t = t[..., None] if t.ndim == 2 else t
        if channels_first:
            t = t.permute(2, 0, 1)
    return t


def _collate_kind(rows: list[list[dict[str, Any]]], kind: str, channels_first: bool) -> dict[str, Any]:
    width = max((len(r) for r in rows), default=0)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        mask[i, :len(r)] = True
    out: dict[str, Any] = {"mask": mask, "ops": [[n["op"] for n in r] for r in rows],
                           "info": [[n.get("info", {}) for n in r] for r in rows]}
    if kind == "text":
        out["values"] = [[str(n["value"]) for n in r] for r in rows]
        return out
    tensors = [[_as_tensor(n["value"], kind, channels_first) for n in r] for r in rows]
    shapes = {tuple(t.shape) for r in tensors for t in r}
    dtypes = {t.dtype for r in tensors for t in r}
    if len(shapes) > 1:
        raise ValueError(f"negatives of kind {kind!r} have different shapes {sorted(shapes)}; they can only be stacked "
                         "when equal — resize the images before the negative ops, or collate them yourself")
    if len(dtypes) > 1:
        raise ValueError(f"negatives of kind {kind!r} have different dtypes {sorted(map(str, dtypes))}")
    shape = shapes.pop() if shapes else (0,)
    dtype = dtypes.pop() if dtypes else torch.float32
    values = torch.zeros((len(rows), width, *shape), dtype=dtype)
    for i, r in enumerate(tensors):
        for j, t in enumerate(r):
            values[i, j] = t
    out["values"] = values
    return out


def collate_negatives(batch: Sequence[Sequence[Mapping[str, Any]] | None], *, channels_first: bool = True,
                      kinds: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """One `negatives` field over a batch (a list per sample) -> {kind: padded values + mask} (module doc).

    Images (H x W x C arrays) become C x H x W tensors when `channels_first` (as the compiled loader
    emits images); tensors are taken as they are. A kind in `kinds` is present even when no sample
    of this batch has one (all-False mask, K = 0).
    """
    rows = [list(r or []) for r in batch]
    present = sorted({n["kind"] for r in rows for n in r} | set(kinds))
    return {k: {"kind": k, **_collate_kind([[n for n in r if n["kind"] == k] for r in rows], k, channels_first)}
            for k in present}


def _negative_fields(sample: Mapping[str, Any]) -> list[str]:
    specs = getattr(sample, "specs", None) or {}
    names = [n for n, s in specs.items() if s.kind == "negatives" and n in sample]
    if "negatives" in sample and "negatives" not in names:
        names.append("negatives")
    return names


def collate_fn(batch: Sequence[Mapping[str, Any]], *, channels_first: bool = True) -> dict[str, Any]:
    """A `collate_fn` for samples with negatives fields (each becomes {kind: {...}}, see the module
    doc); everything else goes to `default_collate`."""
    if not batch:
        return {}
    names = _negative_fields(batch[0])
    rest = [{k: v for k, v in dict(s).items() if k not in names} for s in batch]
    out = default_collate(rest) if rest[0] else {}
    for name in names:
        out[name] = collate_negatives([s.get(name) for s in batch], channels_first=channels_first)
    return out


__all__ = ["collate_fn", "collate_negatives"]
