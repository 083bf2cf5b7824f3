"""Affine fusion: the fused warp gives the unfused pipeline's output within a stated tolerance.

Same parameters (the generator is consumed identically), one resampling instead of three. Stated
tolerance, on astronaut (512 px) through affine + random_resized_crop + flip to 128 px: image mean
abs difference < 2 grey levels (double interpolation vs single), boxes within 2 px, keypoints
within 1 px, masks agree on > 97% of pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

import augflow
from augflow.compile import make_plan
from augflow.compile.plan import AffineGroup, OpItem
from augflow.compile.sample_stage import SampleStage

PIPE = {"augflow": 1, "name": "geo", "seed": 5,
        "fields": {"bboxes": {"kind": "bboxes", "format": "pascal_voc", "label_fields": ["classes"]}},
        "sample": [
            {"affine": {"rotate": [-25, 25], "scale": [0.9, 1.1], "border_mode": "constant"}},
            {"random_resized_crop": {"size": [128, 128], "scale": [0.4, 1.0]}},
            {"horizontal_flip": {"p": 0.5}},
        ]}


@pytest.fixture(scope="module")
def sample():
    img = data.astronaut()
    mask = (cv2.GaussianBlur(img[..., 0], (0, 0), 6) > 128).astype(np.uint8)   # smooth regions, as real masks
    return {"image": img, "mask": mask, "bboxes": np.array([[170, 20, 330, 230], [20, 300, 250, 500]], np.float32),
            "classes": [1, 2], "keypoints": np.array([[250, 120], [300, 200], [100, 400]], np.float32)}


def run(plan, record, index):
    return SampleStage(plan)(record, index, 0)


def test_geometric_run_becomes_one_group():
    plan = make_plan(augflow.Pipeline.from_dict(PIPE), passes=["affine_fusion"])
    assert len(plan.sample.items) == 1 and isinstance(plan.sample.items[0], AffineGroup)


def test_fused_output_matches_unfused_within_tolerance(sample):
    pipe = augflow.Pipeline.from_dict(PIPE)
    fused, plain = make_plan(pipe, passes=["affine_fusion"]), make_plan(pipe, passes=())
    for index in range(4):
        a, b = run(fused, sample, index), run(plain, sample, index)
        diff = np.abs(a["image"].float().numpy() - b["image"].float().numpy())
        assert diff.mean() < 2.0
        assert (a["mask"] == b["mask"]).float().mean() > 0.97
        assert a["classes"].tolist() == b["classes"].tolist()
        np.testing.assert_allclose(a["bboxes"].numpy(), b["bboxes"].numpy(), atol=2.0)
        assert a["keypoints"].shape == b["keypoints"].shape
        np.testing.assert_allclose(a["keypoints"].numpy(), b["keypoints"].numpy(), atol=1.0)


def test_fused_output_replays_through_the_unfused_pipeline(sample):
    pipe = augflow.Pipeline.from_dict(PIPE)
    plan = make_plan(pipe, passes=["affine_fusion"], return_provenance=True)
    out = run(plan, sample, 2)
    replayed = pipe.replay(sample, out["_provenance"])
    diff = np.abs(out["image"].permute(1, 2, 0).float().numpy() - replayed["image"].astype(np.float32))
    assert diff.mean() < 2.0


def test_rotation_after_a_crop_is_not_fused():
    """After a crop, rotate's border must come from its fill, not from pixels outside the crop."""
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"resize": {"height": 90, "width": 90}}, {"random_resized_crop": {"size": [64, 64]}},
        {"rotate": {"limit": 30}}]})
    items = make_plan(pipe, passes=["affine_fusion"]).sample.items
    assert isinstance(items[0], AffineGroup) and [s.name for s in items[0].steps] == \
        ["resize", "random_resized_crop"]
    assert isinstance(items[1], OpItem) and items[1].step.name == "rotate"


def test_a_crop_and_a_flip_are_left_apart():
    """One resampling op and a flip: nothing to save, so no group."""
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"random_resized_crop": {"size": [64, 64]}}, {"horizontal_flip": {}}]})
    assert all(isinstance(i, OpItem) for i in make_plan(pipe, passes=["affine_fusion"]).sample.items)
