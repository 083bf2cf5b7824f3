"""Image TTA: merges equal the manual computation, dense outputs map back exactly, selective TTA."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augflow.tta import TTA


def _tiny_cnn(classes: int = 5) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, stride=2),
            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, classes)).eval()


@pytest.fixture
def photos(astronaut, chelsea, camera):
    """Three real photographs as a (3, 3, 32, 40) float batch (non-square on purpose)."""
    imgs = [astronaut, chelsea, np.repeat(camera[:, :, None], 3, axis=2)]
    x = torch.stack([torch.from_numpy(i[:96, :120].transpose(2, 0, 1).copy()).float() / 255 for i in imgs])
    return F.interpolate(x, size=(32, 40), mode="area")


def _flip_views(x):
    return [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]


def test_mean_over_flips_equals_manual_computation(photos):
    model = _tiny_cnn()
    got = TTA(model, "flips", merge="mean")(photos)
    with torch.no_grad():
        manual = torch.stack([model(v).softmax(1) for v in _flip_views(photos)]).mean(0)
    assert torch.allclose(got, manual, atol=1e-6)


@pytest.mark.parametrize("mode", ["gmean", "max", "vote", "mean_logits"])
def test_other_merges_equal_manual_computation(photos, mode):
    model = _tiny_cnn()
    got = TTA(model, "flips", merge=mode)(photos)
    with torch.no_grad():
        logits = torch.stack([model(v) for v in _flip_views(photos)])
    probs = logits.softmax(2)
    if mode == "gmean":
        g = probs.log().mean(0).exp()
        manual = g / g.sum(1, keepdim=True)
    elif mode == "max":
        manual = probs.max(0).values
    elif mode == "vote":
        manual = F.one_hot(probs.argmax(2), 5).float().mean(0)
    else:
        manual = logits.mean(0)
    assert torch.allclose(got, manual, atol=1e-6)


def test_probs_output_is_averaged_as_given(photos):
    model = torch.nn.Sequential(_tiny_cnn(), torch.nn.Softmax(dim=1))
    got = TTA(model, "hflip", output="probs")(photos)
    with torch.no_grad():
        manual = (model(photos) + model(photos.flip(-1))) / 2
    assert torch.allclose(got, manual, atol=1e-6)


def _segmentation_one_hot(camera):
    """A 3-class mask of a real photograph (dark / mid / bright), one-hot (1, 3, 48, 64)."""
    img = camera[:96, :128][::2, ::2]
    mask = np.digitize(img, [85, 170])
    return F.one_hot(torch.from_numpy(mask).long(), 3).permute(2, 0, 1)[None].float(), mask


@pytest.mark.parametrize("tta_spec", [
    "d4",
    {"tta": ["horizontal_flip", {"shift": {"offsets": [[0, 0], [3, -2], [-5, 4]]}}]},
    {"tta": [{"pad_crop": {"pad": 4}}, "vertical_flip"]},
    {"tta": [{"scale": {"factors": [1.0, 2.0], "interpolation": "nearest"}}, {"rot90": {"k": [0, 1]}}]},
])
def test_identity_model_gives_back_the_mask_exactly(camera, tta_spec):
    one_hot, mask = _segmentation_one_hot(camera)
    tta = TTA(lambda x: x, {"augflow": 1, **tta_spec} if isinstance(tta_spec, dict) else tta_spec,
              task="segmentation", output="probs")
    merged = tta(one_hot)
    assert torch.equal(merged, one_hot)
    assert np.array_equal(merged.argmax(1)[0].numpy(), mask)


def _brightest(x):
    """A 'keypoint model': the centre of the brightest pixel of each image, (B, 1, 3) with a score."""
    b, _, h, w = x.shape
    flat = x[:, 0].reshape(b, -1).argmax(1)
    r, c = flat // w, flat % w
    return torch.stack([c + 0.5, r + 0.5, torch.ones(b)], dim=1)[:, None].float()


def _bbox_of_bright(x):
    """A 'box model': the box around bright pixels of each image, (B, 1, 4) pascal_voc pixels."""
    out = []
    for img in x[:, 0]:
        rows, cols = (img > 0.5).nonzero(as_tuple=True)
        out.append(torch.stack([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]).float())
    return torch.stack(out)[:, None]


def test_keypoints_map_back_through_every_view():
    x = torch.zeros(2, 1, 20, 30)
    x[0, 0, 3, 25] = 1.0
    x[1, 0, 17, 4] = 1.0
    tta = TTA(_brightest, {"augflow": 1, "tta": ["horizontal_flip", {"rot90": {"k": [0, 1, 2, 3]}},
                                                 {"shift": {"offsets": [[0, 0], [2, 1]]}}]}, task="keypoints")
    result = tta(x, return_all=True)
    truth = torch.tensor([[[25.5, 3.5, 1.0]], [[4.5, 17.5, 1.0]]])
    assert result.predictions.shape[0] == 16
    assert torch.allclose(result.predictions, truth.expand_as(result.predictions))
    assert torch.allclose(result.merged, truth)


def test_boxes_map_back_through_every_view():
    x = torch.zeros(1, 1, 24, 32)
    x[0, 0, 5:9, 20:27] = 1.0
    tta = TTA(_bbox_of_bright, {"augflow": 1, "tta": ["horizontal_flip", "vertical_flip", {"rot90": {"k": [0, 1, 3]}},
                                                     {"scale": {"factors": [1.0, 2.0], "interpolation": "nearest"}}]},
              task="boxes", merge="median")
    result = tta(x, return_all=True)
    truth = torch.tensor([[[20.0, 5.0, 27.0, 9.0]]])
    assert torch.allclose(result.predictions, truth.expand_as(result.predictions))
    assert torch.allclose(result.merged, truth)


def test_keypoint_flip_index_swaps_left_and_right():
    def two_points(x):  # 'left' point then 'right' point, by image column
        b = x.shape[0]
        return torch.tensor([[[5.0, 2.0], [15.0, 2.0]]]).expand(b, 2, 2)
    x = torch.zeros(1, 1, 8, 20)
    merged = TTA(two_points, "hflip", task="keypoints", keypoint_flip_index=[1, 0])(x, return_all=True)
    # the flipped view's left point (5, 2) maps back to (15, 2): it is the original right point
    assert torch.allclose(merged.predictions[1], torch.tensor([[[5.0, 2.0], [15.0, 2.0]]]))


class _EntropyByBrightness(torch.nn.Module):
    """Logits whose sharpness grows with the image mean: entropy is known per input."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([10 * m, torch.zeros_like(m), -10 * m + x[:, :, 0, 0].mean(1)], dim=1)


