"""What the diffusion ops share: the common parameter schema, loading, prompts, seeds, pixels.

A diffusers pipeline is loaded once per process and per (directory, dtype, device) as a *base*;
each op derives its task pipeline (image-to-image, ControlNet, ...) from it with `from_pipe`, which
shares the networks, so two ops on one model hold it in memory once. Every image's noise comes
from its own `torch.Generator` (on the CPU, as diffusers recommends for reproducibility across
devices) seeded with the seed its op drew from the sample's augflow seed.
"""

from __future__ import annotations

import string
import threading
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
from pydantic import Field, field_validator

from augflow.generative import models
from augflow.ops.base import Schema
from augflow.sample import Sample

# A value or a [low, high] range drawn uniformly per sample.
Span = Union[float, tuple[float, float]]

SCHEDULERS = {
    "default": None,
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpm_solver": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
}
_PIPES_LOCK = threading.Lock()


class DiffusionParams(Schema):
    """Parameters every diffusion op takes."""

    model: str = Field(..., description="Local diffusers pipeline directory (never a hub id).")
    prompt: str = Field("a photo of a {label_name}", description="Prompt template; {label}, {label_name} and "
                        "any text field of the sample are filled in.")
    negative_prompt: str | None = Field(None, description="What the generation should avoid.")
    class_names: list[str] | dict[str, str] | None = Field(None, description="Label -> name for {label_name}.")
    steps: int = Field(30, ge=1, le=1000, description="Denoising steps (img2img runs about strength * steps).")
    guidance_scale: Span = Field(7.5, description="Classifier-free guidance; a value or a [low, high] range.")
    scheduler: Literal[tuple(SCHEDULERS)] = Field("default", description="Noise scheduler; default keeps the "
                                                  "model directory's own.")
    size: tuple[int, int] | None = Field(None, description="Output [height, width]; default the input's size.")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: str = Field("auto", description="cpu, cuda, cuda:1, or auto (CUDA when present).")
    cache: str | None = Field(None, description="Results cache directory (default: the process/env default, "
                              "else memory).")
    safety_checker: bool = Field(False, description="Run the model directory's safety checker, which blacks "
                                 "out flagged images (off: black images would poison a training set).")

    @field_validator("model")
    @classmethod
    def _model_dir(cls, value: str) -> str:
        return str(_checked_dir(value, "model"))

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return models.check_device(value)

    @field_validator("guidance_scale")
    @classmethod
    def _guidance(cls, value: Span) -> Span:
        low, high = span_bounds(value)
        if low < 0 or high < low:
            raise ValueError("must be a non-negative number or a [low, high] range with low <= high")
        return value

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                list(string.Formatter().parse(value))
            except ValueError as exc:
                raise ValueError(f"is not a valid template ({exc}); write literal braces as {{{{ and }}}}") from None
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and (value[0] < 8 or value[1] < 8):
            raise ValueError("must be [height, width], each at least 8 pixels")
        return value


def _checked_dir(value: str, role: str) -> Path:
    # The op's name is not known inside a schema validator; the YAML error prefixes it.
    models.require("diffusers")
    return models.check_diffusers_dir(value, role=role)


def span_bounds(value: Span) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    return float(value[0]), float(value[1])


def draw(rng: np.random.Generator, value: Span) -> float:
    """A fixed value as is, or a uniform draw from a [low, high] range."""
    low, high = span_bounds(value)
    return low if low == high else float(rng.uniform(low, high))


def draw_seed(rng: np.random.Generator) -> int:
    """The diffusion seed of one sample (63 bits, as torch.Generator.manual_seed takes)."""
    return int(rng.integers(0, 2**63 - 1))


def torch_generators(seeds: list[int]):
    import torch

    return [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]


# ---- prompts ------------------------------------------------------------------------------
def label_of(sample: Sample) -> Any:
    names = sample.fields_of_kind("label")
    if not names:
        return None
    value = sample[names[0]]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def prompt_values(sample: Sample, class_names: list[str] | dict[str, str] | None) -> dict[str, Any]:
    """The names a prompt template may use: label, label_name and the sample's text fields."""
    values = {k: v for k, v in sample.items() if isinstance(v, str)}
    label = label_of(sample)
    values["label"] = "" if label is None else label
    name = sample.get("label_name")
    if class_names is not None and label is not None:
        if isinstance(class_names, dict):
            name = class_names.get(str(label), name)
        elif isinstance(label, int) and 0 <= label < len(class_names):
            name = class_names[label]
    values["label_name"] = str(name if name is not None else values["label"])
    return values


