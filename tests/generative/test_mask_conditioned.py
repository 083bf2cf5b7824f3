"""mask_conditioned_diffusion: a ControlNet generates a new image for the sample's mask (or boxes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the generative ops need the diffusers extra")

from augflow import Pipeline  # noqa: E402
from augflow.generative import cache, models  # noqa: E402
from augflow.generative.mask_conditioned import default_palette, render_boxes, render_mask  # noqa: E402


def _pipe(tmp_path, sd, cn, extra: str = "", fields: str = "") -> Pipeline:
    path = tmp_path / "seg.yaml"
    path.write_text(f"""\
augflow: 1
{fields}sample:
  - mask_conditioned_diffusion:
      model: {sd}
      controlnet: {cn}
      prompt: "an ultrasound image of the heart"
      steps: 2
{extra}""", encoding="utf-8")
    return Pipeline.from_yaml(path)


def test_image_is_rewritten_and_the_mask_is_kept(tmp_path, tiny_sd, tiny_controlnet, cat64, heart_mask):
    out = _pipe(tmp_path, tiny_sd, tiny_controlnet)({"image": cat64, "mask": heart_mask}, seed=0)
    assert out["image"].shape == cat64.shape and out["image"].dtype == np.uint8
    assert np.abs(out["image"].astype(int) - cat64).mean() > 5
    np.testing.assert_array_equal(out["mask"], heart_mask)
    params = json.loads(out.provenance.to_json())[0]["params"]
    assert params["controlnet"]["hash"] == models.content_hash(tiny_controlnet)
    assert params["prompt"] == "an ultrasound image of the heart"


def test_same_seed_reproduces_and_another_seed_differs(tmp_path, tiny_sd, tiny_controlnet, cat64, heart_mask):
    pipe = _pipe(tmp_path, tiny_sd, tiny_controlnet)
    a = pipe({"image": cat64, "mask": heart_mask}, seed=1)["image"]
    cache.clear_memory()
    b = pipe({"image": cat64, "mask": heart_mask}, seed=1)["image"]
    c = pipe({"image": cat64, "mask": heart_mask}, seed=2)["image"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_generation_follows_the_mask(tmp_path, tiny_sd, tiny_controlnet, cat64, heart_mask):
    pipe = _pipe(tmp_path, tiny_sd, tiny_controlnet, "      controlnet_scale: 5.0\n")
    a = pipe({"image": cat64, "mask": heart_mask}, seed=3)["image"]
    b = pipe({"image": cat64, "mask": np.zeros_like(heart_mask)}, seed=3)["image"]
    assert not np.array_equal(a, b)       # same seed and prompt: only the condition differs


def test_grayscale_ultrasound_stays_grayscale(tmp_path, tiny_sd, tiny_controlnet, cat64, heart_mask):
    gray = cat64.mean(axis=2).astype(np.uint8)
    out = _pipe(tmp_path, tiny_sd, tiny_controlnet, "      render: gray\n      num_classes: 3\n")(
        {"image": gray, "mask": heart_mask}, seed=4)
    assert out["image"].shape == gray.shape and out["image"].dtype == np.uint8


def test_boxes_condition_through_a_rendered_map_and_are_kept(tmp_path, tiny_sd, tiny_controlnet, cat64):
    fields = "fields:\n  boxes: {kind: bboxes, format: pascal_voc, label_fields: [labels]}\n"
    boxes = np.array([[4, 6, 30, 40], [20, 20, 60, 50]], np.float32)
    out = _pipe(tmp_path, tiny_sd, tiny_controlnet, "      strength: 0.9\n", fields)(
        {"image": cat64, "boxes": boxes, "labels": [0, 2]}, seed=5)
    np.testing.assert_array_equal(out["boxes"], boxes)
    assert out["labels"] == [0, 2] and out["image"].shape == cat64.shape


def test_render_mask_uses_the_palette_per_class(heart_mask):
    cond = render_mask(heart_mask, "palette")
    pal = default_palette()
    np.testing.assert_allclose(cond[26, 30], pal[1] / 255.0)
    np.testing.assert_allclose(cond[50, 5], pal[2] / 255.0)
    assert cond[0, 0].max() == 0.0
    gray = render_mask(heart_mask, "gray", num_classes=3)
    assert gray[26, 30, 0] == 0.5 and gray[50, 5, 0] == 1.0


def test_render_boxes_paints_small_boxes_over_large_ones():
    cond = render_boxes(np.array([[0, 0, 40, 40], [10, 10, 20, 20]]), np.array([0, 1]), 48, 48, "pascal_voc")
    pal = default_palette()
    np.testing.assert_allclose(cond[15, 15], pal[2] / 255.0)     # the small box, class 1 -> colour 2
    np.testing.assert_allclose(cond[30, 30], pal[1] / 255.0)
    assert cond[45, 45].max() == 0.0


def test_a_sample_without_mask_or_boxes_is_told_what_is_needed(tmp_path, tiny_sd, tiny_controlnet, cat64):
    with pytest.raises(ValueError, match="neither a mask nor boxes"):
        _pipe(tmp_path, tiny_sd, tiny_controlnet)({"image": cat64}, seed=0)
