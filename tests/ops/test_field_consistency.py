"""Geometric ops move masks, boxes and keypoints with the image; colour ops leave them alone; odd
images (grayscale HxW, RGBA, uint16, float32) come out in the layout they went in.

The oracle for "moved consistently" is the mask: each box is painted into a mask as its own label
and each keypoint as a 3x3 blob, so after an op the box must bound its label's pixels and the
keypoint must sit on its blob's centre. albumentations puts pixel centres at integer coordinates
for keypoints and pixel edges at integers for boxes; the test follows both conventions.
"""

import io
import warnings

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import augflow

BOXES = np.array([[10, 20, 50, 60], [70, 15, 118, 50], [30, 75, 90, 120]], np.float32)   # pascal_voc
KEYPOINTS = np.array([[20, 30], [64, 64], [100, 40], [40, 100]], np.float32)

# op -> (params, pixel tolerance). Flips, rotations by 90 and crops are exact; resampling ops are
# off by under a pixel (rounding of the resized mask); warps by up to a couple of pixels.
GEOMETRIC = {
    "horizontal_flip": ({}, 0), "vertical_flip": ({}, 0), "transpose": ({}, 0), "random_rotate90": ({}, 0),
    "d4": ({}, 0), "square_symmetry": ({}, 0), "random_crop": ({"height": 96, "width": 96}, 0),
    "center_crop": ({"height": 100, "width": 90}, 0), "pad_if_needed": ({"min_height": 160, "min_width": 150}, 0),
    "crop_and_pad": ({"px": [-10, 12]}, 1.0), "random_resized_crop": ({"size": [96, 96], "scale": [0.5, 1.0]}, 1.0),
    "random_sized_crop": ({"min_max_height": [60, 100], "size": [80, 80]}, 1.0),
    "resize": ({"height": 64, "width": 100}, 1.0), "random_scale": ({}, 1.0), "longest_max_size": ({"max_size": 200}, 1.0),
    "affine": ({"scale": [0.8, 1.2], "translate_px": [-10, 10], "rotate": [-30, 30]}, 1.0),
    "rotate": ({"limit": 30}, 1.0), "shift_scale_rotate": ({}, 1.0), "safe_rotate": ({}, 1.5),
    "grid_distortion": ({}, 2.5), "elastic_transform": ({}, 2.5), "optical_distortion": ({}, 2.5),
    "piecewise_affine": ({}, 2.5), "thin_plate_spline": ({}, 3.0),
}
# A shuffled grid cuts a box's pixels apart and a perspective warp clips boxes at the border
# differently from their pixels: these are checked on keypoints only.
KEYPOINTS_ONLY = {"random_grid_shuffle": ({}, 0), "perspective": ({}, 1.0)}

COLOUR = ["color_jitter", "to_gray", "random_brightness_contrast", "clahe", "hue_saturation_value", "gauss_noise",
          "gaussian_blur", "rgb_shift", "to_sepia", "channel_shuffle", "random_gamma", "equalize", "posterize",
          "solarize", "sharpen", "normalize", "image_compression"]

FIELDS = {"mask": "mask", "kmask": "mask",
          "bboxes": {"kind": "bboxes", "format": "pascal_voc", "label_fields": ["labels"]},
          "keypoints": {"kind": "keypoints", "format": "xy", "label_fields": ["kp_ids"]}}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # albumentations' usage warnings are not under test here
        yield


@pytest.fixture(scope="module")
def scene(astronaut):
    """The photo with a mask painting each box as its label and a mask painting each keypoint."""
    mask = np.zeros(astronaut.shape[:2], np.uint8)
    for label, (x0, y0, x1, y1) in enumerate(BOXES.astype(int), start=1):
        mask[y0:y1, x0:x1] = label
    kmask = np.zeros_like(mask)
    for kid, (x, y) in enumerate(KEYPOINTS.astype(int), start=1):
        kmask[y - 1:y + 2, x - 1:x + 2] = kid
    return {"image": astronaut, "mask": mask, "kmask": kmask, "bboxes": BOXES, "labels": [1, 2, 3],
            "keypoints": KEYPOINTS, "kp_ids": [1, 2, 3, 4]}


def _pipe(op, params, fields=FIELDS):
    return augflow.Pipeline.from_dict({"augflow": 1, "fields": fields, "sample": [{op: {**params, "p": 1.0}}]})


