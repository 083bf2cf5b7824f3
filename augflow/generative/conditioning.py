"""`augmented_conditioning`: synthetic training images from augmented real ones.

From "Augmented Conditioning Is Enough For Effective Training Image Generation": no fine-tuning;
each synthetic image is an image-to-image generation from a *real* image of the class that an
augflow sub-pipeline has first augmented (and optionally CutMix/MixUp-ed with another real image of
the same class), prompted with the class name. Real conditioning keeps generations in-domain; the
augmentation makes them diverse.

    - augmented_conditioning:
        model: /models/sd-turbo
        prompt: "a photo of a {label_name}"
        condition: {ops: [{random_resized_crop: {size: [512, 512]}}, {color_jitter: {}}]}
        mix: {mode: cutmix, same_class: true, p: 0.5}
        strength: [0.5, 0.9]
        steps: 4

Partner images for `mix` come from the sample's `mix_image` field or from a source attached with
`attach_partners(pipeline, SameClassIndex(dataset))`; provenance records which one, so a replay
fetches the same partner.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Protocol, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from augflow.generative import batching, cache, diffusion, models
from augflow.ops.base import Op
from augflow.params_codec import from_jsonable
from augflow.registry import register
from augflow.sample import Provenance, Sample
from augflow.steps import iter_ops, run_steps


class Mix(BaseModel):
    """CutMix/MixUp of the conditioning image with another real image (of the same class)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["cutmix", "mixup"] = "cutmix"
    same_class: bool = Field(True, description="Draw the partner from the sample's class (the paper's setting).")
    p: float = Field(0.5, ge=0.0, le=1.0, description="Probability of mixing.")
    alpha: float = Field(1.0, gt=0.0, description="Beta(alpha, alpha) for the mixing ratio.")
    field: str = Field("mix_image", description="Sample field that may carry the partner image.")


