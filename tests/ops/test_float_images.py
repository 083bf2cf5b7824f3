"""Float images are in [0, 1] (augflow.sample): every colour op and every shipped pipeline gives a
float image the uint8 image's output, within 1/255 unless an op is quantised on its 8-bit path."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from skimage import data

from augflow import Pipeline, registry
from augflow.config.errors import SampleError

ROOT = Path(__file__).resolve().parents[2]
TOL = 1 / 255 + 1e-5   # the uint8 path rounds once: half a level, plus float noise

# Ops whose 8-bit path is quantised more coarsely than one rounding, and by how much (x / 255):
# - ColorJitter's hue shift runs in OpenCV's 8-bit HSV, whose hue has 180 levels (2-degree steps):
#   up to 1 degree off, which moves a saturated channel by up to 255/60 = 4.25 levels, plus the
#   rounding of its brightness/contrast/saturation steps.
# - GlassBlur blurs, swaps pixels and blurs again, rounding to uint8 in between (two roundings).
# - random_field resamples with cv2.remap, whose 8-bit bilinear path uses fixed-point weights
#   (1/32-pixel steps, INTER_BITS=5) where the float path interpolates exactly: a pixel between two
#   very different neighbours can land a little over one level away (1.04 measured).
QUANTISED = {"albumentations.ColorJitter": 7.0, "albumentations.GlassBlur": 2.0, "random_field": 2.0}
# Not colour ops, or ops that need inputs a lone image does not have.
NOT_COLOUR = {"albumentations.FromFloat", "albumentations.ToFloat", "albumentations.MaskDropout",
              "albumentations.XYMasking", "albumentations.Lambda", "albumentations.TextImage"}
COLOUR_FAMILIES = ("albumentations.pixel", "albumentations.blur", "albumentations.dropout", "auto",
                   "random_field", "corruptions")
PARAMS = {"medmnist_c": {"modality": "dermamnist"}}


def _astronaut() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[100:228:2, 150:278:2])


def _colour_ops() -> list[str]:
    return sorted(s.name for s in registry.specs() if s.family in COLOUR_FAMILIES and s.name not in NOT_COLOUR)


def test_normalize_does_not_divide_a_float_image_by_255_again():
    pipe = Pipeline.from_yaml_text("augflow: 1\nsample:\n  - normalize: {}\n")
    out = pipe({"image": np.ones((4, 4, 3), np.float32)}, index=0)["image"][0, 0]
    np.testing.assert_allclose(out, [2.2489, 2.4286, 2.64], atol=1e-3)


@pytest.mark.parametrize("name", _colour_ops())
def test_colour_op_gives_a_float_image_the_uint8_output(name):
    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{name: {**PARAMS.get(name, {}), "p": 1.0}
                                                         if name.startswith("albumentations.") else PARAMS.get(name, {})}]})
    img8 = _astronaut()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index in range(2):
            a = pipe({"image": img8}, index=index)["image"]
            b = pipe({"image": img8.astype(np.float32) / 255}, index=index)["image"]
            assert b.dtype == np.float32 and b.shape == a.shape
            a = a.astype(np.float32) / 255 if a.dtype == np.uint8 else a
            diff = float(np.abs(a - b).max())
            assert diff <= QUANTISED.get(name, 1.0) / 255 + 1e-5, (name, index, diff * 255)


# Chains with a hue jitter: OpenCV's 8-bit hue has 2-degree steps (see QUANTISED), on every pixel.
CHAIN_TOL = {"histaug_patch.yaml": 3.0, "simclr.yaml": 3.0}


def _sample_pipelines() -> list[Path]:
    return sorted(p for p in (ROOT / "pipelines").glob("*.yaml")
                  if "sample" in (yaml.safe_load(p.read_text()) or {}))


def _images(out) -> dict[str, np.ndarray]:
    fields = {}
    for key, value in out.items():
        for k, v in (value.items() if isinstance(value, dict) else [(key, value)]):
            if k == "image":
                fields[key] = np.asarray(v)
    return fields


@pytest.mark.parametrize("path", _sample_pipelines(), ids=lambda p: p.name)
def test_shipped_pipeline_gives_a_float_image_the_uint8_output(path):
    # A chain rounds to uint8 after every op on the uint8 path (resize, each colour-jitter factor)
    # and later ops amplify that (contrast up to 1.4x) or flip a pixel sitting at a threshold
    # (solarize, posterize, OpenCV's 2-degree hue steps): single pixels differ by more than 1/255
    # and the mean difference of a 4-6 op chain is 1-1.5/255 (about 0.25/255 per rounding). A chain
    # is held to a mean within 2/255 and the same shapes; before the float contract, normalize
    # alone put the mean difference above 500/255.
    pipe = Pipeline.from_yaml(path)
    std = [np.asarray(s.op.config().get("std", (0.229, 0.224, 0.225)), np.float32)
           for s in pipe.op_steps() if s.name in ("normalize", "albumentations.Normalize")]
    img8 = np.ascontiguousarray(data.astronaut()[::2, ::2])
    extra = {}
    if "segmentation" in path.name:
        extra = {"mask": (img8[..., 0] > 128).astype(np.uint8)}
    if "detection" in path.name:
        extra = {"bboxes": [[50, 40, 60, 80]], "labels": [3]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index in range(3):
            a = _images(pipe({"image": img8, **extra}, index=index))
            b = _images(pipe({"image": img8.astype(np.float32) / 255, **extra}, index=index))
            assert a.keys() == b.keys()
            for key in a:
                x, y = a[key].astype(np.float32), b[key].astype(np.float32)
                assert x.shape == y.shape and b[key].dtype != np.uint8, key
                if a[key].dtype == np.uint8:
                    x = x / 255
                elif std:   # normalized: back to image units, channel axis first (CHW tensor) or last
                    s = std[0][:, None, None] if x.shape[0] == 3 else std[0]
                    x, y = x * s, y * s
                mean = float(np.abs(x - y).mean())
                assert mean <= CHAIN_TOL.get(path.name, 2.0) / 255, (path.name, index, key, mean * 255)


def test_float_image_outside_unit_range_is_refused_with_the_range():
    pipe = Pipeline.from_yaml_text("augflow: 1\nsample:\n  - normalize: {}\n")
    with pytest.raises(SampleError, match=r"values in \[255, 255\]; float images must be in \[0, 1\].*max_value: 255"):
        pipe({"image": np.full((4, 4, 3), 255, np.float32)}, index=0)
    with pytest.raises(SampleError, match=r"must be in \[0, 1\]"):
        pipe({"image": np.full((4, 4, 3), np.nan, np.float32)}, index=0)


def test_declared_max_value_scales_a_float_image_to_unit_range():
    pipe = Pipeline.from_yaml_text("augflow: 1\nfields: {image: {kind: image, max_value: 255}}\n"
                                   "sample:\n  - normalize: {}\n")
    img8 = _astronaut()
    ref = Pipeline.from_yaml_text("augflow: 1\nsample:\n  - normalize: {}\n")({"image": img8}, index=0)["image"]
    out = pipe({"image": img8.astype(np.float32)}, index=0)["image"]
    np.testing.assert_allclose(out, ref, atol=1e-5)
    with pytest.raises(SampleError, match=r"declares max_value 255, so values must be in \[0, 255\]"):
        pipe({"image": np.full((4, 4, 3), 300, np.float32)}, index=0)


def test_fill_is_on_the_8_bit_scale_for_every_dtype():
    pipe = Pipeline.from_yaml_text("augflow: 1\nsample:\n  - pad_if_needed: {min_height: 8, min_width: 8, "
                                   "border_mode: constant, fill: 114}\n")
    corner = {dt: pipe({"image": np.zeros((4, 4, 3), dt)}, index=0)["image"][0, 0] for dt in (np.uint8, np.float32)}
    assert corner[np.uint8].tolist() == [114, 114, 114]
    np.testing.assert_allclose(corner[np.float32], 114 / 255, atol=1e-6)


def test_max_value_belongs_to_image_fields_and_is_positive():
    from augflow.config.errors import PipelineConfigError
    for fields in ("{mask: {kind: mask, max_value: 255}}", "{image: {kind: image, max_value: 0}}",
                   "{image: {kind: image, max_value: yes}}"):
        with pytest.raises(PipelineConfigError, match="'max_value' is the largest value of a float image"):
            Pipeline.from_yaml_text(f"augflow: 1\nfields: {fields}\nsample: []\n")


def test_compiled_loader_gives_a_float_dataset_the_uint8_batches():
    import torch

    img8 = _astronaut()

    class Images(torch.utils.data.Dataset):
        def __init__(self, as_float: bool):
            self.as_float = as_float

        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> dict:
            return {"image": img8.astype(np.float32) / 255 if self.as_float else img8, "label": i}

    pipe = Pipeline.from_yaml_text("augflow: 1\nsample:\n  - center_crop: {height: 32, width: 32}\n"
                                   "  - normalize: {}\n  - to_tensor: {}\n")
    batches = [next(iter(pipe.compile(Images(f), batch_size=4, num_workers=0)))["image"] for f in (False, True)]
    assert batches[0].shape == (4, 3, 32, 32)
    torch.testing.assert_close(batches[1], batches[0], atol=1e-5, rtol=0)
