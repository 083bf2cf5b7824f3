"""Fixtures of the generative tests: tiny diffusers models built from configs (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    """A complete Stable Diffusion directory (UNet, VAE, CLIP text model + tokenizer, DDIM), ~130k params."""
    pytest.importorskip("diffusers", reason="the generative ops need the diffusers extra")
    from augflow.generative.tiny import save_tiny_stable_diffusion

    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("models") / "sd")


@pytest.fixture(scope="session")
def tiny_controlnet(tmp_path_factory) -> Path:
    pytest.importorskip("diffusers", reason="the generative ops need the diffusers extra")
    from augflow.generative.tiny import save_tiny_controlnet

    return save_tiny_controlnet(tmp_path_factory.mktemp("models") / "controlnet")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One torch thread: on a shared 2-core machine two threads spin against other processes
    (measured: 0.25 s vs 1-6 s per tiny generation under load). Restored after each module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _fresh_memory_cache():
    """Each test starts with an empty in-memory results cache, so model calls are counted honestly."""
    from augflow.generative import cache

    cache.clear_memory()
    yield
    cache.clear_memory()


@pytest.fixture(scope="session")
def cat64() -> np.ndarray:
    """A 64x64 RGB uint8 crop of skimage's chelsea (the cat)."""
    return np.ascontiguousarray(data.chelsea()[80:208:2, 160:288:2])


@pytest.fixture(scope="session")
def heart_mask() -> np.ndarray:
    """A 64x64 label map with three classes (background, a blob, a band)."""
    yy, xx = np.mgrid[:64, :64]
    mask = np.zeros((64, 64), np.uint8)
    mask[(yy - 26) ** 2 + (xx - 30) ** 2 < 15 ** 2] = 1
    mask[48:58, :] = 2
    return mask
