"""The `histaug` op: augment `embedding` fields with a trained HistAug model.

    batch:
      ops:
        - histaug: {checkpoint: runs/histaug, mode: bag}

An embedding field is D (one embedding), N x D (a bag: a slide's patch embeddings) or B x N x D
(B bags, as the batch stage collates them). `mode: bag` draws one transformation per bag and
applies it to every row — the paper's "WSI-wise" sampling, which it finds better than
`mode: instance` (one transformation per row). Transformations are drawn from the parameter bank
saved with the model (the pipeline's own parameter distribution), so no image op runs.

The model loads lazily, once per process, keyed by its directory and device; rows run in batches
of `batch_size` on `device` (`auto`: the tensor's own device, else CPU inside a DataLoader worker,
else CUDA when present).
Provenance records the bank index of the bag (and the decoded transformation, readable) or, for
`mode: instance`, a seed from which the per-row indices are re-drawn: replay is exact. In the
batch stage each element (a bag) draws its own parameters.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch.utils.data import get_worker_info

from augflow.config.errors import SampleError
from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import FieldSpec, Sample

_MODELS: dict[tuple[str, int, str], Any] = {}


@register("histaug", targets={"embedding"}, family="latent")
class HistAugOp(Op):
    """Augment embeddings with a trained HistAug model (`augflow.latent.train_histaug`)."""

    class Params(Schema):
        checkpoint: str = Field(..., description="Directory written by HistAug.save (config.json + weights).")
        mode: Literal["bag", "instance"] = Field("bag", description="One transformation per bag, or per row.")
        device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
        batch_size: int = Field(16384, ge=1, description="Rows per forward pass.")

        @field_validator("checkpoint")
        @classmethod
        def _has_model(cls, value: str) -> str:
            if not (Path(value) / "config.json").is_file():
                raise ValueError(f"no HistAug model in {value!r}: expected config.json written by HistAug.save(dir) "
                                 "(paths are relative to the working directory)")
            return value

        @field_validator("device")
        @classmethod
        def _device(cls, value: str) -> str:
            if value not in ("auto", "cpu", "mps") and not value.startswith("cuda"):
                raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
            return value

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        # The batch stage draws from a stand-in sample without the embedding field, so the draw
        # must not need it: one bank index for the element's bag (or a seed for per-row indices).
        if self.params.mode == "instance":
            return {"seed": int(rng.integers(2**63))}
        bank = _bank_size(*_key(self.params.checkpoint))
        shapes = [_shape(sample[n]) for n in sample.fields_of_kind("embedding")]
        if shapes and len(shapes[0]) == 3:       # B x N x D in one sample: one index per bag
            return {"index": rng.integers(bank, size=shapes[0][0]).astype(np.int64)}
        index = int(rng.integers(bank))
        return {"index": index, "transform": self._model(None).describe_index(index)}

    def apply(self, sample: Sample, index: Any = None, seed: int | None = None,
              transform: dict | None = None) -> Sample:
        out = sample.copy()
        for name in _embedding_fields(sample):
            value = sample[name]
            model = self._model(value)
            if seed is not None:     # instance mode: one bank index per row, re-drawn from the recorded seed
                idx = np.random.Generator(np.random.Philox(int(seed))).integers(model.bank_size,
                                                                               size=_shape(value)[:-1])
            else:
                idx = np.asarray(index)
                if idx.ndim == 0 and len(_shape(value)) == 3:
                    idx = np.full(_shape(value)[0], int(idx))
            out[name] = _augment(model, value, idx, self.params.batch_size)
        return out

    def apply_batch(self, batch: dict[str, Any], params: list[dict | None], ctx: Any = None) -> dict[str, Any]:
        """Batch-stage form: element i of each embedding field (a bag, or a row) gets params[i]
        (None: skipped), drawn by `sample_params` for that element as in the per-sample stage."""
        out = dict(batch)
        names = ctx.names("embedding") if ctx is not None else Sample(batch).fields_of_kind("embedding")
        for name in (n for n in names if n in batch):
            value = batch[name]
            spec = {name: FieldSpec("embedding")}
            items = [value[i] if p is None else self.apply(Sample({name: value[i]}, spec), **p)[name]
                     for i, p in enumerate(params)]
            if isinstance(value, torch.Tensor):
                out[name] = torch.stack(items)
            elif isinstance(value, np.ndarray):
                out[name] = np.stack(items)
            else:                    # ragged bags: a list with one N_i x D bag per element
                out[name] = items
        return out

    def _model(self, value: Any):
        return load_model(self.params.checkpoint, _device_for(self.params.device, value))


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu"):
    """The HistAug model in `checkpoint` on `device`, loaded once per process."""
    from augflow.latent.model import HistAug

    key = (*_key(checkpoint), str(device))
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = HistAug.load(checkpoint, device=device)
    return model


def _key(checkpoint: str | Path) -> tuple[str, int]:
    """A model's identity: its directory and when its config was written (a retrained model reloads)."""
    path = Path(checkpoint).resolve()
    return str(path), (path / "config.json").stat().st_mtime_ns


@functools.lru_cache(maxsize=None)
def _bank_size(checkpoint: str, mtime_ns: int) -> int:
    cfg = json.loads((Path(checkpoint) / "config.json").read_text(encoding="utf-8"))
    if not cfg.get("bank_size"):
        raise ValueError(f"the HistAug model in {checkpoint!r} has no parameter bank to draw transformations from")
    return int(cfg["bank_size"])


def _embedding_fields(sample: Sample) -> list[str]:
    fields = sample.fields_of_kind("embedding")
    if not fields:
        raise SampleError(f"op 'histaug' changes 'embedding' fields, and this sample has none (fields: "
                          f"{', '.join(map(str, sample)) or 'none'}); name the field 'embedding' or declare it in the "
                          "pipeline, e.g. fields: {feats: embedding}")
    for name in fields:
        if len(_shape(sample[name])) not in (1, 2, 3):
            raise SampleError(f"field {name!r} (embedding) must be D, N x D or B x N x D, got shape "
                              f"{_shape(sample[name])}")
    return fields


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)


def _device_for(device: str, value: Any) -> str:
    if device != "auto":
        return device
    if isinstance(value, torch.Tensor) and value.device.type != "cpu":
        return str(value.device)
    if get_worker_info() is not None:   # loader workers stay off the GPU
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _augment(model, value: Any, idx: np.ndarray, batch_size: int) -> Any:
    """Run the model on D / N x D / B x N x D and give the result back in the input's type and place."""
    is_tensor = isinstance(value, torch.Tensor)
    x = value if is_tensor else torch.from_numpy(np.asarray(value, dtype=np.float32))
    if x.shape[-1] != model.dim:
        raise SampleError(f"embedding size {x.shape[-1]} does not match the HistAug model's {model.dim}")
    if x.ndim == 1:
        y = model.augment(x[None], idx.reshape(()), batch_size)[0]
    elif x.ndim == 2:
        y = model.augment(x, idx, batch_size)
    else:
        y = torch.stack([model.augment(x[b], idx[b], batch_size) for b in range(x.shape[0])])
    if is_tensor:
        return y.to(device=value.device, dtype=value.dtype if value.is_floating_point() else torch.float32)
    return y.cpu().numpy().astype(np.asarray(value).dtype if np.asarray(value).dtype.kind == "f" else np.float32)


__all__ = ["HistAugOp", "load_model"]