class Condition(BaseModel):
    """The augflow ops that augment the real image before it conditions the generation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ops: list[Any] = Field(default_factory=list, description="An op list, as in a pipeline's `sample:`.")


class PartnerSource(Protocol):
    """Where same-class partner images come from; must return the same image for the same (label, k)."""

    def count(self, label: Any) -> int: ...

    def get(self, label: Any, k: int) -> np.ndarray: ...


class SameClassIndex:
    """Partner images drawn through a dataset: `dataset[i][image_key]` for the i-th item of a class.

    Give `labels` (one per item) to avoid reading every item once to learn its label. With
    `label=None` (mix `same_class: false`) any item can be a partner.
    """

    def __init__(self, dataset: Sequence[Mapping[str, Any]], *, labels: Sequence[Any] | None = None,
                 label_key: str = "label", image_key: str = "image"):
        self.dataset = dataset
        self.image_key = image_key
        labels = [dataset[i][label_key] for i in range(len(dataset))] if labels is None else list(labels)
        self._by_label: dict[Any, list[int]] = {}
        for i, label in enumerate(labels):
            self._by_label.setdefault(_label_key(label), []).append(i)
        self._all = list(range(len(labels)))

    def count(self, label: Any) -> int:
        return len(self._all if label is None else self._by_label.get(_label_key(label), []))

    def get(self, label: Any, k: int) -> np.ndarray:
        indices = self._all if label is None else self._by_label[_label_key(label)]
        image = self.dataset[indices[k]][self.image_key]
        if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
            from PIL import Image

            image = np.asarray(Image.open(image).convert("RGB"))
        return np.asarray(image)


def _label_key(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def attach_partners(target: Any, source: PartnerSource) -> int:
    """Give every op with a `mix` in a Pipeline (or one op) its partner source; returns how many."""
    steps = target.op_steps() if hasattr(target, "op_steps") else []
    ops = [s.op for s in steps] if steps else [target]
    n = 0
    for op in ops:
        if hasattr(op, "partner_source"):
            op.partner_source = source
            n += 1
    return n


@register("augmented_conditioning", targets={"image"}, family="generative")
class AugmentedConditioning(Op):
    """Image-to-image diffusion conditioned on an augmented real image plus a class prompt.

    Model: a local diffusers directory (Stable Diffusion 1.x/2.x, SDXL, SD-Turbo, ... — anything
    `AutoPipelineForImage2Image` maps), or an image-variation model (its directory declares
    `StableDiffusionImageVariationPipeline`), which is conditioned on the augmented image's CLIP
    embedding instead of a prompt and a partially noised latent. Sampled: the diffusion seed, strength, guidance scale, the
    conditioning ops' parameters and the mixing partner; all of it, plus the model's directory and
    config hash and the prompt, is recorded in provenance. Outputs are cached (see
    `augflow.generative.cache`). Fields other than the image come from the conditioned sample, so
    geometric conditioning ops keep masks and boxes aligned with the generation's input.
    """

    class Params(diffusion.DiffusionParams):
        condition: Condition | None = Field(None, description="Augflow ops applied to the real image first.")
        mix: Mix | None = Field(None, description="CutMix/MixUp with another real image before conditioning.")
        strength: diffusion.Span = Field((0.5, 0.9), description="How far from the conditioning image "
                                         "(0: a copy, 1: ignore it); a value or a [low, high] range.")
        field: str | None = Field(None, description="The image field to rewrite (default: the first image).")

        @field_validator("strength")
        @classmethod
        def _strength(cls, value: diffusion.Span) -> diffusion.Span:
            low, high = diffusion.span_bounds(value)
            if not 0.0 < low <= high <= 1.0:
                raise ValueError("must be in (0, 1], a value or a [low, high] range")
            return value

        @model_validator(mode="after")
        def _enough_steps(self):
            low, _ = diffusion.span_bounds(self.strength)
            if int(self.steps * low) < 1 and not diffusion.is_variation(self.model):
                raise ValueError(f"steps * strength must reach 1 denoising step (img2img runs int(steps * strength)"
                                 f" steps): steps {self.steps} with strength {low} gives none; raise steps or strength")
            return self

        @field_validator("condition")
        @classmethod
        def _condition(cls, value: Condition | None) -> Condition | None:
            if value is not None:
                _build_steps(value.ops)   # unknown ops or bad params fail when the YAML loads
            return value

    def __init__(self, params=None, **kwargs):
        super().__init__(params, **kwargs)
        self._steps = _build_steps(self.params.condition.ops) if self.params.condition else []
        self._by_path = {s.path: s for s in iter_ops(self._steps)}
        self._hash: str | None = None
        self._multiple = diffusion.vae_multiple(self.params.model)
        self._variation = diffusion.is_variation(self.params.model)
        self.partner_source: PartnerSource | None = None

    @property
    def model_hash(self) -> str:
        if self._hash is None:
            self._hash = models.content_hash(self.params.model)
        return self._hash

    # ---- sampling ---------------------------------------------------------------------------
    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        cond = run_steps(self._steps, Sample(sample, sample.specs, Provenance(), sample.seed), rng)
        mix = None
        if self.params.mix is not None and rng.random() < self.params.mix.p:
            mix = self._sample_mix(rng, sample, cond)
        seed, strength = diffusion.draw_seed(rng), diffusion.draw(rng, self.params.strength)
        guidance = diffusion.draw(rng, self.params.guidance_scale)
        text = not self._variation      # an image-variation model takes no prompt and no strength
        prompt, negative = diffusion.draw_prompts(self.params, cond, self.name) if text else (None, None)
        return {
            "seed": seed,
            "strength": strength if text else None,
            "guidance_scale": guidance,
            "prompt": prompt,
            "negative_prompt": negative,
            "model": {"path": self.params.model, "hash": self.model_hash},
            "condition": [e.to_dict() for e in cond.provenance],
            "mix": mix,
        }

    def _sample_mix(self, rng: np.random.Generator, sample: Sample, cond: Sample) -> dict[str, Any]:
        spec = self.params.mix
        if spec.field in sample:
            partner: dict[str, Any] = {"field": spec.field}
        else:
            if self.partner_source is None:
                raise ValueError(f"op {self.name!r}: mix needs a partner image: give samples a {spec.field!r} "
                                 "field, or attach a source: augflow.generative.attach_partners(pipeline, "
                                 "SameClassIndex(dataset))")
            label = diffusion.label_of(sample) if spec.same_class else None
            if spec.same_class and label is None:
                raise ValueError(f"op {self.name!r}: mix with same_class needs the sample's label (the batch "
                                 "stage draws without it: mix in the sample or offline stage, or same_class: false)")
            count = self.partner_source.count(label)
            if count == 0:
                raise ValueError(f"op {self.name!r}: the partner source has no image of class {label!r}")
            partner = {"label": label, "index": int(rng.integers(count))}
        lam = float(rng.beta(spec.alpha, spec.alpha))
        out: dict[str, Any] = {"mode": spec.mode, "partner": partner, "lam": lam}
        if spec.mode == "cutmix":
            cut = math.sqrt(1.0 - lam)            # the box covers (1 - lam) of the area
            cy, cx = float(rng.uniform()), float(rng.uniform())
            y0, y1 = max(0.0, cy - cut / 2), min(1.0, cy + cut / 2)
            x0, x1 = max(0.0, cx - cut / 2), min(1.0, cx + cut / 2)
            out["box"] = [x0, y0, x1, y1]        # fractions of width/height
        return out

    # ---- applying ---------------------------------------------------------------------------
    def apply(self, sample: Sample, **params: Any) -> Sample:
        return self.apply_samples([sample], [params])[0]

    def apply_batch(self, batch: dict, params: list, ctx: Any) -> dict:
        """The batch stage's entry: a collated batch of tensors, per-element params (None: skip)."""
        return batching.tensor_batch(self, batch, params, ctx)

    def apply_samples(self, samples: list[Sample], params_list: list[dict[str, Any]]) -> list[Sample]:
        """Generate for several samples; those sharing size, strength and guidance run as one model call."""
        jobs = [self._prepare(s, p) for s, p in zip(samples, params_list)]

        def group_key(job: dict[str, Any]) -> tuple:
            p = job["params"]
            return job["input"].shape, p["strength"], p["guidance_scale"], job["negative"] is None

        def generate(key: tuple, group: list[dict[str, Any]]) -> list[np.ndarray]:
            _, strength, guidance, no_negative = key
            pipe = diffusion.task_pipeline("variation" if self._variation else "image2image", self.params)
            if self._variation:
                return self._vary(pipe, group, guidance)
            return diffusion.call_pipeline(
                self.name, pipe, len(group),
                prompt=[job["prompt"] for job in group],
                negative_prompt=None if no_negative else [job["negative"] for job in group],
                image=np.stack([job["input"] for job in group]),
                strength=strength, guidance_scale=guidance, num_inference_steps=self.params.steps,
                generator=diffusion.torch_generators([job["params"]["seed"] for job in group]))

        results = batching.generate_grouped(jobs, group_key, generate)
        outs = []
        for job, generated in zip(jobs, results):
            cond, name = job["sample"], job["field"]
            out = Sample(cond, cond.specs, Provenance(job["provenance"]), cond.seed)
            out[name] = diffusion.like_input(generated, cond[name], self.params.size)
            outs.append(out)
        return outs

    def _vary(self, pipe, jobs: list[dict[str, Any]], guidance: float) -> np.ndarray:
        """An image-variation model: the conditioning image enters through its CLIP image embedding."""
        from PIL import Image

        images = [Image.fromarray(np.round(job["input"] * 255).astype(np.uint8)) for job in jobs]
        h, w = jobs[0]["input"].shape[:2]
        return diffusion.call_pipeline(self.name, pipe, len(jobs), image=images, height=h, width=w,
                                       guidance_scale=guidance, num_inference_steps=self.params.steps,
                                       generator=diffusion.torch_generators([j["params"]["seed"] for j in jobs]))

    def _prepare(self, sample: Sample, params: dict[str, Any]) -> dict[str, Any]:
        """The conditioned sample, the model input (RGB float at a size the model takes) and the cache key."""
        recorded = params.get("model") or {}
        if recorded.get("hash") not in (None, self.model_hash):
            raise models.ModelError(f"op {self.name!r}: these parameters were recorded with model "
                                    f"{recorded.get('path')!r} hashing to {recorded['hash']}, but "
                                    f"{self.params.model!r} now hashes to {self.model_hash}; replay with that model")
        cond = Sample(sample, sample.specs, Provenance(), sample.seed)
        for entry in params.get("condition") or []:
            step = self._by_path.get(entry["path"])
            if step is None or step.name != entry["op"]:
                raise ValueError(f"op {self.name!r}: recorded conditioning op {entry['op']!r} at {entry['path']!r} "
                                 "is not in this op's `condition`")
            cond = step.op.apply(cond, **from_jsonable(entry["params"]))
        field = self.params.field or next(iter(cond.fields_of_kind("image")), None)
        if field is None or field not in cond:
            raise ValueError(f"op {self.name!r}: the sample has no image field (fields: {sorted(cond)})")
        h, w = self.params.size or cond[field].shape[:2]
        gh, gw = diffusion.rounded_size(h, w, self._multiple)
        rgb = diffusion.resize_float(diffusion.to_rgb_float(cond[field]), gh, gw)
        if params.get("mix"):
            rgb = _mix(rgb, self._partner(sample, params["mix"]), params["mix"])
        prompt, negative = (None, None) if self._variation else \
            diffusion.final_prompts(self.params, cond, params, self.name)
        key_params = {k: v for k, v in params.items() if k not in ("model", "condition", "mix")}
        key_params.update(prompt=prompt, negative_prompt=negative)
        config = {k: v for k, v in diffusion.op_config(self.params).items() if k not in ("model", "condition", "mix")}
        key = cache.make_key(self.name, {**config, "model_hash": self.model_hash}, key_params, rgb)
        return {"sample": cond, "field": field, "input": rgb, "params": params, "key": key, "prompt": prompt,
                "negative": negative,
                "cache": cache.cache_dir(self.params.cache), "provenance": sample.provenance}

    def _partner(self, sample: Sample, mix: dict[str, Any]) -> np.ndarray:
        ref = mix["partner"]
        if "field" in ref:
            if ref["field"] not in sample:
                raise ValueError(f"op {self.name!r}: recorded partner field {ref['field']!r} is not in the sample")
            return np.asarray(sample[ref["field"]])
        if self.partner_source is None:
            raise ValueError(f"op {self.name!r}: replaying a mix needs the partner source that drew it; "
                             "attach it with augflow.generative.attach_partners")
        return self.partner_source.get(ref["label"], int(ref["index"]))


def _build_steps(ops: list[Any]):
    from augflow.config.build import FORMAT_VERSION, build_spec

    return build_spec({"augflow": FORMAT_VERSION, "sample": list(ops)}, "<condition>").sample


def _mix(rgb: np.ndarray, partner: np.ndarray, mix: dict[str, Any]) -> np.ndarray:
    """Mix the partner (resized to the conditioning image) into it; the box is in fractions."""
    h, w = rgb.shape[:2]
    other = diffusion.resize_float(diffusion.to_rgb_float(partner), h, w)
    if mix["mode"] == "mixup":
        lam = float(mix["lam"])
        return (lam * rgb + (1.0 - lam) * other).astype(np.float32)
    x0, y0, x1, y1 = mix["box"]
    out = rgb.copy()
    r0, r1, c0, c1 = int(round(y0 * h)), int(round(y1 * h)), int(round(x0 * w)), int(round(x1 * w))
    out[r0:r1, c0:c1] = other[r0:r1, c0:c1]
    return out


__all__ = ["AugmentedConditioning", "Mix", "Condition", "PartnerSource", "SameClassIndex", "attach_partners"]
