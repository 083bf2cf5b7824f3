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
