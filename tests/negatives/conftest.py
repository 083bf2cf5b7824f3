"""Fixtures of the negative-generator tests: digits embeddings, a noise bank from real photographs,
a tiny inpainting-capable diffusion model, captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def digits_embeddings() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 digits as 16-d PCA embeddings of the standardised pixels, and the labels."""
    pytest.importorskip("sklearn", reason="the NGAME tests embed scikit-learn's digits")
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    emb = PCA(16, random_state=0).fit_transform(StandardScaler().fit_transform(x)).astype(np.float32)
    return emb, y


@pytest.fixture(scope="session")
def noisy_frames() -> list[tuple[str, np.ndarray]]:
    """Real photographs with flat regions (sky, background): camera (gray) and rocket (RGB)."""
    return [("camera", np.repeat(data.camera()[:, :, None], 3, axis=2)), ("rocket", data.rocket())]


@pytest.fixture(scope="session")
def noise_bank_path(tmp_path_factory, noisy_frames) -> Path:
    """A bank of 32x32 noise patches from the flat windows of the photographs."""
    from augflow.negatives.noise import build_noise_bank

    bank = build_noise_bank(noisy_frames, patch_size=32)
    return bank.save(tmp_path_factory.mktemp("noise") / "bank.npz")


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    """A complete tiny Stable Diffusion directory built from configs (no download); its UNet has 4 input
    channels, which diffusers' inpainting pipeline handles by blending latents outside the mask."""
    pytest.importorskip("diffusers", reason="image negatives need the diffusers extra")
    from augflow.generative.tiny import save_tiny_stable_diffusion

    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("models") / "sd")


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a shared 2-core machine, two threads spin against other processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
