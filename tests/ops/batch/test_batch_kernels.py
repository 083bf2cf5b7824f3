"""Kornia batch kernels: one kernel call per op, parameters per element, same results as per-sample ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import augflow
from augflow import registry
from augflow.compile.batch_stage import element_seed
from augflow.compile.fused import proxy
from augflow.ops.batch.kernels import BatchContext, kernel_for
from augflow.params_codec import from_jsonable
from augflow.sample import FieldSpec, Sample


def batch_of(images: list[np.ndarray]) -> dict:
    return {"image": torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i in images]).float() / 255}


def draw(op, n: int, hw, seed: int = 0) -> list[dict]:
    return [from_jsonable(op.sample_params(np.random.Generator(np.random.Philox(seed + i)), proxy(hw)))
            for i in range(n)]


CTX = BatchContext({"image": FieldSpec("image")})


def test_each_element_gets_its_own_parameters(astronaut):
    op = registry.get("color_jitter").build({"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.1})
    batch = batch_of([astronaut] * 4)
    params = draw(op, 4, astronaut.shape[:2])
    out = kernel_for(op)(op, dict(batch), params, CTX)["image"]
    assert len({round(float(out[i].mean()), 4) for i in range(4)}) == 4


def test_batch_flip_applies_only_where_drawn(astronaut):
    op = registry.get("horizontal_flip").build({})
    batch = batch_of([astronaut] * 3)
    out = kernel_for(op)(op, dict(batch), [{"shape": [128, 128, 3]}, None, {"shape": [128, 128, 3]}], CTX)["image"]
    assert torch.equal(out[0], batch["image"][0].flip(-1)) and torch.equal(out[1], batch["image"][1])


@pytest.mark.parametrize("hue, tol", [(0.0, 1.5), (0.05, 3.0)])
def test_batch_color_jitter_matches_the_per_sample_op(astronaut, chelsea, hue, tol):
    """Same parameters, same maths. Tolerance in grey levels: albumentations rounds to uint8 after
    each step (1.5); a hue shift also round-trips through OpenCV's 8-bit HSV, 180 hue bins (3)."""
    op = registry.get("color_jitter").build({"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": hue})
    imgs = [astronaut, chelsea]
    params = draw(op, 2, (128, 128))
    out = kernel_for(op)(op, batch_of(imgs), params, CTX)["image"]
    for i, img in enumerate(imgs):
        ref = op.apply(Sample({"image": img}), **params[i])["image"].astype(np.float32)
        got = out[i].permute(1, 2, 0).numpy() * 255
        assert np.abs(got - ref).mean() < tol


def test_batch_affine_moves_boxes_and_keypoints_like_albumentations(astronaut):
    op = registry.get("affine").build({"rotate": [-30, 30], "scale": [0.8, 1.2], "translate_percent": [-0.1, 0.1]})
    boxes = np.array([[20, 30, 80, 100]], np.float32)
    kps = np.array([[64, 40], [30, 90]], np.float32)
    specs = {"image": FieldSpec("image"), "bboxes": FieldSpec("bboxes", "pascal_voc"), "keypoints": FieldSpec("keypoints", "xy")}
    params = draw(op, 1, (128, 128), seed=3)
    batch = {**batch_of([astronaut]), "bboxes": [torch.from_numpy(boxes)], "keypoints": [torch.from_numpy(kps)]}
    out = kernel_for(op)(op, batch, params, BatchContext(specs))
    ref = op.apply(Sample({"image": astronaut, "bboxes": boxes, "keypoints": kps}, specs), **params[0])
    np.testing.assert_allclose(out["bboxes"][0].numpy(), ref["bboxes"], atol=1.0)
    np.testing.assert_allclose(out["keypoints"][0].numpy(), ref["keypoints"][:, :2], atol=0.5)
    got = out["image"][0].permute(1, 2, 0).numpy() * 255
    assert np.abs(got - ref["image"]).mean() < 1.5


def test_element_parameters_do_not_depend_on_the_batch(jpeg_like_paths):
    """Index 3's batch-stage parameters are the same whether it is batched with 0-3 or alone."""
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"random_resized_crop": {"size": [32, 32]}}],
                                       "batch": {"ops": [{"color_jitter": {"brightness": 0.5}}]}})
    loader = pipe.compile(jpeg_like_paths[:4], batch_size=4)
    together = next(iter(loader))["image"][3]
    alone = loader.batch_stage(loader.dataloader.collate_fn([loader.dataset[3]]))["image"][0]
    torch.testing.assert_close(alone, together)
    assert not np.array_equal(element_seed(0, 0, 3).generate_state(2), element_seed(0, 0, 2).generate_state(2))
