"""The sample stage on Kornia: each sample is a batch of one through the batch kernels.

Parameters are drawn exactly as on the albumentations backend (same ops' `sample_params`, same
generator), so the two backends differ only by their kernels: float32 arithmetic instead of
uint8 rounding, bilinear `grid_sample` instead of OpenCV's fixed-point warp. That is what the
cross-backend tests bound. Slower on CPU than albumentations (see MEASURED_IMG_PER_S); it is
there for the same pipeline file to run on tensors, and on a GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from augflow.compile.batch_stage import apply_draws, draw_element
from augflow.compile.decoding import decode
from augflow.compile.plan import AffineGroup
from augflow.ops.batch.kernels import BatchContext
from augflow.params_codec import to_jsonable
from augflow.sample import ProvenanceEntry, Sample


def run_sample_items(items: list, sample: Sample, rng: np.random.Generator, pending: dict) -> Sample:
    for name, p in pending.items():          # reduced decode is an albumentations-backend pass
        sample[name] = decode(p.raw)
    images = sample.fields_of_kind("image")
    if not images:
        raise ValueError("the kornia backend needs an image field in every sample")
    first = sample[images[0]]
    draws = draw_element(items, rng, first.shape[:2], first.shape[2] if first.ndim == 3 else 1)
    batch = _to_batch(sample)
    batch = apply_draws(batch, [draws], BatchContext(dict(sample.specs)))
    out = _from_batch(batch, sample)
    for key, target, params in draws:
        if isinstance(target, AffineGroup):
            out.provenance.extend(getattr(params, "entries", []))
        elif hasattr(target, "op"):
            out.provenance.append(ProvenanceEntry(target.name, target.path, to_jsonable(params), None))
    return out


def _to_batch(sample: Sample) -> dict:
    batch = {}
    for name, value in sample.items():
        kind = sample.specs[name].kind if name in sample.specs else None
        if kind == "image" and isinstance(value, np.ndarray):
            arr = value[..., None] if value.ndim == 2 else value
            t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
            batch[name] = t.float().div_(255.0) if t.dtype == torch.uint8 else \
                (t.float().div_(65535.0) if t.dtype == torch.uint16 else t.float())
        elif kind == "mask" and isinstance(value, np.ndarray):
            batch[name] = torch.from_numpy(np.ascontiguousarray(value[..., 0] if value.ndim == 3 else value))[None]
        elif kind == "masks":
            arrs = [np.asarray(m) for m in value]
            batch[name] = [torch.from_numpy(np.stack(arrs)) if arrs else torch.zeros(0, 1, 1)]
        elif kind in ("bboxes", "keypoints"):
            batch[name] = [torch.as_tensor(np.asarray(value, dtype=np.float32))]
        else:
            batch[name] = [value]
    return batch


def _from_batch(batch: dict, sample: Sample) -> Sample:
    out = sample.copy()
    for name, value in batch.items():
        kind = sample.specs[name].kind if name in sample.specs else None
        if kind in ("image", "mask") and isinstance(value, torch.Tensor):
            out[name] = value[0]
        elif isinstance(value, list):
            v = value[0]
            out[name] = v.numpy() if kind in ("bboxes", "keypoints") and isinstance(v, torch.Tensor) else v
        else:
            out[name] = value
    return out
