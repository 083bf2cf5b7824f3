"""Shared fixtures: small crops of real photographs from skimage.data (fast, deterministic)."""

import os

# No network at test time: Hugging Face libraries load only local directories, albumentations
# never checks for updates. Set here so that the README's bare test command is all CI needs.
for _name in ("NO_ALBUMENTATIONS_UPDATE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from skimage import data  # noqa: E402


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A 128x128 RGB uint8 crop of skimage's astronaut (face and background)."""
    return np.ascontiguousarray(data.astronaut()[60:188, 160:288])


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """A 128x128 RGB uint8 crop of skimage's chelsea (the cat)."""
    return np.ascontiguousarray(data.chelsea()[60:188, 150:278])


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """A 128x128 grayscale (HxW) uint8 crop of skimage's camera."""
    return np.ascontiguousarray(data.camera()[100:228, 180:308])
