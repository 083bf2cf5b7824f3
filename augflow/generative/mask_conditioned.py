"""`mask_conditioned_diffusion`: a new image for an existing segmentation label.

From "Generative augmentations for improved cardiac ultrasound segmentation using diffusion
models": a diffusion model conditioned on the segmentation map synthesizes a new image whose
anatomy follows the map, so the sample's mask stays a valid label. Here the conditioning is a
segmentation ControlNet (diffusers) from a local directory; the mask is rendered to the condition
image with a palette (class k -> a colour, as segmentation ControlNets are trained on) or as gray
levels. Samples with boxes and no mask get a box-rendered condition (filled class-coloured
rectangles), and keep their boxes.

    - mask_conditioned_diffusion:
        model: /models/sd15
        controlnet: /models/controlnet-seg
        prompt: "an ultrasound image of the heart, apical four-chamber view"
        steps: 20
"""

from __future__ import annotations

import colorsys
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from augflow.generative import batching, cache, diffusion, models
from augflow.ops.base import Op
from augflow.registry import register
from augflow.sample import Provenance, Sample


def default_palette(n: int = 256) -> np.ndarray:
    """n distinct RGB colours; class 0 (background) is black. Golden-ratio hues, alternating brightness."""
    colours = np.zeros((n, 3), np.uint8)
    for k in range(1, n):
        hue = (k * 0.618033988749895) % 1.0
        value = 1.0 if k % 2 else 0.7
        colours[k] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.85, value)) * 255)
    return colours


def render_mask(mask: np.ndarray, mode: str, palette: np.ndarray | None = None, num_classes: int | None = None
                ) -> np.ndarray:
    """A label map (H x W ints) as an H x W x 3 float condition image in [0, 1]."""
    labels = np.asarray(mask)
    if labels.ndim == 3:             # one-hot / channel masks: the channel index is the class
        labels = labels.argmax(axis=2) if labels.shape[2] > 1 else labels[:, :, 0]
    labels = labels.astype(np.int64)
    if mode == "gray":
        top = max(int(num_classes or 0) - 1, int(labels.max()), 1)
        gray = (labels.astype(np.float32) / top)[:, :, None]
        return np.repeat(gray, 3, axis=2)
    pal = default_palette() if palette is None else palette
    return pal[np.clip(labels, 0, len(pal) - 1)].astype(np.float32) / 255.0


def render_boxes(boxes: np.ndarray, labels: np.ndarray | None, height: int, width: int, fmt: str,
                 palette: np.ndarray | None = None) -> np.ndarray:
    """Boxes as filled rectangles in their class colour (class 1 when unlabelled), larger boxes first."""
    pal = default_palette() if palette is None else palette
    canvas = np.zeros((height, width, 3), np.float32)
    xyxy = _to_pixels(np.asarray(boxes, np.float32)[:, :4], fmt, height, width)
    classes = np.ones(len(xyxy), np.int64) if labels is None else _class_ids(labels) + 1
    order = np.argsort(-(xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]))   # small boxes stay visible
    for i in order:
        x0, y0, x1, y1 = np.round(xyxy[i]).astype(int)
        canvas[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = pal[int(classes[i]) % len(pal)] / 255.0
    return canvas


def _class_ids(labels: Any) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.int64)
    names = sorted({str(v) for v in arr.tolist()})    # string labels: a stable id per name
    return np.array([names.index(str(v)) for v in arr.tolist()], np.int64)


def _to_pixels(b: np.ndarray, fmt: str, h: int, w: int) -> np.ndarray:
    if fmt == "coco":
        return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    if fmt == "yolo":
        cx, cy, bw, bh = b[:, 0] * w, b[:, 1] * h, b[:, 2] * w, b[:, 3] * h
        return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    if fmt == "albumentations":
        return b * np.array([w, h, w, h], np.float32)
    return b


