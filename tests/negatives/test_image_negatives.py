"""Image negatives: a tiny config-built Stable Diffusion (saved with save_pretrained) inpaints one
object's region; pixels farther than `blend` pixels from the region stay bit-identical."""

import numpy as np
import pytest
from skimage import data

from augflow import Pipeline
from augflow.generative import models
from augflow.negatives.image import blend_weight

pytest.importorskip("diffusers", reason="image negatives need the diffusers extra")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _image():
    return np.ascontiguousarray(data.astronaut()[0:200:3, 100:300:3][:64, :64])   # 64 x 64 RGB


def _pipe(model, **params):
    return Pipeline.from_dict({"augflow": 1, "negatives": [{"image_negatives": {
        "model": str(model), "steps": 3, "guidance_scale": 1.0, "replacements": ["a cat", "a dog"], **params}}]})


def _outside(region: np.ndarray, blend: int) -> np.ndarray:
    return blend_weight(region, blend) == 0


def test_inpainting_changes_pixels_only_inside_the_box(tiny_sd_dir):
    img = _image()
    box = [10.0, 20.0, 40.0, 50.0]                      # x0, y0, x1, y1
    out = _pipe(tiny_sd_dir, k=2)({"image": img, "bboxes": [box]}, index=0)
    region = np.zeros((64, 64), bool)
    region[20:50, 10:40] = True
    assert np.array_equal(out["image"], img)            # the positive is untouched
    assert len(out["negatives"]) == 2
    for neg in out["negatives"]:
        value, info = neg["value"], neg["info"]
        assert value.shape == img.shape and value.dtype == img.dtype
        assert info["blend"] == 2 and info["box"] == [10, 20, 40, 50]    # tiny VAE: 2x downsampling
        outside = _outside(region, info["blend"])
        assert np.array_equal(value[outside], img[outside])            # bit-identical beyond the blend band
        assert np.abs(value[region].astype(int) - img[region]).mean() > 10    # repainted inside
    assert not np.array_equal(out["negatives"][0]["value"], out["negatives"][1]["value"])


def test_mask_region_replay_reads_the_cache(tiny_sd_dir):
    img = _image()
    labels = np.zeros((64, 64), np.uint8)
    labels[8:30, 30:60] = 3
    pipe = _pipe(tiny_sd_dir, blend=0)
    out = pipe({"image": img, "mask": labels}, index=1)
    neg = out["negatives"][0]
    assert neg["info"]["object"] == 3 and neg["info"]["prompt"] in ("a photo of a cat", "a photo of a dog")
    assert np.array_equal(neg["value"][labels == 0], img[labels == 0])   # blend 0: exact outside the mask
    calls = models.CALLS["image_negatives"]
    again = pipe.replay({"image": img, "mask": labels}, out.provenance.to_json())
    assert np.array_equal(again["negatives"][0]["value"], neg["value"])
    assert models.CALLS["image_negatives"] == calls                         # replay made no model call


def test_blend_weight_falls_to_zero_beyond_the_band():
    region = np.zeros((20, 20), bool)
    region[5:10, 5:10] = True
    w = blend_weight(region, 3)
    assert (w[region] == 1).all() and w[5, 11] > 0 and w[5, 14] == 0 and w[0, 0] == 0


def test_sample_without_a_region_is_an_actionable_error(tiny_sd_dir):
    with pytest.raises(ValueError, match="no boxes or mask to take an object region from"):
        _pipe(tiny_sd_dir)({"image": _image()}, index=0)
