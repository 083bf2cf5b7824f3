"""`image_negatives`: repaint the region of one object with diffusion inpainting, so the image no
longer matches its caption (the image side of generative negative mining).

The region comes from a box or a mask of the sample; a diffusers inpainting pipeline, derived with
`from_pipe` from the model directory's own pipeline (so it shares the networks with the other
diffusion ops), repaints it from a prompt — by default `a photo of {replacement}` with
`replacement` drawn from `replacements` (default: background, i.e. the object is removed).

Pixels change only around the region: the repainted picture is pasted back with a weight of 1
inside the region that falls linearly to 0 over `blend` pixels outside it (default: the VAE's
downsampling factor, the width over which its decoder smears the region's border). Pixels farther
than `blend` from the region are bit-identical to the input — the VAE's reconstruction error,
which touches every pixel of the decoded picture, never reaches them.

    negatives:
      - image_negatives: {model: /models/sd-inpainting, replacements: [a cat, a dog, a bicycle], k: 1}
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from augflow.generative import cache, diffusion, models
from augflow.negatives.field import add_negatives, image_field
from augflow.ops.base import Op
from augflow.registry import register
from augflow.sample import Sample


def region_mask(sample: Sample, source: str, index: int, height: int, width: int) -> np.ndarray:
    """The H x W bool mask of object `index` of field `source` (boxes, a label map, or a list of masks)."""
    spec = sample.specs.get(source)
    kind = spec.kind if spec is not None else None
    value = sample[source]
    if kind == "bboxes":
        from augflow.generative.mask_conditioned import _to_pixels
        rows = np.asarray(value, np.float32)[index:index + 1, :4]
        box = _to_pixels(rows, spec.format or "pascal_voc", height, width)[0]
        x0, y0 = int(np.floor(max(box[0], 0))), int(np.floor(max(box[1], 0)))
        x1, y1 = int(np.ceil(min(box[2], width))), int(np.ceil(min(box[3], height)))
        out = np.zeros((height, width), bool)
        out[y0:y1, x0:x1] = True
        return out
    if kind == "masks":
        return np.asarray(value[index]).astype(bool).reshape(height, width)
    labels = np.asarray(value)
    labels = labels[..., 0] if labels.ndim == 3 else labels
    return labels == index


def objects_of(sample: Sample, source: str) -> list[int]:
    """Object ids of a region field: box rows, mask list positions, or non-zero labels of a label map."""
    spec = sample.specs.get(source)
    value = sample[source]
    if spec is not None and spec.kind in ("bboxes", "masks"):
        return list(range(len(value)))
    labels = np.asarray(value)
    return [int(v) for v in np.unique(labels) if v != 0]


def blend_weight(region: np.ndarray, blend: int) -> np.ndarray:
    """1 inside the region, falling linearly to 0 at `blend` + 1 pixels outside it."""
    import cv2

    if blend <= 0:
        return region.astype(np.float32)
    dist = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip((blend + 1 - dist) / (blend + 1), 0.0, 1.0).astype(np.float32)


def composite(original: np.ndarray, generated: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Paste `generated` (same dtype and shape as `original`) with `weight`; weight 0 keeps pixels exactly."""
    w = weight if original.ndim == 2 else weight[:, :, None]
    mixed = original.astype(np.float32) * (1 - w) + generated.astype(np.float32) * w
    if original.dtype.kind in "ui":
        mixed = np.round(mixed)
    mixed = mixed.astype(original.dtype)
    keep = (weight == 0) if original.ndim == 2 else (weight == 0)[:, :, None]
    return np.where(keep, original, mixed)