@register("mask_conditioned_diffusion", targets={"image"}, family="generative")
class MaskConditionedDiffusion(Op):
    """Generate a new image from the sample's segmentation mask (or boxes) with a ControlNet.

    Rewrites the image; the mask, boxes and every other field are kept, because the generation
    follows them. Sampled: seed, guidance scale, ControlNet scale (and strength when starting from
    the image); recorded with the model and ControlNet directories and config hashes.
    """

    class Params(diffusion.DiffusionParams):
        controlnet: str = Field(..., description="Local diffusers ControlNet directory (segmentation-conditioned).")
        prompt: str = Field("", description="Prompt template ({label}, {label_name}, text fields).")
        steps: int = Field(20, ge=1, le=1000)
        controlnet_scale: diffusion.Span = Field(1.0, description="ControlNet conditioning scale; value or range.")
        strength: diffusion.Span | None = Field(None, description="None: generate from the condition alone (the "
                                                "paper); a value/range: start from the image (ControlNet img2img).")
        render: Literal["palette", "gray"] = Field("palette", description="How classes become condition pixels.")
        palette: list[tuple[int, int, int]] | None = Field(None, description="RGB per class id (class 0 first); "
                                                           "default: black background and distinct colours.")
        num_classes: int | None = Field(None, ge=2, description="For gray rendering: class k -> k / (n - 1).")
        mask_field: str | None = Field(None, description="The mask to condition on (default: the first mask; "
                                       "without a mask, the boxes).")

        @field_validator("controlnet")
        @classmethod
        def _controlnet_dir(cls, value: str) -> str:
            return str(diffusion._checked_dir(value, "controlnet"))

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._hashes: tuple[str, str] | None = None
        self._multiple = diffusion.vae_multiple(self.params.model)
        self._palette = None if self.params.palette is None else np.asarray(self.params.palette, np.uint8)

    @property
    def model_hashes(self) -> tuple[str, str]:
        if self._hashes is None:
            self._hashes = (models.content_hash(self.params.model), models.content_hash(self.params.controlnet))
        return self._hashes

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        prompt, negative = diffusion.draw_prompts(self.params, sample, self.name)
        model_hash, cn_hash = self.model_hashes
        return {
            "seed": diffusion.draw_seed(rng),
            "guidance_scale": diffusion.draw(rng, self.params.guidance_scale),
            "controlnet_scale": diffusion.draw(rng, self.params.controlnet_scale),
            "strength": None if self.params.strength is None else diffusion.draw(rng, self.params.strength),
            "prompt": prompt,
            "negative_prompt": negative,
            "model": {"path": self.params.model, "hash": model_hash},
            "controlnet": {"path": self.params.controlnet, "hash": cn_hash},
        }

    def apply(self, sample: Sample, **params: Any) -> Sample:
        return self.apply_samples([sample], [params])[0]

    def apply_batch(self, batch: dict, params: list, ctx: Any) -> dict:
        """The batch stage's entry: a collated batch of tensors, per-element params (None: skip)."""
        return batching.tensor_batch(self, batch, params, ctx)

    def apply_samples(self, samples: list[Sample], params_list: list[dict[str, Any]]) -> list[Sample]:
        """Generate for several samples; those sharing size and sampled scales run as one model call."""
        jobs = [self._prepare(s, p) for s, p in zip(samples, params_list)]

        def group_key(job: dict[str, Any]) -> tuple:
            p = job["params"]
            return (job["condition"].shape, p["guidance_scale"], p["controlnet_scale"], p["strength"],
                    job["negative"] is None)

        def generate(key: tuple, group: list[dict[str, Any]]) -> list[np.ndarray]:
            _, guidance, cn_scale, strength, no_negative = key
            task = "text2image" if strength is None else "image2image"
            pipe = diffusion.task_pipeline(task, self.params, controlnet=self.params.controlnet)
            conditions = np.stack([job["condition"] for job in group])
            kwargs: dict[str, Any] = {"image": conditions}
            if strength is not None:   # ControlNet img2img: `image` starts the denoising, `control_image` guides
                kwargs = {"image": np.stack([job["input"] for job in group]), "control_image": conditions,
                          "strength": strength}
            h, w = conditions.shape[1:3]
            return diffusion.call_pipeline(
                self.name, pipe, len(group), prompt=[job["prompt"] for job in group],
                negative_prompt=None if no_negative else [job["negative"] for job in group],
                guidance_scale=guidance, controlnet_conditioning_scale=cn_scale, num_inference_steps=self.params.steps,
                height=h, width=w, generator=diffusion.torch_generators([job["params"]["seed"] for job in group]),
                **kwargs)

        results = batching.generate_grouped(jobs, group_key, generate)
        outs = []
        for sample, job, generated in zip(samples, jobs, results):
            out = Sample(sample, sample.specs, Provenance(sample.provenance), sample.seed)
            # The label fixes the geometry: the image keeps the sample's size whatever `size` says.
            out[job["field"]] = diffusion.like_input(generated, sample[job["field"]])
            outs.append(out)
        return outs

    def _prepare(self, sample: Sample, params: dict[str, Any]) -> dict[str, Any]:
        for role, recorded, current in (("model", params.get("model"), self.model_hashes[0]),
                                        ("controlnet", params.get("controlnet"), self.model_hashes[1])):
            if recorded and recorded.get("hash") not in (None, current):
                raise models.ModelError(f"op {self.name!r}: these parameters were recorded with {role} "
                                        f"{recorded.get('path')!r} hashing to {recorded['hash']}; the directory "
                                        f"now hashes to {current}; replay with that {role}")
        field = next(iter(sample.fields_of_kind("image")), None)
        if field is None:
            raise ValueError(f"op {self.name!r}: the sample has no image field (fields: {sorted(sample)})")
        image = sample[field]
        h, w = image.shape[:2]
        gh, gw = diffusion.rounded_size(*(self.params.size or (h, w)), self._multiple)
        condition = self._render(sample, h, w)
        condition = diffusion.resize_float(condition, gh, gw) if self.params.render == "gray" else \
            _resize_nearest(condition, gh, gw)
        rgb = diffusion.resize_float(diffusion.to_rgb_float(image), gh, gw)
        prompt, negative = diffusion.final_prompts(self.params, sample, params, self.name)
        key_params = {k: v for k, v in params.items() if k not in ("model", "controlnet")}
        key_params.update(prompt=prompt, negative_prompt=negative)
        config = {k: v for k, v in diffusion.op_config(self.params).items() if k not in ("model", "controlnet")}
        config["hashes"] = list(self.model_hashes)
        arrays = (condition,) if params.get("strength") is None else (condition, rgb)
        return {"field": field, "condition": condition, "input": rgb, "params": params, "prompt": prompt,
                "negative": negative,
                "key": cache.make_key(self.name, config, key_params, *arrays), "cache": cache.cache_dir(self.params.cache)}

    def _render(self, sample: Sample, h: int, w: int) -> np.ndarray:
        masks = [self.params.mask_field] if self.params.mask_field else sample.fields_of_kind("mask")
        if masks and masks[0] in sample:
            return render_mask(sample[masks[0]], self.params.render, self._palette, self.params.num_classes)
        boxes = sample.fields_of_kind("bboxes")
        if boxes:
            spec = sample.specs[boxes[0]]
            labels = next((sample[f] for f in spec.label_fields if f in sample), None)
            return render_boxes(sample[boxes[0]], labels, h, w, spec.format or "pascal_voc", self._palette)
        raise ValueError(f"op {self.name!r}: the sample has neither a mask nor boxes to condition on "
                         f"(fields: {sorted(sample)}); declare them under `fields:` if their names differ")


def _resize_nearest(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if arr.shape[:2] == (height, width):
        return arr
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_NEAREST)


__all__ = ["MaskConditionedDiffusion", "render_mask", "render_boxes", "default_palette"]