def _mask_box(mask, label):
    ys, xs = np.nonzero(mask == label)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def _check_keypoints(out, tol):
    assert len(out["keypoints"]) == len(out["kp_ids"])
    for kid, kp in zip(out["kp_ids"], out["keypoints"]):
        blob = out["kmask"] == int(kid)
        assert blob.any(), f"keypoint {kid} kept but its pixels left the image"
        centre = np.array(ndimage.center_of_mass(blob))[::-1]
        assert np.abs(kp[:2] - centre).max() <= tol + 1e-6, f"keypoint {kid} at {kp[:2]}, its pixels at {centre}"


@pytest.mark.parametrize("op", sorted(GEOMETRIC))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_op_moves_boxes_and_keypoints_with_the_pixels(scene, op, seed):
    params, tol = GEOMETRIC[op]
    out = _pipe(op, params)(scene, seed=seed)
    assert out["mask"].shape == out["image"].shape[:2]
    assert len(out["bboxes"]) == len(out["labels"]) >= 1
    for box, label in zip(out["bboxes"], out["labels"]):
        np.testing.assert_allclose(box, _mask_box(out["mask"], int(label)), atol=tol + 1e-4,
                                   err_msg=f"box {label} after {op}")
    _check_keypoints(out, tol)


@pytest.mark.parametrize("op", sorted(KEYPOINTS_ONLY))
def test_warps_move_keypoints_with_the_pixels(scene, op):
    params, tol = KEYPOINTS_ONLY[op]
    for seed in range(3):
        _check_keypoints(_pipe(op, params)(scene, seed=seed), tol)


def test_a_crop_drops_boxes_and_keypoints_with_their_labels(scene):
    out = _pipe("crop", {"x_min": 0, "y_min": 0, "x_max": 64, "y_max": 64})(scene, seed=0)
    assert list(map(int, out["labels"])) == [1]     # boxes 2 and 3 lie outside the crop
    assert list(map(int, out["kp_ids"])) == [1]     # so do keypoints 2-4 (x or y >= 64)
    np.testing.assert_array_equal(out["bboxes"], [[10, 20, 50, 60]])


def _from_voc(boxes, fmt, h, w):
    x0, y0, x1, y1 = boxes.T
    if fmt == "pascal_voc":
        return boxes.copy()
    if fmt == "coco":
        return np.stack([x0, y0, x1 - x0, y1 - y0], 1)
    if fmt == "yolo":
        return np.stack([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h], 1)
    return np.stack([x0 / w, y0 / h, x1 / w, y1 / h], 1)   # albumentations: normalized corners


def _to_voc(boxes, fmt, h, w):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if fmt == "pascal_voc":
        return b
    if fmt == "coco":
        return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1)
    if fmt == "yolo":
        cx, cy, bw, bh = b.T
        return np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], 1)
    return b * [w, h, w, h]


@pytest.mark.parametrize("fmt", ["pascal_voc", "coco", "yolo", "albumentations"])
def test_every_box_format_moves_the_same_boxes(scene, fmt):
    ops = [{"random_resized_crop": {"size": [96, 96], "scale": [0.5, 1.0], "p": 1.0}},
           {"horizontal_flip": {"p": 1.0}}, {"affine": {"rotate": [-20, 20], "p": 1.0}}]
    fields = {"bboxes": {"kind": "bboxes", "format": fmt, "label_fields": ["labels"]}}
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "fields": fields, "sample": ops})
    reference = augflow.Pipeline.from_dict({"augflow": 1, "fields": FIELDS, "sample": ops})(scene, seed=5)
    sample = {"image": scene["image"], "mask": scene["mask"], "labels": [1, 2, 3],
              "bboxes": _from_voc(BOXES, fmt, *scene["image"].shape[:2])}
    out = pipe(sample, seed=5)
    assert list(out["labels"]) == list(reference["labels"])
    np.testing.assert_allclose(_to_voc(out["bboxes"], fmt, *out["image"].shape[:2]), reference["bboxes"], atol=1e-3)
    np.testing.assert_array_equal(out["mask"], reference["mask"])