@register("image_negatives", targets={"negatives"}, family="negatives")
class ImageNegatives(Op):
    """Make `k` negatives by inpainting one object's region (from a box or a mask) with a diffusion model.

    The object and the replacement prompt are drawn per negative; the result is appended to `to`
    with the region, prompt and seed. Outside the region (beyond `blend` pixels) the negative equals
    the input exactly.
    """

    class Params(diffusion.DiffusionParams):
        prompt: str = Field("a photo of {replacement}", description="Inpainting prompt; {replacement}, {label_name} "
                            "and the sample's text fields are filled in.")
        replacements: list[str] = Field(["background"], min_length=1, description="What to paint instead of the "
                                        "object, drawn per negative.")
        k: int = Field(1, ge=1, le=16, description="Negatives per sample.")
        strength: diffusion.Span = Field(1.0, description="Inpainting strength (1: repaint from noise).")
        steps: int = Field(20, ge=1, le=1000)
        region: str | None = Field(None, description="Field with the regions: boxes, a label map or a list of masks "
                                   "(default: the first boxes field, else the first mask).")
        object: Literal["random", "largest"] = Field("random", description="Which object to repaint.")
        grow: int = Field(0, ge=0, le=256, description="Dilate the region by this many pixels first.")
        blend: int | None = Field(None, ge=0, le=256, description="Feather width outside the region (default: "
                                  "the VAE's downsampling factor).")
        field: str | None = Field(None, description="Image field (default: the first image).")
        to: str = Field("negatives", description="Field the negatives are appended to.")

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._hash: str | None = None
        self._multiple = diffusion.vae_multiple(self.params.model)

    @property
    def model_hash(self) -> str:
        if self._hash is None:
            self._hash = models.content_hash(self.params.model)
        return self._hash

    @property
    def blend(self) -> int:
        return self._multiple if self.params.blend is None else self.params.blend

    def _region_field(self, sample: Sample) -> str:
        if self.params.region is not None:
            if self.params.region not in sample:
                raise ValueError(f"op {self.name!r}: region field {self.params.region!r} is not in the sample "
                                 f"(fields: {sorted(sample)})")
            return self.params.region
        found = sample.fields_of_kind("bboxes") or sample.fields_of_kind("mask", "masks")
        if not found:
            raise ValueError(f"op {self.name!r}: the sample has no boxes or mask to take an object region from "
                             f"(fields: {sorted(sample)}); name one with `region:`")
        return found[0]

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        name = image_field(sample, self.params.field, self.name)
        source = self._region_field(sample)
        objects = objects_of(sample, source)
        if not objects:
            return {"field": name, "region": source, "negatives": []}
        h, w = sample[name].shape[:2]
        values = diffusion.prompt_values(sample, self.params.class_names)
        if self.params.object == "largest":
            areas = [region_mask(sample, source, o, h, w).sum() for o in objects]
            picks = [objects[int(np.argmax(areas))]] * self.params.k
        else:
            picks = [objects[int(rng.integers(len(objects)))] for _ in range(self.params.k)]
        negs = []
        for obj in picks:
            replacement = self.params.replacements[int(rng.integers(len(self.params.replacements)))]
            negs.append({"object": int(obj), "seed": diffusion.draw_seed(rng),
                         "guidance_scale": diffusion.draw(rng, self.params.guidance_scale),
                         "strength": diffusion.draw(rng, self.params.strength),
                         "prompt": diffusion.format_prompt(self.params.prompt, {**values, "replacement": replacement},
                                                           self.name),
                         "negative_prompt": diffusion.format_prompt(self.params.negative_prompt, values, self.name)})
        return {"field": name, "region": source, "negatives": negs, "model": {"path": self.params.model,
                                                                               "hash": self.model_hash}}

    def apply(self, sample: Sample, field: str, region: str, negatives: list[dict[str, Any]],
              model: dict[str, str] | None = None) -> Sample:
        if model and model.get("hash") not in (None, self.model_hash):
            raise models.ModelError(f"op {self.name!r}: these parameters were recorded with model "
                                    f"{model.get('path')!r} hashing to {model['hash']}; the directory now hashes to "
                                    f"{self.model_hash}")
        image = sample[field]
        h, w = image.shape[:2]
        items = []
        for neg in negatives:
            mask = region_mask(sample, region, neg["object"], h, w)
            if self.params.grow:
                import cv2
                kernel = np.ones((2 * self.params.grow + 1,) * 2, np.uint8)
                mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
            if not mask.any():
                continue
            generated = diffusion.like_input(self._inpaint(image, mask, neg), image)
            out_img = composite(image, generated, blend_weight(mask, self.blend))
            ys, xs = np.nonzero(mask)
            info = {"object": neg["object"], "region_field": region, "prompt": neg["prompt"], "seed": neg["seed"],
                    "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1], "blend": self.blend}
            items.append({"value": out_img, "info": info})
        return add_negatives(sample.copy(), self.params.to, items, kind="image", op=self.name, source=field)

    def _inpaint(self, image: np.ndarray, mask: np.ndarray, neg: dict[str, Any]) -> np.ndarray:
        """The pipeline's picture (H x W x 3 float in [0, 1]) for one negative, from the cache when there."""
        h, w = image.shape[:2]
        gh, gw = diffusion.rounded_size(h, w, self._multiple)
        rgb = diffusion.resize_float(diffusion.to_rgb_float(image), gh, gw)
        small = diffusion.resize_float(mask.astype(np.float32), gh, gw) > 0.5 if (gh, gw) != (h, w) else mask
        config = diffusion.op_config(self.params)
        config.update(model=self.model_hash, blend=self.blend)
        key = cache.make_key(self.name, config, neg, rgb, small.astype(np.uint8))
        where = cache.cache_dir(self.params.cache)
        hit = cache.get(key, where)
        if hit is not None:
            return hit
        pipe = self._pipeline()
        out = diffusion.call_pipeline(
            self.name, pipe, 1, prompt=[neg["prompt"]],
            negative_prompt=None if neg["negative_prompt"] is None else [neg["negative_prompt"]],
            image=rgb[None], mask_image=small.astype(np.float32)[None, :, :, None], height=gh, width=gw,
            strength=neg["strength"], guidance_scale=neg["guidance_scale"], num_inference_steps=self.params.steps,
            generator=diffusion.torch_generators([neg["seed"]]))[0]
        out = diffusion.resize_float(out, h, w)
        cache.put(key, out, where)
        return out

    def _pipeline(self):
        params = self.params
        device = models.resolve_device(params.device)
        key = ("diffusers-task", "inpaint", params.model, params.dtype, device, params.scheduler, params.safety_checker)

        def load():
            import threading

            from diffusers import AutoPipelineForInpainting

            base = diffusion.base_pipeline(params.model, params.dtype, params.device, params.safety_checker)
            try:
                pipe = AutoPipelineForInpainting.from_pipe(base, scheduler=diffusion._scheduler(base, params.scheduler))
            except (ValueError, KeyError) as exc:
                raise models.ModelError(f"model {params.model!r} ({type(base).__name__}) has no inpainting pipeline in "
                                        f"diffusers: {exc}") from None
            pipe.set_progress_bar_config(disable=True)
            return pipe, threading.Lock()

        return models.cached_model(key, load)


__all__ = ["ImageNegatives", "region_mask", "objects_of", "blend_weight", "composite"]
