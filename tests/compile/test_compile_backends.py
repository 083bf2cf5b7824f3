"""One pipeline file, three backends: the same parameters drawn, outputs within stated tolerances.

Every backend draws each op's parameters with the op's own `sample_params` on the generator of
(seed, epoch, index), so crops and flips are identical; what differs is arithmetic:
- kornia: float32 colour maths (albumentations rounds to uint8 after every colour op) and
  grid_sample vs OpenCV's fixed-point resize; where a crop is *upsampled*, the warp reads the real
  pixel beyond the crop's edge where cv2.resize repeats the edge row: a few outermost pixels.
- dali: libjpeg-turbo in DALI, its own resize, colour ops on uint8 with rounding; colour jitter in
  the fixed order brightness, contrast, saturation. Those commute, but only up to clipping: where
  a bright image saturates, the order albumentations drew for that sample matters (one image
  here: p99 13 levels). DALI's hue is a YIQ rotation, not an HSV shift: not comparable, so this
  pipeline keeps hue at 0.
Tolerances, in 8-bit grey levels over all pixels: mean < 1.5 for both; 99th percentile < 5 for
kornia, < 15 for dali (measured here: kornia 1.0 / 2.4, dali 1.2 / 4-13 by image).
"""

from __future__ import annotations

import pytest
import torch

import augflow

# reduced decode (an albumentations-backend pass) resamples differently by design; it has its own test
PIPE = {"augflow": 1, "name": "agree", "seed": 3, "decode": {"reduce": False}, "sample": [
    {"random_resized_crop": {"size": [48, 48], "scale": [0.3, 1.0]}},
    {"horizontal_flip": {"p": 0.5}},
    {"color_jitter": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.0, "p": 0.8}},
    {"normalize": {}},
    {"to_tensor": {}},
]}
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def images(backend: str, paths: list[str], epoch: int = 0) -> torch.Tensor:
    loader = augflow.Pipeline.from_dict(PIPE).compile(paths, batch_size=len(paths), backend=backend)
    loader.set_epoch(epoch)
    batch = next(iter(loader))
    assert batch["_index"].tolist() == list(range(len(paths)))
    if hasattr(loader, "close"):
        loader.close()          # DALI threads must not outlive the test: later tests fork workers
    return batch["image"].float()


def grey_levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b).abs() * STD).flatten()


def test_kornia_backend_agrees_with_albumentations(jpeg_paths):
    ref = images("albumentations", jpeg_paths[:6])
    diff = grey_levels(images("kornia", jpeg_paths[:6]), ref)
    assert diff.mean() < 1.5 and diff.quantile(0.99) < 5


def test_dali_cpu_backend_agrees_with_albumentations(jpeg_paths):
    pytest.importorskip("nvidia.dali", reason="DALI is the 'dali' extra")
    ref = images("albumentations", jpeg_paths[:6])
    diff = grey_levels(images("dali", jpeg_paths[:6]), ref)
    assert diff.mean() < 1.5 and diff.quantile(0.99) < 15


def test_backends_differ_by_arithmetic_not_by_parameters(jpeg_paths):
    """A wrong parameter stream (another epoch) is far outside the tolerance: the test can fail."""
    diff = grey_levels(images("kornia", jpeg_paths[:6], epoch=1), images("albumentations", jpeg_paths[:6]))
    assert diff.mean() > 10
