"""Every albumentations-backed op equals albumentations' own output for the same parameters.

For each registered `albumentations.X`, our op draws its parameters (recorded as JSON, as in
provenance) and applies them; a fresh `A.X(**cfg, p=1.0)`, seeded with the random state our
adapter derives from the seed it drew, is called the way albumentations users call it
(`t(image=...)`, or a Compose with BboxParams/KeypointParams for transforms that move boxes and
keypoints). The outputs must be identical: same dtype, same shape, same values.
"""

import json
import warnings

import albumentations as A
import numpy as np
import pytest
import torch
from albumentations.core.transforms_interface import DualTransform, Transform3D
from PIL import ImageFont

from augflow import registry
from augflow.ops.adapters import albumentations as adapter
from augflow.params_codec import from_jsonable
from augflow.sample import FieldSpec, Sample
from augflow.seeding import draw_seed

ALBU_OPS = sorted(s.name for s in registry.specs() if s.family.startswith("albumentations"))

# Parameters a transform needs beyond its defaults (required arguments, sizes that fit 128x128,
# or settings that make a no-op by default do something).
CONFIG = {
    "AtLeastOneBBoxRandomCrop": {"height": 64, "width": 64},
    "CenterCrop": {"height": 64, "width": 64},
    "ConstrainedCoarseDropout": {"mask_indices": [2], "num_holes_range": [1, 2]},
    "Crop": {"x_min": 10, "y_min": 20, "x_max": 74, "y_max": 84},
    "CropAndPad": {"px": [-8, 12]},
    "CropNonEmptyMaskIfExists": {"height": 64, "width": 64},
    "GridElasticDeform": {"num_grid_xy": [4, 4], "magnitude": 5},
    "LongestMaxSize": {"max_size": 96},
    "Mosaic": {"target_size": [128, 128], "cell_shape": [96, 96]},
    "RandomCrop": {"height": 64, "width": 64},
    "RandomResizedCrop": {"size": [64, 64]},
    "RandomSizedBBoxSafeCrop": {"height": 64, "width": 64},
    "RandomSizedCrop": {"min_max_height": [50, 100], "size": [64, 64]},
    "Resize": {"height": 64, "width": 80},
    "SmallestMaxSize": {"max_size": 96},
    "TextImage": {"font_path": "<font>"},   # filled with a font file written by the test
    # 3-D transforms run on a 6 x 64 x 64 volume
    "CenterCrop3D": {"size": [4, 32, 32]},
    "PadIfNeeded3D": {"min_zyx": [8, 72, 72]},
    "Pad3D": {"padding": 2},
    "RandomCrop3D": {"size": [4, 32, 32]},
}

def extra_inputs(cls_name, other, mask, boxes, kps):
    """Inputs a transform reads by name (albumentations' `targets_as_params`); augflow passes a
    sample field of that name through. `other` is a second photograph."""
    ref = [np.ascontiguousarray(other)]
    return {
        "RandomCropNearBBox": {"cropping_bbox": [20, 20, 90, 100]},
        "OverlayElements": {"overlay_metadata": [{"image": np.ascontiguousarray(other[:40, :48]),
                                                  "bbox": [0.1, 0.2, 0.5, 0.6]}]},
        "TextImage": {"textimage_metadata": [{"bbox": [0.1, 0.1, 0.9, 0.3], "text": "a cat on the mat"}]},
        "FDA": {"fda_metadata": ref},
        "HistogramMatching": {"hm_metadata": ref},
        "PixelDistributionAdaptation": {"pda_metadata": ref},
        "Mosaic": {"mosaic_metadata": [{"image": ref[0], "mask": mask, "bboxes": boxes[:1], "labels": [7],
                                        "keypoints": kps[:2]}]},
    }.get(cls_name, {})


# Targets albumentations itself cannot take for a transform (so neither can we): image+mask only.
NO_BOXES_OR_KEYPOINTS = {"OverlayElements": "albumentations 2.0.8 raises NotImplementedError for boxes"}
# Transforms defined on another input: a float32 [0, 1] image, or a D x H x W x C volume.
FLOAT_INPUT = {"FromFloat": "converts float32 [0, 1] images to uint8"}
VOLUME_OPS = {"CenterCrop3D", "CoarseDropout3D", "CubicSymmetry", "Pad3D", "PadIfNeeded3D", "RandomCrop3D",
              "ToTensor3D"}
# Transforms no test input can reach: none. (Lambda runs with its identity defaults; its callables
# cannot come from YAML, only from Python.)
UNSUPPORTED: dict[str, str] = {}

BOX_PARAMS = dict(format="pascal_voc", label_fields=["labels"])


@pytest.fixture(scope="module")
def font_file(tmp_path_factory):
    """Pillow's built-in font, written to a file (TextImage takes a font path)."""
    path = tmp_path_factory.mktemp("font") / "pillow_default.ttf"
    path.write_bytes(ImageFont.load_default(12).font_bytes)
    return str(path)


@pytest.fixture(scope="module")
def targets(astronaut):
    gray = astronaut.mean(axis=2)
    mask = ((gray > 110).astype(np.uint8) + (gray > 170)).astype(np.uint8)   # three classes
    boxes = np.array([[10, 20, 60, 90], [70, 15, 120, 70], [30, 80, 100, 125]], dtype=np.float32)
    kps = np.array([[20, 30], [64, 64], [100, 40], [5, 120]], dtype=np.float32)
    return mask, boxes, [1, 2, 3], kps


def _seed_drawn_by_adapter(rng_seed: int) -> int:
    """The seed `AlbumentationsOp.sample_params` draws from a generator seeded `rng_seed`."""
    return draw_seed(np.random.Generator(np.random.Philox(rng_seed)))


