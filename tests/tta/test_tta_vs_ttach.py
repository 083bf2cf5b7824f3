"""ttach (the reference TTA library for PyTorch) as oracle: same views, same merged outputs."""

import numpy as np
import pytest
import torch

from augflow.tta import TTA

ttach = pytest.importorskip("ttach", reason="ttach is the reference library for these comparisons (dev extra)")


@pytest.fixture
def photo_batch(astronaut, chelsea):
    x = np.stack([astronaut[:48, :64], chelsea[:48, :64]]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x)).float() / 255


def _net(out_channels, pool):
    with torch.random.fork_rng():
        torch.manual_seed(1)
        layers = [torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, out_channels, 3, padding=1)]
        if pool:
            layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()]
        return torch.nn.Sequential(*layers).eval()


@pytest.mark.parametrize("preset,reference", [("d4", "d4_transform"), ("flips", "flip_transform")])
def test_classification_mean_of_logits_equals_ttach(photo_batch, preset, reference):
    model = _net(5, pool=True)
    ours = TTA(model, preset, merge="mean_logits")(photo_batch)
    with torch.no_grad():
        wrapper = ttach.ClassificationTTAWrapper(model, getattr(ttach.aliases, reference)(), merge_mode="mean")
        theirs = wrapper(photo_batch)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_segmentation_d4_equals_ttach(photo_batch):
    model = _net(4, pool=False)
    ours = TTA(model, "d4", task="segmentation", merge="mean_logits")(photo_batch)
    with torch.no_grad():
        theirs = ttach.SegmentationTTAWrapper(model, ttach.aliases.d4_transform(), merge_mode="mean")(photo_batch)
    assert torch.allclose(ours, theirs, atol=1e-5)
