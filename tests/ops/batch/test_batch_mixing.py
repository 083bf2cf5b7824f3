"""Mixing ops carry every target and mix labels by the true pasted area."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from augflow import registry
from augflow.ops.batch.kernels import BatchContext
from augflow.ops.batch.transmix import TransMixHook
from augflow.sample import FieldSpec

SPECS = {"image": FieldSpec("image"), "label": FieldSpec("label"), "mask": FieldSpec("mask"),
         "bboxes": FieldSpec("bboxes", "pascal_voc", ("classes",)), "keypoints": FieldSpec("keypoints", "xy")}


def photos(n: int = 2, size: int = 64) -> torch.Tensor:
    names = ("astronaut", "chelsea", "coffee", "rocket")
    imgs = [cv2.resize(getattr(data, names[i])(), (size, size), interpolation=cv2.INTER_AREA) for i in range(n)]
    return torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i in imgs]).float() / 255


def make_batch(n: int = 2) -> dict:
    return {
        "image": photos(n), "label": torch.arange(n),
        "mask": torch.stack([torch.full((64, 64), k + 1, dtype=torch.uint8) for k in range(n)]),
        "bboxes": [torch.tensor([[4.0, 4.0, 20.0, 20.0], [40.0, 40.0, 60.0, 60.0]]) for _ in range(n)],
        "classes": [torch.tensor([10 * k + 1, 10 * k + 2]) for k in range(n)],
        "keypoints": [torch.tensor([[10.0, 10.0], [50.0, 50.0]]) for _ in range(n)],
    }


def op(name: str, **kw):
    return registry.get(name).build({"num_classes": 4, **kw})


def test_cutmix_mixes_labels_by_the_clipped_pasted_area():
    batch = make_batch()
    # lam 0.75 -> a 32x32 box, centred at (60, 60): clipped to [44, 64) x [44, 64) = 20x20 pixels
    p = {"lam": 0.75, "cx": 60 / 64, "cy": 60 / 64, "partner": 0.0}
    out = op("cutmix").apply_batch(batch, [p, None], BatchContext(SPECS))
    area = 20 * 20 / 64 ** 2
    torch.testing.assert_close(out["label"][0], torch.tensor([1 - area, area, 0, 0]))
    torch.testing.assert_close(out["label"][1], torch.tensor([0.0, 1, 0, 0]))
    assert torch.equal(out["image"][0, :, 44:, 44:], batch["image"][1, :, 44:, 44:])
    assert torch.equal(out["image"][0, :, :44, :44], batch["image"][0, :, :44, :44])
    assert (out["mask"][0, 44:, 44:] == 2).all() and (out["mask"][0, :44, :44] == 1).all()
    assert out["mix"]["box"][0].tolist() == [44, 44, 64, 64] and out["mix"]["partner"].tolist() == [1, -1]


def test_cutmix_moves_boxes_keypoints_and_their_labels():
    batch = make_batch()
    p = {"lam": 0.75, "cx": 60 / 64, "cy": 60 / 64, "partner": 0.0}
    out = op("cutmix", min_visible=0.2).apply_batch(batch, [p, None], BatchContext(SPECS))
    # own box [40, 60] is 4/5 x 4/5 covered -> 36% visible, kept; partner's clipped to [44, 60]
    np.testing.assert_allclose(out["bboxes"][0].numpy(), [[4, 4, 20, 20], [40, 40, 60, 60], [44, 44, 60, 60]])
    assert out["classes"][0].tolist() == [1, 2, 12]
    np.testing.assert_allclose(out["keypoints"][0].numpy(), [[10, 10], [50, 50]])   # own (50,50) hidden, partner's shown


def test_mixup_blends_images_and_labels_and_keeps_both_images_boxes():
    batch = make_batch()
    out = op("mixup").apply_batch(batch, [{"lam": 0.3, "partner": 0.0}, None], BatchContext(SPECS))
    torch.testing.assert_close(out["image"][0], 0.3 * batch["image"][0] + 0.7 * batch["image"][1])
    torch.testing.assert_close(out["label"][0], torch.tensor([0.3, 0.7, 0, 0]))
    assert len(out["bboxes"][0]) == 4 and out["classes"][0].tolist() == [1, 2, 11, 12]
    assert (out["mask"][0] == 2).all()          # the dominant image's mask


def test_batched_mixup_is_bit_identical_to_the_per_element_formula():
    """MixUp runs as one expression over the batch; each element equals l*x_i + (1-l)*x_j exactly."""
    from augflow.ops.batch.paste import partner

    batch = make_batch(4)
    rng = np.random.default_rng(3)
    params = [{"lam": float(rng.beta(0.2, 0.2)), "partner": float(rng.random())} for _ in range(4)]
    params[2] = None
    out = op("mixup").apply_batch(batch, params, BatchContext(SPECS))
    for i, p in enumerate(params):
        x = batch["image"]
        if p is None:
            assert torch.equal(out["image"][i], x[i])
            continue
        j = partner(p["partner"], i, 4)
        assert torch.equal(out["image"][i], p["lam"] * x[i] + (1 - p["lam"]) * x[j])
        assert torch.equal(out["mask"][i], batch["mask"][j] if p["lam"] < 0.5 else batch["mask"][i])


def test_resizemix_pastes_the_whole_partner_shrunk_and_its_boxes_with_it():
    batch = make_batch()
    p = {"tau": 0.5, "u": 0.0, "v": 1.0, "partner": 0.0}        # a 32x32 patch at the bottom-left
    out = op("resizemix", min_visible=0.5).apply_batch(batch, [p, None], BatchContext(SPECS))
    patch = F.interpolate(batch["image"][1:2], size=(32, 32), mode="bilinear", align_corners=False, antialias=True)[0]
    torch.testing.assert_close(out["image"][0, :, 32:, :32], patch)
    torch.testing.assert_close(out["label"][0], torch.tensor([0.75, 0.25, 0, 0]))
    # partner's boxes halve and move to y + 32; own boxes are outside the patch and stay
    np.testing.assert_allclose(out["bboxes"][0].numpy(), [[4, 4, 20, 20], [40, 40, 60, 60], [2, 34, 10, 42],
                                                           [20, 52, 30, 62]])


def test_mosaic_tiles_four_images_and_mixes_labels_by_quadrant_area():
    batch = make_batch(4)
    p = {"cx": 0.25, "cy": 0.5, "partners": [0.0, 0.34, 0.67]}   # partners 1, 2, 3
    out = op("mosaic").apply_batch(batch, [p, None, None, None], BatchContext(SPECS))
    torch.testing.assert_close(out["label"][0], torch.tensor([0.125, 0.375, 0.125, 0.375]))
    img = batch["image"]
    assert torch.equal(out["image"][0, :, :32, :16], img[0, :, 32:, 48:])   # top-left: image 0's bottom-right
    assert torch.equal(out["image"][0, :, 32:, 16:], img[3, :, :32, :48])   # bottom-right: image 3's top-left
    assert sorted(out["mask"][0].unique().tolist()) == [1, 2, 3, 4]


def test_copy_paste_pastes_instance_pixels_and_updates_masks_and_boxes():
    specs = {"image": FieldSpec("image"), "masks": FieldSpec("masks", None, ("classes",)),
             "bboxes": FieldSpec("bboxes", "pascal_voc"), "label": FieldSpec("label")}
    m0 = torch.zeros(1, 64, 64, dtype=torch.uint8)
    m0[0, 10:20, 10:20] = 1                                # element 0: one instance, will be covered
    m1 = torch.zeros(1, 64, 64, dtype=torch.uint8)
    m1[0, 5:30, 5:30] = 1                                  # element 1: one larger instance
    batch = {"image": photos(2), "label": torch.tensor([0, 1]), "masks": [m0, m1],
             "classes": [torch.tensor([7]), torch.tensor([8])],
             "bboxes": [torch.tensor([[10.0, 10, 20, 20]]), torch.tensor([[5.0, 5, 30, 30]])]}
    out = op("copy_paste", instance_p=1.0).apply_batch(batch, [{"partner": 0.0, "seed": 1}, None], BatchContext(specs))
    assert torch.equal(out["image"][0, :, 5:30, 5:30], batch["image"][1, :, 5:30, 5:30])
    assert out["masks"][0].shape == (1, 64, 64) and out["classes"][0].tolist() == [8]   # covered instance dropped
    np.testing.assert_allclose(out["bboxes"][0].numpy(), [[5, 5, 30, 30]])
    torch.testing.assert_close(out["label"][0], torch.tensor([1 - 625 / 4096, 625 / 4096, 0, 0]))


def test_transmix_relabels_by_attention_inside_the_pasted_box():
    batch = make_batch()
    p = {"lam": 0.75, "cx": 0.75, "cy": 0.75, "partner": 0.0}       # box [32, 64) x [32, 64)
    out = op("cutmix").apply_batch(batch, [p, None], BatchContext(SPECS))
    attn = torch.zeros(2, 16)
    attn[:, 15] = 1.0                                 # all attention on the bottom-right patch (4x4 grid)
    target = TransMixHook(num_classes=4)(out, attn)
    torch.testing.assert_close(target[0], torch.tensor([0.0, 1, 0, 0]))   # area says 0.25; attention says 1
    torch.testing.assert_close(target[1], torch.tensor([0.0, 1, 0, 0]))


def test_integer_labels_without_num_classes_is_an_actionable_error():
    batch = make_batch()
    mixup = registry.get("mixup").build({})
    with pytest.raises(ValueError, match="num_classes"):
        mixup.apply_batch(batch, [{"lam": 0.5, "partner": 0.0}, None], BatchContext(SPECS))


def _instances_batch(n: int = 4, mask_labels: str = "classes") -> tuple[dict, dict]:
    """n elements with two instances each: a mask, a box and a class per instance."""
    specs = {"image": FieldSpec("image"), "masks": FieldSpec("masks", None, (mask_labels,)),
             "bboxes": FieldSpec("bboxes", "pascal_voc", ("classes",))}
    masks, boxes = [], []
    for _ in range(n):
        m = torch.zeros(2, 64, 64, dtype=torch.uint8)
        m[0, 4:20, 4:20] = 1
        m[1, 30:62, 30:62] = 1
        masks.append(m)
        boxes.append(torch.tensor([[4.0, 4, 20, 20], [30.0, 30, 62, 62]]))
    batch = {"image": photos(n), "masks": masks, "bboxes": boxes,
             "classes": [torch.tensor([10 * k + 1, 10 * k + 2]) for k in range(n)]}
    batch[mask_labels] = [torch.tensor([10 * k + 1, 10 * k + 2]) for k in range(n)]
    return batch, specs


@pytest.mark.parametrize("mask_labels", ["classes", "mask_classes"])   # one label field for both, or one each
@pytest.mark.parametrize("cx, cy", [(0.25, 0.5), (0.5, 0.5), (0.7, 0.3)])
def test_mosaic_keeps_masks_boxes_and_classes_in_step(cx, cy, mask_labels):
    batch, specs = _instances_batch(mask_labels=mask_labels)
    p = {"cx": cx, "cy": cy, "partners": [0.0, 0.34, 0.67]}
    out = op("mosaic", min_visible=0.6).apply_batch(batch, [p, None, None, None], BatchContext(specs))
    for k in range(4):
        assert len(out["masks"][k]) == len(out["bboxes"][k]) == len(out["classes"][k]), k
        assert out[mask_labels][k].tolist() == out["classes"][k].tolist(), k
    # each kept box still frames its own mask
    for mask, box in zip(out["masks"][0], out["bboxes"][0]):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        if len(ys):
            assert box[0] <= xs.min() + 1 and xs.max() <= box[2] + 1 and box[1] <= ys.min() + 1 and ys.max() <= box[3] + 1


def test_copy_paste_keeps_masks_boxes_and_classes_in_step():
    batch, specs = _instances_batch(2)
    out = op("copy_paste", instance_p=1.0).apply_batch(batch, [{"partner": 0.0, "seed": 3}, None],
                                                        BatchContext(specs))
    for k in range(2):
        assert len(out["masks"][k]) == len(out["bboxes"][k]) == len(out["classes"][k]), k
