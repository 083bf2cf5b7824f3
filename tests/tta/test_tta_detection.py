"""Detector TTA: each view's boxes map back exactly, merges equal ensemble-boxes called directly.

The detector is a real (if classical) one: it thresholds skimage's coins photograph and returns
the bounding box of every connected component, so a view's boxes are where the coins are in that
view. Mapped back through the view's inverse, they must be the original boxes, exactly.
"""

import ensemble_boxes
import numpy as np
import pytest
import torch
from skimage import data, measure

import augflow
from augflow.tta import TTA
from augflow.tta.detection import DetectionTTA

THRESHOLD = 0.5      # coins are brighter than the background
MIN_AREA = 40        # pixels, in the view's frame


def coins_batch():
    """Two crops of skimage's coins (different numbers of coins), framed by a 16-pixel black margin
    so that shifted views keep every coin whole."""
    img = data.coins().astype(np.float32) / 255
    crops = [img[20:100, 20:140], img[170:250, 150:270]]
    framed = [np.pad(c, 16) for c in crops]
    return torch.from_numpy(np.stack(framed))[:, None].repeat(1, 3, 1, 1)


def find_coins(x: torch.Tensor, jitter: bool = False, keypoints: bool = False) -> list[dict]:
    """Connected components of the thresholded image: boxes (x1, y1, x2, y2, pixel edges), score
    = brightest pixel, label 1 or 2 by that brightness. `jitter` moves every box 1 px right and
    scores it by the view's width, so views disagree a little (as real detectors do)."""
    out = []
    for img in x:
        gray = img.mean(0).numpy()
        regions = [r for r in measure.regionprops(measure.label(gray > THRESHOLD, connectivity=2), gray)
                   if r.area >= MIN_AREA]
        boxes = np.array([[r.bbox[1], r.bbox[0], r.bbox[3], r.bbox[2]] for r in regions], np.float32).reshape(-1, 4)
        scores = np.array([r.intensity_max for r in regions], np.float32)
        labels = np.where(scores > 0.8, 2, 1)
        if jitter:
            boxes[:, [0, 2]] += 1.0
            scores = scores * (0.5 + 0.5 * (gray.shape[1] % 7) / 7)
        det = {"boxes": torch.from_numpy(boxes), "scores": torch.from_numpy(scores),
               "labels": torch.from_numpy(labels)}
        if keypoints:   # left-middle and right-middle of the box: a mirror swaps them
            ym = (boxes[:, 1] + boxes[:, 3]) / 2
            det["keypoints"] = torch.from_numpy(np.stack([np.stack([boxes[:, 0], ym, np.ones_like(ym)], 1),
                                                          np.stack([boxes[:, 2], ym, np.ones_like(ym)], 1)], 1))
        out.append(det)
    return out


def _sorted_rows(t: torch.Tensor) -> np.ndarray:
    a = t.numpy().reshape(t.shape[0], -1)
    return a[np.lexsort(a.T[::-1])]


EXACT_VIEWS = {"augflow": 1, "tta": ["horizontal_flip", {"rot90": {"k": [0, 1, 2, 3]}},
                                     {"scale": {"factors": [1.0, 2.0], "interpolation": "nearest"}},
                                     {"shift": {"offsets": [[0, 0], [8, -5]]}}]}


def test_augflow_tta_with_task_detection_is_a_detection_tta():
    assert isinstance(augflow.TTA(find_coins, "pipelines/tta_detection.yaml"), DetectionTTA)   # task from the file
    assert isinstance(augflow.TTA(find_coins, "hflip", task="detection", merge="nms"), DetectionTTA)