def format_prompt(template: str | None, values: dict[str, Any], op: str) -> str | None:
    if template is None:
        return None
    try:
        return template.format_map(values)
    except KeyError as exc:
        raise KeyError(f"op {op!r}: prompt placeholder {{{exc.args[0]}}} has no value; the sample has "
                       f"{sorted(values)} (give class_names, or a text field of that name)") from None


def _has_placeholders(template: str | None) -> bool:
    return template is not None and any(name for _, name, _, _ in string.Formatter().parse(template))


def draw_prompts(params: DiffusionParams, sample: Sample, op: str) -> tuple[str | None, str | None]:
    """The prompts recorded when parameters are drawn — or (None, None) when the template needs
    values the sample does not carry (the batch stage draws on a stand-in without the label):
    `final_prompts` then fills them in from the real sample."""
    if label_of(sample) is None and not any(isinstance(v, str) for v in sample.values()) and \
            (_has_placeholders(params.prompt) or _has_placeholders(params.negative_prompt)):
        return None, None
    values = prompt_values(sample, params.class_names)
    return format_prompt(params.prompt, values, op), format_prompt(params.negative_prompt, values, op)


def final_prompts(params: DiffusionParams, sample: Sample, drawn: dict[str, Any], op: str) -> tuple[str, str | None]:
    """The prompts a generation uses: the recorded ones, else the template filled from `sample`."""
    if drawn.get("prompt") is not None:
        return drawn["prompt"], drawn.get("negative_prompt")
    values = prompt_values(sample, params.class_names)
    return format_prompt(params.prompt, values, op) or "", format_prompt(params.negative_prompt, values, op)


# ---- pipelines ----------------------------------------------------------------------------
def base_pipeline(model_dir: str, dtype: str, device: str, safety_checker: bool):
    """The model directory's own pipeline, loaded once per process for (dir, dtype, device)."""
    device = models.resolve_device(device)
    torch_dtype = models.torch_dtype(dtype, device)

    def load():
        from diffusers import DiffusionPipeline

        extra = {} if safety_checker else _no_safety_checker(model_dir)
        with models.quiet_loading():
            pipe = DiffusionPipeline.from_pretrained(model_dir, torch_dtype=torch_dtype, local_files_only=True,
                                                     **extra)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return models.cached_model(("diffusers-base", model_dir, dtype, device, safety_checker), load)


def _no_safety_checker(model_dir: str) -> dict[str, Any]:
    import json

    index = json.loads((Path(model_dir) / "model_index.json").read_text(encoding="utf-8"))
    if index.get("safety_checker", [None, None])[1] is None:
        return {}
    return {"safety_checker": None, "requires_safety_checker": False}


def pipeline_class(model_dir: str) -> str:
    """The pipeline class a model directory declares (model_index.json's `_class_name`)."""
    import json

    index = json.loads((Path(model_dir) / "model_index.json").read_text(encoding="utf-8"))
    return str(index.get("_class_name", ""))


def is_variation(model_dir: str) -> bool:
    """An image-variation model (conditioned on a CLIP image embedding instead of a prompt)."""
    return "ImageVariation" in pipeline_class(model_dir)


def task_pipeline(task: Literal["text2image", "image2image", "variation"], params: DiffusionParams,
                  controlnet: str | None = None):
    """The op's pipeline (img2img, ControlNet, ControlNet img2img, the directory's own image-variation
    pipeline), sharing the base's networks.

    Returns (pipeline, lock): diffusers pipelines keep scheduler state during a call, so calls on
    one pipeline from several threads are serialized.
    """
    device = models.resolve_device(params.device)
    key = ("diffusers-task", task, params.model, params.dtype, device, params.scheduler, controlnet,
           params.safety_checker)

    def load():
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

        base = base_pipeline(params.model, params.dtype, params.device, params.safety_checker)
        overrides: dict[str, Any] = {"scheduler": _scheduler(base, params.scheduler)}
        if controlnet is not None:
            overrides["controlnet"] = _controlnet(controlnet, params.dtype, device)
        auto = {"image2image": AutoPipelineForImage2Image, "text2image": AutoPipelineForText2Image,
                "variation": type(base)}[task]
        try:
            pipe = auto.from_pipe(base, **overrides)
        except (ValueError, KeyError) as exc:
            raise models.ModelError(f"model {params.model!r} ({type(base).__name__}) has no {task} pipeline"
                                    f"{' with a ControlNet' if controlnet else ''} in diffusers: {exc}") from None
        pipe.set_progress_bar_config(disable=True)
        return pipe, threading.Lock()

    return models.cached_model(key, load)


