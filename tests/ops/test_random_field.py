"""random_field: smooth per-pixel affine/colour fields; labels move with the image; replay is exact."""

import json

import numpy as np
import pytest
from skimage import data

import augflow
from augflow.ops.random_field import RandomField, backward_map, gaussian_field, make_fields, move_points
from augflow.sample import FieldSpec, Sample

GEOMETRY_ONLY = {"brightness": 0.0, "contrast": 0.0, "hue": 0.0}


def _run(op, sample, seed=0):
    params = op.sample_params(np.random.default_rng(seed), sample)
    return op.apply(sample, **params)


def test_field_is_smooth():
    field = gaussian_field((128, 160), 12.0, np.random.default_rng(0))
    steps = max(np.abs(np.diff(field, axis=0)).max(), np.abs(np.diff(field, axis=1)).max())
    assert steps < 0.1 * (field.max() - field.min())


def test_displacement_is_smooth_relative_to_its_range():
    fields = make_fields((128, 128), seed=3, smoothness=16.0, stds={"translate_x": 3.0, "translate_y": 3.0,
                                                                   "rotate": 2.0, "scale": 0.03})
    map_x, map_y = backward_map((128, 128), fields)
    ux = map_x - np.arange(128)[None, :]
    uy = map_y - np.arange(128)[:, None]
    for u in (ux, uy):
        steps = max(np.abs(np.diff(u, axis=0)).max(), np.abs(np.diff(u, axis=1)).max())
        assert steps < 0.1 * (u.max() - u.min())


def test_field_has_unit_variance_and_the_chosen_length_scale():
    # Gaussian-filtered white noise of sigma s has correlation exp(-d^2 / (4 s^2)) at distance d.
    s = 6.0
    fields = np.stack([gaussian_field((96, 96), s, np.random.default_rng(i)) for i in range(40)])
    assert fields.std() == pytest.approx(1.0, abs=0.08)
    lag = int(2 * s)
    corr = np.mean(fields[:, :, :-lag] * fields[:, :, lag:]) / fields.var()
    assert corr == pytest.approx(np.exp(-1.0), abs=0.08)


def test_fields_regenerate_from_the_seed_alone():
    stds = {"translate_x": 2.0, "hue": 0.1}
    a = make_fields((64, 64), seed=42, smoothness=8.0, stds=stds)
    b = make_fields((64, 64), seed=42, smoothness=8.0, stds=stds)
    c = make_fields((64, 64), seed=43, smoothness=8.0, stds=stds)
    assert all(np.array_equal(a[k], b[k]) for k in stds)
    assert not np.array_equal(a["translate_x"], c["translate_x"])


def test_turning_one_field_off_keeps_the_others():
    both = make_fields((64, 64), seed=7, smoothness=8.0, stds={"translate_x": 2.0, "rotate": 1.0})
    one = make_fields((64, 64), seed=7, smoothness=8.0, stds={"rotate": 1.0})
    assert np.array_equal(both["rotate"], one["rotate"])


def test_strength_zero_is_identity(astronaut):
    mask = (astronaut[..., 0] > 128).astype(np.uint8)
    sample = Sample({"image": astronaut, "mask": mask, "keypoints": np.array([[10.0, 20.0]], np.float32),
                     "bboxes": np.array([[5.0, 6.0, 50.0, 60.0]], np.float32)})
    out = _run(RandomField(strength=0.0), sample)
    for key in sample:
        assert np.array_equal(out[key], sample[key]), key


def test_apply_does_not_mutate_its_input(astronaut):
    sample = Sample({"image": astronaut.copy(), "keypoints": np.array([[10.0, 20.0]], np.float32)})
    before = {k: v.copy() for k, v in sample.items()}
    _run(RandomField(strength=2.0), sample)
    assert all(np.array_equal(sample[k], before[k]) for k in before)


def test_mild_defaults_change_the_image_but_keep_it_recognisable():
    img = data.camera()
    out = _run(RandomField(), Sample({"image": img[:, :, None]}))["image"][:, :, 0]
    diff = np.abs(out.astype(float) - img)
    assert diff.mean() > 1.0
    assert np.corrcoef(out.ravel().astype(float), img.ravel().astype(float))[0, 1] > 0.8


