"""`day_to_night`: a trained day-to-night generator applied as an op (Dark Side Augmentation).

From "Dark Side Augmentation" (code: gandtr): an unpaired day-to-night translation GAN supplies
night images of the same place for retrieval training. The op loads a ResNet generator from a
local checkpoint — augflow's trainer output (`augflow train day-to-night`), or existing CycleGAN,
pix2pix or gandtr weights, unchanged (layout in `augflow.generative.networks`) — once per worker,
and runs it at the image's resolution (padded to a multiple of 4) or at `size`.

    - day_to_night: {checkpoint: runs/day2night, p: 0.3}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from augflow.generative import batching, cache, diffusion, models
from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample


def generator(checkpoint: str, device: str, dtype: str):
    """The generator for a checkpoint file, loaded once per process and (file, device, dtype)."""

    def load():
        from augflow.generative.networks import load_generator

        return load_generator(checkpoint).to(device=device, dtype=models.torch_dtype(dtype, device))

    return models.cached_model(("resnet-generator", checkpoint, device, dtype), load)


def translate(net, images: list[np.ndarray], size: int | None, device: str) -> list[np.ndarray]:
    """Run the generator on RGB float images (H x W x 3 in [0, 1]); same-shape images share a batch."""
    import torch
    import torch.nn.functional as F

    outs: list[np.ndarray | None] = [None] * len(images)
    by_shape: dict[tuple, list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(img.shape, []).append(i)
    dtype = next(net.parameters()).dtype
    for (h, w, _), idx in by_shape.items():
        x = torch.from_numpy(np.stack([images[i] for i in idx])).permute(0, 3, 1, 2).to(device, dtype) * 2 - 1
        if size is not None:     # shorter side to `size`
            scale = size / min(h, w)
            x = F.interpolate(x, size=(max(4, round(h * scale)), max(4, round(w * scale))), mode="bilinear",
                              align_corners=False, antialias=scale < 1)
        ph, pw = (-x.shape[2]) % 4, (-x.shape[3]) % 4
        if ph or pw:             # two stride-2 convs and transposes: sides must be multiples of 4
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(x.shape[2:]) > max(ph, pw) else "replicate")
        with torch.inference_mode():
            y = net(x)
        y = y[:, :, : y.shape[2] - ph, : y.shape[3] - pw]
        if y.shape[2:] != (h, w):
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        arr = ((y.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
        for i, a in zip(idx, arr):
            outs[i] = a
    return outs


@register("day_to_night", targets={"image"}, family="generative")
class DayToNight(Op):
    """Translate a day photo to night with a ResNet generator checkpoint (CycleGAN/pix2pix/gandtr/augflow).

    Deterministic given the checkpoint; `blend` (drawn per sample) mixes the night image with the
    input, for weaker versions. Outputs are cached like the diffusion ops'.
    """

    class Params(Schema):
        checkpoint: str = Field(..., description="Generator .pth file, or a directory holding generator.pth "
                                "(augflow trainer) / latest_net_G_A.pth (CycleGAN) / latest_net_G.pth (pix2pix).")
        size: int | None = Field(None, ge=16, description="Run at this shorter side, then resize back "
                                 "(default: the image's own resolution).")
        blend: diffusion.Span = Field(1.0, description="Share of the night image (1: the generator's output); "
                                      "a value or a [low, high] range in [0, 1].")
        device: str = Field("auto", description="cpu, cuda, or auto.")
        dtype: Literal["float32", "float16", "bfloat16"] = "float32"
        cache: str | None = Field(None, description="Results cache directory (default: process/env default, else memory).")

        @field_validator("checkpoint")
        @classmethod
        def _exists(cls, value: str) -> str:
            from augflow.generative.networks import resolve_checkpoint

            try:
                return str(resolve_checkpoint(value).resolve())
            except FileNotFoundError as exc:
                raise ValueError(f"{exc}; train one with `augflow train day-to-night` or give CycleGAN/gandtr "
                                 "weights") from None

        @field_validator("device")
        @classmethod
        def _device(cls, value: str) -> str:
            return models.check_device(value)

        @field_validator("blend")
        @classmethod
        def _blend(cls, value: diffusion.Span) -> diffusion.Span:
            low, high = diffusion.span_bounds(value)
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError("must be in [0, 1], a value or a [low, high] range")
            return value

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._hash: str | None = None

    @property
    def model_hash(self) -> str:
        if self._hash is None:
            self._hash = models.content_hash(Path(self.params.checkpoint))
        return self._hash

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        return {"blend": diffusion.draw(rng, self.params.blend),
                "model": {"path": self.params.checkpoint, "hash": self.model_hash}}

    def apply(self, sample: Sample, **params: Any) -> Sample:
        return self.apply_samples([sample], [params])[0]

    def apply_batch(self, batch: dict, params: list, ctx: Any) -> dict:
        """The batch stage's entry: a collated batch of tensors, per-element params (None: skip)."""
        return batching.tensor_batch(self, batch, params, ctx)

    def apply_samples(self, samples: list[Sample], params_list: list[dict[str, Any]]) -> list[Sample]:
        """Translate several samples' images; same-size images run as one batch."""
        for params in params_list:
            recorded = params.get("model") or {}
            if recorded.get("hash") not in (None, self.model_hash):
                raise models.ModelError(f"op {self.name!r}: these parameters were recorded with checkpoint "
                                        f"{recorded.get('path')!r} hashing to {recorded['hash']}; "
                                        f"{self.params.checkpoint!r} now hashes to {self.model_hash}")
        device = models.resolve_device(self.params.device)
        config = {"size": self.params.size, "dtype": self.params.dtype, "hash": self.model_hash}
        directory = cache.cache_dir(self.params.cache)
        jobs = []   # (sample index, field, rgb input, key)
        for si, sample in enumerate(samples):
            for name in sample.fields_of_kind("image"):
                rgb = diffusion.to_rgb_float(sample[name])
                jobs.append((si, name, rgb, cache.make_key(self.name, config, {}, rgb)))
        results = [cache.get(key, directory) for *_, key in jobs]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            net = generator(self.params.checkpoint, device, self.params.dtype)
            outs = translate(net, [jobs[i][2] for i in todo], self.params.size, device)
            models.CALLS[self.name] += 1
            models.IMAGES[self.name] += len(todo)
            for i, out in zip(todo, outs):
                results[i] = out
                cache.put(jobs[i][3], out, directory)
        outs_samples = [s.copy() for s in samples]
        for (si, name, rgb, _), night in zip(jobs, results):
            blend = float(params_list[si].get("blend", 1.0))
            mixed = night if blend >= 1.0 else blend * night + (1.0 - blend) * rgb
            outs_samples[si][name] = diffusion.like_input(mixed.astype(np.float32), samples[si][name])
        return outs_samples


__all__ = ["DayToNight", "generator", "translate"]
