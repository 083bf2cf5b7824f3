"""Generative ops in the batch stage: a collated tensor batch in, the op's batched call, tensors out.

The batch stage (`augflow.compile`) calls `op.apply_batch(batch, params, ctx)` with the batch's
tensors on the loader's device and one parameter dict per element (None where the element skips
the op). Generative ops do their batching in `apply_samples(samples, params)` — one model call
for the elements that can share it — so this adapter only converts: each element becomes a
Sample (images channels-last, masks, labels, boxes), and the generated images are written back
into the batch tensor, on its device and in its dtype.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

import numpy as np

from augflow.generative import cache


def element(batch: dict, ctx: Any, i: int):
    """Element i of a collated batch as a Sample of numpy values."""
    import torch

    from augflow.sample import Sample

    fields: dict[str, Any] = {}
    for name, value in batch.items():
        if name.startswith("_"):
            continue        # loader bookkeeping (_index, _epoch)
        kind = ctx.specs[name].kind if name in ctx.specs else None
        item = value[i] if isinstance(value, (torch.Tensor, list, tuple)) and len(value) > i else value
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu()
            if kind == "image" and item.dim() == 3:
                item = item.permute(1, 2, 0)
            item = item.numpy()
            if kind == "label" and item.size == 1:
                item = item.item()
        fields[name] = item
    return Sample(fields, {k: v for k, v in ctx.specs.items() if k in fields})


def tensor_batch(op: Any, batch: dict, params: list, ctx: Any) -> dict:
    """Run `op.apply_samples` on the elements with params and write their images back."""
    import torch

    idx = [i for i, p in enumerate(params) if p is not None]
    if not idx:
        return batch
    outs = op.apply_samples([element(batch, ctx, i) for i in idx], [params[i] for i in idx])
    for name in ctx.names("image"):
        x = batch.get(name)
        if not isinstance(x, torch.Tensor):
            continue
        y = x.clone()
        for i, out in zip(idx, outs):
            arr = np.asarray(out[name])
            t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]))
            if tuple(t.shape) != tuple(y[i].shape):
                raise ValueError(f"op {op.name!r} in the batch stage made element {i}'s {name!r} {tuple(t.shape)} "
                                 f"but the batch holds {tuple(y[i].shape)}: a batch keeps one size (drop `size`, "
                                 "or run the op in the sample stage)")
            y[i] = t.to(device=y.device, dtype=y.dtype)
        batch[name] = y
    return batch


def generate_grouped(jobs: list[dict[str, Any]], group_key: Callable[[dict[str, Any]], Hashable],
                     generate: Callable[[Hashable, list[dict[str, Any]]], list[np.ndarray]]) -> list[np.ndarray]:
    """Each job's generated image: from the cache (`job["key"]`, `job["cache"]`) where it is there;
    the others grouped by `group_key(job)` (what one model call can share: size, scales...), one
    `generate(key, group_jobs)` call per group, and cached."""
    results: list[np.ndarray | None] = [cache.get(job["key"], job["cache"]) for job in jobs]
    groups: dict[Hashable, list[int]] = {}
    for i, (job, res) in enumerate(zip(jobs, results)):
        if res is None:
            groups.setdefault(group_key(job), []).append(i)
    for key, idx in groups.items():
        for i, img in zip(idx, generate(key, [jobs[i] for i in idx])):
            results[i] = img
            cache.put(jobs[i]["key"], img, jobs[i]["cache"])
    return results


__all__ = ["element", "tensor_batch", "generate_grouped"]