@pytest.mark.parametrize("seed", range(4))
def test_keypoint_lands_on_its_distinctive_pixel(seed):
    rng = np.random.default_rng(seed)
    img = (data.camera() // 2)[:, :, None].copy()        # nothing brighter than 127 ...
    points = np.rint(rng.uniform(60, 450, size=(6, 2)))
    for x, y in points.astype(int):
        img[y - 1:y + 2, x - 1:x + 2] = 255               # ... but six 3x3 beacons
    op = RandomField(strength=3.0, smoothness=40.0, **GEOMETRY_ONLY)
    out = _run(op, Sample({"image": img, "keypoints": points}), seed)
    warped = out["image"][:, :, 0].astype(float)
    assert len(out["keypoints"]) == len(points)
    moved = np.abs(out["keypoints"] - points).max()
    assert moved > 2.0                                     # the test has something to detect
    for x, y in out["keypoints"]:
        xi, yi = int(round(x)), int(round(y))
        win = warped[yi - 6:yi + 7, xi - 6:xi + 7]
        win = np.where(win > 160, win - 127, 0)
        ys, xs = np.indices(win.shape)
        cx = (xs * win).sum() / win.sum() - 6 + xi
        cy = (ys * win).sum() / win.sum() - 6 + yi
        assert np.hypot(cx - x, cy - y) < 1.0


def test_mask_moves_with_the_image():
    coarse = data.camera()[8::32, 8::32] // 64                # the photo's layout in 16 x 16 flat blocks
    mask = np.kron(coarse, np.ones((32, 32), np.uint8)).astype(np.uint8)
    img = (mask * 60)[:, :, None]
    out = _run(RandomField(strength=3.0, smoothness=24.0, **GEOMETRY_ONLY),
               Sample({"image": img, "mask": mask}), seed=5)
    assert not np.array_equal(out["mask"], mask)
    agree = out["image"][:, :, 0] == out["mask"] * 60     # linear vs nearest differ only on region borders
    assert agree.mean() > 0.95


def test_masks_list_moves_like_mask():
    mask = (data.camera()[:128, :128] > 100).astype(np.uint8)
    sample = Sample({"image": data.camera()[:128, :128, None], "mask": mask, "masks": [mask, 1 - mask]})
    out = _run(RandomField(strength=2.0), sample, seed=1)
    assert np.array_equal(out["masks"][0], out["mask"])
    assert np.array_equal(out["masks"][1], 1 - out["mask"])


def test_box_becomes_the_box_of_the_moved_content():
    img = np.zeros((200, 240, 1), np.uint8)
    img[60:140, 80:170] = 255                              # the box's content, edge to edge
    box = np.array([[80.0, 60.0, 170.0, 140.0]], np.float32)
    op = RandomField(strength=4.0, smoothness=30.0, **GEOMETRY_ONLY)
    out = _run(op, Sample({"image": img, "bboxes": box}), seed=2)
    ys, xs = np.nonzero(out["image"][:, :, 0] > 127)
    content = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    assert np.abs(out["bboxes"][0, :4] - box[0]).max() > 2.0
    # the content's box is whole pixels (thresholded at half coverage): up to a pixel of rounding
    assert np.abs(out["bboxes"][0, :4] - content).max() <= 1.5


def test_box_formats_move_to_the_same_place(astronaut):
    h, w = astronaut.shape[:2]
    voc = np.array([[20.0, 30.0, 90.0, 100.0]], np.float32)
    x0, y0, x1, y1 = voc[0]
    as_format = {"pascal_voc": voc, "coco": np.array([[x0, y0, x1 - x0, y1 - y0]], np.float32),
                 "yolo": np.array([[(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]], np.float32),
                 "albumentations": np.array([[x0 / w, y0 / h, x1 / w, y1 / h]], np.float32)}
    moved = {}
    for fmt, boxes in as_format.items():
        sample = Sample({"image": astronaut, "bboxes": boxes}, {"image": FieldSpec("image"),
                                                                "bboxes": FieldSpec("bboxes", fmt)})
        b = _run(RandomField(strength=3.0), sample, seed=9)["bboxes"][0]
        if fmt == "coco":
            b = [b[0], b[1], b[0] + b[2], b[1] + b[3]]
        elif fmt == "yolo":
            b = [(b[0] - b[2] / 2) * w, (b[1] - b[3] / 2) * h, (b[0] + b[2] / 2) * w, (b[1] + b[3] / 2) * h]
        elif fmt == "albumentations":
            b = [b[0] * w, b[1] * h, b[2] * w, b[3] * h]
        moved[fmt] = np.asarray(b, np.float64)
    for fmt, b in moved.items():
        np.testing.assert_allclose(b, moved["pascal_voc"], atol=1e-3, err_msg=fmt)


def test_keypoints_that_leave_the_image_are_dropped_with_their_labels(camera):
    edge = np.concatenate([np.stack([np.arange(0, 128, 4), np.zeros(32)], 1),
                           np.stack([np.zeros(32), np.arange(0, 128, 4)], 1)]).astype(np.float32)
    labels = list(range(len(edge)))
    specs = {"image": FieldSpec("image"), "keypoints": FieldSpec("keypoints", "xy", ("kp_labels",))}
    sample = Sample({"image": camera[:, :, None], "keypoints": edge, "kp_labels": labels}, specs)
    out = _run(RandomField(translate=6.0, smoothness=16.0), sample, seed=4)
    kept = out["keypoints"]
    assert 0 < len(kept) < len(edge)
    assert len(out["kp_labels"]) == len(kept)
    assert ((kept[:, 0] >= 0) & (kept[:, 0] < 128) & (kept[:, 1] >= 0) & (kept[:, 1] < 128)).all()
    # each kept label still names its own point: its new place is its old place moved by a few pixels
    for (x, y), label in zip(kept, out["kp_labels"]):
        assert np.hypot(x - edge[label, 0], y - edge[label, 1]) < 20


def test_move_points_inverts_the_backward_map():
    shape = (96, 96)
    map_x, map_y = backward_map(shape, make_fields(shape, 1, 16.0, {"translate_x": 3.0, "translate_y": 3.0,
                                                                    "rotate": 2.0}))
    pixels = np.array([[30, 40], [60, 20], [5, 90]])             # output pixels (x, y) ...
    sources = np.stack([map_x[pixels[:, 1], pixels[:, 0]], map_y[pixels[:, 1], pixels[:, 0]]], 1)  # ... read here
    np.testing.assert_allclose(move_points(sources, map_x, map_y), pixels, atol=0.05)


def test_colour_only_fields_leave_geometry_alone(astronaut):
    mask = (astronaut[..., 1] > 100).astype(np.uint8)
    kps = np.array([[10.0, 20.0], [100.0, 50.0]], np.float32)
    op = RandomField(strength=3.0, translate=0.0, rotate=0.0, scale=0.0)
    out = _run(op, Sample({"image": astronaut, "mask": mask, "keypoints": kps}))
    assert np.array_equal(out["mask"], mask)
    assert np.array_equal(out["keypoints"], kps)
    assert np.abs(out["image"].astype(int) - astronaut).mean() > 1.0


def test_hue_field_keeps_grey_pixels_grey():
    grey = np.repeat(data.camera()[:96, :96, None], 3, axis=2)
    out = _run(RandomField(hue=0.2, brightness=0.0, contrast=0.0, translate=0.0, rotate=0.0, scale=0.0),
               Sample({"image": grey}))["image"].astype(int)
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 0] - out[..., 2]).max() <= 1