def test_deaugmented_views_coincide_exactly_with_the_original_detections():
    x = coins_batch()
    res = TTA(find_coins, EXACT_VIEWS, task="detection", merge="wbf")(x, return_all=True)
    assert len(res.views) == 2 * 4 * 2 * 2 and res.view_names[0] == "original"
    plain = find_coins(x)
    assert [len(d["boxes"]) for d in plain] != [0, 0] and len(plain[0]["boxes"]) != len(plain[1]["boxes"])
    for name, view in zip(res.view_names, res.views):
        for b in range(x.shape[0]):
            for key in ("boxes", "scores", "labels"):
                np.testing.assert_array_equal(_sorted_rows(view[b][key].reshape(len(view[b]["boxes"]), -1)),
                                              _sorted_rows(plain[b][key].double().reshape(len(plain[b]["boxes"]), -1)),
                                              err_msg=f"{name}, image {b}, {key}")


def test_keypoints_of_a_variable_number_of_instances_map_back_and_repair_left_right():
    x = coins_batch()
    det = lambda v: find_coins(v, keypoints=True)   # noqa: E731
    tta = TTA(det, {"augflow": 1, "tta": ["horizontal_flip", {"scale": {"factors": [1.0, 2.0],
                                                                         "interpolation": "nearest"}},
                                          {"shift": {"offsets": [[0, 0], [-6, 4]]}}]},
              task="detection", merge="wbf", keypoint_flip_index=[1, 0])
    res = tta(x, return_all=True)
    plain = det(x)
    for view in res.views:
        for b in range(2):
            assert torch.equal(_kp_by_box(view[b]), _kp_by_box(plain[b]))
    for b in range(2):   # every view agrees, so the fused keypoints are the plain ones
        np.testing.assert_allclose(_kp_by_box(res.merged[b]).numpy(), _kp_by_box(plain[b]).double().numpy(),
                                   atol=1e-4)


def _kp_by_box(d):
    order = np.lexsort(d["boxes"].numpy().T[::-1])
    return d["keypoints"].double()[torch.from_numpy(order.copy())]


def _direct(res, x, fn, **kw):
    """ensemble-boxes called by hand on the de-augmented views, normalised by the image size."""
    h, w = x.shape[-2:]
    out = []
    for b in range(x.shape[0]):
        scale = np.array([w, h, w, h])
        boxes = [v[b]["boxes"].numpy() / scale for v in res.views]
        scores = [v[b]["scores"].numpy() for v in res.views]
        labels = [v[b]["labels"].numpy() for v in res.views]
        bx, sc, lb = fn(boxes, scores, labels, **kw)
        out.append((bx * scale, sc, lb))
    return out


VIEWS = {"augflow": 1, "tta": ["horizontal_flip", {"scale": {"factors": [1.0, 1.5]}}]}