def test_selective_tta_augments_exactly_the_inputs_above_threshold(photos):
    model = _EntropyByBrightness()
    x = torch.cat([photos * s for s in (0.05, 0.2, 1.0)])       # 9 inputs, different entropies
    with torch.no_grad():
        h = -(model(x).softmax(1) * model(x).log_softmax(1)).sum(1)
    threshold = float(h.sort().values[4])                      # 4 inputs strictly above
    tta = TTA(model, "flips", threshold=threshold)
    result = tta(x, return_all=True)
    assert torch.equal(result.augmented, h > threshold)
    assert tta.last_report.augmented == 4 and tta.last_report.inputs == 9
    assert tta.last_report.model_inputs == 9 + 4 * 3            # plain pass + 3 extra views of 4 inputs
    keep = ~result.augmented
    with torch.no_grad():
        plain = model(x).softmax(1)
        full = TTA(model, "flips")(x)
    assert torch.allclose(result.merged[keep], plain[keep], atol=1e-6)
    assert torch.allclose(result.merged[~keep], full[~keep], atol=1e-6)
    assert torch.isnan(result.predictions[1:, keep]).all()


def test_calibrate_picks_a_threshold_that_hits_the_target_rate(photos):
    model = _tiny_cnn()
    held_out = [photos * s for s in torch.linspace(0.1, 2.0, 10)]   # 30 images in 10 batches
    tta = TTA(model, "hflip")
    threshold = tta.calibrate(held_out, target_rate=0.4)
    assert tta.threshold == threshold
    for batch in held_out:
        tta(batch)
    assert tta.report.augmented == 12 and tta.report.inputs == 30
    assert "augmented 12 of 30 inputs" in str(tta.report)


def test_max_batch_splits_model_calls_without_changing_results(photos):
    model = _tiny_cnn()
    x = torch.cat([photos, photos * 0.5])        # 6 images x 8 views = 48 forward images
    one_call = TTA(model, "d4")
    chunked = TTA(model, "d4", max_batch=10)
    a, b = one_call(x), chunked(x)
    assert torch.allclose(a, b, atol=1e-6)
    # two shapes (32x40, and 40x32 for the quarter turns) of 24 images each, in chunks of <= 10
    assert chunked.last_report.model_calls == 2 * math.ceil(24 / 10)
    assert one_call.last_report.model_calls == 2   # two shapes: 32x40 and the quarter turns' 40x32


def test_runs_on_the_models_device(photos):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = _tiny_cnn().cuda()
    out = TTA(model, "d4")(photos)
    assert out.device.type == "cuda"
    with torch.no_grad():
        manual = torch.stack([model(v.cuda()).softmax(1) for v in _flip_views(photos)])
    assert out.shape == manual.shape[1:]


def test_random_augflow_ops_are_seeded_by_content(photos):
    model = _tiny_cnn()
    blur = {"albumentations.GaussianBlur": {"blur_limit": [3, 7]}}
    spec = {"augflow": 1, "tta": [{"random": {"draws": 3, "ops": [blur]}}]}
    tta = TTA(model, spec)
    first = tta(photos, return_all=True)
    again = tta(photos[[2, 0, 1]], return_all=True)   # another order: each image gets the same views
    assert first.predictions.shape[0] == 4
    assert torch.allclose(first.merged[[2, 0, 1]], again.merged, atol=1e-6)
    assert not torch.allclose(first.predictions[0], first.predictions[1])


def test_merge_that_does_not_fit_the_task_is_refused():
    with pytest.raises(ValueError, match="does not fit task 'keypoints'"):
        TTA(_brightest, "hflip", task="keypoints", merge="vote")
    with pytest.raises(ValueError, match="needs output='logits'"):
        TTA(_tiny_cnn(), "hflip", merge="mean_logits", output="probs")


def test_out_of_memory_halves_the_call_size_and_retries(photos):
    model = _tiny_cnn()

    def small_memory(x):
        if x.shape[0] > 5:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return model(x)

    tta = TTA(small_memory, "flips")
    merged = tta(torch.cat([photos, photos]))          # 6 images x 4 views = 24 rows
    assert tta.max_batch == 3                          # 24 -> 12 -> 6 -> 3
    assert torch.allclose(merged, TTA(model, "flips")(torch.cat([photos, photos])), atol=1e-6)
    assert tta.last_report.model_inputs == 24 and tta.last_report.model_calls == 8
