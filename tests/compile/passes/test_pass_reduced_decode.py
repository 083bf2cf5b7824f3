"""Reduced decode: JPEGs decoded at a reduced 1/2, 1/4 or 1/8 scale when the first group only downscales.

The same parameters, a different resampling: DCT-domain downscaling is a box filter, so a
reduced decode aliases *less* than a bilinear warp of the full image. The reference is therefore
the area-averaged crop (cv2.INTER_AREA of the same crop coordinates). Stated tolerance, 1600x1200
photographs through random_resized_crop to 64 px: mean abs difference to that reference < 3 grey
levels, and never worse than the full-size decode (measured: 1.2-2.5 reduced vs 4.8-8.4 full).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import augflow
from augflow.compile import decoding, make_plan
from augflow.compile.sample_stage import SampleStage

PIPE = {"augflow": 1, "name": "reduce", "seed": 2, "sample": [
    {"random_resized_crop": {"size": [64, 64], "scale": [0.2, 1.0]}}, {"horizontal_flip": {}}]}

pytestmark = pytest.mark.skipif(decoding.simplejpeg is None, reason="simplejpeg is the reduced-scale decoder")


def area_reference(pipe, path: str, index: int) -> np.ndarray:
    """The crop the op drew, area-resampled from the full-size image (the alias-free ideal)."""
    img = decoding.decode(path)
    out = pipe({"image": img}, index=index)
    x1, y1, x2, y2 = out.provenance[0].params["crop_coords"]
    ref = cv2.resize(img[y1:y2, x1:x2], (64, 64), interpolation=cv2.INTER_AREA)
    if [e.op for e in out.provenance] == ["random_resized_crop", "horizontal_flip"]:
        ref = ref[:, ::-1]
    return ref.transpose(2, 0, 1).astype(np.float32)


def test_reduced_decode_is_close_to_the_area_resampled_crop(large_jpegs):
    pipe = augflow.Pipeline.from_dict(PIPE)
    reduced = SampleStage(make_plan(pipe, passes=["affine_fusion", "reduced_decode"]))
    full = SampleStage(make_plan(pipe, passes=["affine_fusion"]))
    assert reduced.reduce and not full.reduce
    for index, path in enumerate(large_jpegs * 2):
        ref = area_reference(pipe, path, index)
        a = reduced({"image": path}, index)["image"].float().numpy()
        b = full({"image": path}, index)["image"].float().numpy()
        assert a.shape == b.shape == (3, 64, 64)
        err_reduced, err_full = np.abs(a - ref).mean(), np.abs(b - ref).mean()
        assert err_reduced < 3.0 and err_reduced <= err_full


def test_reduced_decode_decodes_fewer_pixels(large_jpegs, monkeypatch):
    sizes = []
    real = decoding.decode_reduced

    def spy(raw, min_hw):
        img = real(raw, min_hw)
        sizes.append(img.shape[:2])
        return img

    monkeypatch.setattr("augflow.compile.fused.decode_reduced", spy)
    stage = SampleStage(make_plan(augflow.Pipeline.from_dict(PIPE)))
    stage({"image": large_jpegs[0]}, 0)
    assert sizes and sizes[0][0] * sizes[0][1] <= 1600 * 1200 / 4


def test_reduced_scale_inverts_libjpeg_output_sizes():
    for full in (1600, 1201, 375, 17):
        for n in range(1, 9):
            reduced = -(-full * n // 8)
            assert decoding.reduced_scale(full, reduced) == pytest.approx(8 / n)


def test_first_op_that_is_not_geometric_keeps_full_decode():
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"color_jitter": {}},
                                                                {"random_resized_crop": {"size": [8, 8]}}]})
    assert not make_plan(pipe).decode.reduce


def test_reduce_off_in_the_pipeline_file():
    pipe = augflow.Pipeline.from_dict({**PIPE, "decode": {"reduce": False}})
    assert not make_plan(pipe).decode.reduce
