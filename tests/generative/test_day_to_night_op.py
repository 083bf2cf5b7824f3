"""day_to_night: a ResNet generator checkpoint applied as an op."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augflow import Pipeline, PipelineConfigError
from augflow.generative import cache, models
from augflow.generative.networks import ResnetGenerator, init_weights


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A CycleGAN-style checkpoints folder with a small random generator (instance norm)."""
    folder = tmp_path_factory.mktemp("cyclegan_run")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = init_weights(ResnetGenerator(ngf=8, n_blocks=3, norm="instance"), gain=0.2)
    torch.save(net.state_dict(), folder / "latest_net_G_A.pth")
    return folder


def _pipe(checkpoint, **params) -> Pipeline:
    return Pipeline.from_dict({"augflow": 1, "sample": [{"day_to_night": {"checkpoint": str(checkpoint), **params}}]})


def test_any_image_size_and_layout_comes_back_the_same(checkpoint, astronaut, camera):
    pipe = _pipe(checkpoint)
    for img in (astronaut[:61, :45], camera[:50, :38]):
        out = pipe({"image": img}, seed=0)["image"]
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - img).mean() > 5


def test_output_is_the_generator_applied_in_eval_mode(checkpoint, astronaut):
    from augflow.generative.networks import load_generator

    out = _pipe(checkpoint)({"image": astronaut[:64, :64]}, seed=0)["image"]
    net = load_generator(checkpoint)
    with torch.no_grad():
        x = torch.from_numpy(astronaut[:64, :64].astype(np.float32) / 255.0).permute(2, 0, 1)[None] * 2 - 1
        ref = ((net(x)[0].permute(1, 2, 0).numpy() + 1) / 2 * 255).round()
    assert np.abs(out.astype(float) - ref).max() <= 1


def test_blend_mixes_with_the_input(checkpoint, astronaut):
    img = astronaut[:64, :64]
    full = _pipe(checkpoint)({"image": img}, seed=0)["image"].astype(float)
    half = _pipe(checkpoint, blend=0.5)({"image": img}, seed=0)["image"].astype(float)
    np.testing.assert_allclose(half, (full + img) / 2, atol=1.5)


def test_cached_results_skip_the_generator(checkpoint, astronaut, tmp_path):
    with cache.use_cache_dir(tmp_path):
        first = _pipe(checkpoint)({"image": astronaut[:64, :64]}, seed=0)["image"]
        cache.clear_memory()
        calls = models.CALLS["day_to_night"]
        second = _pipe(checkpoint)({"image": astronaut[:64, :64]}, seed=0)["image"]
    assert models.CALLS["day_to_night"] == calls
    np.testing.assert_array_equal(first, second)


def test_a_missing_checkpoint_is_a_load_time_error(tmp_path):
    with pytest.raises(PipelineConfigError, match="'checkpoint'.*augflow train day-to-night"):
        _pipe(tmp_path / "nothing.pth")