@pytest.mark.parametrize("layout", ["gray2d", "rgba", "uint16", "float32"])
def test_image_layouts_keep_shape_and_dtype(layout, astronaut, camera):
    img = {"gray2d": camera, "rgba": np.dstack([astronaut, np.full(astronaut.shape[:2], 200, np.uint8)]),
           "uint16": astronaut.astype(np.uint16) * 257, "float32": astronaut.astype(np.float32) / 255}[layout]
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "name": "t", "sample": [{"random_field": {"strength": 2.0}}]})
    out = pipe({"image": img}, seed=3)["image"]
    assert out.shape == img.shape and out.dtype == img.dtype
    assert not np.array_equal(out, img)
    if layout == "rgba":
        assert (out[..., 3] == 200).all()


def test_replay_through_pipeline_is_bit_identical(chelsea):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "name": "t", "sample": [
        {"random_field": {"strength": [0.5, 2.0], "smoothness": [16, 48]}}]})
    sample = {"image": chelsea, "mask": (chelsea[..., 0] > 120).astype(np.uint8),
              "keypoints": [[30.0, 40.0], [100.0, 90.0]], "bboxes": [[10.0, 10.0, 60.0, 70.0]]}
    out = pipe(sample, index=11, epoch=2)
    again = pipe(sample, index=11, epoch=2)
    replayed = pipe.replay(sample, out.provenance.to_json())
    for key in ("image", "mask", "keypoints", "bboxes"):
        assert np.array_equal(out[key], again[key]), key
        assert np.array_equal(out[key], replayed[key]), key


def test_provenance_is_a_few_numbers(chelsea):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "name": "t", "sample": [{"random_field": {}}]})
    out = pipe({"image": chelsea}, seed=1)
    (entry,) = out.provenance
    assert set(entry.params) == {"seed", "strength", "smoothness"}
    assert len(json.dumps(entry.params)) < 120


def test_mismatched_image_and_mask_sizes_are_an_error(astronaut):
    with pytest.raises(ValueError, match="same height and width"):
        _run(RandomField(), Sample({"image": astronaut, "mask": np.zeros((10, 10), np.uint8)}))