def _ours(op, sample, rng_seed):
    params = op.sample_params(np.random.Generator(np.random.Philox(rng_seed)), sample)
    params = json.loads(json.dumps(params))          # exactly what provenance keeps
    return op.apply(sample, **from_jsonable(params))


def _fast_path(op, sample, rng_seed):
    """What a pipeline call runs: params drawn and applied in albumentations' own form, encoded to
    JSON only when provenance is read; the encoded form must be what `sample_params` gives."""
    drawn = op.draw(np.random.Generator(np.random.Philox(rng_seed)), sample)
    out = op.apply_drawn(sample, drawn)
    assert op.encode_drawn(drawn) == op.sample_params(np.random.Generator(np.random.Philox(rng_seed)), sample)
    return out


def _reference(cls, cfg, seed, inputs, dual, kp_format):
    t = cls(**cfg, p=1.0)
    if dual:
        bbox_params = A.BboxParams(**BOX_PARAMS) if "bboxes" in inputs else None
        kp_params = A.KeypointParams(format=kp_format) if "keypoints" in inputs else None
        call = A.Compose([t], bbox_params=bbox_params, keypoint_params=kp_params)
    else:
        call = t
    # Seed the transform itself, after Compose (which reseeds its children when built).
    t.set_random_state(*adapter.seeded_random_state(seed))
    return call(**inputs)


def _assert_same(ours, ref, key):
    a, b = ours[key], ref[key]
    if isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), key
        return
    if key == "labels" and isinstance(ours[key], list):   # augflow keeps int labels int; albumentations gives floats
        assert all(type(v) is int for v in ours[key]), ours[key]
        b = np.asarray(b).astype(np.int64)
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, f"{key}: dtype {a.dtype} != albumentations' {b.dtype}"
    assert a.shape == b.shape, f"{key}: shape {a.shape} != albumentations' {b.shape}"
    np.testing.assert_array_equal(a, b, err_msg=key)


@pytest.mark.parametrize("name", ALBU_OPS)
def test_op_equals_albumentations(name, astronaut, chelsea, targets, font_file):
    cls_name = name.split(".", 1)[1]
    assert cls_name not in UNSUPPORTED, UNSUPPORTED.get(cls_name)
    cls = registry.get(name).extra["cls"].transform_cls
    cfg = {k: (font_file if v == "<font>" else v) for k, v in CONFIG.get(cls_name, {}).items()}
    mask, boxes, labels, kps = targets
    kp_format = "xy"
    if cls_name in VOLUME_OPS:
        volume = np.stack([astronaut[i * 8:i * 8 + 64, 32:96] for i in range(6)])
        inputs = {"volume": volume, "mask3d": (volume.mean(-1) > 100).astype(np.uint8),
                  "keypoints": np.array([[10, 10, 2], [30, 40, 4]], dtype=np.float32)}
        specs = {"volume": FieldSpec("volume"), "mask3d": FieldSpec("mask3d"), "keypoints": FieldSpec("keypoints", "xyz")}
        kp_format = "xyz"
    elif issubclass(cls, DualTransform):
        inputs = {"image": astronaut, "mask": mask}
        specs = {"image": FieldSpec("image"), "mask": FieldSpec("mask")}
        if cls_name not in NO_BOXES_OR_KEYPOINTS:
            inputs.update(bboxes=boxes, labels=labels, keypoints=kps)
            specs.update(bboxes=FieldSpec("bboxes", "pascal_voc", ("labels",)), keypoints=FieldSpec("keypoints", "xy"))
    else:
        image = astronaut.astype(np.float32) / 255 if cls_name in FLOAT_INPUT else astronaut
        inputs, specs = {"image": image}, {"image": FieldSpec("image")}
    extra = extra_inputs(cls_name, chelsea, mask, boxes, kps)
    sample = Sample({**inputs, **extra}, specs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # albumentations' own deprecation/usage warnings
        op = registry.get(name).build(dict(cfg))
        ours = _ours(op, sample, rng_seed=20240)
        fast = _fast_path(op, sample, rng_seed=20240)
        ref = _reference(cls, cfg, _seed_drawn_by_adapter(20240), {**inputs, **extra},
                         issubclass(cls, (DualTransform, Transform3D)), kp_format)
    for key in inputs:
        _assert_same(ours, ref, key)
        _assert_same(fast, ref, key)


def test_every_albumentations_transform_is_registered():
    expected = {f"albumentations.{n}" for n in adapter.transform_classes()}
    assert expected == set(ALBU_OPS)
    assert len(ALBU_OPS) > 100


def test_snake_case_alias_names_the_same_op():
    assert registry.get("random_resized_crop") is registry.get("albumentations.RandomResizedCrop")
    assert registry.get("clahe") is registry.get("albumentations.CLAHE")
    assert registry.get("iso_noise") is registry.get("albumentations.ISONoise")


def test_unserializable_params_are_recorded_as_a_seed(astronaut, font_file):
    """TextImage draws a font object; provenance keeps the seed, and replay redraws it."""
    op = registry.get("albumentations.TextImage").build({"font_path": font_file})
    sample = Sample({"image": astronaut,
                     "textimage_metadata": [{"bbox": [0.1, 0.1, 0.9, 0.3], "text": "hello"}]},
                    {"image": FieldSpec("image")})
    params = op.sample_params(np.random.Generator(np.random.Philox(1)), sample)
    assert set(params) == {"seed"}
    a = op.apply(sample, **json.loads(json.dumps(params)))
    b = op.apply(sample, **json.loads(json.dumps(params)))
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], astronaut)
