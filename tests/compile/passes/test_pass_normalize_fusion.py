"""Normalize fusion: per-sample normalize moved to one uint8 -> float32 pass in the batch stage.

Normalization is per-channel affine and is moved to the *front* of the batch stage, so every op
sees what it saw before; the output is unchanged up to float32 rounding (atol 1e-5).
"""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch

import augflow
from augflow.compile import make_plan
from augflow.compile.plan import FusedNormalize
from augflow.ops.batch.kernels import normalize_tensor

PIPE = {"augflow": 1, "name": "norm", "seed": 4, "sample": [
    {"random_resized_crop": {"size": [40, 40]}}, {"color_jitter": {"p": 0.5}},
    {"normalize": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}}, {"to_tensor": {}}],
    "batch": {"ops": [{"horizontal_flip": {}}]}}


def test_normalize_leaves_the_sample_stage_for_the_front_of_the_batch_stage():
    plan = make_plan(augflow.Pipeline.from_dict(PIPE), passes=["normalize_fusion"])
    assert [s.step.name for s in plan.sample.items] == ["random_resized_crop", "color_jitter"]
    assert isinstance(plan.batch.items[0], FusedNormalize)


def test_fused_normalize_output_is_unchanged(jpeg_paths):
    pipe = augflow.Pipeline.from_dict(PIPE)
    a = next(iter(pipe.compile(jpeg_paths[:5], batch_size=5, passes=["normalize_fusion"])))["image"]
    b = next(iter(pipe.compile(jpeg_paths[:5], batch_size=5, passes=())))["image"]
    assert a.dtype == b.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_fused_kernel_reads_uint8_like_albumentations_normalize(astronaut):
    ref = A.Normalize(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), p=1)(image=astronaut)["image"]
    x = torch.from_numpy(astronaut).permute(2, 0, 1)[None]
    got = normalize_tensor(x, (127.5, 102.0, 76.5), (51.0, 63.75, 76.5))
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), ref, atol=1e-5)


def test_channels_last_batch_normalizes_to_the_same_contiguous_output(astronaut):
    """Collated images arrive as channels-last memory; the one pass that splits planes, converts
    and normalizes gives exactly what the channels-first path gives, channels-first contiguous."""
    hwc = torch.from_numpy(np.stack([astronaut[:32, :24], astronaut[8:40, 16:40]]))
    mean, std = (127.5, 102.0, 76.5), (51.0, 63.75, 76.5)
    fast = normalize_tensor(hwc.permute(0, 3, 1, 2), mean, std)
    ref = normalize_tensor(hwc.permute(0, 3, 1, 2).contiguous(), mean, std)
    assert fast.is_contiguous() and fast.shape == (2, 3, 32, 24)
    torch.testing.assert_close(fast, ref, atol=0, rtol=0)


def test_loader_images_are_views_until_collated_and_contiguous_after(jpeg_paths):
    """The sample stage hands CHW views of HWC pixels (no copy); the batch equals stacking
    contiguous copies, and leaves the loader channels-first contiguous."""
    from augflow.compile.backends.torch_loader import is_hwc_view

    pipe = augflow.Pipeline.from_dict(PIPE)
    loader = pipe.compile(jpeg_paths[:4], batch_size=4)
    items = [loader.dataset[i] for i in range(4)]
    assert all(is_hwc_view(it["image"]) for it in items)
    collated = loader.dataloader.collate_fn(items)["image"]
    torch.testing.assert_close(collated, torch.stack([it["image"].contiguous() for it in items]), atol=0, rtol=0)
    batch = next(iter(loader))["image"]
    assert batch.is_contiguous() and batch.shape == (4, 3, 40, 40)