def _scheduler(base, name: str):
    import diffusers

    cls_name = SCHEDULERS[name]
    cls = type(base.scheduler) if cls_name is None else getattr(diffusers, cls_name)
    return cls.from_config(base.scheduler.config)   # a fresh instance: schedulers hold per-call state


def _controlnet(path: str, dtype: str, device: str):
    def load():
        from diffusers import ControlNetModel

        with models.quiet_loading():
            net = ControlNetModel.from_pretrained(path, torch_dtype=models.torch_dtype(dtype, device),
                                                  local_files_only=True)
        return net.to(device).eval()

    return models.cached_model(("controlnet", path, dtype, device), load)


def call_pipeline(op: str, pipe_and_lock, n: int, **kwargs) -> np.ndarray:
    """Run a diffusers pipeline on a batch of n images; returns N x H x W x 3 float32 in [0, 1]."""
    import torch

    pipe, lock = pipe_and_lock
    with lock, torch.inference_mode():
        out = pipe(output_type="np", return_dict=True, **kwargs).images
    models.CALLS[op] += 1
    models.IMAGES[op] += n
    return np.asarray(out, dtype=np.float32)


# ---- pixels -------------------------------------------------------------------------------
def to_rgb_float(img: np.ndarray) -> np.ndarray:
    """Any augflow image (gray, RGB, RGBA; uint8, uint16, float) as H x W x 3 float32 in [0, 1]."""
    arr = img.astype(np.float32)
    if img.dtype == np.uint8:
        arr /= 255.0
    elif img.dtype == np.uint16:
        arr /= 65535.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 2:        # gray + alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif arr.shape[2] > 3:
        arr = arr[:, :, :3]
    return np.clip(arr, 0.0, 1.0)


def resize_float(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if arr.shape[0] == height and arr.shape[1] == width:
        return arr
    shrink = height < arr.shape[0] and width < arr.shape[1]
    out = cv2.resize(arr, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    # Cubic overshoot would leave [0, 1]; diffusers then takes the image as already in [-1, 1].
    return np.clip(out, 0.0, 1.0)


def like_input(generated: np.ndarray, reference: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """A generated RGB float image in the reference image's channels and dtype, and its size (or `size`)."""
    h, w = size if size is not None else reference.shape[:2]
    if size is not None and reference.shape[:2] != tuple(size):
        reference = resize_float(reference, h, w) if reference.dtype.kind == "f" else _resize_any(reference, h, w)
    out = np.clip(resize_float(generated, h, w), 0.0, 1.0)
    channels = 1 if reference.ndim == 2 else reference.shape[2]
    if channels in (1, 2):
        gray = out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = gray[:, :, None]
    if reference.dtype == np.uint8:
        out = np.round(out * 255.0).astype(np.uint8)
    elif reference.dtype == np.uint16:
        out = np.round(out * 65535.0).astype(np.uint16)
    else:
        out = out.astype(reference.dtype)
    if channels in (2, 4):         # keep the input's alpha channel
        out = np.concatenate([out, reference[:, :, -1:]], axis=2)
    if reference.ndim == 2:
        out = out[:, :, 0]
    return out


def _resize_any(img: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    out = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return out[:, :, None] if img.ndim == 3 and out.ndim == 2 else out


def vae_multiple(model_dir: str) -> int:
    """The VAE's downsampling factor, read from its config (no model load): 2 ** (blocks - 1)."""
    import json

    config = Path(model_dir) / "vae" / "config.json"
    if not config.exists():
        return 8
    blocks = json.loads(config.read_text(encoding="utf-8")).get("block_out_channels", [0, 0, 0, 0])
    return 2 ** (len(blocks) - 1)


def rounded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The nearest size (at least one multiple) the model accepts."""
    return max(multiple, int(round(height / multiple)) * multiple), max(multiple, int(round(width / multiple)) * multiple)


def op_config(params: Schema) -> dict[str, Any]:
    """The op parameters that decide an output (cache key): everything but where and how fast."""
    return params.model_dump(mode="json", exclude={"cache", "device", "p"})