@pytest.mark.parametrize("conf_type", ["avg", "max", "box_and_model_avg"])
def test_wbf_equals_ensemble_boxes_weighted_boxes_fusion(conf_type):
    x = coins_batch()
    det = lambda v: find_coins(v, jitter=True)   # noqa: E731
    res = TTA(det, VIEWS, task="detection", merge="wbf", iou_threshold=0.6, skip_box_threshold=0.1,
              conf_type=conf_type)(x, return_all=True)
    views_differ = not np.array_equal(_sorted_rows(res.views[0][0]["boxes"]), _sorted_rows(res.views[1][0]["boxes"]))
    assert views_differ
    for merged, (bx, sc, lb) in zip(res.merged, _direct(res, x, ensemble_boxes.weighted_boxes_fusion, iou_thr=0.6,
                                                         skip_box_thr=0.1, conf_type=conf_type)):
        np.testing.assert_allclose(merged["boxes"].numpy(), bx, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(merged["scores"].numpy(), sc, rtol=1e-5)
        np.testing.assert_array_equal(merged["labels"].numpy(), lb.astype(np.int64))
        assert merged["labels"].dtype == torch.int64 and merged["boxes"].dtype == torch.float32


@pytest.mark.parametrize("merge, fn, kw", [
    ("nms", ensemble_boxes.nms, {"iou_thr": 0.5}),
    ("soft_nms", ensemble_boxes.soft_nms, {"iou_thr": 0.5, "sigma": 0.3, "thresh": 0.05}),
])
def test_nms_and_soft_nms_equal_ensemble_boxes(merge, fn, kw):
    x = coins_batch()
    det = lambda v: find_coins(v, jitter=True)   # noqa: E731
    res = TTA(det, VIEWS, task="detection", merge=merge, iou_threshold=0.5, sigma=0.3,
              skip_box_threshold=0.05)(x, return_all=True)
    for merged, (bx, sc, lb) in zip(res.merged, _direct(res, x, fn, **kw)):
        np.testing.assert_allclose(merged["boxes"].numpy(), bx, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(merged["scores"].numpy(), sc, rtol=1e-5)
        np.testing.assert_array_equal(merged["labels"].numpy(), lb.astype(np.int64))


def test_tuple_outputs_and_lists_of_images_give_the_same_result():
    x = coins_batch()
    as_dicts = TTA(find_coins, VIEWS, task="detection")(x)

    def as_tuples(v):
        return [(d["boxes"], d["scores"], d["labels"]) for d in find_coins(v)]

    for got in (TTA(as_tuples, VIEWS, task="detection")(x), TTA(find_coins, VIEWS, task="detection")(list(x))):
        for a, b in zip(got, as_dicts):
            for key in ("boxes", "scores", "labels"):
                assert torch.equal(a[key], b[key])


def test_mean_merge_averages_slots_and_refuses_variable_lengths():
    x = coins_batch()
    got = TTA(find_coins, "hflip", task="detection", merge="mean")(x)
    plain = find_coins(x)
    hflip_back = [{**d, "boxes": torch.stack([x.shape[-1] - d["boxes"][:, 2], d["boxes"][:, 1],
                                             x.shape[-1] - d["boxes"][:, 0], d["boxes"][:, 3]], 1)}
                  for d in find_coins(x.flip(-1))]
    # components are found in raster order, so slot i of the mirrored view is usually another coin:
    # 'mean' is for detectors with stable slots; here it is still the slot-wise mean by definition
    for g, a, b in zip(got, plain, hflip_back):
        torch.testing.assert_close(g["boxes"], (a["boxes"].double() + b["boxes"].double()).float() / 2)
    varying = lambda v: find_coins(v[:, :, :, : v.shape[-1] // 2 + 16 * (v.shape[-1] > 200)])   # noqa: E731
    with pytest.raises(ValueError, match="same number of boxes"):
        TTA(varying, {"augflow": 1, "tta": [{"scale": {"factors": [1.0, 2.0]}}]}, task="detection", merge="mean")(x)


def test_bad_settings_are_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match="wbf, nms, soft_nms, mean"):
        TTA(find_coins, "hflip", task="detection", merge="gmean")
    with pytest.raises(ValueError, match="conf_type"):
        TTA(find_coins, "hflip", task="detection", conf_type="median")
    with pytest.raises(augflow.PipelineConfigError, match="rotate"):
        TTA(find_coins, {"augflow": 1, "tta": [{"rotate": {"angles": [0, 10]}}]}, task="detection")
    with pytest.raises(TypeError, match="boxes"):
        TTA(lambda v: v.mean(), "hflip", task="detection")(coins_batch())


def test_out_of_memory_halves_the_call_size_and_retries_the_same_images():
    calls = []

    def detector(v):
        calls.append(len(v))
        if len(v) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return find_coins(v)

    x = coins_batch()
    tta = TTA(detector, "flips", task="detection")      # 4 views x 2 images, all the same shape
    got = tta(x)
    assert calls == [8, 4, 2, 2, 2, 2] and tta.max_batch == 2   # 8 fails, 4 fails, then pairs
    assert tta.last_report.model_inputs == 8
    for a, b in zip(got, TTA(find_coins, "flips", task="detection", max_batch=3)(x)):
        assert torch.equal(a["boxes"], b["boxes"])
