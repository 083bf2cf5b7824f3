"""Every ready-made pipeline in pipelines/ loads and runs on a photograph carrying the fields it
declares, and replays bit-identically."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from skimage import data

import augflow

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
# Files with a `tta:` key are test-time augmentation specs (augflow.tta) and files with a `rewriter:`
# key are text-rewriter configs (augflow.text); both are tested with their readers.
TRAINING_FILES = sorted(p for p in PIPELINES.glob("*.yaml") if not {"tta", "rewriter"} & set(yaml.safe_load(p.read_text()) or {}))
REQUIRED = {"imagenet_train", "simclr", "randaugment", "segmentation", "detection", "medical_corruptions"}

BOXES_VOC = np.array([[120, 40, 330, 300], [20, 350, 200, 500]], np.float32)   # face, hand region


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _boxes(fmt, h, w):
    x0, y0, x1, y1 = BOXES_VOC.T
    return {"pascal_voc": BOXES_VOC, "coco": np.stack([x0, y0, x1 - x0, y1 - y0], 1),
            "yolo": np.stack([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h], 1),
            "albumentations": BOXES_VOC / [w, h, w, h]}[fmt]


def photo_sample(pipe):
    """astronaut (512x512) with every field the pipeline declares, in its declared format."""
    img = data.astronaut()
    sample = {"image": img, "label": 3}
    for name, spec in pipe.spec.fields.items():
        if spec.kind == "image":
            sample[name] = img
        elif spec.kind == "mask":
            sample[name] = (img.mean(axis=2) > 100).astype(np.uint8) + (img[..., 0] > 200)
        elif spec.kind == "bboxes":
            sample[name] = _boxes(spec.format, *img.shape[:2])
            for lf in spec.label_fields:
                sample[lf] = [1, 2]
        elif spec.kind == "keypoints":
            sample[name] = np.array([[250, 180], [300, 120]], np.float32)
            for lf in spec.label_fields:
                sample[lf] = [0, 1]
    return sample


def test_the_required_pipelines_are_there():
    assert REQUIRED <= {p.stem for p in TRAINING_FILES}


def _images(out):
    views = [v for v in out.values() if isinstance(v, dict)]
    return [v["image"] for v in views] if views else [out["image"]]


def _equal(a, b):
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else np.array_equal(a, b)


@pytest.mark.parametrize("path", TRAINING_FILES, ids=lambda p: p.stem)
def test_pipeline_runs_on_a_photograph_and_replays(path):
    pipe = augflow.Pipeline.from_yaml(path)
    sample = photo_sample(pipe)
    out = pipe(sample, seed=123)
    assert out.provenance, "no op applied at all"
    for image in _images(out):
        arr = image.numpy() if isinstance(image, torch.Tensor) else image
        assert arr.size and np.isfinite(arr.astype(np.float64)).all()
    again = pipe.replay(sample, out.provenance.to_json())
    for a, b in zip(_images(out), _images(again)):
        assert _equal(a, b)


def test_simclr_gives_two_different_224_views():
    pipe = augflow.Pipeline.from_yaml(PIPELINES / "simclr.yaml")
    out = pipe({"image": data.astronaut(), "label": 7}, seed=0)
    assert set(out) == {"view0", "view1", "label"}
    a, b = out["view0"]["image"], out["view1"]["image"]
    assert a.shape == b.shape == (3, 224, 224) and a.dtype == torch.float32
    assert not torch.equal(a, b)


def test_segmentation_moves_the_mask_and_pads_it_with_the_ignore_index():
    pipe = augflow.Pipeline.from_yaml(PIPELINES / "segmentation.yaml")
    sample = photo_sample(pipe)
    labels = set(np.unique(sample["mask"]))
    seen_padding = False
    for seed in range(12):
        out = pipe(sample, seed=seed)
        assert out["image"].shape == (3, 512, 512) and out["mask"].shape == (512, 512)
        values = set(np.unique(out["mask"].numpy()))
        assert values <= labels | {255}      # nearest-neighbour: no new classes from interpolation
        seen_padding |= 255 in values
    assert seen_padding                       # some seeds scaled below 512 and padded


def test_detection_keeps_coco_boxes_inside_the_letterbox_with_their_labels():
    pipe = augflow.Pipeline.from_yaml(PIPELINES / "detection.yaml")
    assert pipe.spec.fields["bboxes"].format == "coco"
    sample = photo_sample(pipe)
    for seed in range(4):
        out = pipe(sample, seed=seed)
        assert out["image"].shape == (3, 640, 640)
        boxes = np.asarray(out["bboxes"])
        assert len(boxes) == len(out["labels"]) and set(out["labels"]) <= {1, 2}
        x, y, w, h = boxes.T
        assert (w > 0).all() and (h > 0).all() and (x >= 0).all() and (x + w <= 640 + 1e-3).all()
        assert (y >= 0).all() and (y + h <= 640 + 1e-3).all()
