"""Samples as a PyTorch user sends them: tensors, missing fields, boxes a pixel outside, odd keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from augflow import Pipeline
from augflow.config.errors import PipelineConfigError, SampleError

FLIP = "augflow: 1\nsample:\n  - horizontal_flip: {p: 1.0}\n"
DETECTION = ("augflow: 1\nfields:\n  bboxes: {kind: bboxes, format: coco, label_fields: [labels]%s}\n"
             "sample:\n  - horizontal_flip: {p: 1.0}\n")


@pytest.fixture
def photo() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[100:164, 150:214])


@pytest.mark.parametrize("layout", ["chw", "hwc"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_tensor_images_come_back_as_tensors_in_their_layout(photo, layout, dtype):
    pipe = Pipeline.from_yaml_text(FLIP)
    ref = pipe({"image": photo}, index=0)["image"]
    tensor = torch.from_numpy(photo)
    tensor = tensor.permute(2, 0, 1) if layout == "chw" else tensor
    tensor = tensor.float() / 255 if dtype == torch.float32 else tensor
    out = pipe({"image": tensor}, index=0)["image"]
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.shape == tensor.shape
    back = out.permute(1, 2, 0) if layout == "chw" else out
    expected = ref if dtype == torch.uint8 else ref.astype(np.float32) / 255
    np.testing.assert_allclose(back.numpy(), expected, atol=1e-6)


def test_tensor_masks_move_with_the_image_and_come_back_as_tensors(photo):
    mask = torch.zeros(64, 64, dtype=torch.uint8)
    mask[:, :10] = 1
    out = Pipeline.from_yaml_text(FLIP)({"image": torch.from_numpy(photo).permute(2, 0, 1), "mask": mask}, index=0)
    assert isinstance(out["mask"], torch.Tensor) and out["mask"].shape == (64, 64)
    assert out["mask"][:, 54:].all() and not out["mask"][:, :54].any()


def test_a_tensor_batch_is_refused_as_a_batch(photo):
    with pytest.raises(SampleError, match="a batch"):
        Pipeline.from_yaml_text(FLIP)({"image": torch.zeros(2, 3, 8, 8)}, index=0)


def test_missing_image_names_the_field_and_the_fields_present():
    with pytest.raises(SampleError, match=r"no image field \(fields present: \['label', 'mask'\]\)"):
        Pipeline.from_yaml_text(FLIP)({"mask": np.zeros((8, 8), np.uint8), "label": 1}, index=0)
    with pytest.raises(SampleError, match=r"needs an image field.*fields present: \['label'\]"):
        Pipeline.from_yaml_text(FLIP)({"label": 1}, index=0)


def test_missing_labels_name_the_field_and_the_fields_present(photo):
    pipe = Pipeline.from_yaml_text(DETECTION % "")
    with pytest.raises(SampleError, match=r"no 'labels' \(fields present: \['bboxes', 'image'\]\)"):
        pipe({"image": photo, "bboxes": [[1, 1, 10, 10]]}, index=0)
    with pytest.raises(SampleError, match="has 2 entries for 1 bboxes rows"):
        pipe({"image": photo, "bboxes": [[1, 1, 10, 10]], "labels": [1, 2]}, index=0)


def test_boxes_a_pixel_outside_say_clip_and_clip_true_clips_them(photo):
    sample = {"image": photo, "bboxes": [[50, 2, 14.5, 10]], "labels": [7]}   # x_max 64.5 on a 64-wide image
    with pytest.raises(SampleError, match="clip: true"):
        Pipeline.from_yaml_text(DETECTION % "")(sample, index=0)
    out = Pipeline.from_yaml_text(DETECTION % ", clip: true")(sample, index=0)
    np.testing.assert_allclose(out["bboxes"], [[0, 2, 14, 10]], atol=1e-4)   # clipped to 50..64, then flipped
    assert list(out["labels"]) == [7]


def test_clip_on_a_field_that_is_not_boxes_is_refused():
    with pytest.raises(PipelineConfigError, match="'clip' is true or false, on a bboxes field"):
        Pipeline.from_yaml_text("augflow: 1\nfields:\n  image: {kind: image, clip: true}\nsample: []\n")


def test_keypoints_with_more_columns_than_their_format_are_refused(photo):
    pipe = Pipeline.from_yaml_text(FLIP)
    with pytest.raises(SampleError, match=r"must be N x 2 \(xy.*got shape \(2, 7\).*format"):
        pipe({"image": photo, "keypoints": np.zeros((2, 7))}, index=0)
    out = pipe({"image": photo, "keypoints": [[10, 20]]}, index=0)
    np.testing.assert_allclose(out["keypoints"], [[53, 20]])


def test_integer_labels_keep_their_type(photo):
    pipe = Pipeline.from_yaml_text(DETECTION % "")
    out = pipe({"image": photo, "bboxes": [[1, 1, 10, 10], [20, 20, 5, 5]], "labels": [7, 3]}, index=0)
    assert out["labels"] == [7, 3] and all(type(v) is int for v in out["labels"])
    out = pipe({"image": photo, "bboxes": [[1, 1, 10, 10]], "labels": np.array([7], np.int64)}, index=0)
    assert out["labels"].dtype == np.int64