@pytest.mark.parametrize("op", COLOUR)
def test_colour_op_leaves_masks_boxes_and_keypoints_alone(scene, op):
    out = _pipe(op, {})(scene, seed=3)
    assert out["image"].shape[:2] == scene["image"].shape[:2]
    np.testing.assert_array_equal(out["mask"], scene["mask"])
    np.testing.assert_array_equal(out["bboxes"], BOXES)
    np.testing.assert_array_equal(out["keypoints"], KEYPOINTS)
    assert list(map(int, out["labels"])) == [1, 2, 3]


def _one(op, **params):
    return augflow.Pipeline.from_dict({"augflow": 1, "sample": [{op: {**params, "p": 1.0}}]})


def test_grayscale_hw_stays_hw_through_geometric_and_colour_ops(camera):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"horizontal_flip": {"p": 1.0}}, {"random_brightness_contrast": {"p": 1.0}}, {"clahe": {"p": 1.0}}]})
    out = pipe({"image": camera}, seed=0)
    assert out["image"].shape == camera.shape and out["image"].dtype == np.uint8
    flipped = _one("horizontal_flip")({"image": camera}, seed=0)["image"]
    np.testing.assert_array_equal(flipped, camera[:, ::-1])


def test_rgba_alpha_is_kept_under_colour_ops(astronaut):
    alpha = np.tile(np.arange(128, dtype=np.uint8) * 2, (128, 1))
    rgba = np.dstack([astronaut, alpha])
    for op in ["color_jitter", "to_gray", "hue_saturation_value", "channel_shuffle", "clahe"]:
        out = _one(op)({"image": rgba}, seed=1)["image"]
        assert out.shape == rgba.shape, op
        np.testing.assert_array_equal(out[..., 3], alpha, err_msg=op)
        assert not np.array_equal(out[..., :3], astronaut), op


def test_rgba_alpha_moves_under_geometric_ops(astronaut):
    alpha = np.tile(np.arange(128, dtype=np.uint8) * 2, (128, 1))
    rgba = np.dstack([astronaut, alpha])
    out = _one("horizontal_flip")({"image": rgba}, seed=0)["image"]
    np.testing.assert_array_equal(out, rgba[:, ::-1])


def test_rgba_alpha_follows_a_dtype_change(astronaut):
    alpha = np.full((128, 128), 255, np.uint8)
    out = _one("normalize")({"image": np.dstack([astronaut, alpha])}, seed=0)["image"]
    assert out.dtype == np.float32 and out.shape == (128, 128, 4)
    assert (out[..., 3] == 1.0).all()


def test_uint16_stays_uint16_and_matches_the_8bit_result(astronaut):
    img16 = astronaut.astype(np.uint16) * 257
    flipped = _one("vertical_flip")({"image": img16}, seed=0)["image"]
    assert flipped.dtype == np.uint16
    np.testing.assert_array_equal(flipped, img16[::-1])
    pipe = _one("random_brightness_contrast", brightness_limit=[0.2, 0.2], contrast_limit=[0.1, 0.1])
    out16, out8 = pipe({"image": img16}, seed=0)["image"], pipe({"image": astronaut}, seed=0)["image"]
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 257.0 - out8).max() <= 1.0   # same op, finer steps


def test_uint16_normalize_equals_the_8bit_normalize(astronaut):
    a = _one("normalize")({"image": astronaut}, seed=0)["image"]
    b = _one("normalize")({"image": astronaut.astype(np.uint16) * 257}, seed=0)["image"]
    assert b.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_float32_stays_float32_in_range(astronaut):
    img = astronaut.astype(np.float32) / 255
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"random_resized_crop": {"size": [64, 64]}}, {"color_jitter": {"p": 1.0}}]})
    out = pipe({"image": img}, seed=2)["image"]
    assert out.dtype == np.float32 and out.shape == (64, 64, 3)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_float64_is_taken_as_float32(astronaut):
    out = _one("horizontal_flip")({"image": astronaut / 255.0}, seed=0)["image"]
    assert out.dtype == np.float32


def test_pil_image_with_exif_orientation_comes_out_upright(chelsea):
    upright = chelsea[:, :100]
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))   # as a phone stores it
    exif = stored.getexif()
    exif[0x0112] = 6                                                     # "rotate 90 CW to view"
    buf = io.BytesIO()
    stored.save(buf, format="PNG", exif=exif)
    out = _one("horizontal_flip")({"image": Image.open(buf)}, seed=0)["image"]
    np.testing.assert_array_equal(out, upright[:, ::-1])
