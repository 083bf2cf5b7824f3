"""TTA transforms: forward maps move points exactly as they move pixels; inverses undo them."""

import numpy as np
import pytest
import torch

from augflow.tta.transforms import HorizontalFlip, PadCrop, Rot90, Scale, Shift, VerticalFlip, translate

H, W = 6, 9   # non-square, so a quarter turn that swaps the axes the wrong way fails

CASES = [
    (HorizontalFlip(), True),
    (VerticalFlip(), True),
    (Rot90(), 1), (Rot90(), 2), (Rot90(), 3),
    (Shift(offsets=[(2, 1)]), (2, 1)), (Shift(offsets=[(-3, 2)]), (-3, 2)),
    (PadCrop(pad=2), (0, 4)),
    (Scale(factors=[2.0], interpolation="nearest"), 2.0),
]


@pytest.mark.parametrize("transform,variant", CASES, ids=lambda c: str(getattr(c, "name", c)))
def test_points_follow_the_pixels(transform, variant):
    for r, c in [(0, 0), (1, 3), (5, 8), (2, 6)]:
        img = torch.zeros(1, 1, H, W)
        img[0, 0, r, c] = 1.0
        out = transform.image(img, variant)
        moved = (out[0, 0] > 0.5).nonzero().float()
        if len(moved) == 0:      # shifted out of the frame
            continue
        row, col = moved.mean(0) + 0.5
        q = transform.points_forward(torch.tensor([[c + 0.5, r + 0.5]]), variant, (H, W))
        assert torch.allclose(q[0], torch.stack([col, row]))


@pytest.mark.parametrize("transform,variant", CASES, ids=lambda c: str(getattr(c, "name", c)))
def test_points_back_inverts_points_forward(transform, variant):
    p = torch.tensor([[0.0, 0.0], [1.5, 2.25], [8.9, 5.5]])
    q = transform.points_forward(p, variant, (H, W))
    assert torch.allclose(transform.points_back(q, variant, (H, W)), p, atol=1e-5)


def test_rot90_matches_numpy(astronaut):
    x = torch.from_numpy(astronaut[:40, :64].transpose(2, 0, 1).copy())[None]
    for k in (1, 2, 3):
        expected = np.rot90(astronaut[:40, :64], k, axes=(0, 1)).transpose(2, 0, 1)
        assert np.array_equal(Rot90().image(x, k)[0].numpy(), expected)


def test_dense_back_undoes_geometry_on_a_photo(camera):
    x = torch.from_numpy(camera[:50, :70].astype(np.float32))[None, None]
    for t, v in [(HorizontalFlip(), True), (VerticalFlip(), True), (Rot90(), 1), (Rot90(), 3)]:
        back, valid = t.dense_back(t.image(x, v), v, (50, 70))
        assert valid is None and torch.equal(back, x)


def test_shift_back_marks_unseen_pixels(camera):
    x = torch.from_numpy(camera[:50, :70].astype(np.float32))[None, None]
    back, valid = Shift(offsets=[(3, -2)]).dense_back(translate(x, 3, -2), (3, -2), (50, 70))
    assert valid.sum() == (70 - 3) * (50 - 2)
    assert torch.equal(back[valid.expand_as(back)], x[valid.expand_as(x)])


def test_translate_reflect_border_matches_numpy(camera):
    x = torch.from_numpy(camera[:20, :30].astype(np.float32))[None, None]
    out = translate(x, 2, 0, "reflect")[0, 0].numpy()
    expected = np.pad(camera[:20, :30].astype(np.float32), ((0, 0), (2, 0)), mode="reflect")[:, :30]
    assert np.array_equal(out, expected)
